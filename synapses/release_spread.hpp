#pragma once
// Heterogeneous release (`--release-spread κ`): every synapse s of a projection has its own release
// probability p_s ~ Beta(α = μκ, β = (1 - μ)κ), with mean μ = 1 - mask_ratio and variance
// μ(1 - μ)/(κ + 1), drawn once per run seed and fixed over samples and ticks (measured release
// probabilities vary across synapses; a large κ approaches homogeneous release). Under `spike`
// release the unit is the source neuron: each one's spikes pass with its own p_j.
//
// Nothing is stored per synapse, so implicit projections (dense, conv, pool, one_to_one) have it
// too: p_s is a counter-based draw, the Beta quantile at level (h + 1/2) / 4096 where h is the top
// 12 bits of a hash of (seed, projection, synapse). The 4096 quantiles are computed once per (μ, κ)
// (Boost.Math's ibeta_inv), so p_s takes one of 4096 equally likely values: the distribution is
// quantised to its midpoint quantiles (Kolmogorov distance to the Beta at most 1/8192; mean and
// variance of the table are tested against the Beta's in tests/test_release_spread.cpp).
#include <array>
#include <cstddef>
#include <cstdint>

#include "sim/random.hpp"

namespace quantal {

class ReleaseSpread {
public:
    static constexpr unsigned level_bits = 12;
    static constexpr std::size_t levels = std::size_t{1} << level_bits;

    // mean μ in (0, 1), concentration κ > 0 (checked when a network is built). Costs 4096 ibeta_inv
    // calls (tens of ms): a Network computes one table per (μ, κ) and its engines share it.
    ReleaseSpread(double mean, double concentration);

    // The key of a projection's draws (stream id as in sim/engine.cpp) under a run seed; not the
    // sample: a synapse keeps its probability over the samples of a run.
    static std::uint64_t key(std::uint64_t seed, std::uint64_t stream) { return stream_seed(seed, spread_domain, stream); }
    // The identity of a synapse of an implicit projection; a sparse synapse is its index in the
    // projection, a neuron (spike release) its index in the source population.
    static std::uint64_t synapse(std::uint32_t source, std::uint32_t target) {
        return std::uint64_t(source) << 32 | target;
    }
    static std::size_t level(std::uint64_t key, std::uint64_t synapse) {
        return std::size_t(mix64(key ^ synapse) >> (64 - level_bits));
    }

    double probability(std::size_t level) const { return p_[level]; }
    // One transmission of synapse s (under `key`) from the event's stream: Bernoulli(p_s) as one
    // compare of a raw 64-bit draw (p rounded down to a multiple of 2^-64).
    bool keep(RandomEngine& rng, std::uint64_t key, std::uint64_t synapse) const {
        return rng() < bound_[level(key, synapse)];
    }
    // The same for one synapse of a fan-out, from a 32-bit uniform u (HalfDraws): keep when
    // u < threshold32 = p·2^32 rounded down (2^32 for p = 1): each half of a 64-bit draw decides
    // one synapse, with a bias below 2^-32.
    std::uint64_t threshold32(std::size_t level) const { return bound32_[level]; }
    double mean() const { return mean_; }
    double concentration() const { return concentration_; }

private:
    // Samples are numbered below 2^53, so this "sample" index gives keys no stream ever has.
    static constexpr std::uint64_t spread_domain = ~std::uint64_t(0);
    double mean_, concentration_;
    std::array<double, levels> p_;
    std::array<std::uint64_t, levels> bound_, bound32_;
};

// 32-bit uniforms, two from each 64-bit draw (low half first).
class HalfDraws {
public:
    explicit HalfDraws(RandomEngine& rng) : rng_(rng) {}
    std::uint32_t next() {
        if (have_) return have_ = false, std::uint32_t(word_ >> 32);
        word_ = rng_();
        have_ = true;
        return std::uint32_t(word_);
    }

private:
    RandomEngine& rng_;
    std::uint64_t word_ = 0;
    bool have_ = false;
};

} // namespace quantal
