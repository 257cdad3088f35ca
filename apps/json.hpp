#pragma once
// JSON values for the commands' --json outputs (inspect, energy, run reports): one escaping rule
// and one number format for all of them.
#include <string>
#include <string_view>

namespace quantal::cli {

// A JSON string literal: quotes, backslashes and control characters escaped (paths may hold any).
std::string json_string(std::string_view s);
// A number that reads back to the same double (%.17g); NaN and infinities (not JSON) as null.
std::string json_number(double v);

} // namespace quantal::cli
