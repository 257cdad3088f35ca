// Release models (RSM as quantal synaptic failure) against binomial statistics.
#include <catch2/catch.hpp>
#include <bit>
#include <cmath>
#include <concepts>
#include <iterator>
#include <random>
#include <vector>

#include "sim/engine.hpp"
#include "sim/random.hpp"

using namespace quantal;

namespace {

// One source neuron spiking every tick into `n` detector neurons through one projection. A
// detector (threshold 0.5, weight 1, reset to 0) spikes at tick t exactly when its synapse
// transmitted at t, so detector spikes are per-synapse transmission outcomes.
struct Detector {
    Network net;
    PopulationId source, detectors;
};

Detector detector_network(std::uint32_t n, Connectivity c, Release r, std::uint32_t n_source = 1) {
    NetworkBuilder b;
    const auto src = b.add_population("src", {n_source}, SpikeSource{});
    const auto det = b.add_population("det", {n}, IfNeuron{ThresholdRule{0.5, Comparison::greater_equal, ResetMode::to_value, 0.0}, 0.0, 1.0});
    b.connect(Projection{"syn", src, det, std::move(c), 0, r});
    return {b.build(), src, det};
}

SampleResult run_every_tick(const Detector& d, Tick ticks, std::uint64_t seed = 7, std::uint64_t sample = 0) {
    Stimulus s = Stimulus::for_network(d.net);
    for (Tick t = 0; t < ticks; ++t)
        for (std::uint32_t i = 0; i < d.net.population(d.source).size(); ++i) s.spikes[d.source].push_back({t, i});
    RunOptions o;
    o.ticks = ticks;
    o.seed = seed;
    o.record_spikes = true;
    return Engine(d.net).run(s, o, sample);
}

void check_binomial(std::uint64_t successes, std::uint64_t trials, double p) {
    const double mean = double(trials) * p, sd = std::sqrt(double(trials) * p * (1 - p));
    INFO("transmitted " << successes << " of " << trials << ", expected " << mean << " +- 4 x " << sd);
    CHECK(std::abs(double(successes) - mean) <= 4 * sd);
}

Dense ones(std::uint32_t n_out, std::uint32_t n_in = 1) { return Dense{std::vector<float>(std::size_t(n_out) * n_in, 1.0f)}; }

} // namespace

TEST_CASE("synapse release transmits a fraction 1 - ratio (binomial, 4 sigma)", "[release]") {
    for (auto sampling : {SynapseSampling::geometric, SynapseSampling::bernoulli})
        for (double ratio : {0.1, 0.5, 0.75, 0.95}) {
            const Detector d = detector_network(200, ones(200), Release{ReleaseMode::synapse, ratio, sampling});
            const auto r = run_every_tick(d, 1000); // 2 x 10^5 trials
            const auto& c = r.ledger.projections[0];
            INFO("ratio " << ratio << " sampling " << int(sampling));
            CHECK(c.attempted == 200000);
            check_binomial(c.transmitted, c.attempted, 1 - ratio);
            CHECK(r.ledger.populations[d.detectors].spikes == c.transmitted); // detectors see each transmission
        }
}

TEST_CASE("synapse release on conv, pool, one_to_one and sparse fan-outs", "[release]") {
    const double ratio = 0.6;
    for (auto sampling : {SynapseSampling::geometric, SynapseSampling::bernoulli}) {
        NetworkBuilder b;
        const auto src = b.add_population("src", {2, 6, 6}, SpikeSource{});
        const auto conv_t = b.add_population("conv", {3, 6, 6}, ReadoutNeuron{});
        const auto pool_t = b.add_population("pool", {2, 3, 3}, ReadoutNeuron{});
        const auto one_t = b.add_population("one", {2, 6, 6}, ReadoutNeuron{});
        const auto sp_t = b.add_population("sp", {10}, ReadoutNeuron{});
        Conv2d conv;
        conv.kernel = {3, 3}, conv.padding = {1, 1}, conv.weight.assign(3 * 2 * 9, 1.0f);
        Sparse sp;
        sp.row_begin.push_back(0);
        for (std::uint32_t i = 0; i < 72; ++i) {
            for (std::uint32_t j = i % 3; j < 10; j += 2) sp.target.push_back(j), sp.weight.push_back(1.0f);
            sp.row_begin.push_back(sp.target.size());
        }
        const Release r{ReleaseMode::synapse, ratio, sampling};
        b.connect(Projection{"conv", src, conv_t, conv, 0, r});
        b.connect(Projection{"pool", src, pool_t, Pool2d{PoolKind::sum, {2, 2}, {2, 2}, {0, 0}}, 0, r});
        b.connect(Projection{"one", src, one_t, OneToOne{{1.0f}}, 0, r});
        b.connect(Projection{"sparse", src, sp_t, sp, 0, r});
        const Network net = b.build();
        Stimulus s = Stimulus::for_network(net);
        for (Tick t = 0; t < 400; ++t)
            for (std::uint32_t i = 0; i < 72; ++i) s.spikes[src].push_back({t, i});
        RunOptions o;
        o.ticks = 400;
        const auto res = Engine(net).run(s, o, 0);
        for (const auto& c : res.ledger.projections) {
            CHECK(c.attempted >= 28800);
            check_binomial(c.transmitted, c.attempted, 1 - ratio);
        }
        // The readouts integrate what was transmitted: their sum is the transmitted count (unit weights).
        for (std::size_t k = 0; k < res.readouts.size(); ++k) {
            double sum = 0;
            for (double v : res.readouts[k].values) sum += v;
            CHECK(sum == double(res.ledger.projections[k].transmitted));
        }
    }
}

TEST_CASE("synapse failures are independent across synapses", "[release]") {
    for (auto sampling : {SynapseSampling::geometric, SynapseSampling::bernoulli}) {
        const double ratio = 0.5, p = 1 - ratio;
        const Detector d = detector_network(8, ones(8), Release{ReleaseMode::synapse, ratio, sampling});
        const Tick T = 20000;
        const auto r = run_every_tick(d, T);
        std::vector<std::vector<char>> hit(std::size_t(T), std::vector<char>(8, 0));
        for (const auto& s : r.spikes)
            if (s.population == d.detectors) hit[std::size_t(s.tick)][s.neuron] = 1;
        // Every pair of synapses (neighbours and far apart) transmits together with probability p^2.
        for (auto [a, b] : {std::pair{0, 1}, std::pair{3, 4}, std::pair{0, 7}, std::pair{2, 6}}) {
            std::uint64_t both = 0;
            for (const auto& h : hit) both += h[a] && h[b];
            INFO("synapses " << a << ", " << b);
            check_binomial(both, std::uint64_t(T), p * p);
        }
        // Successive transmissions of one synapse are independent too.
        std::uint64_t repeat = 0;
        for (Tick t = 1; t < T; ++t) repeat += hit[t][5] && hit[t - 1][5];
        check_binomial(repeat, std::uint64_t(T - 1), p * p);
    }
}

TEST_CASE("spike release drops all synapses of a masked spike together", "[release]") {
    const double ratio = 0.75;
    const Detector d = detector_network(50, ones(50), Release{ReleaseMode::spike, ratio});
    const Tick T = 4000;
    const auto r = run_every_tick(d, T);
    std::vector<int> per_tick(std::size_t(T), 0);
    for (const auto& s : r.spikes)
        if (s.population == d.detectors) ++per_tick[std::size_t(s.tick)];
    std::uint64_t kept = 0;
    for (int n : per_tick) {
        REQUIRE((n == 0 || n == 50)); // all or nothing
        kept += n == 50;
    }
    check_binomial(kept, std::uint64_t(T), 1 - ratio);
    const auto& c = r.ledger.projections[0];
    CHECK(c.masked_spikes == std::uint64_t(T) - kept);
    CHECK(c.attempted == 50u * std::uint64_t(T));
    CHECK(c.transmitted == 50 * kept);
}

TEST_CASE("ratio 0 equals release none exactly; ratio 1 transmits nothing", "[release]") {
    for (auto mode : {ReleaseMode::spike, ReleaseMode::synapse}) {
        const auto none = run_every_tick(detector_network(30, ones(30), Release{}), 500);
        const auto zero = run_every_tick(detector_network(30, ones(30), Release{mode, 0.0}), 500);
        CHECK(zero.spikes == none.spikes);
        CHECK(zero.ledger.projections[0].transmitted == none.ledger.projections[0].transmitted);
        CHECK(none.ledger.projections[0].transmitted == 30u * 500u);
        const auto all = run_every_tick(detector_network(30, ones(30), Release{mode, 1.0}), 500);
        CHECK(all.ledger.projections[0].transmitted == 0);
        CHECK(all.ledger.projections[0].attempted == 30u * 500u);
        CHECK(all.ledger.populations[1].spikes == 0);
    }
}

TEST_CASE("sparse per-synapse probabilities combine with the mask ratio", "[release]") {
    Sparse sp{{0, 4}, {0, 1, 2, 3}, {1.0f, 1.0f, 1.0f, 1.0f}, {}, {1.0f, 0.5f, 0.25f, 0.0f}};
    const double ratio = 0.2;
    const Detector d = detector_network(4, sp, Release{ReleaseMode::synapse, ratio});
    const auto r = run_every_tick(d, 30000);
    std::vector<std::uint64_t> count(4, 0);
    for (const auto& s : r.spikes)
        if (s.population == d.detectors) ++count[s.neuron];
    check_binomial(count[0], 30000, 0.8);
    check_binomial(count[1], 30000, 0.4);
    check_binomial(count[2], 30000, 0.2);
    CHECK(count[3] == 0);
}

// ---------------------------------------------------------------------------------------------
// The generator and the samplers on their own.

TEST_CASE("xoshiro256++ reproduces the reference outputs", "[release][random]") {
    static_assert(std::uniform_random_bit_generator<RandomEngine>);
    // From the published reference algorithm (xoshiro256plusplus.c, Blackman & Vigna), computed by
    // the independent transcription tests/support/xoshiro_reference.py; the first two sequences
    // also appear in third-party tables (rand_xoshiro's test vector; DSCF-1224/xoshiro-fortran).
    auto g = Xoshiro256pp::from_state(1, 2, 3, 4);
    for (std::uint64_t want : {41943041ULL, 58720359ULL, 3588806011781223ULL, 3591011842654386ULL,
                               9228616714210784205ULL, 9973669472204895162ULL, 14011001112246962877ULL,
                               12406186145184390807ULL, 15849039046786891736ULL, 10450023813501588000ULL})
        CHECK(g() == want);
    auto h = Xoshiro256pp::from_state(0, 0, 0, 1);
    for (std::uint64_t want : {0x800000ULL, 0x800011ULL, 0x2200000800011ULL, 0x2200044000020ULL, 0x22000448008a1ULL,
                               0x1102100802208a0ULL, 0x114002284200880ULL, 0x402896644a64095ULL,
                               0x8a14a0a244acc891ULL, 0x8c88ba4680b20495ULL})
        CHECK(h() == want);
    // Seeding: the state is SplitMix64's first four outputs (0xe220a8397b1dcdaf, ... for seed 0).
    CHECK(Xoshiro256pp(0) == Xoshiro256pp::from_state(0xe220a8397b1dcdafULL, 0x6e789e6aa1b965f4ULL,
                                                      0x06c45d188009454fULL, 0xf88bb8a8724c81ecULL));
    auto s = Xoshiro256pp(12345);
    CHECK(s() == 0x8d948a82def8a568ULL);
    CHECK(s() == 0x3477f953796702a0ULL);
    CHECK(s() == 0x15caa2fce6db8d69ULL);
    // Streams keyed by (seed, sample, stream) differ in every key.
    CHECK(make_stream(1, 0, 0)() != make_stream(1, 0, 1)());
    CHECK(make_stream(1, 0, 0)() != make_stream(1, 1, 0)());
    CHECK(make_stream(1, 0, 0)() != make_stream(2, 0, 0)());
}

TEST_CASE("Bernoulli masks round p to 16 bits, to nearest, bias at most 2^-17", "[release][random]") {
    CHECK(BernoulliMasks::round16(0.25) == 0x4000);
    CHECK(BernoulliMasks::round16(0.5) == 0x8000);
    CHECK(BernoulliMasks::round16(0.3) == 19661);  // 19660.8
    CHECK(BernoulliMasks::round16(0.1) == 6554);   // 6553.6
    CHECK(BernoulliMasks::round16(0.95) == 62259); // 62259.2
    CHECK(BernoulliMasks::round16(std::ldexp(3.0, -17)) == 2); // a tie (1.5) rounds away from zero
    CHECK(BernoulliMasks(0.25).probability() == 0.25); // multiples of 2^-16 are exact
    CHECK(BernoulliMasks(std::ldexp(12345.0, -16)).probability() == std::ldexp(12345.0, -16));
    for (double p : {0.1, 0.3, 1.0 / 3.0, 0.7, 0.95, 0.999, 1e-4}) {
        const BernoulliMasks m(p);
        INFO("p " << p);
        CHECK(!m.exact());
        CHECK(std::abs(m.probability() - p) <= 0x1.0p-17);
    }
    // Below 2^-17 or above 1 - 2^-17 rounding would give "never" or "always": exact compares instead.
    for (double p : {1e-6, 1.0 - 1e-6}) {
        const BernoulliMasks m(p);
        CHECK(m.exact());
        CHECK(m.probability() == p);
    }
    CHECK(!BernoulliMasks(0.0).exact());
    CHECK(!BernoulliMasks(1.0).exact());
}

namespace {
// Hands out fixed words, so the comparator can be checked lane by lane.
struct ScriptedWords {
    using result_type = std::uint64_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return ~result_type(0); }
    const std::vector<std::uint64_t>* words;
    std::size_t next = 0;
    result_type operator()() { return (*words)[next++]; }
};
} // namespace

TEST_CASE("the bit-sliced comparator keeps exactly the lanes whose 16-bit fraction is below p16", "[release][random]") {
    // All 2^16 fractions, 64 per mask: lane j of batch b carries U = 64 b + j, its bit 15 in the
    // first word. Every p16 must keep exactly p16 of them, and exactly those with U < p16.
    for (std::uint32_t p16 : {1u, 2u, 0x4000u, 0x8000u, 0xC000u, 19661u, 6554u, 0x5555u, 0xFFFFu, 0x8001u}) {
        const BernoulliMasks masks(std::ldexp(double(p16), -16));
        REQUIRE(masks.p16() == p16);
        std::uint64_t kept = 0;
        bool lanes_right = true;
        for (std::uint32_t b = 0; b < 1024; ++b) {
            std::vector<std::uint64_t> words(16, 0);
            for (std::uint32_t j = 0; j < 64; ++j) {
                const std::uint32_t u = 64 * b + j;
                for (int i = 0; i < 16; ++i)
                    if (u >> (15 - i) & 1) words[std::size_t(i)] |= std::uint64_t(1) << j;
            }
            ScriptedWords g{&words};
            const std::uint64_t keep = masks.word(g);
            CHECK(g.next <= std::size_t(16 - std::countr_zero(p16))); // words drawn
            for (std::uint32_t j = 0; j < 64; ++j) lanes_right &= bool(keep >> j & 1) == (64 * b + j < p16);
            kept += std::uint64_t(std::popcount(keep));
        }
        INFO("p16 " << p16);
        CHECK(kept == p16);
        CHECK(lanes_right);
    }
    // Only the requested lanes can be kept.
    std::vector<std::uint64_t> zeros(16, 0);
    ScriptedWords g{&zeros};
    CHECK(BernoulliMasks(0.75).word(g, BernoulliMasks::first_lanes(5)) == 0x1F);
}

TEST_CASE("a mask stream hands out the mask words' bits in order, in runs of any length", "[release][random]") {
    const BernoulliMasks masks(0.3);
    RandomEngine a = make_stream(3, 0, 0), b = a;
    std::vector<int> bits_words, bits_stream;
    for (int w = 0; w < 40; ++w) {
        const std::uint64_t m = masks.word(a);
        for (int j = 0; j < 64; ++j) bits_words.push_back(int(m >> j & 1));
    }
    MaskStream stream(masks);
    const unsigned runs[] = {1, 16, 64, 63, 9, 3, 64, 64, 2, 33, 31, 20, 17, 50};
    for (std::size_t i = 0; bits_stream.size() + 64 <= bits_words.size(); ++i) {
        const unsigned n = runs[i % std::size(runs)];
        const std::uint64_t m = stream.take(b, n);
        CHECK((n == 64 || m >> n == 0));
        for (unsigned j = 0; j < n; ++j) bits_stream.push_back(int(m >> j & 1));
    }
    bits_words.resize(bits_stream.size());
    CHECK(bits_stream == bits_words);
}

// ---------------------------------------------------------------------------------------------
// Per-synapse statistics through the engine: no synapse position is favoured (a bias to a bit
// position of the 64-synapse mask words, to word boundaries or to window runs would show here).

namespace {
void check_per_position(const SampleResult& r, PopulationId detectors, std::uint32_t n, std::uint64_t trials, double p) {
    std::vector<std::uint64_t> count(n, 0);
    for (const auto& s : r.spikes)
        if (s.population == detectors) ++count[s.neuron];
    const double mean = double(trials) * p, sd = std::sqrt(double(trials) * p * (1 - p));
    std::uint32_t outside = 0;
    double chi2 = 0;
    for (std::uint32_t j = 0; j < n; ++j) {
        const double z = (double(count[j]) - mean) / sd;
        outside += std::abs(z) > 4.5;
        chi2 += z * z;
    }
    INFO("positions outside 4.5 sigma: " << outside << "; chi2 " << chi2 << " for " << n << " positions");
    CHECK(outside == 0);
    // chi2 with n degrees of freedom: mean n, sd sqrt(2n); 5 sd above is a clear bias.
    CHECK(chi2 < double(n) + 5 * std::sqrt(2.0 * n));
}
} // namespace

TEST_CASE("synapse release: every position of a dense fan-out transmits with probability p", "[release]") {
    for (auto sampling : {SynapseSampling::geometric, SynapseSampling::bernoulli})
        for (double ratio : {0.75, 0.7, 0.05}) {
            const std::uint32_t n = 150; // two full mask words and a partial one
            const Detector d = detector_network(n, ones(n), Release{ReleaseMode::synapse, ratio, sampling});
            const Tick T = 6000;
            const auto r = run_every_tick(d, T);
            INFO("ratio " << ratio << " sampling " << int(sampling));
            check_binomial(r.ledger.projections[0].transmitted, std::uint64_t(T) * n, 1 - ratio);
            check_per_position(r, d.detectors, n, std::uint64_t(T), 1 - ratio);
        }
}

TEST_CASE("synapse release: every position of conv and pool windows transmits with probability p", "[release]") {
    // One source neuron in the middle of the image spikes every tick; its window synapses reach
    // distinct detectors, so detector spikes are per-synapse outcomes. Conv: 9 taps x 20 output
    // channels (runs of 20 cross the 64-bit words); pool: a 3 x 3 window, stride 1.
    for (auto sampling : {SynapseSampling::geometric, SynapseSampling::bernoulli}) {
        const double ratio = 0.75, p = 1 - ratio;
        const IfNeuron detector{ThresholdRule{0.5, Comparison::greater_equal, ResetMode::to_value, 0.0}, 0.0, 1.0};
        NetworkBuilder b;
        const auto src = b.add_population("src", {1, 5, 5}, SpikeSource{});
        const auto conv_t = b.add_population("conv", {20, 5, 5}, detector);
        const auto pool_t = b.add_population("pool", {1, 5, 5}, detector);
        Conv2d conv;
        conv.kernel = {3, 3}, conv.padding = {1, 1}, conv.weight.assign(20 * 9, 1.0f);
        const Release r{ReleaseMode::synapse, ratio, sampling};
        b.connect(Projection{"conv", src, conv_t, conv, 0, r});
        b.connect(Projection{"pool", src, pool_t, Pool2d{PoolKind::sum, {3, 3}, {1, 1}, {1, 1}}, 0, r});
        const Network net = b.build();
        Stimulus s = Stimulus::for_network(net);
        const Tick T = 6000;
        for (Tick t = 0; t < T; ++t) s.spikes[src].push_back({t, 12}); // (y, x) = (2, 2)
        RunOptions o;
        o.ticks = T;
        o.record_spikes = true;
        const auto res = Engine(net).run(s, o, 0);
        INFO("sampling " << int(sampling));
        REQUIRE(res.ledger.projections[0].attempted == 180u * std::uint64_t(T));
        REQUIRE(res.ledger.projections[1].attempted == 9u * std::uint64_t(T));
        // Conv detectors reached: all 20 channels at the 3 x 3 positions around (2, 2).
        std::vector<std::uint64_t> conv_count(500, 0), pool_count(25, 0);
        for (const auto& sp : res.spikes) {
            if (sp.population == conv_t) ++conv_count[sp.neuron];
            if (sp.population == pool_t) ++pool_count[sp.neuron];
        }
        const double mean = double(T) * p, sd = std::sqrt(double(T) * p * (1 - p));
        for (std::uint32_t j = 0; j < 500; ++j) {
            const std::int64_t y = (j / 5) % 5, x = j % 5;
            const bool reached = std::abs(y - 2) <= 1 && std::abs(x - 2) <= 1;
            INFO("conv detector " << j << " count " << conv_count[j]);
            if (reached) CHECK(std::abs(double(conv_count[j]) - mean) <= 4.5 * sd);
            else CHECK(conv_count[j] == 0);
        }
        for (std::uint32_t j = 0; j < 25; ++j) {
            const std::int64_t y = j / 5, x = j % 5;
            const bool reached = std::abs(y - 2) <= 1 && std::abs(x - 2) <= 1;
            INFO("pool detector " << j << " count " << pool_count[j]);
            if (reached) CHECK(std::abs(double(pool_count[j]) - mean) <= 4.5 * sd);
            else CHECK(pool_count[j] == 0);
        }
    }
}

TEST_CASE("synapse failures are independent across the lanes of a mask word and across words", "[release]") {
    for (double ratio : {0.75, 0.6}) {
        const double p = 1 - ratio;
        const Detector d = detector_network(130, ones(130), Release{ReleaseMode::synapse, ratio, SynapseSampling::bernoulli});
        const Tick T = 20000;
        const auto r = run_every_tick(d, T);
        std::vector<std::vector<char>> hit(std::size_t(T), std::vector<char>(130, 0));
        for (const auto& s : r.spikes)
            if (s.population == d.detectors) hit[std::size_t(s.tick)][s.neuron] = 1;
        // Neighbouring lanes, the ends of one word, across a word boundary, same lane of two words.
        for (auto [a, b] : {std::pair{0, 1}, std::pair{0, 63}, std::pair{63, 64}, std::pair{5, 69}, std::pair{31, 32},
                            std::pair{127, 128}}) {
            std::uint64_t both = 0;
            for (const auto& h : hit) both += h[a] && h[b];
            INFO("ratio " << ratio << " synapses " << a << ", " << b);
            check_binomial(both, std::uint64_t(T), p * p);
        }
        // Three lanes together (the comparator shares words between lanes).
        std::uint64_t three = 0;
        for (const auto& h : hit) three += h[2] && h[40] && h[100];
        check_binomial(three, std::uint64_t(T), p * p * p);
    }
}
