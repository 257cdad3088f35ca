#pragma once
// Random layered and recurrent networks for comparing the engine with the naive oracle.
// With `exact` every parameter is a small dyadic rational, so sums are exact in double and the
// two simulators must agree spike for spike whatever their order of summation.
#include <cstdint>

#include "network/network.hpp"
#include "sim/engine.hpp"

namespace quantal::testing {

struct RandomNetworkOptions {
    bool exact = true;          // dyadic parameters (else arbitrary floats)
    bool lif = false;           // allow LIF populations
    bool recurrent = true;      // add delayed backward and self projections
    int layers = 4;
    Tick ticks = 40;
    Release release;            // of every projection (the random draws do not depend on it)
};

struct RandomCase {
    Network network;
    Stimulus stimulus;
};

RandomCase random_case(std::uint64_t seed, const RandomNetworkOptions& options);

} // namespace quantal::testing
