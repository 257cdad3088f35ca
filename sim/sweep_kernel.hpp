#pragma once
// The sweep path's hot loop for IF and LIF populations: one clocked step of every neuron,
// v = step(v) + input, threshold, reset, compiled for AVX-512, AVX2 and baseline x86-64. Every
// variant performs the scalar code's IEEE operations in the same order (the build has
// -ffp-contract=off), so the result does not depend on the machine.
#include <cstdint>

#include "neurons/threshold.hpp"
#include "sim/time.hpp"

namespace quantal {

struct VoltageStep {
    bool leaky = false; // LIF: v_leak + alpha (v - v_leak) + drive; IF: v + drive
    double alpha = 1.0, v_leak = 0.0;
    SpikeRule rule;
};

struct SweepArrays {
    double* v;
    double* input;
    const double* drive;
    Tick* last_visit;
    std::int64_t* code; // out per neuron: bit 0 a spike, bit 1 non-zero input

    // The same arrays from neuron `first` on (a part of a population swept by one thread).
    SweepArrays from(std::uint32_t first) const {
        return {v + first, input + first, drive + first, last_visit + first, code + first};
    }
};

struct SweepCounts {
    std::uint64_t visits = 0;  // non-zero input or a spike
    std::uint64_t wakeups = 0; // a spike without input
};

SweepCounts sweep_voltage(const VoltageStep& step, const SweepArrays& a, std::uint32_t n, Tick t);

} // namespace quantal
