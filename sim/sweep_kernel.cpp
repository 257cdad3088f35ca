#include "sim/sweep_kernel.hpp"

namespace quantal {

namespace {
// One loop per model form, comparison and reset, so each is a straight loop the vectorizer
// if-converts; each computes exactly what IfDynamics/LifDynamics::step, SpikeRule::crossed and
// SpikeRule::after_spike_if compute.
template <bool leaky, bool greater_equal, bool subtract>
[[gnu::always_inline]] inline void step_all(const VoltageStep& step, const SweepArrays& a, std::uint32_t n, Tick t) {
    const double alpha = step.alpha, v_leak = step.v_leak, theta = step.rule.threshold, v_reset = step.rule.v_reset;
    double* const v = a.v;
    double* const input = a.input;
    const double* const drive = a.drive;
    Tick* const last_visit = a.last_visit;
    std::int64_t* const code = a.code;
    for (std::uint32_t j = 0; j < n; ++j) {
        const double x = v[j], in = input[j];
        const Tick visited_at = last_visit[j];
        double y;
        if constexpr (leaky) y = (v_leak + alpha * (x - v_leak) + drive[j]) + in;
        else y = (x + drive[j]) + in;
        // 64-bit flags, computed before y changes: in this shape GCC if-converts and vectorizes it.
        const std::int64_t spike = greater_equal ? y >= theta : y > theta;
        const std::int64_t has_input = in != 0.0;
        if constexpr (subtract) y = y - (spike ? theta : 0.0);
        else y = spike ? v_reset : y;
        const std::int64_t c = spike | (has_input << 1);
        last_visit[j] = c ? t : visited_at; // a store every time: no control flow
        v[j] = y;
        input[j] = 0.0;
        code[j] = c;
    }
}
} // namespace

__attribute__((target_clones("avx512f", "avx2", "default")))
SweepCounts sweep_voltage(const VoltageStep& step, const SweepArrays& a, std::uint32_t n, Tick t) {
    const bool ge = step.rule.comparison == Comparison::greater_equal, sub = step.rule.reset == ResetMode::subtract;
    if (step.leaky) {
        if (ge) sub ? step_all<true, true, true>(step, a, n, t) : step_all<true, true, false>(step, a, n, t);
        else sub ? step_all<true, false, true>(step, a, n, t) : step_all<true, false, false>(step, a, n, t);
    } else {
        if (ge) sub ? step_all<false, true, true>(step, a, n, t) : step_all<false, true, false>(step, a, n, t);
        else sub ? step_all<false, false, true>(step, a, n, t) : step_all<false, false, false>(step, a, n, t);
    }
    SweepCounts c;
    for (std::uint32_t j = 0; j < n; ++j) {
        c.visits += a.code[j] != 0;
        c.wakeups += a.code[j] == 1;
    }
    return c;
}

} // namespace quantal
