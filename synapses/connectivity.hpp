#pragma once
// Projection kinds as the user describes them. Implicit kinds (dense, conv2d, pool2d,
// one_to_one) store no per-synapse data beyond their weights; sparse is an explicit CSR.
// Shapes are those of the source and target populations ((C, H, W) for images).
#include <array>
#include <cstdint>
#include <variant>
#include <vector>

namespace quantal {

struct Dense {
    std::vector<float> weight; // (target size) x (source size), row-major: PyTorch/NIR layout
};

struct Conv2d {
    std::vector<float> weight;             // (C_out, C_in / groups, kh, kw), row-major
    std::array<std::int64_t, 2> kernel{};  // kh, kw
    std::array<std::int64_t, 2> stride{1, 1};
    std::array<std::int64_t, 2> padding{0, 0};
    std::array<std::int64_t, 2> dilation{1, 1};
    std::int64_t groups = 1;
};

enum class PoolKind { sum, average };

struct Pool2d {
    PoolKind kind = PoolKind::sum;         // average = sum scaled by 1 / (kh kw), padding included
    std::array<std::int64_t, 2> kernel{};
    std::array<std::int64_t, 2> stride{};  // zero means "same as kernel"
    std::array<std::int64_t, 2> padding{0, 0};
};

struct OneToOne {
    std::vector<float> weight; // one per neuron, or a single value for all (identity: {1})
};

struct Sparse {
    std::vector<std::uint64_t> row_begin; // source size + 1 offsets into the arrays below
    std::vector<std::uint32_t> target;
    std::vector<float> weight;
    std::vector<std::uint32_t> delay;     // per synapse in ticks; empty: the projection's delay
    std::vector<float> probability;       // per-synapse release probability; empty: all 1
};

using Connectivity = std::variant<Dense, Conv2d, Pool2d, OneToOne, Sparse>;

const char* kind_name(const Connectivity& c);

} // namespace quantal
