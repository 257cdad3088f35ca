// Probed membrane potentials (RunOptions::potentials) against the naive time-stepped oracle, on
// both update paths; probing never changes the spikes (docs/traces.md, "Membrane reports").
#include <catch2/catch.hpp>
#include <cmath>

#include "sim/engine.hpp"
#include "sim/errors.hpp"
#include "support/naive_simulator.hpp"
#include "support/random_network.hpp"

using namespace quantal;
using quantal::testing::naive_run;
using quantal::testing::random_case;

namespace {

// Every non-source population, every neuron (odd seeds: every other neuron, to test subsets).
std::vector<PotentialProbe> probe_all(const Network& net, bool subset) {
    std::vector<PotentialProbe> probes;
    for (PopulationId p = 0; p < net.populations().size(); ++p) {
        if (is_source(net.population(p).model)) continue;
        PotentialProbe probe{p, {}};
        for (std::uint32_t j = subset ? 1 : 0; j < net.population(p).size(); j += subset ? 2 : 1) probe.neurons.push_back(j);
        if (!probe.neurons.empty()) probes.push_back(std::move(probe));
    }
    return probes;
}

SampleResult run(const Network& net, const Stimulus& s, Tick ticks, UpdatePath path, std::vector<PotentialProbe> probes,
                 SpikeSink* sink = nullptr) {
    RunOptions o;
    o.ticks = ticks;
    o.seed = 5;
    o.update_path = path;
    o.record_spikes = true;
    o.potentials = std::move(probes);
    return Engine(net).run(s, o, 0, sink);
}

// Collects what a sink is given, to compare with the result.
struct FrameSink : SpikeSink {
    std::vector<std::vector<double>> values;
    std::vector<std::vector<Tick>> ticks;
    void on_spikes(PopulationId, Tick, std::span<const std::uint32_t>) override {}
    void on_potentials(std::size_t probe, Tick tick, std::span<const double> v) override {
        if (values.size() <= probe) values.resize(probe + 1), ticks.resize(probe + 1);
        values[probe].insert(values[probe].end(), v.begin(), v.end());
        ticks[probe].push_back(tick);
    }
};

} // namespace

TEST_CASE("probed potentials equal the time-stepped oracle's at every tick, on both paths", "[engine][potentials][oracle]") {
    std::size_t compared = 0, spiking_ticks = 0;
    for (std::uint64_t seed = 1; seed <= 24; ++seed) {
        testing::RandomNetworkOptions o;
        o.exact = true; // sums in any order are exact: values must be equal, not close
        o.lif = seed % 2 == 0;
        o.ticks = 45;
        const auto c = random_case(seed, o);
        const auto oracle = naive_run(c.network, c.stimulus, o.ticks);
        const auto probes = probe_all(c.network, seed % 3 == 0);
        for (UpdatePath path : {UpdatePath::lazy, UpdatePath::sweep, UpdatePath::automatic}) {
            INFO("seed " << seed << ", path " << int(path));
            const auto plain = run(c.network, c.stimulus, o.ticks, path, {});
            const auto probed = run(c.network, c.stimulus, o.ticks, path, probes);
            REQUIRE(probed.spikes == plain.spikes); // probing changes nothing
            REQUIRE(probed.potentials.size() == probes.size());
            for (std::size_t i = 0; i < probes.size(); ++i) {
                const auto& pr = probes[i];
                const auto n = c.network.population(pr.population).size();
                const auto& got = probed.potentials[i];
                REQUIRE(got.size() == std::size_t(o.ticks) * pr.neurons.size());
                for (Tick t = 0; t < o.ticks; ++t)
                    for (std::size_t k = 0; k < pr.neurons.size(); ++k) {
                        const double want = oracle.potentials[pr.population][std::size_t(t) * n + pr.neurons[k]];
                        const double v = got[std::size_t(t) * pr.neurons.size() + k];
                        INFO("population " << c.network.population(pr.population).name << ", tick " << t << ", neuron "
                                           << pr.neurons[k]);
                        if (o.lif) REQUIRE(v == Approx(want).margin(1e-12)); // exp(-1/tau): the same ops, kept loose
                        else REQUIRE(v == want);
                        ++compared;
                    }
            }
        }
        for (std::size_t i = 0; i + 1 < oracle.spikes.size(); ++i) spiking_ticks += oracle.spikes[i].tick != oracle.spikes[i + 1].tick;
    }
    CHECK(compared > 100000);
    CHECK(spiking_ticks > 200); // the networks spike: resets are in the compared values
}

TEST_CASE("a sink receives every tick's frame, the same values the result keeps", "[engine][potentials]") {
    testing::RandomNetworkOptions o;
    o.lif = true;
    o.ticks = 30;
    const auto c = random_case(3, o);
    const auto probes = probe_all(c.network, false);
    FrameSink sink;
    const auto r = run(c.network, c.stimulus, o.ticks, UpdatePath::automatic, probes, &sink);
    REQUIRE(sink.values.size() == probes.size());
    for (std::size_t i = 0; i < probes.size(); ++i) {
        REQUIRE(sink.values[i] == r.potentials[i]);
        REQUIRE(sink.ticks[i].size() == std::size_t(o.ticks));
        for (Tick t = 0; t < o.ticks; ++t) REQUIRE(sink.ticks[i][std::size_t(t)] == t);
    }
}

TEST_CASE("a quiet network still gets a frame for every tick (drift only)", "[engine][potentials]") {
    // One LIF neuron with bias and no input: the engine visits it only at predicted crossings.
    LifNeuron lif;
    lif.rule.threshold = 1.0;
    lif.tau_ticks = 4.0;
    const std::vector<double> bias = {0.3, 0.1};
    NetworkBuilder b;
    b.add_population("lif", {2}, lif, bias);
    const Network net = b.build();
    RunOptions o;
    o.ticks = 40;
    o.record_spikes = true;
    o.potentials = {PotentialProbe{0, {0, 1}}};
    const auto r = Engine(net).run(Stimulus::for_network(net), o, 0);
    const double alpha = std::exp(-1.0 / 4.0);
    double v[2] = {0.0, 0.0};
    std::size_t spikes = 0;
    for (Tick t = 0; t < o.ticks; ++t)
        for (int j = 0; j < 2; ++j) {
            v[j] = alpha * v[j] + bias[std::size_t(j)];
            if (v[j] >= 1.0) v[j] -= 1.0, ++spikes;
            REQUIRE(r.potentials[0][std::size_t(2 * t + j)] == Approx(v[j]).margin(1e-12));
        }
    REQUIRE(spikes == r.spikes.size());
    REQUIRE(spikes > 3);
}

TEST_CASE("probes that cannot be recorded are refused with the population's name", "[engine][potentials][errors]") {
    testing::RandomNetworkOptions opts;
    const auto c = random_case(2, opts);
    const Network& net = c.network;
    PopulationId source = 0, neurons = 0;
    for (PopulationId p = 0; p < net.populations().size(); ++p)
        (is_source(net.population(p).model) ? source : neurons) = p;
    auto refused = [&](std::vector<PotentialProbe> probes, const std::string& message) {
        RunOptions o;
        o.ticks = 5;
        o.potentials = std::move(probes);
        REQUIRE_THROWS_WITH(Engine(net).run(c.stimulus, o, 0), Catch::Contains(message));
    };
    REQUIRE(is_source(net.population(source).model));
    const std::string name = net.population(neurons).name;
    refused({{source, {0}}}, "'" + net.population(source).name + "' is a spike source");
    refused({{neurons, {net.population(neurons).size()}}}, "is outside population '" + name + "'");
    refused({{neurons, {1, 0}}}, "must be ascending and distinct");
    refused({{neurons, {0}}, {neurons, {1}}}, "'" + name + "' is probed twice");
    refused({{neurons, {}}}, "no neurons of population '" + name + "'");
}
