#pragma once
// Simulation time is an integer tick; dt (ms per tick) only matters when ticks are written out.
#include <cstdint>
#include <limits>

namespace quantal {

using Tick = std::int64_t;
inline constexpr Tick never = std::numeric_limits<Tick>::max();

} // namespace quantal
