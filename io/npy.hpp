#pragma once
// NumPy .npy arrays (format versions 1-3: magic "\x93NUMPY", a Python-literal header with
// 'descr', 'fortran_order' and 'shape', then the data in C order). Only what quantal's inputs
// need: little-endian uint8, float32 and float64 samples, and integer labels. Errors throw
// InputError naming the file.
#include <cstdint>
#include <string>
#include <vector>

namespace quantal {

// Samples [offset, offset + limit) (limit 0: to the end) of an array of shape (N, ...): each
// sample's values in C order, as doubles (uint8 bytes become 0..255, floats their value).
struct NpySamples {
    std::uint64_t count = 0;          // samples read
    std::vector<std::uint64_t> shape; // one sample's shape (the file's shape without N)
    std::string dtype;                // "uint8", "float32" or "float64"
    std::vector<double> values;       // count x sample_size()
    std::size_t sample_size() const;
};

// `min_ndim`..`max_ndim`: the dimensions allowed, N included (images: 3 or 4, as IDX).
NpySamples read_npy_samples(const std::string& path, std::uint64_t offset, std::uint64_t limit, int min_ndim,
                            int max_ndim);
// A 1-d array of non-negative integers (any little-endian integer dtype), same range rules.
std::vector<std::uint64_t> read_npy_labels(const std::string& path, std::uint64_t offset, std::uint64_t limit);

} // namespace quantal
