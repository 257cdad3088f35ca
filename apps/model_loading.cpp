// Reading a model for a command: --load-timeout, and the contained read of io/contained.hpp.
#include <limits>
#include <new>

#include "apps/commands.hpp"
#include "apps/values.hpp"
#include "io/contained.hpp"
#include "io/nir.hpp"
#include "sim/errors.hpp"

namespace quantal::cli {

void add_load_timeout_option(CLI::App& command, std::optional<double>& seconds) {
    command
        .add_option("--load-timeout", seconds,
                    "Seconds allowed for reading the HDF5 input (default: 10 + 1 per 10 MB of the file); "
                    "a read that takes longer is refused as a damaged file")
        ->transform(real_number(0.0, 1e6, true));
}

LoadedModel load_model(const std::string& path, std::optional<double> load_timeout, double dt_ms) {
    const double seconds = load_timeout.value_or(default_read_seconds(path));
    const bool nir = path.size() >= 4 && path.compare(path.size() - 4, 4, ".nir") == 0;
    try { // parsed in a child process first: libhdf5 may crash or hang on a damaged file (io/contained.hpp)
        return read_contained(path, seconds, [&] { return nir ? read_nir(path, NirOptions{dt_ms}) : read_model_file(path); });
    } catch (const std::bad_alloc&) {
        throw InputError(path + ": is too large to load (or corrupt)");
    }
}

} // namespace quantal::cli
