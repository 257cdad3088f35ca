#include <limits>

#include "apps/commands.hpp"
#include "apps/values.hpp"

namespace quantal::cli {

void add_load_timeout_option(CLI::App& command, std::optional<double>& seconds) {
    command
        .add_option("--load-timeout", seconds,
                    "Seconds allowed for reading the HDF5 input (default: 10 + 1 per 10 MB of the file); "
                    "a read that takes longer is refused as a damaged file")
        ->transform(real_number(0.0, 1e6, true));
}

} // namespace quantal::cli
