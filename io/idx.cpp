#include "io/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "sim/errors.hpp"

namespace quantal {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw InputError(path + ": " + what); }

struct GzCloser {
    void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

class IdxStream {
public:
    explicit IdxStream(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
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

void check_magic(IdxStream& in, const std::string& path, std::uint32_t expected, const char* kind) {
    const auto magic = in.big_endian_u32("the header");
    if (magic != expected) {
        char text[96];
        std::snprintf(text, sizeof text, "magic number 0x%08x is not IDX %s (0x%08x)", magic, kind, expected);
        fail(path, text);
    }
}

std::uint64_t range_count(const std::string& path, std::uint64_t total, std::uint64_t offset, std::uint64_t limit,
                          const char* what) {
    if (offset > total || (offset == total && total > 0))
        fail(path, "offset " + std::to_string(offset) + " is past the last of its " + std::to_string(total) + " " + what);
    const auto available = total - offset;
    return limit == 0 ? available : std::min(limit, available);
}

} // namespace

IdxImages read_idx_images(const std::string& path, std::uint64_t offset, std::uint64_t limit) {
    IdxStream in(path);
    const auto magic = in.big_endian_u32("the header");
    if (magic != 0x00000803 && magic != 0x00000804) {
        char text[112];
        std::snprintf(text, sizeof text, "magic number 0x%08x is not IDX images (0x00000803, or 0x00000804 with channels)",
                      magic);
        fail(path, text);
    }
    IdxImages out;
    const auto total = in.big_endian_u32("the header");
    if (magic == 0x00000804) {
        out.channels = in.big_endian_u32("the header");
        if (out.channels == 0 || out.channels > 64)
            fail(path, std::to_string(out.channels) + " channels per image is not plausible");
    }
    out.rows = in.big_endian_u32("the header");
    out.cols = in.big_endian_u32("the header");
    if (out.rows == 0 || out.cols == 0 || out.rows > 65536 || out.cols > 65536)
        fail(path, "image size " + std::to_string(out.rows) + " x " + std::to_string(out.cols) + " is not plausible");
    out.count = std::uint32_t(range_count(path, total, offset, limit, "images"));
    const std::uint64_t image_bytes = std::uint64_t(out.rows) * out.cols * out.channels;
    in.skip(offset * image_bytes, "image " + std::to_string(offset));
    in.read_into(out.pixels, out.count * image_bytes,
                 "the pixel data (images " + std::to_string(offset) + ".." + std::to_string(offset + out.count) + ")");
    return out;
}

std::vector<std::uint8_t> read_idx_labels(const std::string& path, std::uint64_t offset, std::uint64_t limit) {
    IdxStream in(path);
    check_magic(in, path, 0x00000801, "labels");
    const auto total = in.big_endian_u32("the header");
    const auto count = range_count(path, total, offset, limit, "labels");
    in.skip(offset, "label " + std::to_string(offset));
    std::vector<std::uint8_t> labels;
    in.read_into(labels, count, "the label data");
    return labels;
}

} // namespace quantal
