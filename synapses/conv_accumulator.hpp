#pragma once
// A convolution's contributions of one tick, summed per target before they reach the targets'
// input. Targets are laid out (C, H, W), so one spike's fan-out to the output channels of a tap
// is strided by H x W in the target; summed here channel-last, it is one contiguous row per tap
// (the inner loop of a matrix product), and each touched target is written once per tick. The
// sum per target runs over the tick's spikes in delivery order, then joins the target's input.
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "synapses/fanout.hpp"

namespace quantal {

// row[i] += double(w[i]) * value for i < n: one multiply and one add per element, compiled for
// several instruction sets and chosen at load time; every variant rounds identically.
void accumulate_row(double* row, const float* w, double value, std::int64_t n);

// Threads within a sample split the targets by output position: part k owns the positions
// [k P / parts, (k + 1) P / parts) of the P = H_out x W_out, with all their channels. A part sums
// the tick's spikes in the same order as the whole does, so each target's sum is bit for bit the
// same whatever the number of parts, and parts never write the same target.
class ConvAccumulator {
public:
    ConvAccumulator() = default;
    explicit ConvAccumulator(const ConvFanout& f)
        : plane_(f.h_out * f.w_out), c_out_(f.c_out), cout_g_(f.c_out / f.groups), groups_(f.groups),
          sum_(std::size_t(f.h_out * f.w_out * f.c_out), 0.0), touched_(std::size_t(f.h_out * f.w_out * f.groups), 0),
          slots_(1) {}

    bool empty() const {
        for (const auto& s : slots_)
            if (!s.empty()) return false;
        return true;
    }

    // Splits the targets into min(parts, positions) parts (dropping any sums held).
    void set_parts(int parts) {
        const auto n = std::size_t(std::max<std::int64_t>(1, std::min<std::int64_t>(parts, plane_)));
        flush([](std::uint32_t, double) {});
        if (n == slots_.size()) return;
        slots_.assign(n, {});
        part_begin_.resize(n + 1);
        part_of_.assign(std::size_t(plane_), 0);
        for (std::size_t k = 0; k <= n; ++k) part_begin_[k] = std::int64_t(std::uint64_t(plane_) * k / n);
        for (std::size_t k = 0; k < n; ++k)
            std::fill(part_of_.begin() + part_begin_[k], part_of_.begin() + part_begin_[k + 1], std::uint16_t(k));
    }
    int parts() const { return int(slots_.size()); }
    std::int64_t positions() const { return plane_; } // output positions (H_out x W_out)
    // Synapse sums held for the next flush (the flush's work).
    std::uint64_t held() const {
        std::uint64_t slots = 0;
        for (const auto& s : slots_) slots += s.size();
        return slots * std::uint64_t(cout_g_);
    }

    // Every synapse of src transmits value x weight; returns their number.
    std::uint64_t add(const ConvFanout& f, std::uint32_t src, double value) {
        std::uint64_t synapses = 0;
        f.for_each_tap(src, [&](std::int64_t position, std::int64_t group, const float* w) {
            synapses += add_tap(position, group, w, value, slots_.size() == 1 ? 0 : part_of_[std::size_t(position)]);
        });
        return synapses;
    }

    // add() of every spike in `sources`, in order, restricted to the targets of part k.
    std::uint64_t add_part(const ConvFanout& f, std::span<const std::uint32_t> sources, double value, int k) {
        const std::int64_t first = part_begin_.empty() ? 0 : part_begin_[std::size_t(k)];
        const std::int64_t last = part_begin_.empty() ? plane_ : part_begin_[std::size_t(k) + 1];
        std::uint64_t synapses = 0;
        for (std::uint32_t src : sources)
            f.for_each_tap(src, [&](std::int64_t position, std::int64_t group, const float* w) {
                if (position >= first && position < last) synapses += add_tap(position, group, w, value, std::size_t(k));
            });
        return synapses;
    }

    // to(target, sum) once per target reached since the last flush, then forgets them.
    template <class To> void flush(To&& to) {
        for (int k = 0; k < parts(); ++k) flush_part(k, to);
    }
    // The same for the targets of part k alone.
    template <class To> void flush_part(int k, To&& to) {
        auto& slots = slots_[std::size_t(k)];
        for (std::uint32_t slot : slots) {
            const std::int64_t position = slot / groups_, group = slot % groups_;
            double* row = sum_.data() + position * c_out_ + group * cout_g_;
            std::int64_t target = group * cout_g_ * plane_ + position;
            for (std::int64_t co = 0; co < cout_g_; ++co, target += plane_) {
                to(std::uint32_t(target), row[co]);
                row[co] = 0.0;
            }
            touched_[slot] = 0;
        }
        slots.clear();
    }

private:
    std::uint64_t add_tap(std::int64_t position, std::int64_t group, const float* w, double value, std::size_t part) {
        accumulate_row(sum_.data() + position * c_out_ + group * cout_g_, w, value, cout_g_);
        const std::size_t slot = std::size_t(position * groups_ + group);
        if (!touched_[slot]) touched_[slot] = 1, slots_[part].push_back(std::uint32_t(slot));
        return std::uint64_t(cout_g_);
    }

    std::int64_t plane_ = 0, c_out_ = 0, cout_g_ = 0, groups_ = 1;
    std::vector<double> sum_;                       // (H_out, W_out, C_out): channel-last
    std::vector<std::uint8_t> touched_;             // per (position, group); bytes: parts write their own
    std::vector<std::vector<std::uint32_t>> slots_; // per part: its touched (position, group) pairs, in touch order
    std::vector<std::int64_t> part_begin_;          // parts + 1 position boundaries (set_parts)
    std::vector<std::uint16_t> part_of_;            // per position: its part
};

} // namespace quantal
