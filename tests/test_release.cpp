// Release models (RSM as quantal synaptic failure) against binomial statistics.
#include <catch2/catch.hpp>
#include <cmath>

#include "sim/engine.hpp"

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
