// Threads within one sample (RunOptions::threads_per_sample, docs/engine.md "Threads within a
// sample"): the sweep and lazy updates, the convolutions' accumulation and flush split over 2 and
// 3 threads give the one-thread result bit for bit — spikes, readouts, ledger, release draws —
// and a checkpoint taken with threads resumes identically with another count. The oracle is the
// same network and stimulus on one thread; weights are arbitrary floats, so a sum taken in another
// order would show as another spike or readout value.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <random>

#include "io/checkpoint.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"
#include "support/random_network.hpp"
#include "support/same_result.hpp"

using namespace quantal;
using Catch::Matchers::Contains;

using quantal::testing::require_same;

namespace {

struct Case {
    Network net;
    Stimulus stimulus;
};

// A transformer block in miniature, as export.py writes one: 1 x 1 convolutions (embedding, q, k,
// v, proj, fc1, fc2), window attention, a residual one_to_one, patch merging (a 2 x 2 stride-2
// conv from two contributors), a delayed recurrent 3 x 3 conv (deliveries pending at tick
// boundaries) and a dense readout. `release` applies to every conv; `attention` to q, k, scores.
Case swin_block(std::uint64_t seed, const Release& release, const Release& attention, std::int64_t grid = 4,
                Tick input_ticks = 40) {
    std::mt19937_64 rng(seed);
    auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
    const std::int64_t heads = 2, hd = 4, C = heads * hd, win = 2, H = win * grid, W = win * grid, T = win * win;
    const std::int64_t windows = grid * grid;
    NetworkBuilder b;
    const auto in = b.add_population("in", {C, H, W}, SpikeSource{});
    auto spiking = [&](const char* name, Shape shape, double lambda) {
        std::vector<double> bias(std::size_t(shape[0] * shape[1] * shape[2] * (shape.size() > 3 ? shape[3] : 1)));
        for (auto& x : bias) x = uniform(-0.05, 0.08);
        return b.add_population(name, std::move(shape), IfNeuron{ThresholdRule{lambda}, lambda / 2, lambda}, bias);
    };
    auto weights = [&](std::size_t n, double lo, double hi) {
        std::vector<float> w(n);
        for (auto& x : w) x = float(uniform(lo, hi));
        return w;
    };
    auto conv = [&](PopulationId from, PopulationId to, std::int64_t ci, std::int64_t co, std::int64_t k,
                    std::int64_t stride, std::int64_t pad, std::uint32_t delay, const char* role) {
        Conv2d c;
        c.kernel = {k, k}, c.stride = {stride, stride}, c.padding = {pad, pad};
        c.weight = weights(std::size_t(co * ci * k * k), -0.25, 0.45);
        b.connect(Projection{"", from, to, c, delay, release, role});
    };
    const auto act = spiking("act", {C, H, W}, 1.0);
    const auto q = spiking("q", {C, H, W}, uniform(0.5, 1.5)), k = spiking("k", {C, H, W}, uniform(0.5, 1.5));
    const auto v = spiking("v", {C, H, W}, uniform(0.5, 1.5));
    const auto scores = spiking("scores", {windows, heads, T, T}, uniform(0.2, 0.8));
    const auto out = spiking("out", {C, H, W}, uniform(0.2, 0.6));
    const auto proj = spiking("proj", {C, H, W}, 1.0);
    const auto fc1 = b.add_population("fc1", {2 * C, H, W}, LifNeuron{ThresholdRule{1.0}, 8.0, 0.0, 0.25, 1.0});
    const auto fc2 = spiking("fc2", {C, H, W}, 1.0);
    const auto merge = spiking("merge", {2 * C, H / 2, W / 2}, 1.0);
    const auto logits = b.add_population("logits", {5}, ReadoutNeuron{});
    conv(in, act, C, C, 1, 1, 0, 0, "embed");
    for (auto to : {q, k, v}) conv(act, to, C, C, 1, 1, 0, 0, "qkv_in");
    conv(out, proj, C, C, 1, 1, 0, 0, "proj_in");
    b.connect(Projection{"", act, proj, OneToOne{weights(std::size_t(C * H * W), 0.2, 0.6)}, 0, release, "stream"});
    conv(proj, fc1, C, 2 * C, 1, 1, 0, 0, "fc1_in");
    conv(fc1, fc2, 2 * C, C, 1, 1, 0, 0, "fc2_in");
    conv(fc2, merge, C, 2 * C, 2, 2, 0, 0, "merge");
    conv(act, merge, C, 2 * C, 2, 2, 0, 0, "merge");
    conv(fc2, act, C, C, 3, 1, 1, 2, "");
    b.connect(merge, logits, Dense{weights(std::size_t(5 * 2 * C * (H / 2) * (W / 2)), -0.5, 0.5)});
    SoftmaxAttention a;
    a.name = "attention";
    a.q = q, a.k = k, a.v = v, a.scores = scores, a.output = out;
    a.heads = heads, a.window = win, a.shift = 0, a.scale = 1.0 / std::sqrt(double(hd));
    a.bias = weights(std::size_t(heads * T * T), -1, 1);
    a.q_release = a.k_release = a.score_release = attention;
    b.add_operator(a);
    Case c{b.build(), {}};
    c.stimulus = Stimulus::for_network(c.net);
    for (Tick t = 0; t < input_ticks; ++t)
        for (std::uint32_t j = 0; j < std::uint32_t(C * H * W); ++j)
            if (uniform(0, 1) < 0.3) c.stimulus.spikes[in].push_back({t, j});
    return c;
}

RunOptions options(Tick ticks, int threads, std::uint64_t min_work, UpdatePath path = UpdatePath::automatic) {
    RunOptions o;
    o.ticks = ticks;
    o.seed = 5;
    o.record_spikes = true;
    o.observe = {3, ticks / 2, ticks - 1};
    o.update_path = path;
    o.threads_per_sample = threads;
    o.parallel_min_work = min_work;
    return o;
}

std::string scratch_file(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("quantal_test_sample_threads_" + name)).string();
}

} // namespace

TEST_CASE("threads within a sample give the one-thread result: a miniature Swin block", "[engine][threads]") {
    // Every release setting the engine treats differently: none, per-spike (draws before the
    // parallel accumulation), per-synapse (the projection's stream in delivery order), heterogeneous.
    const Release none{};
    const std::vector<std::pair<Release, Release>> releases = {
        {none, none},
        {Release{ReleaseMode::spike, 0.4}, Release{ReleaseMode::spike, 0.3}},
        {Release{ReleaseMode::synapse, 0.3}, Release{ReleaseMode::spike, 0.5}},
        {Release{ReleaseMode::synapse, 0.5, SynapseSampling::bernoulli, true}, none},
        {Release{ReleaseMode::spike, 0.25, SynapseSampling::automatic, false, 20.0},
         Release{ReleaseMode::spike, 0.4, SynapseSampling::automatic, false, 20.0}},
        {Release{ReleaseMode::synapse, 0.25, SynapseSampling::automatic, false, 20.0}, none},
    };
    const Tick T = 40;
    for (std::size_t r = 0; r < releases.size(); ++r) {
        const auto c = swin_block(r + 1, releases[r].first, releases[r].second);
        for (UpdatePath path : {UpdatePath::automatic, UpdatePath::lazy, UpdatePath::sweep}) {
            Engine one(c.net);
            const auto expected = one.run(c.stimulus, options(T, 1, 1, path), 2);
            CHECK(one.parallel_steps() == 0);
            CHECK(expected.spikes.size() > 5000);
            std::uint64_t masked = 0;
            for (const auto& p : expected.ledger.projections) masked += p.masked_spikes + (p.attempted - p.transmitted);
            CHECK((masked > 0) == (r > 0));
            CHECK(expected.ledger.operators[0].coincidences > 0);
            // min_work 1: every step that can split does; 97: some do, some do not (mixed within a tick).
            for (int threads : {2, 3})
                for (std::uint64_t min_work : {1, 97}) {
                    INFO("release case " << r << ", path " << int(path) << ", " << threads << " threads, min_work " << min_work);
                    Engine engine(c.net);
                    require_same(expected, engine.run(c.stimulus, options(T, threads, min_work, path), 2));
                    CHECK(engine.parallel_steps() > 0);
                }
        }
    }
}

TEST_CASE("threads within a sample give the one-thread result: random networks of every kind", "[engine][threads]") {
    // Dense, conv (strided, padded, dilated, grouped), pool, sparse with per-synapse delays and
    // probabilities, one_to_one; IF, LIF and CubaLIF; recurrent; random release per projection.
    std::uint64_t spikes = 0, steps = 0;
    for (std::uint64_t seed = 1; seed <= 24; ++seed) {
        testing::RandomNetworkOptions o;
        o.exact = false;
        o.lif = seed % 2 == 0;
        o.cuba = seed % 3 == 0;
        o.ticks = 50;
        o.release_choice = testing::ReleaseChoice::random;
        const auto c = testing::random_case(seed, o);
        const UpdatePath path = seed % 3 == 0 ? UpdatePath::lazy : seed % 3 == 1 ? UpdatePath::sweep : UpdatePath::automatic;
        const auto expected = Engine(c.network).run(c.stimulus, options(o.ticks, 1, 1, path), seed);
        spikes += expected.spikes.size();
        for (int threads : {2, 3}) {
            INFO("seed " << seed << ", " << threads << " threads");
            Engine engine(c.network);
            require_same(expected, engine.run(c.stimulus, options(o.ticks, threads, 1, path), seed));
            steps += engine.parallel_steps();
        }
    }
    CHECK(spikes > 10000);
    CHECK(steps > 1000);
}

TEST_CASE("a checkpoint taken with threads resumes identically with another thread count", "[engine][threads][checkpoint]") {
    const std::string path = scratch_file("engine.ckpt");
    for (const auto& release : {Release{ReleaseMode::spike, 0.4}, Release{ReleaseMode::synapse, 0.3}}) {
        const auto c = swin_block(9, release, Release{ReleaseMode::spike, 0.3});
        const Tick T = 30;
        const auto expected = Engine(c.net).run(c.stimulus, options(T, 1, 1), 4);
        // 2 threads until tick 7, 3 until 16, 1 to the end; each stop through a checkpoint file.
        Engine first(c.net);
        first.start(c.stimulus, options(T, 2, 1), 4);
        first.advance(7);
        RunCheckpoint file;
        file.run = {{"--seed", "5"}};
        file.in_sample = true;
        file.engine = first.save();
        CHECK(!file.engine.deliveries.empty()); // the recurrent conv's spikes are pending
        write_checkpoint(path, file);
        Engine second(c.net);
        second.restore(read_checkpoint(path).engine, c.stimulus, options(T, 3, 1));
        second.advance(16);
        file.engine = second.save();
        write_checkpoint(path, file);
        Engine last(c.net);
        last.restore(read_checkpoint(path).engine, c.stimulus, options(T, 1, 1));
        REQUIRE(last.advance());
        require_same(expected, last.finish());
    }
    std::filesystem::remove(path);
}

TEST_CASE("the default threshold: a large network splits its steps, a small one never", "[engine][threads]") {
    // grid 64: 128 x 128 positions, 131,072 neurons in each C-channel population (fc1 262,144),
    // at default_parallel_min_work; the 1 x 1 convolutions into fc1 deliver ~10^6 synapses a tick.
    const auto large = swin_block(3, Release{ReleaseMode::spike, 0.25}, Release{}, 64, 6);
    const Tick T = 6;
    RunOptions o = options(T, 1, default_parallel_min_work);
    o.observe = {};
    const auto expected = Engine(large.net).run(large.stimulus, o, 0);
    o.threads_per_sample = 2;
    Engine engine(large.net);
    require_same(expected, engine.run(large.stimulus, o, 0));
    CHECK(engine.parallel_steps() > 0);

    const auto small = swin_block(3, Release{ReleaseMode::spike, 0.25}, Release{}, 4);
    Engine small_engine(small.net);
    const auto one = Engine(small.net).run(small.stimulus, options(30, 1, default_parallel_min_work), 0);
    require_same(one, small_engine.run(small.stimulus, options(30, 3, default_parallel_min_work), 0));
    CHECK(small_engine.parallel_steps() == 0);
}

TEST_CASE("threads within a sample: batches, nesting and refused counts", "[engine][threads]") {
    const auto c = swin_block(4, Release{ReleaseMode::synapse, 0.3}, Release{ReleaseMode::spike, 0.3});
    const std::vector<Stimulus> stimuli(4, c.stimulus); // the draws differ per sample
    const auto expected = run_batch(c.net, stimuli, options(25, 1, 1), 0, 1);
    REQUIRE(expected.size() == 4);
    CHECK(expected[0].spikes != expected[1].spikes);
    for (int samples : {1, 2}) // 2 x 2: each sample's threads are a nested team
        for (int within : {2, 3}) {
            INFO(samples << " threads over samples, " << within << " within");
            const auto got = run_batch(c.net, stimuli, options(25, within, 1), 0, samples);
            REQUIRE(got.size() == expected.size());
            for (std::size_t i = 0; i < got.size(); ++i) require_same(expected[i], got[i]);
        }
    for (int bad : {0, -1, max_batch_threads + 1})
        CHECK_THROWS_MATCHES(Engine(c.net).run(c.stimulus, options(25, bad, 1), 0), InputError,
                             Catch::Matchers::Message("run: threads per sample must be 1 to 1024, got " + std::to_string(bad)));
    CHECK_THROWS_WITH(run_batch(c.net, stimuli, options(25, 512, 1), 0, 3),
                      Contains("3 threads over samples x 512 threads per sample exceed 1024"));
}

TEST_CASE("record_populations keeps only the chosen populations' spikes, and changes nothing else", "[engine][threads]") {
    const auto c = swin_block(4, Release{ReleaseMode::synapse, 0.3}, Release{ReleaseMode::spike, 0.3});
    RunOptions all = options(25, 1, 1);
    all.record_spikes = true;
    const auto full = Engine(c.net).run(c.stimulus, all, 3);
    std::vector<bool> only(c.net.populations().size(), false);
    only[1] = only[only.size() - 2] = true;
    std::vector<SpikeRecord> expected;
    for (const auto& s : full.spikes)
        if (only[s.population]) expected.push_back(s);
    REQUIRE(!expected.empty());
    REQUIRE(expected.size() < full.spikes.size());
    RunOptions some = all;
    some.record_populations = only;
    for (int within : {1, 2}) {
        some.threads_per_sample = within;
        const auto got = run_batch(c.net, std::span(&c.stimulus, 1), some, 3, 1).front();
        CHECK(got.spikes == expected);
        auto unrecorded = got;
        unrecorded.spikes = full.spikes; // everything else (readouts, ledger) is the full run's
        require_same(full, unrecorded);
    }
    some.record_populations.pop_back();
    CHECK_THROWS_WITH(Engine(c.net).run(c.stimulus, some, 0), Contains("record_populations has"));
}

TEST_CASE("engines kept across batches give each sample the result of a fresh engine", "[engine][threads]") {
    // quantal run and net.run keep one engine per thread for the whole run (SampleBatches): a
    // sample must not see anything of the samples its engine ran before, in this batch or earlier.
    const auto c = swin_block(4, Release{ReleaseMode::synapse, 0.3}, Release{ReleaseMode::spike, 0.3});
    std::vector<Stimulus> stimuli;
    for (int k = 0; k < 7; ++k) {
        Stimulus s = c.stimulus;
        for (auto& current : s.current)
            for (auto& x : current) x *= 0.6 + 0.1 * k; // different activity per sample
        stimuli.push_back(std::move(s));
    }
    std::vector<SampleResult> fresh;
    for (std::size_t k = 0; k < stimuli.size(); ++k) fresh.push_back(Engine(c.net).run(stimuli[k], options(25, 1, 1), k));
    CHECK(fresh[0].spikes != fresh[6].spikes);
    SampleBatches batches(c.net, 2);
    std::size_t done = 0;
    for (std::size_t n : {3u, 1u, 2u, 1u}) { // uneven batches, and one sample alone on the first engine
        const std::span batch(stimuli.data() + done, n);
        const auto got = n == 1 && done == 3 ? std::vector{batches.first_engine().run(batch[0], options(25, 2, 1), done)}
                                             : batches.run(batch, options(25, 1, 1), done);
        REQUIRE(got.size() == n);
        for (std::size_t i = 0; i < n; ++i) {
            INFO("sample " << done + i);
            require_same(fresh[done + i], got[i]);
        }
        done += n;
    }
    CHECK(batches.threads() == 2);
    CHECK_THROWS_WITH(SampleBatches(c.net, -1), Contains("threads must be 0"));
}
