// Release variants of issue 9: compensation (surviving weights x 1 / (1 - r)) and heterogeneous
// release (per-synapse probabilities from a Beta distribution, --release-spread).
#include <boost/math/special_functions/beta.hpp>
#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <cmath>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "io/model_file.hpp"
#include "network/targets.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"
#include "sim/random.hpp"
#include "support/naive_simulator.hpp"
#include "support/random_network.hpp"

using namespace quantal;
using Catch::Matchers::Contains;

namespace {

template <class... F> struct visitor : F... { using F::operator()...; };
template <class... F> visitor(F...) -> visitor<F...>;

// The network again, with every spike value multiplied by `gain` and `release` on every
// projection (and operator input): rebuilt from its description, so nothing of the original's
// compiled form is reused.
Network rebuilt(const Network& net, double gain, const Release& release) {
    NetworkBuilder b;
    for (const auto& p : net.populations()) {
        Population q = p;
        std::visit(visitor{[&](ReadoutNeuron&) {}, [&](auto& m) { m.spike_value *= gain; }}, q.model);
        b.add_population(std::move(q));
    }
    for (ProjectionId j = 0; j < net.projections().size(); ++j) {
        const auto& pr = net.projection(j);
        b.connect(Projection{pr.name, pr.source, pr.target, net.connectivity(j), pr.delay, release, pr.role});
    }
    for (const auto& op : net.operators()) {
        auto a = std::get<SoftmaxAttention>(op);
        a.q_release = a.k_release = a.score_release = release.mode == ReleaseMode::synapse
                                                          ? Release{ReleaseMode::spike, release.mask_ratio, release.sampling,
                                                                    release.compensate, release.spread}
                                                          : release;
        b.add_operator(a);
    }
    return b.build();
}

SampleResult run(const Network& net, const Stimulus& s, Tick ticks, std::uint64_t seed, std::uint64_t sample = 0) {
    RunOptions o;
    o.ticks = ticks;
    o.seed = seed;
    o.record_spikes = true;
    return Engine(net).run(s, o, sample);
}

void require_same(const SampleResult& a, const SampleResult& b) {
    REQUIRE(a.spikes == b.spikes);
    REQUIRE(a.readouts.size() == b.readouts.size());
    for (std::size_t r = 0; r < a.readouts.size(); ++r) REQUIRE(a.readouts[r].values == b.readouts[r].values);
    for (std::size_t j = 0; j < a.ledger.projections.size(); ++j) {
        const auto &x = a.ledger.projections[j], &y = b.ledger.projections[j];
        REQUIRE(x.spikes_in == y.spikes_in);
        REQUIRE(x.masked_spikes == y.masked_spikes);
        REQUIRE(x.attempted == y.attempted);
        REQUIRE(x.transmitted == y.transmitted);
    }
    for (std::size_t j = 0; j < a.ledger.operators.size(); ++j) {
        const auto &x = a.ledger.operators[j], &y = b.ledger.operators[j];
        REQUIRE(x.coincidences == y.coincidences);
        REQUIRE(x.deliveries == y.deliveries);
        REQUIRE(x.masked_spikes == y.masked_spikes);
    }
}

// Per-synapse outcomes: one source neuron per synapse (n_source = n) or one for all, spiking at
// every tick, into detectors (threshold 0.5, weight 1, reset to 0) that spike exactly when their
// synapse transmitted. Returns each detector's spike count over `ticks`.
std::vector<std::uint64_t> detector_counts(std::uint32_t n, Connectivity c, const Release& r, Tick ticks,
                                           std::uint64_t seed, std::uint32_t n_source = 1, std::uint64_t sample = 0) {
    NetworkBuilder b;
    const auto src = b.add_population("src", {n_source}, SpikeSource{});
    const auto det =
        b.add_population("det", {n}, IfNeuron{ThresholdRule{0.5, Comparison::greater_equal, ResetMode::to_value, 0.0}, 0.0, 1.0});
    b.connect(Projection{"syn", src, det, std::move(c), 0, r});
    const Network net = b.build();
    Stimulus s = Stimulus::for_network(net);
    for (Tick t = 0; t < ticks; ++t)
        for (std::uint32_t i = 0; i < n_source; ++i) s.spikes[src].push_back({t, i});
    const auto res = run(net, s, ticks, seed, sample);
    std::vector<std::uint64_t> count(n, 0);
    for (const auto& sp : res.spikes)
        if (sp.population == det) ++count[sp.neuron];
    return count;
}

// The Beta-binomial law of a synapse's count over T ticks when its probability is Beta(a, b):
// P(k) = C(T, k) B(k + a, T - k + b) / B(a, b), from lgamma (independent of Boost.Math).
std::vector<double> beta_binomial(std::uint64_t T, double a, double b) {
    auto lbeta = [](double x, double y) { return std::lgamma(x) + std::lgamma(y) - std::lgamma(x + y); };
    std::vector<double> pmf(T + 1);
    for (std::uint64_t k = 0; k <= T; ++k)
        pmf[k] = std::exp(std::lgamma(double(T) + 1) - std::lgamma(double(k) + 1) - std::lgamma(double(T - k) + 1) +
                          lbeta(double(k) + a, double(T - k) + b) - lbeta(a, b));
    return pmf;
}

std::vector<double> binomial(std::uint64_t T, double p) {
    std::vector<double> pmf(T + 1);
    for (std::uint64_t k = 0; k <= T; ++k)
        pmf[k] = std::exp(std::lgamma(double(T) + 1) - std::lgamma(double(k) + 1) - std::lgamma(double(T - k) + 1) +
                          double(k) * std::log(p) + double(T - k) * std::log1p(-p));
    return pmf;
}

struct Fit {
    double ks = 0;             // Kolmogorov distance of the counts' empirical CDF to the law's
    double mean = 0, var = 0;  // of the counts
    double law_mean = 0, law_var = 0, law_m4 = 0;
};

Fit fit(const std::vector<std::uint64_t>& counts, const std::vector<double>& pmf) {
    Fit f;
    const double n = double(counts.size());
    std::vector<double> hist(pmf.size(), 0.0);
    for (auto c : counts) hist[c] += 1, f.mean += double(c) / n;
    for (auto c : counts) f.var += (double(c) - f.mean) * (double(c) - f.mean) / (n - 1);
    double emp = 0, law = 0;
    for (std::size_t k = 0; k < pmf.size(); ++k) {
        emp += hist[k] / n, law += pmf[k];
        f.ks = std::max(f.ks, std::abs(emp - law));
        f.law_mean += double(k) * pmf[k];
    }
    for (std::size_t k = 0; k < pmf.size(); ++k) {
        const double d = double(k) - f.law_mean;
        f.law_var += d * d * pmf[k], f.law_m4 += d * d * d * d * pmf[k];
    }
    return f;
}

// Counts against the Beta-binomial: mean and variance within 4.5 sd of their sampling error
// (plus the table's quantisation), KS distance below its 0.1 % critical value plus the same.
void check_fit(const std::vector<std::uint64_t>& counts, std::uint64_t T, double mu, double kappa) {
    const Fit f = fit(counts, beta_binomial(T, mu * kappa, (1 - mu) * kappa));
    const double n = double(counts.size()), quantised = double(T) / 4096;
    INFO("mu " << mu << " kappa " << kappa << ": mean " << f.mean << " (law " << f.law_mean << "), variance " << f.var
               << " (law " << f.law_var << "), KS " << f.ks);
    CHECK(std::abs(f.mean - f.law_mean) <= 4.5 * std::sqrt(f.law_var / n) + quantised);
    const double var_sd = std::sqrt((f.law_m4 - f.law_var * f.law_var) / n);
    CHECK(std::abs(f.var - f.law_var) <= 4.5 * var_sd + 2 * quantised * double(T));
    CHECK(f.ks <= 1.95 / std::sqrt(n) + 1.0 / 4096);
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Compensation

TEST_CASE("compensation at r = 1/2 and 3/4 equals spike values x 2 and x 4 bit for bit", "[release][compensate]") {
    // A surviving transmission of weight w from a spike of value v delivers w v / (1 - r). With
    // compensation on every projection that is the network whose spike values are v / (1 - r)
    // without it; the draws do not depend on weights or values, so with the same seed the two see
    // the same failures, and 1 / (1 - r) a power of two makes every product exact: the same
    // spikes, readouts and ledger, bit for bit. Random networks cover dense, conv (accumulated
    // and per-synapse paths), pool, one_to_one and sparse, delays, IF/LIF/CubaLIF, both modes and
    // both samplers.
    int differs = 0, cases = 0;
    std::uint64_t failed = 0;
    for (std::uint64_t seed = 1; seed <= 24; ++seed)
        for (auto mode : {ReleaseMode::spike, ReleaseMode::synapse})
            for (double r : {0.5, 0.75}) {
                testing::RandomNetworkOptions o;
                o.exact = seed % 2 == 0;
                o.lif = seed % 3 == 0;
                o.cuba = seed % 5 == 0;
                o.release = Release{mode, r, seed % 4 < 2 ? SynapseSampling::geometric : SynapseSampling::bernoulli, true};
                const auto c = testing::random_case(seed, o);
                Release plain = o.release;
                plain.compensate = false;
                const Network scaled = rebuilt(c.network, 1.0 / (1.0 - r), plain);
                INFO("seed " << seed << " mode " << mode_name(mode) << " r " << r);
                const auto a = run(c.network, c.stimulus, o.ticks, seed), b = run(scaled, c.stimulus, o.ticks, seed);
                require_same(a, b);
                const auto uncompensated = run(rebuilt(c.network, 1.0, plain), c.stimulus, o.ticks, seed);
                differs += uncompensated.spikes != a.spikes;
                for (const auto& x : a.ledger.projections) failed += x.failed();
                ++cases;
            }
    CHECK(failed > 10000);
    CHECK(differs > cases / 2); // compensation changes what the networks do
}

TEST_CASE("compensated spike release equals the oracle on the same surviving spikes", "[release][compensate][oracle]") {
    // The oracle sees the engine's failures: projections from a spike source draw, per tick and
    // per source spike in ascending order (docs/engine.md: one draw per presented spike), one
    // Bernoulli(1 - r) from stream (seed, sample, projection). The test replays those draws and
    // hands them to the oracle, which computes the survivors' input with its own arithmetic
    // (weights x 1 / (1 - r)). Dyadic parameters: spikes and readouts must be identical.
    const Tick T = 40;
    std::uint64_t masked = 0, compared = 0;
    for (std::uint64_t seed = 1; seed <= 12; ++seed)
        for (double r : {0.5, 0.75}) {
            std::mt19937_64 rng(seed);
            auto dyadic = [&](int lo, int hi) { return float(std::uniform_int_distribution<int>(lo, hi)(rng)) / 16.0f; };
            const Release rel{ReleaseMode::spike, r, SynapseSampling::automatic, true};
            NetworkBuilder b;
            const auto src = b.add_population("src", {2, 4, 4}, SpikeSource{});
            auto layer = [&](const char* name, Shape shape) {
                return b.add_population(name, std::move(shape), IfNeuron{ThresholdRule{1.0}, 0.5, 1.0}, {dyadic(-2, 2) / 4});
            };
            const auto a = layer("a", {2, 4, 4}), c = layer("c", {6}), d = layer("d", {2, 2, 2});
            const auto out = b.add_population("out", {3}, ReadoutNeuron{});
            Conv2d conv;
            conv.kernel = {3, 3}, conv.padding = {1, 1};
            for (int i = 0; i < 2 * 2 * 9; ++i) conv.weight.push_back(dyadic(-6, 10));
            Dense dense;
            for (int i = 0; i < 6 * 32; ++i) dense.weight.push_back(dyadic(-4, 8));
            Sparse sp;
            sp.row_begin.push_back(0);
            for (std::uint32_t i = 0; i < 32; ++i) {
                for (std::uint32_t j = i % 3; j < 6; j += 3)
                    sp.target.push_back(j), sp.weight.push_back(dyadic(0, 12)), sp.delay.push_back((i + j) % 3);
                sp.row_begin.push_back(sp.target.size());
            }
            std::vector<float> one(32);
            for (auto& x : one) x = dyadic(0, 12);
            b.connect(Projection{"conv", src, a, conv, 0, rel});
            b.connect(Projection{"one", src, a, OneToOne{one}, 2, rel});
            b.connect(Projection{"dense", src, c, dense, 1, rel});
            b.connect(Projection{"sparse", src, c, sp, 0, rel});
            b.connect(Projection{"pool", src, d, Pool2d{PoolKind::sum, {2, 2}, {2, 2}, {0, 0}}, 0, rel});
            for (auto [from, n] : {std::pair{a, 32}, std::pair{c, 6}, std::pair{d, 8}}) {
                Dense h;
                for (int i = 0; i < 3 * n; ++i) h.weight.push_back(dyadic(-8, 8));
                b.connect(from, out, h);
            }
            const Network net = b.build();
            Stimulus s = Stimulus::for_network(net);
            std::vector<std::vector<std::uint32_t>> at{std::size_t(T)};
            for (Tick t = 0; t < T; ++t)
                for (std::uint32_t j = 0; j < 32; ++j)
                    if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) s.spikes[src].push_back({t, j}), at[t].push_back(j);
            // The replay: which presented spikes each projection keeps.
            std::map<std::tuple<ProjectionId, Tick, std::uint32_t>, bool> kept;
            for (ProjectionId p = 0; p < 5; ++p) {
                RandomEngine stream = make_stream(seed, 0, p);
                const BernoulliThreshold keep(1 - r);
                for (Tick t = 0; t < T; ++t)
                    for (std::uint32_t j : at[t]) {
                        bool presented = t + Tick(net.projection(p).delay) < T;
                        if (p == 3) { // sparse: presented if one of its synapses arrives inside the sample
                            presented = false;
                            for (auto k = sp.row_begin[j]; k < sp.row_begin[j + 1]; ++k) presented |= t + Tick(sp.delay[k]) < T;
                        }
                        if (presented) kept[{p, t, j}] = keep(stream);
                    }
            }
            const auto oracle = testing::naive_run(net, s, T, {}, [&](ProjectionId p, Tick t, std::uint32_t j) {
                const auto it = kept.find({p, t, j}); // not presented: none of its synapses arrives in time
                return it != kept.end() && it->second;
            });
            auto got = run(net, s, T, seed);
            std::sort(got.spikes.begin(), got.spikes.end(), [](const auto& x, const auto& y) {
                return std::tie(x.tick, x.population, x.neuron) < std::tie(y.tick, y.population, y.neuron);
            });
            INFO("seed " << seed << " r " << r);
            REQUIRE(got.spikes == oracle.spikes);
            REQUIRE(got.readouts[0].values == oracle.readouts[0]);
            for (ProjectionId p = 0; p < 5; ++p) masked += got.ledger.projections[p].masked_spikes;
            compared += got.spikes.size();
        }
    CHECK(masked > 2000);
    CHECK(compared > 5000);
}

TEST_CASE("compensation scales the surviving q, k and score inputs of attention", "[release][compensate][attention]") {
    // scores input: scale x (l_q q m_q / (1 - r)) . (l_k k m_k / (1 - r)): the coincidence amount
    // times 1 / (1 - r)^2, i.e. the operator's scale x 4 at r = 1/2; softmax argument: each
    // surviving score spike adds l_s / (1 - r), i.e. the scores' spike value x 2.
    std::mt19937_64 rng(3);
    auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
    const std::int64_t heads = 2, hd = 2, win = 2, C = heads * hd, H = 4, W = 4, T = win * win, windows = 4;
    const Tick ticks = 60;
    auto build = [&](bool compensate, double scale_gain, double score_gain) {
        std::mt19937_64 same(11); // every variant draws the same parameters
        auto u = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(same); };
        NetworkBuilder b;
        const auto in = b.add_population("in", {C, H, W}, SpikeSource{});
        auto spiking = [&](const char* name, Shape shape, double lambda, double gain = 1.0) {
            return b.add_population(name, std::move(shape), IfNeuron{ThresholdRule{lambda}, lambda / 2, lambda * gain},
                                    {u(-0.02, 0.05)});
        };
        const auto q = spiking("q", {C, H, W}, u(0.5, 1.5));
        const auto k = spiking("k", {C, H, W}, u(0.5, 1.5));
        const auto v = spiking("v", {C, H, W}, u(0.5, 1.5));
        const auto scores = spiking("scores", {windows, heads, T, T}, u(0.2, 0.8), score_gain);
        const auto out = spiking("out", {C, H, W}, u(0.2, 0.6));
        const auto logits = b.add_population("logits", {3}, ReadoutNeuron{});
        const auto n = std::size_t(C * H * W);
        for (auto target : {q, k, v}) {
            std::vector<float> w(n);
            for (auto& x : w) x = float(u(0.3, 1.2));
            b.connect(in, target, OneToOne{w});
        }
        std::vector<float> head(3 * n);
        for (auto& x : head) x = float(u(-0.5, 0.5));
        b.connect(out, logits, Dense{head});
        SoftmaxAttention a;
        a.name = "attention";
        a.q = q, a.k = k, a.v = v, a.scores = scores, a.output = out;
        a.heads = heads, a.window = win, a.scale = scale_gain / std::sqrt(double(hd));
        for (std::int64_t e = 0; e < heads * T * T; ++e) a.bias.push_back(float(u(-1, 1)));
        a.q_release = a.k_release = a.score_release = Release{ReleaseMode::spike, 0.5, SynapseSampling::automatic, compensate};
        b.add_operator(a);
        return b.build();
    };
    const Network compensated = build(true, 1.0, 1.0), scaled = build(false, 4.0, 2.0), plain = build(false, 1.0, 1.0);
    Stimulus s = Stimulus::for_network(compensated);
    for (Tick t = 0; t < ticks; ++t)
        for (std::uint32_t j = 0; j < C * H * W; ++j)
            if (uniform(0, 1) < 0.4) s.spikes[0].push_back({t, j});
    {   // an operator's variants survive a model file too
        const auto path = (std::filesystem::temp_directory_path() / "quantal_attention_variants.h5").string();
        write_model_file(path, compensated, ModelFileInfo{});
        const LoadedModel back = read_model_file(path);
        std::filesystem::remove(path);
        const auto& a = std::get<SoftmaxAttention>(back.network.operators()[0]);
        CHECK((a.q_release.compensate && a.k_release.compensate && a.score_release.compensate));
        require_same(run(compensated, s, ticks, 9), run(back.network, s, ticks, 9));
    }
    for (std::uint64_t seed : {1, 2, 3}) {
        const auto a = run(compensated, s, ticks, seed), b = run(scaled, s, ticks, seed);
        require_same(a, b);
        CHECK(a.ledger.operators[0].masked_spikes > 100);
        CHECK(a.spikes != run(plain, s, ticks, seed).spikes);
    }
}

TEST_CASE("compensation keeps the mean drive: readouts average to the no-failure oracle's", "[release][compensate][oracle]") {
    // A spike source into readouts through every kind, each with compensated release at ratio
    // r: a readout's value is the sum of what survived x 1 / (1 - r), whose mean over the draws is
    // the naive oracle's value without failures, and whose variance is (1/p - 1) x sum of (w v)^2
    // over its events (p = 1 - r; each event is kept on its own). Per readout neuron the mean over
    // 400 samples must lie within 4.5 sd of the oracle; an uncompensated run misses by far more.
    const Tick ticks = 12;
    auto build = [&](const Release& r, bool squared) {
        std::mt19937_64 same(9);
        auto w = [&] {
            const double x = double(std::uniform_int_distribution<int>(1, 16)(same)) / 16.0;
            return float(squared ? x * x : x);
        };
        NetworkBuilder b;
        const auto src = b.add_population("src", {2, 4, 4}, SpikeSource{});
        const auto dense_t = b.add_population("dense", {6}, ReadoutNeuron{});
        const auto conv_t = b.add_population("conv", {2, 4, 4}, ReadoutNeuron{});
        const auto pool_t = b.add_population("pool", {2, 2, 2}, ReadoutNeuron{});
        const auto one_t = b.add_population("one", {2, 4, 4}, ReadoutNeuron{});
        const auto sparse_t = b.add_population("sparse", {5}, ReadoutNeuron{});
        Dense d;
        for (int i = 0; i < 6 * 32; ++i) d.weight.push_back(w());
        Conv2d conv;
        conv.kernel = {3, 3}, conv.padding = {1, 1};
        for (int i = 0; i < 2 * 2 * 9; ++i) conv.weight.push_back(w());
        OneToOne one;
        for (int i = 0; i < 32; ++i) one.weight.push_back(w());
        Sparse sp;
        sp.row_begin.push_back(0);
        for (std::uint32_t i = 0; i < 32; ++i) {
            for (std::uint32_t j = i % 2; j < 5; j += 2) sp.target.push_back(j), sp.weight.push_back(w());
            sp.row_begin.push_back(sp.target.size());
        }
        b.connect(Projection{"dense", src, dense_t, d, 0, r});
        b.connect(Projection{"conv", src, conv_t, conv, 0, r});
        b.connect(Projection{"pool", src, pool_t, Pool2d{PoolKind::sum, {2, 2}, {2, 2}, {0, 0}}, 0, r});
        b.connect(Projection{"one", src, one_t, one, 0, r});
        b.connect(Projection{"sparse", src, sparse_t, sp, 1, r});
        return b.build();
    };
    for (auto mode : {ReleaseMode::spike, ReleaseMode::synapse})
        for (double r : {0.3, 0.75}) {
            const Network net = build(Release{mode, r, SynapseSampling::automatic, true}, false);
            Stimulus s = Stimulus::for_network(net);
            for (Tick t = 0; t < ticks; ++t)
                for (std::uint32_t j = 0; j < 32; ++j)
                    if ((t * 7 + j * 3) % 5 < 3) s.spikes[0].push_back({t, j});
            const auto mean = testing::naive_readouts(build(Release{}, false), s, ticks);
            const auto squares = testing::naive_readouts(build(Release{}, true), s, ticks);
            const Network plain = build(Release{mode, r}, false);
            const int samples = 400;
            std::vector<std::vector<double>> sum(mean.size()), sum_plain(mean.size());
            for (std::size_t k = 0; k < mean.size(); ++k) sum[k].assign(mean[k].size(), 0.0), sum_plain[k].assign(mean[k].size(), 0.0);
            for (int i = 0; i < samples; ++i) {
                const auto a = run(net, s, ticks, 1, std::uint64_t(i)), b = run(plain, s, ticks, 1, std::uint64_t(i));
                for (std::size_t k = 0; k < mean.size(); ++k)
                    for (std::size_t j = 0; j < mean[k].size(); ++j)
                        sum[k][j] += a.readouts[k].values[j], sum_plain[k][j] += b.readouts[k].values[j];
            }
            double worst = 0, worst_plain = 0;
            const double p = 1 - r;
            for (std::size_t k = 0; k < mean.size(); ++k)
                for (std::size_t j = 0; j < mean[k].size(); ++j) {
                    if (squares[k][j] == 0) continue;
                    const double sd = std::sqrt((1 / p - 1) * squares[k][j] / samples);
                    worst = std::max(worst, std::abs(sum[k][j] / samples - mean[k][j]) / sd);
                    worst_plain = std::max(worst_plain, std::abs(sum_plain[k][j] / samples - mean[k][j]) / sd);
                }
            INFO("mode " << mode_name(mode) << " r " << r << ": largest |z| " << worst << ", uncompensated " << worst_plain);
            CHECK(worst <= 4.5);
            CHECK(worst_plain > 10);
        }
}

TEST_CASE("compensation is refused at ratio 1 and leaves the ledger's counts as they are", "[release][compensate]") {
    NetworkBuilder b;
    const auto src = b.add_population("src", {4}, SpikeSource{});
    const auto out = b.add_population("out", {4}, ReadoutNeuron{});
    b.connect(Projection{"p", src, out, OneToOne{{1.0f}}, 0, Release{ReleaseMode::synapse, 1.0, SynapseSampling::automatic, true}});
    CHECK_THROWS_WITH(b.build(), Contains("projection 'p'") && Contains("mask ratio below 1"));
    NetworkBuilder ok;
    ok.add_population("src", {4}, SpikeSource{});
    ok.add_population("out", {4}, ReadoutNeuron{});
    ok.connect(Projection{"p", 0, 1, OneToOne{{1.0f}}, 0, Release{}});
    const Network net = ok.build();
    const Targets all = resolve_targets(net, "all");
    CHECK_THROWS_AS(with_targeted_release(Network(net), all, Release{ReleaseMode::spike, 1.0, SynapseSampling::automatic, true}),
                    ModelError);
    // Compensation at ratio 0 (or without release) is the identity.
    CHECK(Release{ReleaseMode::synapse, 0.0, SynapseSampling::automatic, true}.scale() == 1.0);
    CHECK(Release{ReleaseMode::none, 0.0, SynapseSampling::automatic, true}.scale() == 1.0);
    CHECK(Release{ReleaseMode::spike, 0.75, SynapseSampling::automatic, true}.scale() == 4.0);
}

// ---------------------------------------------------------------------------------------------
// Heterogeneous release

TEST_CASE("the spread's table holds the Beta quantiles", "[release][spread]") {
    // Table value j is the Beta(a, b) quantile at (j + 1/2) / 4096: the Beta CDF (Boost's ibeta,
    // the forward function, not the ibeta_inv that built the table) must pass that level between
    // the doubles just below and just above it (near 1 a double's spacing is coarse next to a
    // steep CDF, so the CDF at the value itself may miss the level by more than rounding).
    for (double mu : {0.1, 0.25, 0.5, 0.9})
        for (double kappa : {0.5, 2.0, 20.0, 1000.0}) {
            const ReleaseSpread t(mu, kappa);
            double mean = 0, largest = 0;
            for (std::size_t j = 0; j < ReleaseSpread::levels; ++j) {
                const double p = t.probability(j), level = (double(j) + 0.5) / 4096;
                if (j) REQUIRE(p >= t.probability(j - 1));
                REQUIRE((p >= 0.0 && p <= 1.0));
                mean += p / 4096;
                const double a = mu * kappa, b = (1 - mu) * kappa;
                double below = p, above = p;
                for (int i = 0; i < 4; ++i) below = std::nextafter(below, 0.0), above = std::nextafter(above, 1.0);
                const double low = below > 0 ? boost::math::ibeta(a, b, below) : 0.0;
                const double high = above < 1 ? boost::math::ibeta(a, b, above) : 1.0;
                largest = std::max({largest, low - level, level - high});
            }
            INFO("mu " << mu << " kappa " << kappa << " table mean " << mean << " largest CDF error " << largest);
            CHECK(std::abs(mean - mu) <= 1.0 / 4096);
            CHECK(largest <= 1e-6);
        }
}

TEST_CASE("per-synapse release frequencies follow the Beta-binomial law", "[release][spread][oracle]") {
    // 4096 synapses, each tried at every one of T ticks: with per-synapse probabilities p_s ~
    // Beta(mu kappa, (1 - mu) kappa) a synapse's count is Beta-binomial(T, a, b). Homogeneous
    // release (its counts Binomial) fails these checks at every kappa here: its variance is
    // smaller by the Beta's T^2 mu (1 - mu) / (kappa + 1).
    const std::uint32_t n = 4096;
    const Tick T = 100;
    for (double mu : {0.25, 0.5, 0.9})
        for (double kappa : {0.5, 4.0, 50.0}) {
            const auto counts = detector_counts(n, Dense{std::vector<float>(n, 1.0f)},
                                                Release{ReleaseMode::synapse, 1 - mu, SynapseSampling::automatic, false, kappa}, T, 7);
            check_fit(counts, std::uint64_t(T), mu, kappa);
            const Fit homogeneous = fit(counts, binomial(std::uint64_t(T), mu));
            CHECK(homogeneous.ks > 0.05);
        }
}

TEST_CASE("spike release with a spread gives each source neuron its own probability", "[release][spread]") {
    // One source neuron per detector (one_to_one): a neuron's spikes pass with its p_j, so the
    // detectors' counts are Beta-binomial too; with a dense fan-out all of a spike's synapses
    // still fail together.
    const std::uint32_t n = 4096;
    const Tick T = 100;
    const double mu = 0.4, kappa = 3.0;
    const Release r{ReleaseMode::spike, 1 - mu, SynapseSampling::automatic, false, kappa};
    check_fit(detector_counts(n, OneToOne{{1.0f}}, r, T, 3, n), std::uint64_t(T), mu, kappa);
    const auto together = detector_counts(16, Dense{std::vector<float>(16, 1.0f)}, r, 400, 3);
    CHECK(std::all_of(together.begin(), together.end(), [&](auto c) { return c == together[0]; }));
}

TEST_CASE("a large concentration approaches homogeneous release", "[release][spread]") {
    const std::uint32_t n = 4096;
    const Tick T = 100;
    const double mu = 0.3;
    const auto counts =
        detector_counts(n, Dense{std::vector<float>(n, 1.0f)}, Release{ReleaseMode::synapse, 1 - mu, SynapseSampling::automatic, false, 1e6}, T, 5);
    // Binomial(T, mu) is Beta-binomial with a -> infinity.
    const Fit f = fit(counts, binomial(std::uint64_t(T), mu));
    INFO("KS " << f.ks << " variance " << f.var << " binomial " << double(T) * mu * (1 - mu));
    CHECK(f.ks <= 1.95 / std::sqrt(double(n)));
    CHECK(std::abs(f.var - double(T) * mu * (1 - mu)) <= 4.5 * std::sqrt((f.law_m4 - f.law_var * f.law_var) / n));
}

TEST_CASE("release probabilities belong to the seed: fixed across samples, new with another seed", "[release][spread]") {
    const std::uint32_t n = 2048;
    const Tick T = 60;
    const Release r{ReleaseMode::synapse, 0.5, SynapseSampling::automatic, false, 1.0};
    const Dense ones{std::vector<float>(n, 1.0f)};
    const auto a = detector_counts(n, ones, r, T, 11, 1, 0), b = detector_counts(n, ones, r, T, 11, 1, 1);
    const auto c = detector_counts(n, ones, r, T, 12, 1, 0);
    auto correlation = [](const std::vector<std::uint64_t>& x, const std::vector<std::uint64_t>& y) {
        double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
        const double m = double(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) mx += double(x[i]) / m, my += double(y[i]) / m;
        for (std::size_t i = 0; i < x.size(); ++i)
            sxy += (double(x[i]) - mx) * (double(y[i]) - my), sxx += (double(x[i]) - mx) * (double(x[i]) - mx),
                syy += (double(y[i]) - my) * (double(y[i]) - my);
        return sxy / std::sqrt(sxx * syy);
    };
    // Same seed, other sample: the same p_s, new draws (kappa 1: Var p = 1/8, binomial noise
    // ~1/(4T)); the correlation is then about 0.88. Another seed: other p_s, correlation ~0.
    CHECK(a != b);
    CHECK(correlation(a, b) > 0.8);
    CHECK(std::abs(correlation(a, c)) < 0.1);
}

TEST_CASE("spread release on every kind transmits as the per-synapse oracle predicts", "[release][spread][oracle]") {
    // Random networks with a spread on every projection (both modes, both samplers given, sparse
    // own probabilities): the oracle enumerates the synapses from the description and gives each
    // its probability by the documented key (seed, projection, synapse), so the transmitted count
    // of each projection must lie within 5 sd of its prediction, the sum of z within 4 sqrt(n).
    double z_sum = 0;
    int n_z = 0;
    std::uint64_t attempted = 0;
    for (std::uint64_t seed = 300; seed < 340; ++seed) {
        testing::RandomNetworkOptions o;
        o.release = Release{seed % 2 ? ReleaseMode::spike : ReleaseMode::synapse, 0.2 + 0.1 * double(seed % 7),
                            seed % 4 < 2 ? SynapseSampling::geometric : SynapseSampling::bernoulli, seed % 3 == 0,
                            0.5 + double(seed % 5)};
        const auto c = testing::random_case(seed, o);
        auto r = run(c.network, c.stimulus, o.ticks, seed);
        const auto traffic = testing::expected_traffic(c.network, r.spikes, o.ticks, seed);
        for (ProjectionId p = 0; p < traffic.size(); ++p) {
            const auto& got = r.ledger.projections[p];
            INFO("seed " << seed << " projection " << c.network.projection(p).name);
            REQUIRE(got.attempted == traffic[p].attempted);
            attempted += got.attempted;
            if (traffic[p].var_transmitted == 0) {
                CHECK(double(got.transmitted) == traffic[p].mean_transmitted);
                continue;
            }
            const double z = (double(got.transmitted) - traffic[p].mean_transmitted) / std::sqrt(traffic[p].var_transmitted);
            CHECK(std::abs(z) <= 5);
            z_sum += z, ++n_z;
        }
    }
    INFO(n_z << " projections, sum of z " << z_sum);
    CHECK(n_z > 40);
    CHECK(attempted > 100000);
    CHECK(std::abs(z_sum) <= 4 * std::sqrt(double(n_z)));
}

TEST_CASE("each implicit synapse transmits with the probability of its documented key", "[release][spread]") {
    // One spiking source neuron (not neuron 0, so the source half of the identity matters) into
    // detectors through dense, conv, pool and one_to_one fan-outs: every detector has one synapse
    // from it, and its count over T ticks is Binomial(T, p_s) with p_s the table's value at
    // level(key(seed, projection), source x 2^32 + target).
    const Tick T = 400;
    const std::uint64_t seed = 17;
    const Release r{ReleaseMode::synapse, 0.5, SynapseSampling::automatic, false, 1.5};
    const auto det = IfNeuron{ThresholdRule{0.5, Comparison::greater_equal, ResetMode::to_value, 0.0}, 0.0, 1.0};
    NetworkBuilder b;
    const auto src = b.add_population("src", {1, 6, 6}, SpikeSource{});
    const auto d_dense = b.add_population("dense", {300}, det);
    const auto d_conv = b.add_population("conv", {40, 6, 6}, det);
    const auto d_pool = b.add_population("pool", {1, 3, 3}, det);
    const auto d_one = b.add_population("one", {1, 6, 6}, det);
    Conv2d conv;
    conv.kernel = {3, 3}, conv.padding = {1, 1}, conv.weight.assign(40 * 9, 1.0f);
    b.connect(Projection{"dense", src, d_dense, Dense{std::vector<float>(300 * 36, 1.0f)}, 0, r});
    b.connect(Projection{"conv", src, d_conv, conv, 0, r});
    b.connect(Projection{"pool", src, d_pool, Pool2d{PoolKind::sum, {2, 2}, {2, 2}, {0, 0}}, 0, r});
    b.connect(Projection{"one", src, d_one, OneToOne{{1.0f}}, 0, r});
    const Network net = b.build();
    const std::uint32_t source = 14; // row 2, column 2
    Stimulus s = Stimulus::for_network(net);
    for (Tick t = 0; t < T; ++t) s.spikes[src].push_back({t, source});
    const auto res = run(net, s, T, seed);
    std::vector<std::vector<std::uint64_t>> count(net.populations().size());
    for (PopulationId p = 0; p < count.size(); ++p) count[p].assign(net.population(p).size(), 0);
    for (const auto& x : res.spikes) ++count[x.population][x.neuron];
    double worst = 0;
    std::uint64_t synapses = 0;
    for (ProjectionId j = 0; j < 4; ++j) {
        const auto target = net.projection(j).target;
        const std::uint64_t key = ReleaseSpread::key(seed, j);
        for (std::uint32_t k = 0; k < net.population(target).size(); ++k) {
            const std::uint32_t y = (k % 36) / 6, x = k % 6; // conv: the 3 x 3 window around (2, 2)
            const bool reached = j == 0 || (j == 1 && y >= 1 && y <= 3 && x >= 1 && x <= 3) || (j == 2 && k == 4) ||
                                 (j == 3 && k == source);
            if (!reached) {
                CHECK(count[target][k] == 0);
                continue;
            }
            const double p = net.spread(j)->probability(ReleaseSpread::level(key, ReleaseSpread::synapse(source, k)));
            const double sd = std::sqrt(double(T) * p * (1 - p)) + 0.5; // + 1/2: continuity, p near 0 or 1
            worst = std::max(worst, std::abs(double(count[target][k]) - double(T) * p) / sd);
            ++synapses;
        }
    }
    INFO(synapses << " synapses, largest |z| " << worst);
    CHECK(synapses > 500);
    CHECK(worst <= 4.5);
}

TEST_CASE("a spread combines with sparse synapses' own probabilities", "[release][spread][oracle]") {
    // Synapse k of a sparse row transmits with own_k x p_k; the oracle's prediction per synapse is
    // checked on each detector's count (4.5 sd) and on the total.
    const std::uint32_t n = 512;
    const Tick T = 200;
    Sparse sp;
    sp.row_begin = {0, n};
    for (std::uint32_t j = 0; j < n; ++j) sp.target.push_back(j), sp.weight.push_back(1.0f), sp.probability.push_back(j % 2 ? 0.5f : 1.0f);
    const Release r{ReleaseMode::synapse, 0.4, SynapseSampling::automatic, false, 2.0};
    NetworkBuilder b;
    const auto src = b.add_population("src", {1}, SpikeSource{});
    b.add_population("det", {n}, IfNeuron{ThresholdRule{0.5, Comparison::greater_equal, ResetMode::to_value, 0.0}, 0.0, 1.0});
    b.connect(Projection{"syn", src, 1, sp, 0, r});
    const Network net = b.build();
    Stimulus s = Stimulus::for_network(net);
    for (Tick t = 0; t < T; ++t) s.spikes[src].push_back({t, 0});
    const auto res = run(net, s, T, 21);
    const auto traffic = testing::expected_traffic(net, res.spikes, T, 21);
    const double z = (double(res.ledger.projections[0].transmitted) - traffic[0].mean_transmitted) / std::sqrt(traffic[0].var_transmitted);
    INFO("transmitted " << res.ledger.projections[0].transmitted << ", expected " << traffic[0].mean_transmitted);
    CHECK(std::abs(z) <= 4.5);
    // Per synapse: its count against T x own x p_k from the documented key.
    const ReleaseSpread& table = *net.spread(0);
    std::vector<std::uint64_t> count(n, 0);
    for (const auto& x : res.spikes)
        if (x.population == 1) ++count[x.neuron];
    double worst = 0;
    for (std::uint32_t k = 0; k < n; ++k) {
        const double q = sp.probability[k] * table.probability(ReleaseSpread::level(ReleaseSpread::key(21, 0), k));
        if (q <= 0 || q >= 1) {
            CHECK(count[k] == (q <= 0 ? 0u : std::uint64_t(T)));
            continue;
        }
        worst = std::max(worst, std::abs(double(count[k]) - double(T) * q) / std::sqrt(double(T) * q * (1 - q)));
    }
    CHECK(worst <= 4.5);
}

TEST_CASE("spread and compensation give the same results whatever the thread count", "[release][spread][reproducibility]") {
    testing::RandomNetworkOptions o;
    o.release = Release{ReleaseMode::synapse, 0.5, SynapseSampling::automatic, true, 2.0};
    for (std::uint64_t seed : {41, 42}) {
        const auto c = testing::random_case(seed, o);
        std::vector<Stimulus> stimuli(9, c.stimulus);
        RunOptions ro;
        ro.ticks = o.ticks;
        ro.seed = seed;
        ro.record_spikes = true;
        const auto one = run_batch(c.network, stimuli, ro, 0, 1);
        for (int threads : {2, 3}) {
            const auto many = run_batch(c.network, stimuli, ro, 0, threads);
            for (std::size_t i = 0; i < one.size(); ++i) require_same(one[i], many[i]);
        }
        CHECK(one[0].spikes != one[1].spikes); // samples differ through their draws
    }
}

TEST_CASE("a spread is validated and reaches operators as a per-neuron spread", "[release][spread]") {
    NetworkBuilder b;
    b.add_population("src", {4}, SpikeSource{});
    b.add_population("out", {4}, ReadoutNeuron{});
    for (double bad : {-1.0, std::nan(""), 2e6}) {
        NetworkBuilder c = b;
        c.connect(Projection{"p", 0, 1, OneToOne{{1.0f}}, 0, Release{ReleaseMode::synapse, 0.5, SynapseSampling::automatic, false, bad}});
        CHECK_THROWS_WITH(c.build(), Contains("projection 'p'") && Contains("release spread"));
    }
    NetworkBuilder c = b;
    c.connect(Projection{"p", 0, 1, OneToOne{{1.0f}}, 0, Release{}});
    const Network net = c.build();
    CHECK(net.spread(0) == nullptr);
    const auto spread = with_targeted_release(Network(net), resolve_targets(net, "all"),
                                              Release{ReleaseMode::synapse, 0.5, SynapseSampling::automatic, false, 3.0});
    REQUIRE(spread.spread(0) != nullptr);
    CHECK(spread.spread(0)->mean() == 0.5);
    CHECK(spread.spread(0)->concentration() == 3.0);
    // Degenerate means need no table: ratio 0 transmits everything, ratio 1 nothing.
    for (double r : {0.0, 1.0})
        CHECK(with_targeted_release(Network(net), resolve_targets(net, "all"),
                                    Release{ReleaseMode::synapse, r, SynapseSampling::automatic, false, 3.0})
                  .spread(0) == nullptr);
}

TEST_CASE("model files keep compensation and spread per projection and operator input", "[release][model_file]") {
    // Written only where set (a file without them is unchanged); read back into the same Release.
    testing::RandomNetworkOptions o;
    o.release = Release{ReleaseMode::synapse, 0.25, SynapseSampling::automatic, true, 7.5};
    const auto c = testing::random_case(3, o);
    const auto path = (std::filesystem::temp_directory_path() / "quantal_release_variants.h5").string();
    write_model_file(path, c.network, ModelFileInfo{});
    const LoadedModel back = read_model_file(path);
    std::filesystem::remove(path);
    REQUIRE(back.network.projections().size() == c.network.projections().size());
    for (const auto& p : back.network.projections()) {
        CHECK(p.release.compensate);
        CHECK(p.release.spread == 7.5);
        CHECK(p.release.mask_ratio == 0.25);
    }
    // The same run from the file as from the network.
    require_same(run(c.network, c.stimulus, o.ticks, 4), run(back.network, c.stimulus, o.ticks, 4));
}
