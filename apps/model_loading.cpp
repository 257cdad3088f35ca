// Reading a model for a command: --load-timeout, and the contained read of io/contained.hpp.
#include <cstdio>
#include <iostream>
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

LoadedModel load_model(const std::string& path, std::optional<double> load_timeout, std::optional<double> dt_ms) {
    const double seconds = load_timeout.value_or(default_read_seconds(path));
    const bool nir = path.size() >= 4 && path.compare(path.size() - 4, 4, ".nir") == 0;
    try { // parsed in a child process first: libhdf5 may crash or hang on a damaged file (io/contained.hpp)
        auto model = read_contained(path, seconds, [&] { return nir ? read_nir(path, NirOptions{dt_ms.value_or(default_dt_ms)}) : read_model_file(path, dt_ms);
        });
        if (const auto rounded = model.rounded_to_float.text(); !rounded.empty())
            std::cerr << "quantal: warning: " << rounded << '\n'; // names the file: `first` starts with the path
        return model;
    } catch (const std::bad_alloc&) {
        throw InputError(path + ": is too large to load (or corrupt)");
    }
}

namespace {
std::string ms_text(double v) {
    char text[40];
    std::snprintf(text, sizeof text, "%.17g", v);
    return text;
}
} // namespace

ResolvedDt resolve_dt(const LoadedModel& model, std::optional<double> option, const std::string& path) {
    const bool nir = !model.file_dt_ms && path.size() >= 4 && path.compare(path.size() - 4, 4, ".nir") == 0;
    ResolvedDt r;
    if (nir) { // read with the option already: it is the discretisation
        r.source = option ? "--dt (the NIR graph's discretisation)" : "default " + ms_text(default_dt_ms) + " ms (the NIR graph's discretisation)";
    } else if (option) {
        r.source = "--dt";
        if (model.file_dt_ms && *model.file_dt_ms != *option) {
            r.source = "--dt, over the model file's " + ms_text(*model.file_dt_ms) + " ms";
            r.warning = path + ": the model file's dt is " + ms_text(*model.file_dt_ms) + " ms per tick; --dt " +
                        ms_text(*option) + " overrides it (times, rates in Hz and Poisson probabilities use " +
                        ms_text(*option) + " ms)";
        }
    } else if (model.file_dt_ms) {
        r.source = "the model file";
    } else {
        r.source = "default " + ms_text(default_dt_ms) + " ms (the model file gives no dt)";
    }
    r.ms = model.network.dt_ms();
    return r;
}

} // namespace quantal::cli
