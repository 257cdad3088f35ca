#pragma once
// Membrane arithmetic of one tick, and of k ticks without input. A neuron's k ticks of drift are
// computed as k applications of the same one-tick step a clocked simulation performs, so a
// neuron brought up to date lazily holds exactly the value it would hold had it been stepped
// every tick: when (or whether) the engine visits a neuron never changes a result. The price is
// one multiply-add per tick of drift at the next visit, arithmetic in registers.
//
// ticks_to_crossing() steps the same drift until the threshold is crossed, so a predicted wake-up
// is the first tick at which a clocked simulation would spike without input.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <variant>
#include <vector>

#include "neurons/models.hpp"
#include "sim/time.hpp"

namespace quantal {

namespace detail {
// First k in [1, limit] with crossed(x_k), x_k = step(x_{k-1}); never if none, or once the drift
// stops changing the value (a fixed point below threshold).
template <class Step>
Tick step_to_crossing(const SpikeRule& rule, double v, Step step, Tick limit) {
    for (Tick k = 1; k <= limit; ++k) {
        const double next = step(v);
        if (rule.crossed(next)) return k;
        if (next == v) return never;
        v = next;
    }
    return never;
}
} // namespace detail

class IfDynamics {
public:
    explicit IfDynamics(const SpikeRule& rule) : rule_(rule) {}
    explicit IfDynamics(const IfNeuron& p, std::size_t j = 0) : rule_(p.rule.at(j)) {} // neuron j's
    const SpikeRule& rule() const { return rule_; }
    static double step(double v, double drive) { return v + drive; }
    static double drift(double v, double drive, Tick k) {
        for (Tick n = 0; n < k; ++n) v = step(v, drive);
        return v;
    }

    // Ticks until the drift alone crosses threshold, at most `limit` (never if it does not).
    Tick ticks_to_crossing(double v, double drive, Tick limit) const {
        if (limit < 1) return never;
        if (rule_.crossed(step(v, drive))) return 1;
        if (!(drive > 0)) return never; // v + drive <= v: the value never rises
        return detail::step_to_crossing(rule_, v, [&](double x) { return step(x, drive); }, limit);
    }

private:
    SpikeRule rule_;
};

class LifDynamics {
public:
    explicit LifDynamics(const LifNeuron& p, std::size_t j = 0) // neuron j's
        : rule_(p.rule.at(j)), v_leak_(p.v_leak[j]), alpha_(std::exp(-1.0 / p.tau_ticks[j])) {}
    const SpikeRule& rule() const { return rule_; }
    double step(double v, double drive) const { return v_leak_ + alpha_ * (v - v_leak_) + drive; }
    double alpha() const { return alpha_; }
    double v_leak() const { return v_leak_; }
    double drift(double v, double drive, Tick k) const {
        for (Tick n = 0; n < k; ++n) v = step(v, drive);
        return v;
    }

    Tick ticks_to_crossing(double v, double drive, Tick limit) const {
        if (limit < 1) return never;
        if (rule_.crossed(step(v, drive))) return 1;
        // The drift approaches v_inf monotonically; rounding keeps it within a few hundred ulps of
        // that path (|error| <= eps / (1 - alpha)), so a fixed point clearly below threshold is never
        // crossed from below.
        const double v_inf = v_leak_ + drive / (1.0 - alpha_);
        const double margin = 1e-9 * std::max({1.0, std::abs(v_inf), std::abs(rule_.threshold)});
        if (v_inf + margin < rule_.threshold && step(v, drive) < rule_.threshold) return never;
        return detail::step_to_crossing(rule_, v, [&](double x) { return step(x, drive); }, limit);
    }

private:
    SpikeRule rule_;
    double v_leak_;
    double alpha_;
};

// Current-based LIF: two states, stepped exactly as its per-tick form.
class CubaLifDynamics {
public:
    explicit CubaLifDynamics(const CubaLifNeuron& p, std::size_t j = 0) // neuron j's
        : rule_(p.rule.at(j)), v_leak_(p.v_leak[j]), alpha_syn_(std::exp(-1.0 / p.tau_syn_ticks[j])),
          alpha_(std::exp(-1.0 / p.tau_ticks[j])) {}
    const SpikeRule& rule() const { return rule_; }

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
    // Ticks until the drift alone crosses threshold, at most `limit`; never once the state stops
    // changing below threshold.
    Tick ticks_to_crossing(double i, double v, double drive, Tick limit) const {
        for (Tick k = 1; k <= limit; ++k) {
            const double i0 = i, v0 = v;
            step(i, v, drive, 0.0);
            if (rule_.crossed(v)) return k;
            if (i == i0 && v == v0) return never;
        }
        return never;
    }

private:
    SpikeRule rule_;
    double v_leak_;
    double alpha_syn_;
    double alpha_;
};

// The dynamics of every neuron of a population whose parameters differ between neurons (one
// object per neuron, exp() taken once), or nothing when one object serves the whole population.
using NeuronTable =
    std::variant<std::monostate, std::vector<IfDynamics>, std::vector<LifDynamics>, std::vector<CubaLifDynamics>>;

namespace detail {
template <class Dynamics, class Model> NeuronTable table_of(const Model& m, std::uint32_t n) {
    std::vector<Dynamics> table;
    table.reserve(n);
    for (std::uint32_t j = 0; j < n; ++j) table.emplace_back(m, j);
    return table;
}
} // namespace detail

inline NeuronTable neuron_table(const NeuronModel& model, std::uint32_t n) {
    if (const auto* m = std::get_if<IfNeuron>(&model); m && !m->rule.uniform())
        return detail::table_of<IfDynamics>(*m, n);
    if (const auto* m = std::get_if<LifNeuron>(&model); m && !(m->rule.uniform() && m->v_leak.uniform() && m->tau_ticks.uniform()))
        return detail::table_of<LifDynamics>(*m, n);
    if (const auto* m = std::get_if<CubaLifNeuron>(&model);
        m && !(m->rule.uniform() && m->v_leak.uniform() && m->tau_ticks.uniform() && m->tau_syn_ticks.uniform()))
        return detail::table_of<CubaLifDynamics>(*m, n);
    return {};
}

class ReadoutDynamics {
public:
    explicit ReadoutDynamics(const ReadoutNeuron&) {}
    static double drift(double v, double drive, Tick k) { return IfDynamics::drift(v, drive, k); }
};

} // namespace quantal
