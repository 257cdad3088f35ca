#pragma once
// Contained reading of untrusted HDF5 files (models, NIR graphs, traces for inspect).
//
// libhdf5 1.10 can crash or loop forever on a damaged file (a zeroed byte of a global heap is
// enough), and nothing inside the process can stop either. So the file is parsed in a forked
// child process with a time limit: the child runs `work` and reports through a pipe either its
// result (a string) or the exception it ended with; the parent waits at most the limit.
//
// What the parent makes of it (docs/reliability.md):
//   - the child's exception comes back as the same kind: InputError, ModelError, std::bad_alloc,
//     any other as std::runtime_error (an internal error, exit code 4);
//   - a crash (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) or an overrun of the limit is located by
//     the child's own signal handler, from the stack at that moment: inside libhdf5 (or the C
//     library functions it called) it is a damaged file: InputError "<file>: libhdf5 crashed
//     reading it (...)" or "<file>: reading it did not finish within N s (...)";
//   - a crash anywhere else is quantal's bug and is never reported as a damaged file:
//     ContainedBug (exit code 4), naming the signal and the function.
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

#include "sim/errors.hpp"

namespace quantal {

// The file crashed libhdf5 or kept it from finishing within the limit: damaged. An InputError (exit
// code 2) that callers tolerating other input problems (e.g. a missing model) must not swallow.
struct DamagedFile : InputError {
    using InputError::InputError;
};

// A crash of quantal's own code while it read a file (or a child that vanished without a word).
struct ContainedBug : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The documented default limit for reading one file: 10 s plus 1 s per 10 MB of it (a 100 MB
// model gets 20 s; reading runs at well over 10 MB/s on one core). Throws InputError naming the
// file if it cannot be examined.
double default_read_seconds(const std::string& path);

// Runs `work` in a child process that must finish within `seconds` (> 0); returns its string.
// `path` names the file in messages. The child writes nothing to stdout or stderr.
std::string run_contained(const std::string& path, double seconds, const std::function<std::string()>& work);

// Parses `path` twice: first in a contained child (which may crash or hang), then, once that
// succeeded, in this process, and returns the second result. Parsing again costs one more read of
// the file, but needs no serialised form of what was read (a Network has none) and the second
// parse runs on bytes libhdf5 has just read safely; a file replaced in between is refused
// (device, inode, size and modification time are compared before and after).
template <class Read>
auto read_contained(const std::string& path, double seconds, Read read) -> decltype(read());

// ---- implementation of the template ---------------------------------------------------------

struct FileIdentity {
    std::uint64_t device = 0, inode = 0, size = 0;
    std::int64_t mtime_ns = 0;
    bool operator==(const FileIdentity&) const = default;
};
// The identity of an existing file; a missing file gives a zero identity (the read then fails).
FileIdentity file_identity(const std::string& path);
[[noreturn]] void file_changed(const std::string& path);

template <class Read>
auto read_contained(const std::string& path, double seconds, Read read) -> decltype(read()) {
    const FileIdentity before = file_identity(path);
    run_contained(path, seconds, [&] {
        (void)read();
        return std::string();
    });
    auto result = read();
    if (!(file_identity(path) == before)) file_changed(path);
    return result;
}

} // namespace quantal
