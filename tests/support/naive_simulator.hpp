#pragma once
// The oracle: a deliberately plain time-stepped simulator. Every tick it updates every neuron and
// computes every projection's input densely from the user's description (dense matrices, direct
// convolution loops, explicit CSR), sharing no code with the engine's fan-out or scheduling.
#include <vector>

#include "network/network.hpp"
#include "sim/engine.hpp"

namespace quantal::testing {

// Spikes as (tick, population, neuron), sorted. Release models are ignored (always "none").
std::vector<SpikeRecord> naive_simulate(const Network& net, const Stimulus& stimulus, Tick ticks);

// Readout values after the last tick, per readout population in population order.
std::vector<std::vector<double>> naive_readouts(const Network& net, const Stimulus& stimulus, Tick ticks);

} // namespace quantal::testing
