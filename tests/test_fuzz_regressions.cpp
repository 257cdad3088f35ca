// Findings of the libFuzzer targets (tests/fuzz/, docs/reliability.md), one test each; the inputs
// that found them are replayed by the ctest fuzz_replay from tests/fuzz/regressions/.
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>

#include "network/network.hpp"
#include "sim/errors.hpp"

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
