#include "synapses/release_spread.hpp"

#include <algorithm>
#include <boost/math/special_functions/beta.hpp>
#include <cmath>
#include <limits>

namespace quantal {

ReleaseSpread::ReleaseSpread(double mean, double concentration) : mean_(mean), concentration_(concentration) {
    const double a = mean * concentration, b = (1.0 - mean) * concentration;
    for (std::size_t j = 0; j < levels; ++j) {
        const double level = (double(j) + 0.5) / double(levels);
        const double p = std::clamp(boost::math::ibeta_inv(a, b, level), 0.0, 1.0);
        p_[j] = p;
        // p * 2^64 as an integer; 1 saturates to 2^64 - 1 (a miss once in 2^64 draws).
        bound_[j] = p >= 1.0 ? std::numeric_limits<std::uint64_t>::max() : std::uint64_t(std::ldexp(p, 64));
        bound32_[j] = std::uint64_t(std::ldexp(p, 32)); // 2^32 for p = 1: every 32-bit uniform is below
    }
}

} // namespace quantal
