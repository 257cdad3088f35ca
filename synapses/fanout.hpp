#pragma once
// The compiled, source-major form of a projection: for one presynaptic neuron, which targets it
// reaches and with which weights. This is the hot loop (Auryn's propagate): no virtual calls, no
// event objects per synapse; the variant is visited once per spike, outside the synapse loop.
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "synapses/connectivity.hpp"

namespace quantal {

using Shape = std::vector<std::int64_t>;

// Dense: weights stored transposed so that one source's fan-out is one contiguous row.
struct DenseFanout {
    std::uint32_t n_target = 0;
    std::vector<float> row; // (source) x (target)

    std::uint64_t size(std::uint32_t) const { return n_target; }
    const float* weights(std::uint32_t src) const { return row.data() + std::size_t(src) * n_target; }
    template <class Fn> void for_each(std::uint32_t src, Fn&& fn) const {
        const float* w = weights(src);
        for (std::uint32_t j = 0; j < n_target; ++j) fn(j, w[j]);
    }
};

// Sliding windows (convolution and pooling) enumerate their fan-out from per-row and per-column
// tables of (kernel offset, output position) that reach each input row / column.
struct WindowTaps {
    struct Tap { std::int32_t k; std::int32_t out; };
    std::vector<std::uint32_t> begin; // input position -> first tap; size = extent + 1
    std::vector<Tap> taps;
    static WindowTaps build(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
                            std::int64_t padding, std::int64_t dilation);
    std::uint32_t count(std::int64_t pos) const { return begin[pos + 1] - begin[pos]; }
};

struct ConvFanout {
    std::int64_t c_in = 0, h_in = 0, w_in = 0, c_out = 0, h_out = 0, w_out = 0;
    std::int64_t kh = 0, kw = 0, groups = 1;
    WindowTaps rows, cols;
    // Kernel stored (groups, c_in / groups, kh, kw, c_out / groups): for one input channel and tap,
    // the weights to all output channels of its group are contiguous.
    std::vector<float> tap_major;

    std::uint64_t size(std::uint32_t src) const {
        const auto [c, y, x] = position(src);
        (void)c;
        return std::uint64_t(c_out / groups) * rows.count(y) * cols.count(x);
    }
    // fn(output position y * w_out + x, group, weights to the group's c_out / groups channels)
    // for every kernel tap that reaches src: the fan-out as contiguous rows (channel-last).
    template <class Fn> void for_each_tap(std::uint32_t src, Fn&& fn) const {
        const auto [c, y, x] = position(src);
        const std::int64_t cin_g = c_in / groups, cout_g = c_out / groups;
        const auto [g, ci] = group_of(c);
        for (auto r = rows.begin[y]; r < rows.begin[y + 1]; ++r)
            for (auto q = cols.begin[x]; q < cols.begin[x + 1]; ++q) {
                const auto& ty = rows.taps[r];
                const auto& tx = cols.taps[q];
                fn(std::int64_t(ty.out) * w_out + tx.out, g,
                   tap_major.data() + (((g * cin_g + ci) * kh + ty.k) * kw + tx.k) * cout_g);
            }
    }
    template <class Fn> void for_each(std::uint32_t src, Fn&& fn) const {
        const std::int64_t cout_g = c_out / groups, plane = h_out * w_out;
        for_each_tap(src, [&](std::int64_t position, std::int64_t g, const float* w) {
            std::int64_t target = g * cout_g * plane + position;
            for (std::int64_t co = 0; co < cout_g; ++co, target += plane) fn(std::uint32_t(target), w[co]);
        });
    }
    // The same synapses in the same order, as runs: fn(count, at) with at(i) = {target, weight} of
    // the run's i-th synapse. A run is one kernel tap's output channels, so release sampling can
    // skip or mask whole runs by index arithmetic instead of visiting every synapse.
    template <class Fn> void for_each_run(std::uint32_t src, Fn&& fn) const {
        const std::int64_t cout_g = c_out / groups, plane = h_out * w_out;
        for_each_tap(src, [&](std::int64_t position, std::int64_t g, const float* w) {
            const std::int64_t target = g * cout_g * plane + position;
            fn(std::uint64_t(cout_g), [=](std::uint64_t i) {
                return std::pair<std::uint32_t, float>(std::uint32_t(target + std::int64_t(i) * plane), w[i]);
            });
        });
    }

private:
    struct Pos { std::int64_t c, y, x; };
    // Two 32-bit divisions (a neuron id is 32-bit): this runs once per spike.
    Pos position(std::uint32_t src) const {
        const auto plane = std::uint32_t(h_in * w_in), width = std::uint32_t(w_in);
        const std::uint32_t c = src / plane, pos = src - c * plane, y = pos / width;
        return {c, y, pos - y * width};
    }
    // Group and channel within the group of input channel c.
    std::pair<std::int64_t, std::int64_t> group_of(std::int64_t c) const {
        if (groups == 1) return {0, c};
        const std::int64_t cin_g = c_in / groups;
        return {c / cin_g, c % cin_g};
    }
};

struct PoolFanout {
    std::int64_t h_in = 0, w_in = 0, h_out = 0, w_out = 0;
    float weight = 1.0f;
    WindowTaps rows, cols;

    std::uint64_t size(std::uint32_t src) const {
        return std::uint64_t(rows.count((src / w_in) % h_in)) * cols.count(src % w_in);
    }
    template <class Fn> void for_each(std::uint32_t src, Fn&& fn) const {
        const std::int64_t c = src / (h_in * w_in), y = (src / w_in) % h_in, x = src % w_in;
        for (auto r = rows.begin[y]; r < rows.begin[y + 1]; ++r)
            for (auto q = cols.begin[x]; q < cols.begin[x + 1]; ++q)
                fn(std::uint32_t((c * h_out + rows.taps[r].out) * w_out + cols.taps[q].out), weight);
    }
    // As for_each, in runs of one window row (see ConvFanout::for_each_run).
    template <class Fn> void for_each_run(std::uint32_t src, Fn&& fn) const {
        const std::int64_t c = src / (h_in * w_in), y = (src / w_in) % h_in, x = src % w_in;
        const auto* col = cols.taps.data() + cols.begin[x];
        const std::uint64_t n_cols = cols.count(x);
        for (auto r = rows.begin[y]; r < rows.begin[y + 1]; ++r) {
            const std::int64_t row = (c * h_out + rows.taps[r].out) * w_out;
            fn(n_cols, [=, this](std::uint64_t i) {
                return std::pair<std::uint32_t, float>(std::uint32_t(row + col[i].out), weight);
            });
        }
    }
};

struct OneToOneFanout {
    std::vector<float> weight; // one per neuron, or one for all
    std::uint64_t size(std::uint32_t) const { return 1; }
    template <class Fn> void for_each(std::uint32_t src, Fn&& fn) const {
        fn(src, weight.size() == 1 ? weight[0] : weight[src]);
    }
};

// Sparse: each row is sorted by delay and split into groups of equal delay, so a spike schedules
// one event per distinct delay instead of one per synapse.
struct SparseFanout {
    struct Group { std::uint32_t delay; std::uint64_t begin, end; };
    std::vector<std::uint64_t> group_begin; // source -> first group; size = sources + 1
    std::vector<Group> groups;
    std::vector<std::uint32_t> target;
    std::vector<float> weight;      // one per synapse, or one for all
    std::vector<float> probability; // empty: all synapses release with probability 1
    float weight_of(std::uint64_t k) const { return weight.size() == 1 ? weight[0] : weight[k]; }

    std::uint64_t size(std::uint32_t src) const {
        return groups.empty() || group_begin[src] == group_begin[src + 1]
                   ? 0
                   : groups[group_begin[src + 1] - 1].end - groups[group_begin[src]].begin;
    }
};

using Fanout = std::variant<DenseFanout, ConvFanout, PoolFanout, OneToOneFanout, SparseFanout>;

// Validates a projection's parameters against its populations' shapes and compiles its fan-out.
// Throws ModelError naming `where` (the projection) and the offending value.
Fanout compile_fanout(const Connectivity& c, const Shape& source, const Shape& target, std::uint32_t delay,
                      const std::string& where);

// The projection's smallest delay (sparse synapses may have their own).
std::uint32_t min_delay(const Fanout& f, std::uint32_t projection_delay);

// Synapse count (for the ledger's weights-per-inference and spikes-per-synapse reports).
std::uint64_t synapse_count(const Fanout& f, std::uint64_t n_source);

// A network holds each weight once, compiled. These two give the user's form back when it is
// needed (writing a model file, an oracle): geometry_of keeps what the fan-out does not (kind,
// stride, padding, ...) without the per-synapse arrays; user_form restores those arrays from the
// fan-out. Sparse synapses come back grouped by delay within each source, as the engine holds
// them: the same network, synapse for synapse.
Connectivity geometry_of(const Connectivity& c);
Connectivity user_form(const Fanout& f, const Connectivity& geometry, std::uint32_t delay);

} // namespace quantal
