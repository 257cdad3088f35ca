#pragma once
// Seeded random streams. Every stream is keyed by (run seed, sample index, stream id), so a
// sample's draws do not depend on which thread simulates it or on what ran before it.
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace quantal {

// SplitMix64 finaliser: decorrelates neighbouring keys before they seed the engine.
constexpr std::uint64_t mix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

// xoshiro256++ (Blackman and Vigna, "Scrambled linear pseudorandom number generators", 2021;
// the authors' reference xoshiro256plusplus.c), written here from the published algorithm. All
// 64 output bits are of full quality, which the bit-sliced Bernoulli masks below rely on; a draw
// is a handful of adds, xors and rotations (Mersenne Twister, used before, cost several times
// more). Satisfies UniformRandomBitGenerator.
class Xoshiro256pp {
public:
    using result_type = std::uint64_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

    // The state is four consecutive outputs of SplitMix64 started at `seed` (the seeding the
    // authors recommend); it is never all zero, since SplitMix64's outputs are distinct.
    explicit Xoshiro256pp(std::uint64_t seed = 0) {
        for (int i = 0; i < 4; ++i) s_[i] = mix64(seed + std::uint64_t(i) * 0x9E3779B97F4A7C15ULL);
    }
    // The raw state, for tests against the reference outputs. Must not be all zero.
    static Xoshiro256pp from_state(std::uint64_t s0, std::uint64_t s1, std::uint64_t s2, std::uint64_t s3) {
        Xoshiro256pp g;
        g.s_[0] = s0, g.s_[1] = s1, g.s_[2] = s2, g.s_[3] = s3;
        return g;
    }
    // The raw state (checkpoints); from_state() restores it.
    std::array<std::uint64_t, 4> state() const { return {s_[0], s_[1], s_[2], s_[3]}; }

    result_type operator()() {
        const std::uint64_t result = std::rotl(s_[0] + s_[3], 23) + s_[0];
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = std::rotl(s_[3], 45);
        return result;
    }

    friend bool operator==(const Xoshiro256pp&, const Xoshiro256pp&) = default;

private:
    std::uint64_t s_[4];
};

using RandomEngine = Xoshiro256pp;

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
    template <class Generator> bool operator()(Generator& rng) const { return always_ || rng() < bound_; }

private:
    bool always_;
    std::uint64_t bound_;
};

// Bernoulli(p) keep bits for 64 synapses at a time, bit-sliced: lane j of a mask word decides
// synapse j. Each lane compares a random 16-bit fraction U (bit 15 from the first random word,
// bit 14 from the second, ...) with p16 = round(p * 2^16) and keeps when U < p16, most
// significant bit first; the loop stops as soon as every lane is decided (U and p16 differ in a
// bit seen so far) or at p16's lowest set bit (below it p16 is 0: undecided lanes have U >= p16).
// Words per 64 synapses: at most 16 - ctz(p16) (2 for p = 1/4), about 7.3 on average for a p16
// with many bits. Keep probability: exactly p16 / 2^16, so |p - p16 / 2^16| <= 2^-17, and exact
// when p is a multiple of 2^-16. A p that would round to 0 or 2^16 (but is not exactly 0 or 1)
// falls back to one 64-bit compare per lane (`BernoulliThreshold`), so it is never rounded to
// "always" or "never".
class BernoulliMasks {
public:
    explicit BernoulliMasks(double p)
        : p_(p), p16_(round16(p)), exact_(p > 0.0 && p < 1.0 && (p16_ == 0 || p16_ == 0x10000)), threshold_(p) {}

    // p rounded to the nearest multiple of 2^-16 (halves away from zero), as an integer in [0, 2^16].
    static std::uint32_t round16(double p) {
        return p <= 0.0 ? 0u : p >= 1.0 ? 0x10000u : std::uint32_t(std::lround(std::ldexp(p, 16)));
    }
    // The keep probability the masks realise.
    double probability() const { return exact_ ? p_ : std::ldexp(double(p16_), -16); }
    std::uint32_t p16() const { return p16_; }
    bool exact() const { return exact_; }

    // Keep bits of the lanes set in `lanes` (the others are 0).
    template <class Generator> std::uint64_t word(Generator& rng, std::uint64_t lanes = ~std::uint64_t(0)) const {
        if (exact_) return exact_word(rng, lanes);
        if (p16_ == 0) return 0;
        if (p16_ == 0x10000) return lanes;
        std::uint64_t keep = 0, undecided = lanes;
        for (std::uint32_t bit = 0x8000;; bit >>= 1) {
            const std::uint64_t r = rng();
            const std::uint64_t ones = (p16_ & bit) ? ~std::uint64_t(0) : 0; // p16's bit, in every lane
            keep |= undecided & ~r & ones; // where p16's bit is 1 and U's is 0: U < p16
            undecided &= ~(r ^ ones);      // lanes whose U still equals p16 on the bits seen
            if (undecided == 0 || (p16_ & (bit - 1)) == 0) return keep;
        }
    }

    // The lanes 0 .. n-1 (n <= 64).
    static std::uint64_t first_lanes(std::uint64_t n) { return n >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << n) - 1; }

private:
    template <class Generator> std::uint64_t exact_word(Generator& rng, std::uint64_t lanes) const {
        std::uint64_t keep = 0;
        for (std::uint64_t m = lanes; m != 0; m &= m - 1)
            if (threshold_(rng)) keep |= m & (~m + 1);
        return keep;
    }
    double p_;
    std::uint32_t p16_;
    bool exact_;
    BernoulliThreshold threshold_;
};

// A stream of keep bits handed out in runs of 1..64 (fan-outs enumerated in short runs: conv
// windows, pool rows). Bit k of the stream decides synapse k, as in `BernoulliMasks::word` for a
// contiguous fan-out.
class MaskStream {
public:
    explicit MaskStream(const BernoulliMasks& masks) : masks_(masks) {}
    // The next n (1 <= n <= 64) keep bits, in the low bits of the result.
    std::uint64_t take(RandomEngine& rng, unsigned n) {
        const std::uint64_t low = BernoulliMasks::first_lanes(n);
        if (n <= avail_) {
            const std::uint64_t out = buf_ & low;
            buf_ = n == 64 ? 0 : buf_ >> n;
            avail_ -= n;
            return out;
        }
        const std::uint64_t w = masks_.word(rng);
        const std::uint64_t out = (buf_ | (w << avail_)) & low; // avail_ < n <= 64
        const unsigned used = n - avail_;
        buf_ = used == 64 ? 0 : w >> used;
        avail_ = 64 - used;
        return out;
    }

private:
    const BernoulliMasks& masks_;
    std::uint64_t buf_ = 0;
    unsigned avail_ = 0;
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
