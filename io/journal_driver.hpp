#pragma once
// An HDF5 file driver for the spike trace: POSIX pread/pwrite like libhdf5's sec2 driver, plus an
// undo journal, so that a failed write (a full disk, an I/O error) leaves the file exactly as it
// was at the last commit() — the end of the last completed sample — instead of a mix of old and
// new metadata (issue 10: "cannot flush /", then a segfault in libhdf5's close, and zeros in the
// spikes of a completed sample).
//
// How: before a write changes bytes below the committed end of file, the driver saves the 4 KB
// pages it touches (once per commit interval). After the first failed write it records errno and
// drops every further write (so libhdf5's close finishes without error paths); when the file is
// closed it writes the saved pages back and truncates the file to its committed length. Writing
// back needs no new disk space (the pages were there), so this works on a full disk. Memory: the
// pages rewritten between two commits (metadata and the partly filled chunks, typically a few
// hundred KB per sample).
#include <hdf5.h>

#include <cstdint>
#include <map>
#include <vector>

#include "io/hdf5_access.hpp"

namespace quantal::h5 {

class Journal {
public:
    Journal() = default;
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;

    // The file as it is now (after a successful H5Fflush) is the state to keep.
    void commit();
    // errno of the first failed open or write; 0 while all went well.
    int error() const { return error_; }
    bool failed() const { return failed_; }
    std::uint64_t committed_bytes() const { return committed_eof_; }

    // A file access property list that opens files through this journal (one file at a time).
    Handle access_plist();

private:
    friend struct JournalDriver;
    bool save(std::uint64_t from, std::uint64_t to); // pages of [from, to) below the committed end
    void fail(int error);
    void restore();

    static constexpr std::uint64_t page = 4096;
    int fd_ = -1;
    bool failed_ = false;
    int error_ = 0;
    std::uint64_t committed_eof_ = 0;
    std::map<std::uint64_t, std::vector<char>> saved_; // page index -> its committed bytes
};

} // namespace quantal::h5
