#pragma once
// Seeded random streams. Every stream is keyed by (run seed, sample index, stream id), so a
// sample's draws do not depend on which thread simulates it or on what ran before it.
#include <cmath>
#include <cstdint>

#include <boost/random/mersenne_twister.hpp>

namespace quantal {

using RandomEngine = boost::random::mt19937_64;

// SplitMix64 finaliser: decorrelates neighbouring keys before they seed the engine.
constexpr std::uint64_t mix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

constexpr std::uint64_t stream_seed(std::uint64_t run_seed, std::uint64_t sample, std::uint64_t stream) {
    return mix64(mix64(mix64(run_seed) ^ sample) ^ stream);
}

inline RandomEngine make_stream(std::uint64_t run_seed, std::uint64_t sample, std::uint64_t stream) {
    return RandomEngine(stream_seed(run_seed, sample, stream));
}

// Uniform on (0, 1], 53 random bits; never 0, so log() is finite.
inline double uniform_open0(RandomEngine& rng) {
    return double((rng() >> 11) + 1) * 0x1.0p-53;
}

// Bernoulli(p) as one integer compare: keep when the raw 64-bit draw is below p * 2^64.
class BernoulliThreshold {
public:
    explicit BernoulliThreshold(double p)
        : always_(p >= 1.0), bound_(p <= 0.0 ? 0 : always_ ? 0 : std::uint64_t(std::ldexp(p, 64))) {}
    bool operator()(RandomEngine& rng) const { return always_ || rng() < bound_; }

private:
    bool always_;
    std::uint64_t bound_;
};

// Failures before the next success of Bernoulli(p) trials, for 0 < p < 1; saturates at `cap`.
class GeometricGaps {
public:
    explicit GeometricGaps(double p) : inv_log_q_(1.0 / std::log1p(-p)) {}
    std::uint64_t next(RandomEngine& rng, std::uint64_t cap) const {
        const double gap = std::floor(std::log(uniform_open0(rng)) * inv_log_q_);
        return gap < double(cap) ? std::uint64_t(gap) : cap;
    }

private:
    double inv_log_q_;
};

} // namespace quantal
