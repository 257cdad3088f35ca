#pragma once
// A data file read front to back, gzip-compressed or plain (zlib reads both), for the sample
// readers (io/idx.cpp, io/npy.cpp). Errors throw InputError naming the file.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/errors.hpp"

namespace quantal::detail {

[[noreturn]] inline void fail(const std::string& path, const std::string& what) { throw InputError(path + ": " + what); }

struct GzCloser {
    void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

class ByteStream {
public:
    explicit ByteStream(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
        if (!file_) fail(path, "cannot be opened (no such file?)");
    }
    void read(void* out, std::size_t bytes, const std::string& what) {
        std::size_t done = 0;
        auto* p = static_cast<unsigned char*>(out);
        while (done < bytes) {
            const unsigned chunk = unsigned(std::min<std::size_t>(bytes - done, 1u << 30));
            const int got = gzread(file_.get(), p + done, chunk);
            if (got < 0) fail(path_, "is corrupt (gzip error while reading " + what + ")");
            if (got == 0) fail(path_, "is truncated: it ends inside " + what);
            done += std::size_t(got);
        }
    }
    std::uint32_t big_endian_u32(const std::string& what) {
        unsigned char b[4];
        read(b, 4, what);
        return std::uint32_t(b[0]) << 24 | std::uint32_t(b[1]) << 16 | std::uint32_t(b[2]) << 8 | b[3];
    }
    // Reads `bytes` into `out` in blocks as the data arrives: a header may claim any size, so the
    // memory grows only with what the file really holds (a short file fails as truncated).
    void read_into(std::vector<std::uint8_t>& out, std::uint64_t bytes, const std::string& what) {
        constexpr std::uint64_t block = std::uint64_t(1) << 24;
        out.clear();
        while (out.size() < bytes) {
            const auto at = out.size();
            out.resize(at + std::size_t(std::min<std::uint64_t>(block, bytes - at)));
            read(out.data() + at, out.size() - at, what);
        }
    }
    void skip(std::uint64_t bytes, const std::string& what) {
        std::vector<unsigned char> sink(1 << 16);
        while (bytes) {
            const auto n = std::min<std::uint64_t>(bytes, sink.size());
            read(sink.data(), n, what);
            bytes -= n;
        }
    }

private:
    std::string path_;
    GzFile file_;
};

// How many of `total` items [offset, offset + limit) holds (limit 0: to the end); an offset past
// the last item is an error.
inline std::uint64_t range_count(const std::string& path, std::uint64_t total, std::uint64_t offset, std::uint64_t limit,
                          const char* what) {
    if (offset > total || (offset == total && total > 0))
        fail(path, "offset " + std::to_string(offset) + " is past the last of its " + std::to_string(total) + " " + what);
    const auto available = total - offset;
    return limit == 0 ? available : std::min(limit, available);
}

} // namespace quantal::detail
