#pragma once
// IDX files (MNIST / Fashion-MNIST, FORMATS.md): big-endian magic and counts, then uint8 data;
// gzip-compressed or plain (zlib reads both). Errors throw InputError naming the file.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace quantal {

struct IdxImages {
    std::uint32_t count = 0, channels = 1, rows = 0, cols = 0;
    std::vector<std::uint8_t> pixels; // count x channels x rows x cols, row-major
    std::size_t image_size() const { return std::size_t(channels) * rows * cols; }
    std::span<const std::uint8_t> image(std::size_t i) const { return {pixels.data() + i * image_size(), image_size()}; }
};

// Reads images [offset, offset + limit) (limit 0: to the end); InputError if the file is
// missing, not IDX images (magic 0x00000803: count x rows x cols; 0x00000804: count x channels x
// rows x cols, e.g. RGB), or shorter than its header says.
IdxImages read_idx_images(const std::string& path, std::uint64_t offset = 0, std::uint64_t limit = 0);
// Labels (magic 0x00000801), same range rules.
std::vector<std::uint8_t> read_idx_labels(const std::string& path, std::uint64_t offset = 0, std::uint64_t limit = 0);

} // namespace quantal
