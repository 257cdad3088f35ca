// libFuzzer target: damaged HDF5 bytes through the contained readers (io/contained.hpp) — the
// model reader, the NIR reader and the trace reader, each in its own child process with a 10 s
// limit (2 s ended reads that a loaded machine slowed down under ASan). A damaged file must end as InputError, ModelError or std::bad_alloc (a damaged file, or
// one too large); a crash or a time-out in quantal's own code (ContainedBug, or an InputError
// saying "quantal's own code") or an internal error (any other exception) is a finding.
//
// The children run the readers, so libFuzzer's coverage does not see into them. What comes back
// is the feedback instead: each (reader, outcome, message with the file name and numbers taken
// out) bumps one of libFuzzer's extra counters, so an input that reaches a new check of a reader
// is kept. In-process fuzzing of libhdf5 itself would only rediscover its known crashes.
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

// libFuzzer reads counters in this section as features (one per byte).
__attribute__((section("__libfuzzer_extra_counters"))) std::uint8_t outcome_counters[1 << 13];

void count_outcome(int reader, const char* kind, const std::string& message, const std::string& path) {
    std::uint64_t h = 1469598103934665603ull ^ std::uint64_t(reader);
    auto mix = [&](char c) { h = (h ^ std::uint8_t(c)) * 1099511628211ull; };
    for (const char* k = kind; *k; ++k) mix(*k);
    std::string text = message;
    for (std::size_t at; (at = text.find(path)) != std::string::npos;) text.erase(at, path.size());
    for (char c : text) mix(c >= '0' && c <= '9' ? '#' : c);
    std::uint8_t& counter = outcome_counters[h % sizeof outcome_counters];
    if (counter < 255) ++counter;
}

void expect_damaged_file(int reader, const std::string& path, const std::function<std::string()>& read) {
    try {
        (void)quantal::run_contained(path, 10.0, read);
        count_outcome(reader, "ok", "", path);
    } catch (const quantal::InputError& e) {
        if (std::string(e.what()).find("quantal's own code") != std::string::npos) {
            std::fprintf(stderr, "finding: %s\n", e.what());
            std::abort();
        }
        count_outcome(reader, "input", e.what(), path);
    } catch (const quantal::ModelError& e) {
        count_outcome(reader, "model", e.what(), path);
    } catch (const std::bad_alloc&) {
        count_outcome(reader, "memory", "", path);
    } catch (const std::exception& e) { // ContainedBug or an internal error of a reader
        std::fprintf(stderr, "finding: %s\n", e.what());
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // One scratch file per fuzzing process, removed when it exits.
    static const struct Scratch {
        std::string path = "/tmp/quantal_fuzz_contained_" + std::to_string(getpid()) + ".h5";
        ~Scratch() { std::remove(path.c_str()); }
    } scratch;
    const std::string& path = scratch.path;
    if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fwrite(data, 1, size, f);
        std::fclose(f);
    } else {
        return 0;
    }
    expect_damaged_file(0, path, [&] {
        (void)quantal::read_model_file(path);
        return std::string();
    });
    expect_damaged_file(1, path, [&] {
        (void)quantal::read_nir(path);
        return std::string();
    });
    expect_damaged_file(2, path, [&] {
        (void)quantal::read_trace_summary(path);
        return std::string();
    });
    return 0;
}
