#include "apps/values.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace quantal::cli {

namespace {

std::string real_text(double v) {
    if (v == std::numeric_limits<double>::max()) return "any finite value";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

} // namespace

CLI::Validator whole_number(std::uint64_t min, std::uint64_t max) {
    const std::string range = std::to_string(min) + " to " + std::to_string(max);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            std::uint64_t value = 0;
            const char* end = text.data() + text.size();
            const auto [ptr, ec] = std::from_chars(text.data(), end, value); // decimal, no sign
            if (ec == std::errc::result_out_of_range) return "'" + text + "' is out of range (" + range + ")";
            if (ec != std::errc() || ptr != end) return "'" + text + "' is not a whole number from " + range;
            if (value < min || value > max) return text + " is out of range (" + range + ")";
            text = std::to_string(value); // no leading zeros: CLI11 would read "010" as octal
            return {};
        },
        "INT in [" + std::to_string(min) + ", " + std::to_string(max) + "]", "whole_number");
}

CLI::Validator real_number(double min, double max, bool exclusive_min) {
    const bool bounded = max < std::numeric_limits<double>::max();
    const std::string range = exclusive_min ? "> " + real_text(min) + (bounded ? " and <= " + real_text(max) : "")
                                            : "from " + real_text(min) + " to " + real_text(max);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            char* end = nullptr;
            const double value = std::strtod(text.c_str(), &end);
            if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value))
                return "'" + text + "' is not a finite number " + range;
            if (value < min || value > max || (exclusive_min && value == min))
                return text + " is out of range (a number " + range + ")";
            char canonical[40];
            std::snprintf(canonical, sizeof canonical, "%.17g", value);
            text = canonical;
            return {};
        },
        "NUMBER " + range, "real_number");
}

} // namespace quantal::cli
