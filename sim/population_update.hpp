#pragma once
// One population's state during a sample and its update at one tick, by either of two paths that
// compute the same thing (docs/engine.md, "Two update paths"):
//   lazy:  visit the neurons on the population's visit list (those that received input or are
//          due), sorted by index;
//   sweep: walk the whole population once and visit the same neurons, found by their flags.
// Both perform the same floating-point operations on the same neurons in the same (ascending)
// order, so which one runs never changes a result; the engine picks by a fixed rule on counts.
//
// A visited neuron's next threshold crossing under drift alone is predicted only at the next
// tick, and only if no input reached it by then: in busy populations almost every neuron gets
// input every tick, so predictions would be wasted. The prediction is a pure function of the
// neuron's state, so computing it one tick later gives the tick it would have given at once.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "neurons/dynamics.hpp"
#include "sim/energy_ledger.hpp"
#include "sim/random.hpp"
#include "sim/time.hpp"

namespace quantal {

// wake_at of a neuron visited at the previous processed tick whose prediction is not made yet.
inline constexpr Tick unpredicted = -2;

// An enum, not a char type: stores to marks cannot alias the membrane arrays, so hot loops keep
// their pointers and counters in registers.
enum Mark : std::uint8_t { unmarked = 0, has_input = 1, due = 2 };

struct PopulationState {
    std::vector<double> v, input, drive;
    std::vector<double> syn;     // synaptic current (CubaLIF only; empty otherwise)
    std::vector<Tick> last;      // tick of the last visit; -1 before the first
    std::vector<Tick> wake_at;   // predicted crossing under drift alone: a tick, never, or unpredicted
    std::vector<Mark> mark;               // for this tick
    std::vector<std::uint32_t> to_visit;  // the marked neurons, in marking order
    std::vector<std::uint32_t> unresolved; // lazy path: visited last tick, prediction deferred
    std::uint64_t pending = 0;   // neurons whose prediction is deferred (both paths)
    bool sweeping = false;       // the last processed tick took the sweep path
    std::vector<std::uint32_t> fired; // the spikes of the last update that had any ...
    Tick fired_tick = -1;             // ... and its tick (operators read them within the tick)
    Tick held_input_at = -1;          // an operator or a conv accumulator holds input for this tick
    double spike_value = 0;
    bool source = false;              // a spike source: its calendar entries are its spikes
    RandomEngine rng;                 // Bernoulli sources

    std::uint32_t size() const { return std::uint32_t(mark.size()); }
    // Input outranks due: a visit with input is not counted as a wake-up.
    void touch(std::uint32_t j, Mark why) {
        if (!mark[j]) to_visit.push_back(j);
        if (mark[j] != has_input) mark[j] = why;
    }
    bool has_work(Tick t) const { return !to_visit.empty() || pending != 0 || held_input_at == t; }
};

// Per-model arithmetic of a visit, over raw arrays.
struct MembraneArrays {
    double* v;
    double* input;
    const double* drive;
    double* syn;
    Tick* last;
    Tick* wake_at;
    Mark* mark;

    explicit MembraneArrays(PopulationState& s)
        : v(s.v.data()), input(s.input.data()), drive(s.drive.data()), syn(s.syn.data()), last(s.last.data()),
          wake_at(s.wake_at.data()), mark(s.mark.data()) {}
};

// v <- drift(v, drive, k) + input, then at most one spike; the prediction of the next crossing.
template <class Dynamics>
struct VoltageUnit {
    Dynamics dyn;
    static constexpr bool spikes = true;
    double integrate(const MembraneArrays& a, std::uint32_t j, Tick k) const {
        return dyn.drift(a.v[j], a.drive[j], k) + a.input[j];
    }
    Tick ticks_to_crossing(const MembraneArrays& a, std::uint32_t j) const {
        return dyn.ticks_to_crossing(a.v[j], a.drive[j]);
    }
    const ThresholdRule& rule() const { return dyn.rule(); }
};

struct CubaLifUnit {
    CubaLifDynamics dyn;
    static constexpr bool spikes = true;
    double integrate(const MembraneArrays& a, std::uint32_t j, Tick k) const {
        double v = a.v[j];
        dyn.advance(a.syn[j], v, a.drive[j], a.input[j], k);
        return v;
    }
    Tick ticks_to_crossing(const MembraneArrays& a, std::uint32_t j) const {
        return dyn.ticks_to_crossing(a.syn[j], a.v[j], a.drive[j]);
    }
    const ThresholdRule& rule() const { return dyn.rule(); }
};

struct ReadoutUnit {
    static constexpr bool spikes = false;
    double integrate(const MembraneArrays& a, std::uint32_t j, Tick k) const {
        return ReadoutDynamics::drift(a.v[j], a.drive[j], k) + a.input[j];
    }
};

// Visits and predictions of one population at tick t; the caller picks the path.
template <class Unit>
class MembraneUpdate {
public:
    MembraneUpdate(PopulationState& s, const Unit& unit, Tick t, Tick horizon)
        : s_(s), a_(s), unit_(unit), t_(t), horizon_(horizon) {}

    // Lazy path: predictions deferred from t - 1 first (a neuron without input may be due now),
    // then the visit list in ascending order.
    template <class OnWake>
    void lazy(OnWake&& schedule_wake) {
        if constexpr (Unit::spikes) {
            for (std::uint32_t j : s_.unresolved) {
                if (a_.mark[j]) continue; // visited now anyway
                const Tick at = predict(j);
                a_.wake_at[j] = at;
                if (at == t_) s_.touch(j, due);
                else if (at != never) schedule_wake(at, j);
            }
            s_.unresolved.clear();
        }
        sort_ascending();
        for (std::uint32_t j : s_.to_visit) visit(j);
        visits_ = s_.to_visit.size();
        s_.pending = Unit::spikes ? visits_ : 0;
        if constexpr (Unit::spikes) std::swap(s_.unresolved, s_.to_visit); // the old list is empty
        s_.to_visit.clear();
    }

    // Sweep path: one pass over the population; a neuron is visited if it is marked, or if its
    // prediction (made now if it was deferred) falls due at t. Everything the loop reads is held in
    // locals: stores to the Tick arrays could otherwise alias counters and the tick.
    void sweep() {
        const std::uint32_t n = s_.size();
        const MembraneArrays a = a_;
        const Unit unit = unit_;
        const Tick t = t_;
        std::uint64_t visits = 0, drift_ticks = 0, wakeups = 0, fired = 0;
        if constexpr (Unit::spikes) s_.fired.resize(n); // written without a branch, trimmed below
        std::uint32_t* const out = s_.fired.data();
        for (std::uint32_t j = 0; j < n; ++j) {
            Mark m = a.mark[j];
            if (!m) {
                if constexpr (!Unit::spikes) continue;
                else {
                    Tick at = a.wake_at[j];
                    if (at == unpredicted) a.wake_at[j] = at = predict(j);
                    if (at != t) continue;
                    m = due;
                }
            }
            const Tick k = t - a.last[j];
            double v = unit.integrate(a, j, k);
            drift_ticks += std::uint64_t(k);
            if constexpr (Unit::spikes) {
                wakeups += m == due;
                const bool spike = unit.rule().crossed(v);
                v = unit.rule().after_spike_if(spike, v);
                out[fired] = j;
                fired += spike;
                a.wake_at[j] = unpredicted;
            }
            a.v[j] = v;
            a.input[j] = 0.0;
            a.last[j] = t;
            a.mark[j] = unmarked;
            ++visits;
        }
        if constexpr (Unit::spikes) s_.fired.resize(fired);
        visits_ = visits, drift_ticks_ = drift_ticks, wakeups_ = wakeups;
        s_.pending = Unit::spikes ? visits : 0;
        s_.to_visit.clear();
    }

    void count(PopulationCounts& c) const {
        c.updates += visits_;
        c.drift_ticks += drift_ticks_;
        c.wakeups += wakeups_;
    }

private:
    Tick predict(std::uint32_t j) const {
        const Tick now = a_.last[j];
        const Tick k = unit_.ticks_to_crossing(a_, j);
        return (k == never || k >= horizon_ - now) ? never : now + k;
    }

    void visit(std::uint32_t j) {
        const Tick k = t_ - a_.last[j];
        double v = unit_.integrate(a_, j, k);
        drift_ticks_ += std::uint64_t(k);
        if constexpr (Unit::spikes) {
            wakeups_ += a_.mark[j] == due;
            const bool spike = unit_.rule().crossed(v);
            v = unit_.rule().after_spike_if(spike, v); // the sweep's arithmetic exactly
            if (spike) s_.fired.push_back(j);
            a_.wake_at[j] = unpredicted;
        }
        a_.v[j] = v;
        a_.input[j] = 0.0;
        a_.last[j] = t_;
        a_.mark[j] = unmarked;
    }

    // Ascending order whatever the delivery order. Dense fan-outs mark in order already; when many
    // neurons are marked (sparse fan-outs with random targets) one scan of the marks is cheaper
    // than sorting them (docs/performance.md).
    void sort_ascending() {
        auto& list = s_.to_visit;
        if (std::is_sorted(list.begin(), list.end())) return;
        if (list.size() < s_.size() / 16) {
            std::sort(list.begin(), list.end());
            return;
        }
        std::size_t m = 0;
        for (std::uint32_t j = 0; j < s_.size(); ++j)
            if (a_.mark[j]) list[m++] = j;
    }

    PopulationState& s_;
    const MembraneArrays a_;
    const Unit unit_;
    const Tick t_, horizon_;
    std::uint64_t visits_ = 0, drift_ticks_ = 0, wakeups_ = 0;
};

} // namespace quantal
