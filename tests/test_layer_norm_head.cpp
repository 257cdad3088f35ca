// The layer_norm_head operator (the MST authors' ending: LayerNorm per token, average pool,
// head) against a direct per-tick evaluation written here, and its model-file round trip.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>

#include "io/model_file.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"

using namespace quantal;
using Catch::Matchers::Contains;

namespace {

struct HeadCase {
    Network net;
    Stimulus stimulus;
    LayerNormHead head;
    std::vector<double> bias;
    std::vector<double> spike_value;
    std::int64_t channels = 0, positions = 0;
};

// Two spike sources and an IF population (spike value != 1) feed the head; a readout of 3.
// busy: probability that a source neuron spikes at a tick (0.0 leaves idle ticks only).
HeadCase head_case(std::uint64_t seed, Tick ticks, double busy) {
    std::mt19937_64 rng(seed);
    auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
    HeadCase c;
    c.channels = 3 + std::int64_t(seed % 4);
    const std::int64_t h = 2, w = 1 + std::int64_t(seed % 3);
    c.positions = h * w;
    NetworkBuilder b;
    const Shape map{c.channels, h, w};
    const auto a = b.add_population("a", map, SpikeSource{});
    const auto s = b.add_population("s", map, SpikeSource{});
    const double lambda = uniform(0.5, 2.0);
    const auto f = b.add_population("f", map, IfNeuron{ThresholdRule{lambda}, lambda / 2, lambda});
    const std::size_t n = std::size_t(c.channels * c.positions);
    std::vector<float> drive(n);
    for (auto& x : drive) x = float(uniform(0.2, 1.5));
    b.connect(s, f, OneToOne{drive});
    c.bias = {uniform(-1, 1), uniform(-1, 1), uniform(-1, 1)};
    const auto logits = b.add_population("logits", {3}, ReadoutNeuron{}, c.bias);
    c.head.name = "head";
    c.head.sources = {a, s, f};
    c.head.output = logits;
    c.head.eps = 1e-5;
    for (std::int64_t k = 0; k < 3 * c.channels; ++k) c.head.source_weight.push_back(float(uniform(-1.5, 1.5)));
    for (std::int64_t k = 0; k < c.channels; ++k) {
        c.head.offset.push_back(float(uniform(-0.5, 0.5)));
        c.head.gamma.push_back(float(uniform(0.5, 1.5)));
        c.head.beta.push_back(float(uniform(-0.3, 0.3)));
    }
    for (std::int64_t k = 0; k < 3 * c.channels; ++k) c.head.weight.push_back(float(uniform(-1, 1)));
    b.add_layer_norm_head(c.head);
    c.net = b.build();
    c.spike_value = {1.0, 1.0, lambda};
    c.stimulus = Stimulus::for_network(c.net);
    for (Tick t = 0; t < ticks; ++t)
        for (auto p : {a, s})
            for (std::uint32_t j = 0; j < n; ++j)
                if (uniform(0, 1) < busy) c.stimulus.spikes[p].push_back({t, j});
    return c;
}

// The readout after `ticks`: bias plus, per tick, W mean_p LN(z_t[:, p]) with z from the spikes.
std::vector<double> oracle(const HeadCase& c, const std::vector<SpikeRecord>& spikes, Tick ticks) {
    const auto C = std::size_t(c.channels), P = std::size_t(c.positions);
    std::vector<double> out(3, 0.0);
    for (Tick t = 0; t < ticks; ++t) {
        std::vector<double> z(C * P);
        for (std::size_t k = 0; k < C * P; ++k) z[k] = c.head.offset[k / P];
        for (const auto& s : spikes)
            if (s.tick == t && s.population < 3)
                z[s.neuron] += c.head.source_weight[s.population * C + s.neuron / P] * c.spike_value[s.population];
        std::vector<double> pooled(C, 0.0);
        for (std::size_t p = 0; p < P; ++p) {
            double mean = 0, sq = 0;
            for (std::size_t k = 0; k < C; ++k) mean += z[k * P + p] / double(C);
            for (std::size_t k = 0; k < C; ++k) sq += (z[k * P + p] - mean) * (z[k * P + p] - mean);
            for (std::size_t k = 0; k < C; ++k)
                pooled[k] += (c.head.gamma[k] * (z[k * P + p] - mean) / std::sqrt(sq / double(C) + c.head.eps) +
                              c.head.beta[k]) / double(P);
        }
        for (std::size_t o = 0; o < 3; ++o) {
            out[o] += c.bias[o];
            for (std::size_t k = 0; k < C; ++k) out[o] += c.head.weight[o * C + k] * pooled[k];
        }
    }
    return out;
}

} // namespace

TEST_CASE("layer_norm_head equals a per-tick LayerNorm, pool and head", "[operator][layer_norm]") {
    const Tick T = 25;
    for (std::uint64_t seed = 1; seed <= 12; ++seed)
        for (double busy : {0.0, 0.05, 0.5}) {
            const auto c = head_case(seed, T, busy);
            for (auto path : {UpdatePath::automatic, UpdatePath::lazy, UpdatePath::sweep}) {
                RunOptions o;
                o.ticks = T;
                o.record_spikes = true;
                o.update_path = path;
                const auto r = Engine(c.net).run(c.stimulus, o, 0);
                const auto expected = oracle(c, r.spikes, T);
                REQUIRE(r.readouts.size() == 1);
                INFO("seed " << seed << ", busy " << busy);
                for (std::size_t k = 0; k < 3; ++k)
                    CHECK(r.readouts[0].values[k] == Approx(expected[k]).epsilon(1e-9).margin(1e-9));
                if (busy > 0) CHECK(r.ledger.populations[2].spikes > 0); // the IF source takes part
            }
        }
}

TEST_CASE("layer_norm_head survives a model-file round trip and is validated", "[operator][layer_norm][model_file]") {
    const auto c = head_case(3, 10, 0.3);
    const auto path = (std::filesystem::temp_directory_path() / "quantal_test_layer_norm_head.h5").string();
    write_model_file(path, c.net, ModelFileInfo{}, {}, "logits");
    const auto back = read_model_file(path);
    REQUIRE(back.network.heads().size() == 1);
    const auto& h = back.network.heads()[0];
    CHECK(h.sources == c.head.sources);
    CHECK(h.weight == c.head.weight);
    CHECK(h.source_weight == c.head.source_weight);
    CHECK(h.eps == c.head.eps);
    RunOptions o;
    o.ticks = 10;
    auto stimulus = c.stimulus;
    CHECK(Engine(back.network).run(stimulus, o, 0).readouts[0].values ==
          Engine(c.net).run(c.stimulus, o, 0).readouts[0].values);
    std::filesystem::remove(path);

    NetworkBuilder b;
    const auto a = b.add_population("a", {4, 2}, SpikeSource{});
    const auto r = b.add_population("r", {2}, ReadoutNeuron{});
    LayerNormHead bad;
    bad.name = "head";
    bad.sources = {a};
    bad.output = r;
    bad.source_weight.assign(4, 1.0f);
    bad.offset = bad.gamma = bad.beta = std::vector<float>(4, 1.0f);
    bad.weight.assign(7, 1.0f); // needs 2 x 4
    b.add_layer_norm_head(bad);
    REQUIRE_THROWS_WITH(b.build(), Contains("operator 'head'") && Contains("weight has 7 values, expected 8"));
}
