#pragma once
// Command-line values, checked strictly: whole numbers in decimal without a sign trick or an
// overflow (CLI11 alone turns "-1" into 2^64 - 1 and clamps 10^20 to INT64_MAX), real numbers that
// are finite and in range (NaN passes CLI11's own range checks), and ranges printed readably.
// Used with CLI::Option::transform: the value is rewritten in canonical form, so CLI11's own
// conversion afterwards (which reads "010" as octal) sees exactly what was checked.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "sim/engine.hpp"

namespace quantal::cli {

// The largest tick count of a run: a trace timestamp (k * T + t) * dt must hold its tick exactly.
inline constexpr std::uint64_t max_run_ticks = std::uint64_t{1} << 53;
// The most OpenMP threads `--threads` accepts: the engine's bound (libgomp crashes when it cannot
// create them all).
inline constexpr int max_threads = max_batch_threads;

// A whole number in [min, max], written in decimal.
CLI::Validator whole_number(std::uint64_t min, std::uint64_t max);
// A finite real number in [min, max]; with `exclusive_min`, in (min, max].
CLI::Validator real_number(double min, double max, bool exclusive_min = false);

} // namespace quantal::cli
