// Findings of the libFuzzer targets (tests/fuzz/, docs/reliability.md), one test each; the inputs
// that found them are replayed by the ctest fuzz_replay from tests/fuzz/regressions/.
#include <catch2/catch.hpp>
#include <cstdint>

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
