#pragma once
// A convolution's contributions of one tick, summed per target before they reach the targets'
// input. Targets are laid out (C, H, W), so one spike's fan-out to the output channels of a tap
// is strided by H x W in the target; summed here channel-last, it is one contiguous row per tap
// (the inner loop of a matrix product), and each touched target is written once per tick. The
// sum per target runs over the tick's spikes in delivery order, then joins the target's input.
#include <cstdint>
#include <vector>

#include "synapses/fanout.hpp"

namespace quantal {

// row[i] += double(w[i]) * value for i < n: one multiply and one add per element, compiled for
// several instruction sets and chosen at load time; every variant rounds identically.
void accumulate_row(double* row, const float* w, double value, std::int64_t n);

class ConvAccumulator {
public:
    ConvAccumulator() = default;
    explicit ConvAccumulator(const ConvFanout& f)
        : plane_(f.h_out * f.w_out), c_out_(f.c_out), cout_g_(f.c_out / f.groups), groups_(f.groups),
          sum_(std::size_t(f.h_out * f.w_out * f.c_out), 0.0), touched_(std::size_t(f.h_out * f.w_out * f.groups), false) {}

    bool empty() const { return slots_.empty(); }

    // Every synapse of src transmits value x weight; returns their number.
    std::uint64_t add(const ConvFanout& f, std::uint32_t src, double value) {
        double* const sum = sum_.data();
        const std::int64_t cout_g = cout_g_, c_out = c_out_;
        std::uint64_t synapses = 0;
        f.for_each_tap(src, [&](std::int64_t position, std::int64_t group, const float* w) {
            synapses += std::uint64_t(cout_g);
            accumulate_row(sum + position * c_out + group * cout_g, w, value, cout_g);
            const std::size_t slot = std::size_t(position * groups_ + group);
            if (!touched_[slot]) touched_[slot] = true, slots_.push_back(std::uint32_t(slot));
        });
        return synapses;
    }

    // to(target, sum) once per target reached since the last flush, then forgets them.
    template <class To> void flush(To&& to) {
        for (std::uint32_t slot : slots_) {
            const std::int64_t position = slot / groups_, group = slot % groups_;
            double* row = sum_.data() + position * c_out_ + group * cout_g_;
            std::int64_t target = group * cout_g_ * plane_ + position;
            for (std::int64_t co = 0; co < cout_g_; ++co, target += plane_) {
                to(std::uint32_t(target), row[co]);
                row[co] = 0.0;
            }
            touched_[slot] = false;
        }
        slots_.clear();
    }

private:
    std::int64_t plane_ = 0, c_out_ = 0, cout_g_ = 0, groups_ = 1;
    std::vector<double> sum_;             // (H_out, W_out, C_out): channel-last
    std::vector<bool> touched_;           // per (position, group)
    std::vector<std::uint32_t> slots_;    // the touched (position, group) pairs, in touch order
};

} // namespace quantal
