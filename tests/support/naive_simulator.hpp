#pragma once
// The oracle: a deliberately plain time-stepped simulator written from the documented semantics
// (DESIGN.md "One tick, precisely", docs/engine.md, the per-tick equations of neurons/models.hpp).
// Every tick it steps every neuron with its own threshold, reset and leak arithmetic and computes
// every projection's input densely from the user's description (dense matrices, direct
// convolution loops, explicit CSR). It shares no code with the engine's neuron dynamics
// (ThresholdRule, neurons/dynamics.hpp), fan-out, release or scheduling; from the Network it reads
// the populations' parameter structs, and the projections' weights only via user_connectivity().
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "network/network.hpp"
#include "sim/engine.hpp"

namespace quantal::testing {

// The one place the oracle reads a projection's connectivity (weights, kernels, CSR) from a
// Network: how a Network stores its weights may change, and only this function follows.
Connectivity user_connectivity(const Network& net, ProjectionId p);

struct NaiveRun {
    std::vector<SpikeRecord> spikes;           // sorted by (tick, population, neuron)
    std::vector<std::vector<double>> readouts; // per readout population, in population order, after the last tick
    // Per population: every neuron's potential at the end of every tick (ticks x neurons, row-major).
    std::vector<std::vector<double>> potentials;
    // With inexact (non-dyadic) parameters a sum's rounding depends on its order, which the engine
    // and the oracle choose differently. The oracle carries a bound on that rounding per neuron
    // (see naive_simulator.cpp); the first tick at which some membrane lay within its bound of the
    // threshold is where the two may legitimately part (`never` if no membrane came that close).
    // Meaningless for dyadic networks, where v == threshold happens exactly and sums are exact.
    Tick first_near_tie = never;
};

// Release is decided only where it is certain (compensation, Release::compensate, multiplies what
// is transmitted by 1 / (1 - ratio), operators' inputs included): mode none, ratio 0 (all transmit), ratio 1 (none),
// and sparse per-synapse probabilities whose product with 1 - ratio is 0 or 1. Any other release
// throws std::invalid_argument (such runs are checked statistically: expected_traffic).
// BernoulliSource populations spike as `replayed` lists (a record of an engine run): the oracle
// does not redraw the engine's random stream; the sources' rates are tested on their own.
//
// `masks`, when given, decides `spike`-release projections at any ratio: masks(projection, tick,
// source neuron) says whether that spike is kept (a replay of the engine's documented draws,
// made by the caller), so the oracle sees the same failures and computes what survives with its
// own arithmetic, compensation included.
using SpikeMasks = std::function<bool(ProjectionId, Tick, std::uint32_t)>;
NaiveRun naive_run(const Network& net, const Stimulus& stimulus, Tick ticks, std::span<const SpikeRecord> replayed = {},
                   const SpikeMasks& masks = {});

std::vector<SpikeRecord> naive_simulate(const Network& net, const Stimulus& stimulus, Tick ticks);
std::vector<std::vector<double>> naive_readouts(const Network& net, const Stimulus& stimulus, Tick ticks);

// What a projection's ledger must show for given presynaptic spikes, counted from the user's
// description: exact counts, and the mean and variance of `transmitted` under its release model.
struct ExpectedTraffic {
    std::uint64_t spikes_in = 0;  // source spikes with a delivery inside the sample (see expected_traffic)
    std::uint64_t attempted = 0;  // their synapses whose delivery falls inside the sample
    double mean_transmitted = 0;  // over the release draws
    double var_transmitted = 0;
    std::uint64_t fanout = 0;     // synapses per spike when all spikes have the same count, else 0
};
// A release spread (Release::spread) gives synapse s of projection j the probability of its
// ReleaseSpread level under key(seed, j), the identity of s being (source, target) for implicit
// kinds and its CSR index for sparse ones (spike release: the source neuron): `seed` is the run's.
std::vector<ExpectedTraffic> expected_traffic(const Network& net, std::span<const SpikeRecord> spikes, Tick ticks,
                                              std::uint64_t seed = 0);

} // namespace quantal::testing
