#include "io/idx.hpp"

#include <cstdio>
#include <vector>

#include "io/byte_stream.hpp"

namespace quantal {

using detail::ByteStream;
using detail::fail;
using detail::range_count;

namespace {

void check_magic(ByteStream& in, const std::string& path, std::uint32_t expected, const char* kind) {
    const auto magic = in.big_endian_u32("the header");
    if (magic != expected) {
        char text[96];
        std::snprintf(text, sizeof text, "magic number 0x%08x is not IDX %s (0x%08x)", magic, kind, expected);
        fail(path, text);
    }
}

} // namespace

IdxImages read_idx_images(const std::string& path, std::uint64_t offset, std::uint64_t limit) {
    ByteStream in(path);
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
    ByteStream in(path);
    check_magic(in, path, 0x00000801, "labels");
    const auto total = in.big_endian_u32("the header");
    const auto count = range_count(path, total, offset, limit, "labels");
    in.skip(offset, "label " + std::to_string(offset));
    std::vector<std::uint8_t> labels;
    in.read_into(labels, count, "the label data");
    return labels;
}

} // namespace quantal
