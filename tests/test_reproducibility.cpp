// Same seed, same result, whatever the thread count; streams differ per sample and per seed.
#include <catch2/catch.hpp>
#include <atomic>
#include <utility>

#include "sim/engine.hpp"
#include "sim/errors.hpp"
#include "support/random_network.hpp"

using namespace quantal;

namespace {

Network masked_network(ReleaseMode mode, SynapseSampling sampling = SynapseSampling::automatic) {
    NetworkBuilder b;
    const auto in = b.add_population("in", {64}, BernoulliSource{{0.2}, 1.0});
    const auto h = b.add_population("h", {48}, IfNeuron{ThresholdRule{}, 0.5, 1.0}, {0.01});
    const auto h2 = b.add_population("h2", {32}, LifNeuron{ThresholdRule{}, 8.0, 0.0, 0.0, 1.0});
    const auto out = b.add_population("out", {10}, ReadoutNeuron{});
    std::vector<float> w1(64 * 48), w2(48 * 32), w3(32 * 10), wr(32 * 48);
    for (std::size_t i = 0; i < w1.size(); ++i) w1[i] = float((i * 7919) % 13) / 30.0f - 0.1f;
    for (std::size_t i = 0; i < w2.size(); ++i) w2[i] = float((i * 104729) % 11) / 20.0f - 0.1f;
    for (std::size_t i = 0; i < w3.size(); ++i) w3[i] = float((i * 31) % 7) / 7.0f - 0.3f;
    for (std::size_t i = 0; i < wr.size(); ++i) wr[i] = float((i * 17) % 5) / 50.0f - 0.04f;
    b.connect(Projection{"fc1", in, h, Dense{w1}, 0, Release{mode, 0.5, sampling}});
    b.connect(Projection{"fc2", h, h2, Dense{w2}, 1, Release{mode, 0.75, sampling}});
    b.connect(Projection{"fc3", h2, out, Dense{w3}, 0, Release{mode, 0.25, sampling}});
    b.connect(Projection{"rec", h2, h, Dense{wr}, 2, Release{mode, 0.5, sampling}});
    return b.build();
}

std::vector<SampleResult> run(const Network& net, std::uint64_t seed, int threads, std::size_t samples = 12) {
    std::vector<Stimulus> stimuli(samples, Stimulus::for_network(net));
    RunOptions o;
    o.ticks = 80;
    o.seed = seed;
    o.record_spikes = true;
    return run_batch(net, stimuli, o, 0, threads);
}

} // namespace

TEST_CASE("same seed gives identical spikes; 1 and 2 threads agree", "[reproducibility]") {
    using S = SynapseSampling;
    for (auto [mode, sampling] : {std::pair{ReleaseMode::spike, S::automatic}, std::pair{ReleaseMode::synapse, S::automatic},
                                  std::pair{ReleaseMode::synapse, S::geometric}, std::pair{ReleaseMode::synapse, S::bernoulli}}) {
        INFO("mode " << mode_name(mode) << " sampling " << int(sampling));
        const Network net = masked_network(mode, sampling);
        const auto a = run(net, 42, 1), b = run(net, 42, 1), c = run(net, 42, 2);
        REQUIRE(a.size() == c.size());
        std::size_t spikes = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
            CHECK(a[i].spikes == b[i].spikes);
            CHECK(a[i].spikes == c[i].spikes);
            CHECK(a[i].readouts[0].values == c[i].readouts[0].values);
            for (std::size_t p = 0; p < a[i].ledger.projections.size(); ++p)
                CHECK(a[i].ledger.projections[p].transmitted == c[i].ledger.projections[p].transmitted);
            spikes += a[i].spikes.size();
        }
        CHECK(spikes > 1000);
    }
}

TEST_CASE("different samples draw different masks; different seeds differ", "[reproducibility]") {
    const Network net = masked_network(ReleaseMode::synapse);
    const auto a = run(net, 42, 1, 3);
    CHECK(a[0].spikes != a[1].spikes);
    CHECK(a[1].spikes != a[2].spikes);
    CHECK(run(net, 43, 1, 1)[0].spikes != a[0].spikes);
    // A sample's result depends on its index, not on its position in the batch.
    std::vector<Stimulus> one(1, Stimulus::for_network(net));
    RunOptions o;
    o.ticks = 80, o.seed = 42, o.record_spikes = true;
    CHECK(run_batch(net, one, o, 2, 1)[0].spikes == a[2].spikes);
}

TEST_CASE("masking with identical inputs: same sample index, same masks", "[reproducibility]") {
    const Network net = masked_network(ReleaseMode::spike);
    Engine e(net);
    RunOptions o;
    o.ticks = 60, o.seed = 5, o.record_spikes = true;
    const auto s = Stimulus::for_network(net);
    const auto first = e.run(s, o, 9);
    e.run(s, o, 3); // state from another sample must not leak into the next
    CHECK(e.run(s, o, 9).spikes == first.spikes);
}

TEST_CASE("run_batch refuses a thread count outside [0, max_batch_threads]", "[reproducibility]") {
    const Network net = masked_network(ReleaseMode::spike);
    std::vector<Stimulus> one(1, Stimulus::for_network(net));
    RunOptions o;
    o.ticks = 5;
    CHECK_THROWS_AS(run_batch(net, one, o, 0, -1), InputError);
    CHECK_THROWS_AS(run_batch(net, one, o, 0, max_batch_threads + 1), InputError);
    CHECK(run_batch(net, one, o, 0, 3).size() == 1);
}

TEST_CASE("run_batch with a stop request: started samples finish, the result is a prefix", "[reproducibility]") {
    const Network net = masked_network(ReleaseMode::synapse);
    std::vector<Stimulus> stimuli(12, Stimulus::for_network(net));
    RunOptions o;
    o.ticks = 80, o.seed = 42, o.record_spikes = true;
    const auto all = run_batch(net, stimuli, o, 0, 1);
    for (int threads : {1, 3}) {
        INFO("threads " << threads);
        std::atomic<int> asked{0};
        // Asked once per sample before it starts: the fifth question stops the batch.
        const auto part = run_batch(net, stimuli, o, 0, threads, [&] { return ++asked > 4; });
        REQUIRE(part.size() <= 4);
        if (threads == 1) CHECK(part.size() == 4);
        for (std::size_t i = 0; i < part.size(); ++i) CHECK(part[i].spikes == all[i].spikes);
    }
    CHECK(run_batch(net, stimuli, o, 0, 2, [] { return true; }).empty());
}
