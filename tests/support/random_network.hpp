#pragma once
// Random layered and recurrent networks for comparing the engine with the naive oracle.
// With `exact` every parameter is a small dyadic rational, so sums are exact in double and the
// two simulators must agree spike for spike whatever their order of summation.
#include <cstdint>

#include "network/network.hpp"
#include "sim/engine.hpp"

namespace quantal::testing {

// How each projection's release is chosen.
enum class ReleaseChoice {
    fixed,   // RandomNetworkOptions::release for every projection
    limits,  // none, or spike/synapse at ratio 0 or 1; sparse synapses' own probabilities 0 or 1:
             // every transmission is certain, so the oracle decides it
    random,  // spike or synapse at ratios in [0.1, 0.9], either sampler, sparse own probabilities
             // in [0, 1]: only the statistics can be compared
};

struct RandomNetworkOptions {
    bool exact = true;          // dyadic parameters (else arbitrary floats)
    bool lif = false;           // allow LIF populations
    bool cuba = false;          // allow CubaLIF populations
    bool recurrent = true;      // add delayed backward and self projections
    bool skips = true;          // add zero-delay projections that skip layers (fan-in from two paths)
    bool per_neuron = false;    // draw threshold, v_reset, v0, tau and v_leak per neuron in some populations
    int layers = 4;
    Tick ticks = 40;
    Release release;            // of every projection with ReleaseChoice::fixed
    ReleaseChoice release_choice = ReleaseChoice::fixed;
};

struct RandomCase {
    Network network;
    Stimulus stimulus;
};

// Convolutions draw kernel, stride, padding and dilation per axis (non-square windows); pools
// draw kernel, stride (or "same as kernel") and padding per axis.
RandomCase random_case(std::uint64_t seed, const RandomNetworkOptions& options);

} // namespace quantal::testing
