// Findings of the libFuzzer targets (tests/fuzz/, docs/reliability.md), one test each; the inputs
// that found them are replayed by the ctest fuzz_replay from tests/fuzz/regressions/.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <tuple>

#include "network/network.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"
#include "support/naive_simulator.hpp"

using namespace quantal;
using Catch::Matchers::Contains;

TEST_CASE("fuzz_network: a shape whose extents overflow a 64-bit product is refused", "[fuzz_regression]") {
    // (3, 2^62): the product wrapped negative and passed the "< 2^32 neurons" check.
    for (const Shape& shape : {Shape{3, std::int64_t(1) << 62}, Shape{std::int64_t(1) << 31, 4, 2},
                               Shape{std::int64_t(1) << 32}, Shape{65536, 65536}}) {
        NetworkBuilder b;
        b.add_population("p", shape, IfNeuron{});
        CHECK_THROWS_WITH(b.build(), Contains("population 'p'") && Contains("more than 2^32 neurons"));
    }
    NetworkBuilder b;
    b.add_population("p", Shape{65535, 65537}, IfNeuron{}); // 2^32 - 1 neurons: the largest allowed
    CHECK_NOTHROW(b.build());
}

TEST_CASE("fuzz_network: a per-synapse delay beyond 2^24 is refused like a projection's", "[fuzz_regression]") {
    // It was accepted, and the engine asked for a calendar window of 2^32 buckets (103 GB).
    for (const std::uint32_t delay : {(1u << 24) + 1, 0xffffffffu}) {
        NetworkBuilder b;
        const auto a = b.add_population("a", Shape{2}, IfNeuron{});
        const auto c = b.add_population("c", Shape{2}, IfNeuron{});
        b.connect(a, c, Sparse{{0, 1, 2}, {0, 1}, {1.0f, 1.0f}, {1, delay}, {}});
        CHECK_THROWS_WITH(b.build(), Contains("synapse delay " + std::to_string(delay) + " is out of range"));
    }
    NetworkBuilder b;
    const auto a = b.add_population("a", Shape{2}, IfNeuron{});
    const auto c = b.add_population("c", Shape{2}, IfNeuron{});
    b.connect(a, c, Sparse{{0, 1, 2}, {0, 1}, {1.0f, 1.0f}, {1, 1u << 24}, {}});
    CHECK_NOTHROW(b.build());
}

TEST_CASE("fuzz_network: conv and pool window parameters that would overflow are refused", "[fuzz_regression]") {
    // A padding near 2^63 overflowed (in + 2p - d(k - 1) - 1) in the output-shape formula.
    constexpr std::int64_t huge = std::numeric_limits<std::int64_t>::max() - 1;
    auto conv = [](Conv2d c) {
        NetworkBuilder b;
        const auto a = b.add_population("a", Shape{1, 4, 4}, IfNeuron{});
        const auto o = b.add_population("o", Shape{1, 4, 4}, IfNeuron{});
        c.weight.assign(1, 1.0f);
        b.connect(a, o, c);
        return b;
    };
    for (const auto& c : {Conv2d{{}, {1, 1}, {1, 1}, {huge, 0}, {1, 1}, 1}, Conv2d{{}, {1, 1}, {huge, 1}, {0, 0}, {1, 1}, 1},
                          Conv2d{{}, {huge, 1}, {1, 1}, {0, 0}, {huge, 1}, 1}})
        CHECK_THROWS_WITH(conv(c).build(), Contains("must be at most 2^31"));
    NetworkBuilder b;
    const auto a = b.add_population("a", Shape{1, 4, 4}, IfNeuron{});
    const auto o = b.add_population("o", Shape{1, 2, 2}, IfNeuron{});
    b.connect(a, o, Pool2d{PoolKind::sum, {2, 2}, {2, 2}, {huge, 0}});
    CHECK_THROWS_WITH(b.build(), Contains("must be at most 2^31"));
    CHECK_NOTHROW(conv(Conv2d{{}, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 1}).build());
}

TEST_CASE("fuzz_network: deliveries beyond the calendar's window arrive on time and in order", "[fuzz_regression]") {
    // A delay near 2^24 gave every sample a calendar of that many buckets (400 MB); the window is
    // now capped and longer delays wait in the overflow list. Delays on both sides of the cap,
    // several per tick, against the time-stepped oracle.
    NetworkBuilder b;
    const auto src = b.add_population("src", Shape{3}, SpikeSource{});
    const auto dst = b.add_population("dst", Shape{4}, IfNeuron{ThresholdRule{1.0}, 0.0, 1.0});
    b.connect(src, dst,
              Sparse{{0, 3, 5, 7}, {0, 1, 2, 3, 0, 1, 2}, {0.5f, 0.75f, 1.0f, 0.25f, 0.5f, 0.25f, 0.5f},
                     {5000, 4097, 1, 4095, 5000, 4096, 5000}, {}});
    const Network net = b.build();
    Stimulus stim = Stimulus::for_network(net);
    stim.spikes[src] = {{0, 0}, {0, 1}, {2, 2}, {700, 0}, {903, 1}, {903, 2}};
    RunOptions o;
    o.ticks = 6200;
    o.record_spikes = true;
    auto got = Engine(net).run(stim, o, 0).spikes;
    std::sort(got.begin(), got.end(), [](const auto& x, const auto& y) {
        return std::tie(x.tick, x.population, x.neuron) < std::tie(y.tick, y.population, y.neuron);
    });
    const auto expected = testing::naive_simulate(net, stim, o.ticks);
    CHECK(std::count_if(expected.begin(), expected.end(), [](const auto& s) { return s.tick >= 4096; }) >= 3);
    CHECK(got == expected);

    NetworkBuilder far;
    const auto a = far.add_population("a", Shape{1}, SpikeSource{});
    const auto c = far.add_population("c", Shape{1}, IfNeuron{ThresholdRule{1.0}, 0.0, 1.0});
    far.connect(a, c, OneToOne{{1.0f}}, 1u << 24); // the largest delay: one spike crosses it
    const Network longest = far.build();
    Stimulus one = Stimulus::for_network(longest);
    one.spikes[a] = {{3, 0}};
    o.ticks = (Tick(1) << 24) + 10;
    const auto spikes = Engine(longest).run(one, o, 0).spikes;
    REQUIRE(spikes.size() == 2);
    CHECK(spikes[1].tick == 3 + (Tick(1) << 24));
}

TEST_CASE("fuzz_network: a network far larger than the machine's memory is refused before it allocates",
          "[fuzz_regression]") {
    // A pool over ~2^31 neurons passed build() (tests/fuzz/regressions/network/network_pool_synapse_count);
    // simulating it needs hundreds of GiB. Engine and run_batch now refuse it with the numbers.
    NetworkBuilder b;
    const auto src = b.add_population("src", Shape{1, 65535, 32768}, IfNeuron{});
    const auto dst = b.add_population("dst", Shape{1, 32767, 16384}, IfNeuron{});
    b.connect(src, dst, Pool2d{PoolKind::average, {2, 2}, {2, 2}, {0, 0}});
    const Network huge = b.build();
    const std::string needs = "network: simulating its 2684305408 neurons needs about 202.5 GiB of state per engine";
    CHECK_THROWS_WITH(Engine(huge), Contains(needs) && Contains("; this machine has"));
    const Stimulus stimulus = Stimulus::for_network(huge);
    CHECK_THROWS_WITH(run_batch(huge, std::span(&stimulus, 1), RunOptions{}, 0, 2), Contains(needs));
}
