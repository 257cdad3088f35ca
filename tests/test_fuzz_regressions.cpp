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
