#pragma once
// The spike rule shared by every spiking model: compare, then reset.
#include <bit>
#include <cstdint>

#include "neurons/per_neuron.hpp"

namespace quantal {

enum class Comparison { greater_equal, greater }; // SpikingJelly/QCFS use >=, NIR uses >
enum class ResetMode { subtract, to_value };      // soft reset keeps the residue (conversion default)

// One neuron's rule, as the hot loops apply it.
struct SpikeRule {
    double threshold = 1.0;
    Comparison comparison = Comparison::greater_equal;
    ResetMode reset = ResetMode::subtract;
    double v_reset = 0.0; // used by ResetMode::to_value

    bool crossed(double v) const {
        return comparison == Comparison::greater_equal ? v >= threshold : v > threshold;
    }
    double after_spike(double v) const {
        return reset == ResetMode::subtract ? v - threshold : v_reset;
    }
    // after_spike(v) if spike, else v, as selects rather than branches on spike (unpredictable in
    // hot loops; sim/sweep_kernel.cpp computes the same): v - 0 is exactly v.
    double after_spike_if(bool spike, double v) const {
        if (reset == ResetMode::subtract) return v - (spike ? threshold : 0.0);
        const std::uint64_t keep = std::uint64_t(spike) - 1; // all ones without a spike
        return std::bit_cast<double>((std::bit_cast<std::uint64_t>(v) & keep) |
                                     (std::bit_cast<std::uint64_t>(v_reset) & ~keep));
    }
};

// A population's rule: the comparison and reset mode are the population's; the threshold and
// the reset value are one for all or one per neuron.
struct ThresholdRule {
    PerNeuron threshold = 1.0;
    Comparison comparison = Comparison::greater_equal;
    ResetMode reset = ResetMode::subtract;
    PerNeuron v_reset = 0.0; // used by ResetMode::to_value

    SpikeRule at(std::size_t j) const { return {threshold[j], comparison, reset, v_reset[j]}; }
    bool uniform() const { return threshold.uniform() && v_reset.uniform(); }
};

} // namespace quantal
