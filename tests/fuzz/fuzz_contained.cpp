// libFuzzer target: damaged HDF5 bytes through the contained readers (io/contained.hpp) — the
// model reader, the NIR reader and the trace reader, each in its own child process with a 2 s
// limit. A damaged file must end as InputError, ModelError or std::bad_alloc (a damaged file, or
// one too large); a crash or a time-out in quantal's own code (ContainedBug, or an InputError
// saying "quantal's own code") or an internal error (any other exception) is a finding.
//
// The children run the readers, so libFuzzer's coverage feedback does not see into them: this
// target mutates blindly around its seeds (tests/fuzz/corpus/contained). In-process fuzzing of
// libhdf5 itself would only rediscover its known crashes.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "io/contained.hpp"
#include "io/model_file.hpp"
#include "io/nir.hpp"
#include "io/spike_trace.hpp"
#include "sim/errors.hpp"

namespace {

void expect_damaged_file(const std::string& path, const std::function<std::string()>& read) {
    try {
        (void)quantal::run_contained(path, 2.0, read);
    } catch (const quantal::InputError& e) {
        if (std::string(e.what()).find("quantal's own code") != std::string::npos) {
            std::fprintf(stderr, "finding: %s\n", e.what());
            std::abort();
        }
    } catch (const quantal::ModelError&) {
    } catch (const std::bad_alloc&) {
    } catch (const std::exception& e) { // ContainedBug or an internal error of a reader
        std::fprintf(stderr, "finding: %s\n", e.what());
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = "/tmp/quantal_fuzz_contained_" + std::to_string(getpid()) + ".h5";
    if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fwrite(data, 1, size, f);
        std::fclose(f);
    } else {
        return 0;
    }
    expect_damaged_file(path, [] {
        (void)quantal::read_model_file(path);
        return std::string();
    });
    expect_damaged_file(path, [] {
        (void)quantal::read_nir(path);
        return std::string();
    });
    expect_damaged_file(path, [] {
        (void)quantal::read_trace_summary(path);
        return std::string();
    });
    return 0;
}
