#pragma once
// One population's state during a sample and its update at one tick, by either of two paths
// (docs/engine.md, "Two update paths"):
//   lazy (event-driven): visit the neurons that received input or whose predicted threshold
//          crossing is due, bringing each up to date from the tick its state refers to;
//   sweep (clocked):     step every neuron of the population, as a time-stepped simulator does.
// A neuron's drift over k ticks is k one-tick steps (neurons/dynamics.hpp) and a predicted
// crossing is the first tick at which that stepping crosses, so both paths give every neuron the
// same value at every tick and the same spikes; the engine picks a path by a fixed rule on counts.
//
// What both paths count, identically: a visit is a (neuron, tick) with non-zero input or a spike;
// a wake-up is a visit with a spike and no input; drift ticks are the ticks between a neuron's
// visits (Σ over neurons of its last visit + 1, summed at the end of the sample).
//
// The lazy path predicts a visited neuron's next crossing only at the next tick, and only if no
// input reached it by then: in busy populations almost every neuron gets input every tick.
#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "neurons/dynamics.hpp"
#include "sim/energy_ledger.hpp"
#include "sim/parallel.hpp"
#include "sim/random.hpp"
#include "sim/sweep_kernel.hpp"
#include "sim/time.hpp"

namespace quantal {

// wake_at of a neuron updated at the previous processed tick whose prediction is not made yet.
inline constexpr Tick unpredicted = -2;

// Marks of the lazy path, as bits. An enum, not a char type: stores to marks cannot alias the
// membrane arrays, so hot loops keep their pointers and counters in registers.
enum Mark : std::uint8_t { unmarked = 0, has_input = 1, due = 2 };

struct PopulationState {
    std::vector<double> v, input, drive;
    std::vector<double> syn;      // synaptic current (CubaLIF only; empty otherwise)
    std::vector<Tick> state_at;   // lazy path: the tick each neuron's state refers to
    std::vector<Tick> last_visit; // for the ledger's drift ticks; -1 before the first visit
    std::vector<Tick> wake_at;    // lazy path: predicted crossing, never, or unpredicted
    std::vector<Mark> mark;       // lazy path: this tick's reasons to visit
    std::vector<std::uint32_t> to_visit;   // lazy path: the marked neurons, in marking order
    std::vector<std::uint32_t> unresolved; // lazy path: updated last tick, prediction deferred
    bool sweeping = false;        // sweep path: every neuron's state refers to the last tick
    std::vector<std::uint32_t> spike_buffer; // sweep path: spikes written without a branch
    std::vector<std::int64_t> spike_flags;   // sweep path of IF/LIF: the kernel's spikes and inputs
    std::vector<std::uint32_t> fired; // the spikes of the last update that had any ...
    Tick fired_tick = -1;             // ... and its tick (operators read them within the tick)
    Tick held_input_at = -1;          // an operator or a conv accumulator holds input for this tick
    double spike_value = 0;
    bool source = false;              // a spike source: its calendar entries are its spikes
    RandomEngine rng;                 // Bernoulli sources

    // What the per-neuron arrays above hold per neuron when all are in use: the engine checks a
    // network's total against the machine's memory before it allocates (docs/reliability.md).
    static constexpr std::uint64_t bytes_per_neuron = 4 * sizeof(double) + 3 * sizeof(Tick) + sizeof(Mark) +
                                                      4 * sizeof(std::uint32_t) + sizeof(std::int64_t);

    std::uint32_t size() const { return std::uint32_t(v.size()); }
    void touch(std::uint32_t j, Mark why) {
        if (!mark[j]) to_visit.push_back(j);
        mark[j] = Mark(mark[j] | why);
    }
    // Input for neuron j at this tick (the sweep path needs no marks: it steps every neuron).
    void add_input(std::uint32_t j, double x) {
        input[j] += x;
        if (!sweeping) touch(j, has_input);
    }
    bool has_work(Tick t) const {
        return sweeping || !to_visit.empty() || !unresolved.empty() || held_input_at == t;
    }
};

// Per-model arithmetic of a visit, over raw arrays.
struct MembraneArrays {
    double* v;
    double* input;
    const double* drive;
    double* syn;

    explicit MembraneArrays(PopulationState& s)
        : v(s.v.data()), input(s.input.data()), drive(s.drive.data()), syn(s.syn.data()) {}
};

// The dynamics of neuron j: one object for the whole population (the common case, held in
// registers), or one per neuron (Network::neuron_table: parameters that differ between neurons).
template <class Dynamics>
struct Uniform {
    Dynamics d;
    const Dynamics& operator[](std::uint32_t) const { return d; }
};
template <class Dynamics>
struct PerNeuronTable {
    const Dynamics* d;
    const Dynamics& operator[](std::uint32_t j) const { return d[j]; }
};

// k - 1 ticks of drift, then the tick with its input; the prediction of the next crossing.
template <class Dynamics, class Table = Uniform<Dynamics>>
struct VoltageUnit {
    Table dyn;
    static constexpr bool spikes = true;
    double integrate(const MembraneArrays& a, std::uint32_t j, Tick k) const {
        const Dynamics& d = dyn[j];
        return d.step(d.drift(a.v[j], a.drive[j], k - 1), a.drive[j]) + a.input[j];
    }
    Tick ticks_to_crossing(const MembraneArrays& a, std::uint32_t j, Tick limit) const {
        return dyn[j].ticks_to_crossing(a.v[j], a.drive[j], limit);
    }
    void drift(const MembraneArrays& a, std::uint32_t j, Tick k) const { a.v[j] = dyn[j].drift(a.v[j], a.drive[j], k); }
    const SpikeRule& rule(std::uint32_t j) const { return dyn[j].rule(); }
};

template <class Dynamics = CubaLifDynamics, class Table = Uniform<Dynamics>>
struct CubaLifUnit {
    Table dyn;
    static constexpr bool spikes = true;
    double integrate(const MembraneArrays& a, std::uint32_t j, Tick k) const {
        double v = a.v[j];
        dyn[j].advance(a.syn[j], v, a.drive[j], a.input[j], k);
        return v;
    }
    Tick ticks_to_crossing(const MembraneArrays& a, std::uint32_t j, Tick limit) const {
        return dyn[j].ticks_to_crossing(a.syn[j], a.v[j], a.drive[j], limit);
    }
    void drift(const MembraneArrays& a, std::uint32_t j, Tick k) const {
        if (k > 0) dyn[j].advance(a.syn[j], a.v[j], a.drive[j], 0.0, k);
    }
    const SpikeRule& rule(std::uint32_t j) const { return dyn[j].rule(); }
};

struct ReadoutUnit {
    static constexpr bool spikes = false;
    double integrate(const MembraneArrays& a, std::uint32_t j, Tick k) const {
        return IfDynamics::step(ReadoutDynamics::drift(a.v[j], a.drive[j], k - 1), a.drive[j]) + a.input[j];
    }
};

// The visits of one population at tick t; the caller picks the path. With `parallel`, large
// steps are split into contiguous ranges of neurons whose results are joined in order (identical
// to one thread: every neuron's arithmetic is its own).
template <class Unit>
class MembraneUpdate {
public:
    MembraneUpdate(PopulationState& s, const Unit& unit, Tick t, Tick horizon, SampleParallelism parallel = {})
        : s_(s), a_(s), unit_(unit), t_(t), horizon_(horizon), parallel_(parallel) {}

    // Lazy path: predictions deferred from t - 1 first (a neuron without input may be due now),
    // then the marked neurons in ascending order.
    template <class OnWake>
    void lazy(OnWake&& schedule_wake) {
        if constexpr (Unit::spikes) {
            resolve_predictions(schedule_wake);
            s_.unresolved.clear();
        }
        sort_ascending();
        const int parts = parallel_.parts(s_.to_visit.size());
        if (parts == 1) {
            visit(s_.to_visit.data(), s_.to_visit.data() + s_.to_visit.size(), s_.fired, s_.unresolved, visits_, wakeups_);
        } else { // each part lists its spikes and deferred predictions; joined in part order
            struct Part {
                std::vector<std::uint32_t> fired, unresolved;
                std::uint64_t visits = 0, wakeups = 0;
            };
            std::vector<Part> out(static_cast<std::size_t>(parts));
            ++splits_;
            for_each_part(parts, [&](int k) {
                const auto [b, e] = part_range(k, parts, s_.to_visit.size(), 1);
                auto& o = out[std::size_t(k)];
                visit(s_.to_visit.data() + b, s_.to_visit.data() + e, o.fired, o.unresolved, o.visits, o.wakeups);
            });
            for (const auto& o : out) {
                s_.fired.insert(s_.fired.end(), o.fired.begin(), o.fired.end());
                s_.unresolved.insert(s_.unresolved.end(), o.unresolved.begin(), o.unresolved.end());
                visits_ += o.visits, wakeups_ += o.wakeups;
            }
        }
        s_.to_visit.clear();
    }

    // Sweep path: one step of every neuron. Uniform IF and LIF populations take the vectorised
    // kernel; other models and per-neuron parameters this loop, which holds everything it reads in
    // locals and writes spikes without a branch.
    void sweep() {
        if constexpr (std::is_same_v<Unit, VoltageUnit<IfDynamics>> || std::is_same_v<Unit, VoltageUnit<LifDynamics>>)
            sweep_voltage_population();
        else
            sweep_any();
    }

    std::uint64_t visits() const { return visits_; }
    std::uint64_t splits() const { return splits_; } // steps split over threads
    void count(PopulationCounts& c) const {
        c.updates += visits_;
        c.wakeups += wakeups_;
    }

private:
    // The visits of to_visit's range [begin, end): spikes and deferred predictions appended in order.
    void visit(const std::uint32_t* begin, const std::uint32_t* end, std::vector<std::uint32_t>& fired,
               std::vector<std::uint32_t>& unresolved, std::uint64_t& visits, std::uint64_t& wakeups) {
        for (const std::uint32_t* it = begin; it != end; ++it) {
            const std::uint32_t j = *it;
            const Mark m = s_.mark[j];
            s_.mark[j] = unmarked;
            const double in = a_.input[j];
            // Input that sums to zero changes nothing the drift would not: the neuron stays lazy.
            if (in == 0.0 && !(m & due)) {
                a_.input[j] = 0.0;
                continue;
            }
            double v = unit_.integrate(a_, j, t_ - s_.state_at[j]);
            a_.input[j] = 0.0;
            bool spike = false;
            if constexpr (Unit::spikes) {
                const SpikeRule& rule = unit_.rule(j);
                spike = rule.crossed(v);
                v = rule.after_spike_if(spike, v);
                if (spike) fired.push_back(j);
                s_.wake_at[j] = unpredicted;
                unresolved.push_back(j);
            }
            a_.v[j] = v;
            s_.state_at[j] = t_;
            if (in == 0.0 && !spike) continue;
            ++visits;
            wakeups += in == 0.0;
            s_.last_visit[j] = t_;
        }
    }

    // The predictions deferred from t - 1, in their order; when there are many, the predictions
    // themselves (stepping each neuron's drift) are computed in parallel first.
    template <class OnWake>
    void resolve_predictions(OnWake& schedule_wake) {
        const auto& list = s_.unresolved;
        auto skip = [&](std::uint32_t j) { return (s_.mark[j] & has_input) && a_.input[j] != 0.0; }; // updated now anyway
        auto apply = [&](std::uint32_t j, Tick at) {
            s_.wake_at[j] = at;
            if (at == t_) s_.touch(j, due);
            else if (at != never) schedule_wake(at, j);
        };
        const int parts = parallel_.parts(list.size());
        if (parts == 1) {
            for (std::uint32_t j : list)
                if (!skip(j)) apply(j, predict(j));
            return;
        }
        constexpr Tick skipped = std::numeric_limits<Tick>::min();
        std::vector<Tick> at(list.size());
        ++splits_;
        for_each_part(parts, [&](int k) {
            const auto [b, e] = part_range(k, parts, list.size());
            for (auto i = b; i < e; ++i) at[i] = skip(list[i]) ? skipped : predict(list[i]);
        });
        for (std::size_t i = 0; i < list.size(); ++i)
            if (at[i] != skipped) apply(list[i], at[i]);
    }

    // Runs sweep_range(begin, end, out + begin) over the parts of [0, n); each writes its spikes
    // (ascending) at its own offset of the spike buffer and returns {visits, wakeups, spikes}.
    template <class Range>
    void sweep_parts(std::uint32_t n, Range&& sweep_range) {
        if (s_.spike_buffer.size() < n) s_.spike_buffer.resize(n);
        std::uint32_t* const out = s_.spike_buffer.data();
        const int parts = parallel_.parts(n);
        if (parts == 1) {
            const auto c = sweep_range(0, n, out);
            visits_ += c[0], wakeups_ += c[1];
            if constexpr (Unit::spikes) s_.fired.assign(out, out + c[2]);
            return;
        }
        std::vector<std::array<std::uint64_t, 3>> c(static_cast<std::size_t>(parts));
        ++splits_;
        for_each_part(parts, [&](int k) {
            const auto [b, e] = part_range(k, parts, n);
            c[std::size_t(k)] = sweep_range(std::uint32_t(b), std::uint32_t(e), out + b);
        });
        s_.fired.clear();
        for (int k = 0; k < parts; ++k) {
            const auto& ck = c[std::size_t(k)];
            visits_ += ck[0], wakeups_ += ck[1];
            if constexpr (Unit::spikes) {
                const std::uint32_t* from = out + part_range(k, parts, n).first;
                s_.fired.insert(s_.fired.end(), from, from + ck[2]);
            }
        }
    }

    void sweep_any() {
        sweep_parts(s_.size(), [&](std::uint32_t b, std::uint32_t e, std::uint32_t* out) {
            return sweep_any_range(b, e, out);
        });
    }

    std::array<std::uint64_t, 3> sweep_any_range(std::uint32_t begin, std::uint32_t end, std::uint32_t* const out) const {
        const MembraneArrays a = a_;
        const Unit unit = unit_;
        const Tick t = t_;
        Tick* const last_visit = s_.last_visit.data();
        std::uint64_t visits = 0, wakeups = 0, fired = 0;
        for (std::uint32_t j = begin; j < end; ++j) {
            const double in = a.input[j];
            double v = unit.integrate(a, j, 1);
            bool spike = false;
            if constexpr (Unit::spikes) {
                const SpikeRule& rule = unit.rule(j);
                spike = rule.crossed(v);
                v = rule.after_spike_if(spike, v);
                out[fired] = j;
                fired += spike;
            }
            const bool visited = (in != 0.0) | spike;
            visits += visited;
            wakeups += (in == 0.0) & spike;
            const Tick keep = Tick(visited) - 1; // all ones if not visited: no branch
            last_visit[j] = (last_visit[j] & keep) | (t & ~keep);
            a.v[j] = v;
            a.input[j] = 0.0;
        }
        return {visits, wakeups, fired};
    }

    // IF and LIF: the vectorised kernel (sim/sweep_kernel.hpp), then its spike flags as a list.
    void sweep_voltage_population() {
        const std::uint32_t n = s_.size();
        VoltageStep step;
        step.rule = unit_.dyn.d.rule();
        if constexpr (std::is_same_v<Unit, VoltageUnit<LifDynamics>>)
            step.leaky = true, step.alpha = unit_.dyn.d.alpha(), step.v_leak = unit_.dyn.d.v_leak();
        if (s_.spike_flags.size() < n) s_.spike_flags.resize(n);
        const SweepArrays all{a_.v, a_.input, a_.drive, s_.last_visit.data(), s_.spike_flags.data()};
        sweep_parts(n, [&](std::uint32_t b, std::uint32_t e, std::uint32_t* out) -> std::array<std::uint64_t, 3> {
            const auto c = sweep_voltage(step, all.from(b), e - b, t_);
            const std::int64_t* flags = all.code;
            std::uint32_t fired = 0;
            for (std::uint32_t j = b; j < e; ++j) { // without a branch: spikes are unpredictable
                out[fired] = j;
                fired += std::uint32_t(flags[j] & 1);
            }
            return {c.visits, c.wakeups, fired};
        });
    }

    Tick predict(std::uint32_t j) const {
        const Tick now = s_.state_at[j];
        const Tick k = unit_.ticks_to_crossing(a_, j, horizon_ - 1 - now);
        return k == never ? never : now + k;
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
            if (s_.mark[j]) list[m++] = j;
    }

    PopulationState& s_;
    const MembraneArrays a_;
    const Unit unit_;
    const Tick t_, horizon_;
    const SampleParallelism parallel_;
    std::uint64_t visits_ = 0, wakeups_ = 0, splits_ = 0;
};

} // namespace quantal
