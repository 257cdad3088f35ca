#pragma once
// Membrane arithmetic used by the engine's lazy update. A neuron is brought from the tick it was
// last updated to tick t by v = drift(v, drive, t - last) + input[t]; the same drift() predicts
// its next threshold crossing, so a predicted wake-up always finds the neuron over threshold.
#include <algorithm>
#include <cmath>

#include "neurons/models.hpp"
#include "sim/time.hpp"

namespace quantal {

namespace detail {
// Smallest k >= 2 near the estimate with crossed(drift(k)), for drifts that rise monotonically.
template <class Drift>
Tick refine_crossing(const ThresholdRule& rule, Drift drift, double estimate) {
    if (!(estimate < 1e15)) return never;
    Tick k = std::max<Tick>(2, static_cast<Tick>(estimate));
    while (k > 2 && rule.crossed(drift(k - 1))) --k;
    for (int guard = 0; !rule.crossed(drift(k)); ++guard, ++k)
        if (guard == 64) return never; // not rising after all (rounding at a fixed point)
    return k;
}
} // namespace detail

class IfDynamics {
public:
    explicit IfDynamics(const IfNeuron& p) : rule_(p.rule) {}
    const ThresholdRule& rule() const { return rule_; }
    static double drift(double v, double drive, Tick k) { return v + static_cast<double>(k) * drive; }

    // Ticks until the drift alone crosses threshold (never if it does not).
    Tick ticks_to_crossing(double v, double drive) const {
        if (rule_.crossed(drift(v, drive, 1))) return 1;
        if (!(drive > 0)) return never;
        return detail::refine_crossing(
            rule_, [&](Tick k) { return drift(v, drive, k); }, std::ceil((rule_.threshold - v) / drive));
    }

private:
    ThresholdRule rule_;
};

class LifDynamics {
public:
    explicit LifDynamics(const LifNeuron& p)
        : rule_(p.rule), v_leak_(p.v_leak), alpha_(std::exp(-1.0 / p.tau_ticks)) {}
    const ThresholdRule& rule() const { return rule_; }

    double drift(double v, double drive, Tick k) const {
        if (k == 0) return v;
        if (k == 1) return v_leak_ + alpha_ * (v - v_leak_) + drive; // the per-tick form, bit for bit
        const double v_inf = fixed_point(drive);                    // exact decay over k ticks
        return v_inf + (v - v_inf) * std::pow(alpha_, static_cast<double>(k));
    }

    Tick ticks_to_crossing(double v, double drive) const {
        if (rule_.crossed(drift(v, drive, 1))) return 1;
        const double v_inf = fixed_point(drive);
        if (!(v_inf > rule_.threshold) || v >= v_inf) return never; // decays away or stays below
        const double estimate = std::ceil(std::log((v_inf - rule_.threshold) / (v_inf - v)) / std::log(alpha_));
        return detail::refine_crossing(rule_, [&](Tick k) { return drift(v, drive, k); }, estimate);
    }

private:
    double fixed_point(double drive) const { return v_leak_ + drive / (1.0 - alpha_); }
    ThresholdRule rule_;
    double v_leak_;
    double alpha_;
};

// Current-based LIF, stepped exactly as its per-tick form: k ticks of drift cost k steps, and a
// crossing is searched step by step (the neuron is re-examined after at most `lookahead` ticks).
class CubaLifDynamics {
public:
    static constexpr Tick lookahead = 256;
    explicit CubaLifDynamics(const CubaLifNeuron& p)
        : rule_(p.rule), v_leak_(p.v_leak), alpha_syn_(std::exp(-1.0 / p.tau_syn_ticks)),
          alpha_(std::exp(-1.0 / p.tau_ticks)) {}
    const ThresholdRule& rule() const { return rule_; }

    // One tick with synaptic input x.
    void step(double& i, double& v, double drive, double x) const {
        i = alpha_syn_ * i + drive + x;
        v = v_leak_ + alpha_ * (v - v_leak_) + i;
    }
    // k - 1 ticks of drift, then the tick with input x (the engine's lazy update to tick t).
    void advance(double& i, double& v, double drive, double x, Tick k) const {
        for (Tick n = 1; n < k; ++n) step(i, v, drive, 0.0);
        step(i, v, drive, x);
    }
    // Ticks until the drift alone crosses threshold; `lookahead` if it has not by then (a
    // re-check), never once the state stops changing below threshold.
    Tick ticks_to_crossing(double i, double v, double drive) const {
        for (Tick k = 1; k <= lookahead; ++k) {
            const double i0 = i, v0 = v;
            step(i, v, drive, 0.0);
            if (rule_.crossed(v)) return k;
            if (i == i0 && v == v0) return never;
        }
        return lookahead;
    }

private:
    ThresholdRule rule_;
    double v_leak_;
    double alpha_syn_;
    double alpha_;
};

class ReadoutDynamics {
public:
    explicit ReadoutDynamics(const ReadoutNeuron&) {}
    static double drift(double v, double drive, Tick k) { return v + static_cast<double>(k) * drive; }
};

} // namespace quantal
