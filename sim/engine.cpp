#include "sim/engine.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include "neurons/dynamics.hpp"
#include "sim/errors.hpp"
#include "sim/population_update.hpp"
#include "sim/potential_probe.hpp"
#include "sim/random.hpp"
#include "sim/tick_calendar.hpp"
#include "synapses/conv_accumulator.hpp"
#include "synapses/transmit.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace quantal {

namespace {
// Stream ids: projections take their own index, populations and operators are offset past them.
constexpr std::uint64_t population_stream = std::uint64_t{1} << 32;
constexpr std::uint64_t operator_stream = std::uint64_t{2} << 32;
} // namespace

Stimulus Stimulus::for_network(const Network& net) {
    const auto n = net.populations().size();
    return Stimulus{std::vector<std::vector<double>>(n), std::vector<std::uint64_t>(n, 0),
                    std::vector<std::vector<TimedSpike>>(n)};
}

namespace {
struct Wake { // a neuron due at a tick without input: a predicted crossing or a source spike
    std::uint32_t population;
    std::uint32_t neuron;
};
struct Delivery { // a spike that reaches a delayed projection's synapses
    std::uint32_t projection;
    std::uint32_t source;
    std::uint64_t group; // sparse: the delay group of the source's row
};

// A population takes the sweep path from the tick after one in `sweep_above` of its neurons was
// visited, and goes back to the lazy path after a tick with fewer than one in `lazy_below` (a
// fixed rule: which path runs never changes a result, only its cost; docs/performance.md).
constexpr std::uint64_t sweep_above = 32, lazy_below = 64;

std::uint32_t max_delay(const Network& net) {
    std::uint32_t d = 0;
    for (ProjectionId pr = 0; pr < net.projections().size(); ++pr) {
        d = std::max(d, net.projection(pr).delay);
        if (const auto* s = std::get_if<SparseFanout>(&net.fanout(pr)))
            for (const auto& g : s->groups) d = std::max(d, g.delay);
    }
    return d;
}
} // namespace

struct Engine::State {
    // Deliveries further ahead than the window wait in the calendar's overflow list: a bucket per
    // tick up to a delay near 2^24 cost 400 MB and seconds per sample (fuzz_network finding).
    static constexpr Tick max_delivery_window = 4096;
    explicit State(const Network& n)
        : net(n), delivery_window(std::min(Tick(max_delay(n)) + 1, max_delivery_window)) {
        accumulators.resize(net.projections().size());
        accumulated.assign(net.projections().size(), 0);
        accumulated_into.resize(net.populations().size());
        for (ProjectionId pr = 0; pr < net.projections().size(); ++pr) {
            plans.emplace_back(net.projection(pr).release, net.fanout(pr), net.spread(pr));
            // Per-synapse draws go target by target; without them a conv sums channel-last.
            const auto* conv = std::get_if<ConvFanout>(&net.fanout(pr));
            if (conv && (plans[pr].mode() != ReleaseMode::synapse || plans[pr].draw() == ReleasePlan::Draw::all)) {
                accumulators[pr] = ConvAccumulator(*conv);
                accumulated[pr] = 1;
                accumulated_into[net.projection(pr).target].push_back(pr);
            }
        }
        pops.resize(net.populations().size());
        proj_rng.resize(net.projections().size());
        operator_rng.resize(3 * net.operators().size());
        operator_spread_key.resize(3 * net.operators().size());
        for (const auto& pop : net.populations()) neurons += pop.size();
    }

    const Network& net;
    std::vector<ReleasePlan> plans;
    std::vector<PopulationState> pops;
    std::vector<RandomEngine> proj_rng;
    std::vector<RandomEngine> operator_rng; // per operator: q, k and score masks
    std::vector<std::uint64_t> operator_spread_key; // per operator input: ReleaseSpread::key
    std::vector<ConvAccumulator> accumulators;                // per projection (used by convs only)
    std::vector<std::uint8_t> accumulated;                    // per projection: sums through its accumulator
    std::vector<std::vector<ProjectionId>> accumulated_into;  // per population: its accumulated convs
    Tick now = 0;
    TickCalendar<Wake> wakes;
    TickCalendar<Delivery> deliveries;
    Tick delivery_window;
    std::uint64_t neurons = 0;
    std::vector<std::uint32_t> kept_a, kept_b; // masked spike lists handed to operators
    std::vector<std::uint32_t> kept_spikes;     // a conv's spikes that survive per-spike release
    SampleParallelism parallel;                 // threads within the sample (RunOptions)
    std::uint64_t parallel_steps = 0;           // steps split over threads (Engine::parallel_steps)
    WindowAttention::Scratch attention_scratch; // the network's operators are shared between threads
    std::vector<double> head_z, head_out;       // a LayerNorm head's stream and result
    std::vector<Tick> observe_at;               // sorted
    Tick horizon = 0;
    UpdatePath path = UpdatePath::automatic;
    std::uint64_t seed = 0;
    SampleResult result;
    SpikeSink* sink = nullptr;
    bool record = false;          // RunOptions::record_spikes
    std::vector<char> recording;  // per population: its spikes are kept in the result
    PotentialRecorder potentials; // RunOptions::potentials
    bool started = false; // a sample was started and not finished
    Tick next = 0;        // the next tick with work (>= horizon: the sample is done)

    void validate(const Stimulus& s) const;
    void reset(const Stimulus& s, const RunOptions& o, std::uint64_t sample);
    void reset_population(PopulationId p, const Stimulus& s);
    Tick step(Tick t); // simulates tick t; returns the next tick with work
    void apply(const Wake& w, Tick t);
    void prefetch(const Delivery& d) const;
    void update(PopulationId p, Tick t);
    template <template <class, class> class Unit, class Dynamics, class Model>
    void update_spiking(PopulationId p, Tick t, const Model& model);
    template <class Unit> void update_membranes(PopulationId p, Tick t, const Unit& unit);
    template <class Unit> void enter_sweep(PopulationId p, Tick t, const Unit& unit);
    void leave_sweep(PopulationId p, Tick t);
    void spike_sources(PopulationId p, Tick t);
    void schedule_source_spike(PopulationId p, const BernoulliSource& src, std::uint32_t j, Tick from);
    void accumulate(ProjectionId pr, const ConvFanout& conv, std::uint32_t src, double value);
    void accumulate_all(ProjectionId pr, const ConvFanout& conv, std::span<const std::uint32_t> spikes, double value);
    void flush_accumulators(PopulationId p);
    void propagate(PopulationId p, Tick t);
    void apply_operator(std::uint32_t op, PopulationId p, Tick t);
    void apply_head(std::uint32_t h, PopulationId p, Tick t);
    std::span<const std::uint32_t> kept(std::uint32_t op, int input, PopulationId source, const Release& r,
                                        std::vector<std::uint32_t>& out, std::uint64_t& masked);
    void deliver(ProjectionId pr, std::uint32_t src, std::uint64_t group);
    void observe(Tick t);
    void count_drift_ticks();
    void record_potentials(Tick until);
    void begin(const Stimulus& s, const RunOptions& o, std::uint64_t sample, SpikeSink* sink);
    EngineState save() const;
    void restore(const EngineState& e);
};

void Engine::State::validate(const Stimulus& s) const {
    const auto n = net.populations().size();
    if (s.current.size() != n || s.spikes.size() != n || s.current_macs.size() != n)
        throw InputError("stimulus: has entries for " + std::to_string(s.current.size()) + " populations, the network has " +
                         std::to_string(n) + " (use Stimulus::for_network)");
    for (PopulationId p = 0; p < n; ++p) {
        const auto& pop = net.population(p);
        const auto& c = s.current[p];
        if (!c.empty() && c.size() != pop.size())
            throw InputError("stimulus: current for population '" + pop.name + "' has " + std::to_string(c.size()) +
                             " values, expected " + std::to_string(pop.size()));
        if (!c.empty() && is_source(pop.model))
            throw InputError("stimulus: population '" + pop.name + "' is a spike source and takes no current");
        for (double x : c)
            if (!std::isfinite(x)) throw InputError("stimulus: current for population '" + pop.name + "' is not finite");
        if (!s.spikes[p].empty() && !std::holds_alternative<SpikeSource>(pop.model))
            throw InputError("stimulus: spikes given for population '" + pop.name + "', which is not a spike source");
        for (const auto& sp : s.spikes[p])
            if (sp.neuron >= pop.size() || sp.tick < 0)
                throw InputError("stimulus: spike (tick " + std::to_string(sp.tick) + ", neuron " + std::to_string(sp.neuron) +
                                 ") is outside population '" + pop.name + "'");
    }
}

void Engine::State::reset(const Stimulus& s, const RunOptions& o, std::uint64_t sample) {
    horizon = o.ticks;
    path = o.update_path;
    seed = o.seed;
    parallel = SampleParallelism{o.threads_per_sample, o.parallel_min_work};
    parallel_steps = 0;
    for (ProjectionId pr = 0; pr < accumulators.size(); ++pr)
        if (accumulated[pr]) accumulators[pr].set_parts(parallel.threads);
    now = 0;
    wakes.reset(std::min<Tick>(std::max<Tick>(horizon, 1), 1024));
    deliveries.reset(delivery_window);
    result = SampleResult{};
    result.sample = sample;
    result.ledger = EnergyLedger::for_network(net, std::uint64_t(o.ticks));
    result.ledger.samples = 1;
    for (ProjectionId pr = 0; pr < proj_rng.size(); ++pr) proj_rng[pr] = make_stream(o.seed, sample, pr);
    for (std::size_t r = 0; r < operator_rng.size(); ++r) operator_rng[r] = make_stream(o.seed, sample, operator_stream + r);
    // Heterogeneous release probabilities belong to the seed, not the sample: the same per synapse all run long.
    for (ProjectionId pr = 0; pr < plans.size(); ++pr)
        if (plans[pr].spread()) plans[pr].set_spread_key(ReleaseSpread::key(o.seed, pr));
    for (std::size_t r = 0; r < operator_spread_key.size(); ++r)
        operator_spread_key[r] = ReleaseSpread::key(o.seed, operator_stream + r);

    // The per-neuron arrays, population by population: the bulk of a large network's reset (19.95 M
    // neurons: about a gigabyte of writes), on the sample's threads when the network is large.
    parallel_steps += parallel.worth(neurons);
    for_each_index(parallel.worth(neurons) ? parallel.threads : 1, pops.size(),
                   [&](std::size_t p) { reset_population(PopulationId(p), s); });
    for (PopulationId p = 0; p < pops.size(); ++p) {
        const auto& pop = net.population(p);
        auto& ps = pops[p];
        ps.rng = make_stream(o.seed, sample, population_stream + p);
        result.ledger.populations[p].macs = s.current_macs[p] * std::uint64_t(o.ticks);
        if (const auto* src = net.spike_process(p)) { // Bernoulli, or Poisson at the network's dt
            for (std::uint32_t j = 0; j < pop.size(); ++j) schedule_source_spike(p, *src, j, 0);
        } else if (std::holds_alternative<SpikeSource>(pop.model)) {
            for (const auto& sp : s.spikes[p])
                if (sp.tick < horizon) wakes.push(sp.tick, {p, sp.neuron});
        } else if (is_readout(pop.model)) {
            result.readouts.push_back(Readout{p, {}, {}});
        }
    }

    // A LayerNorm head's result on ticks when none of its sources fires is a constant: drive.
    for (std::uint32_t h = 0; h < net.heads().size(); ++h) {
        const auto out = net.heads()[h].output;
        const auto idle = net.head_idle(h);
        for (std::size_t j = 0; j < idle.size(); ++j) pops[out].drive[j] += idle[j];
        result.ledger.populations[out].macs += net.head_macs(h) * std::uint64_t(o.ticks);
    }

    observe_at.clear();
    for (Tick t : o.observe)
        if (t >= 0 && t < horizon) observe_at.push_back(t);
    if (o.observe.empty() && horizon > 0) observe_at.push_back(horizon - 1);
    std::sort(observe_at.begin(), observe_at.end());
}

// Population p's per-neuron state at the start of a sample (horizon and path already set).
void Engine::State::reset_population(PopulationId p, const Stimulus& s) {
    const auto& pop = net.population(p);
    auto& ps = pops[p];
    const std::uint32_t n = pop.size();
    ps.v.resize(n);
    initial_potentials(pop.model, ps.v);
    ps.input.assign(n, 0.0);
    ps.syn.assign(std::holds_alternative<CubaLifNeuron>(pop.model) ? n : 0, 0.0);
    ps.drive.assign(n, pop.bias.size() == 1 ? pop.bias[0] : 0.0);
    if (pop.bias.size() == n) ps.drive = pop.bias;
    if (!s.current[p].empty())
        for (std::uint32_t j = 0; j < n; ++j) ps.drive[j] += s.current[p][j];
    ps.state_at.assign(n, -1);
    ps.last_visit.assign(n, -1);
    ps.mark.assign(n, unmarked);
    ps.to_visit.clear();
    ps.unresolved.clear();
    ps.sweeping = false;
    ps.fired.clear();
    ps.fired_tick = -1;
    ps.held_input_at = -1;
    ps.spike_value = spike_value(pop.model);
    ps.source = is_source(pop.model);
    if (ps.source || is_readout(pop.model)) {
        ps.wake_at.assign(n, never);
    } else if (path == UpdatePath::sweep) {
        ps.wake_at.assign(n, never);
        ps.sweeping = true;
    } else {
        // Every neuron's first prediction is made at tick 0, as if it had been visited at -1.
        ps.wake_at.assign(n, unpredicted);
        ps.unresolved.resize(n);
        for (std::uint32_t j = 0; j < n; ++j) ps.unresolved[j] = j;
    }
}

// The start of the next delivery's synapse row: rows of different spikes lie far apart, so the
// hardware prefetcher cannot guess the next one.
void Engine::State::prefetch(const Delivery& d) const {
    if (const auto* f = std::get_if<SparseFanout>(&net.fanout(d.projection))) {
        const auto begin = f->groups[d.group].begin;
        __builtin_prefetch(f->target.data() + begin);
        if (f->weight.size() > 1) __builtin_prefetch(f->weight.data() + begin);
    }
}

void Engine::State::apply(const Wake& w, Tick t) {
    auto& ps = pops[w.population];
    if (ps.source || (!ps.sweeping && ps.wake_at[w.neuron] == t)) ps.touch(w.neuron, due); // else superseded
}

// One tick, as DESIGN.md "One tick, precisely": due neurons and delayed deliveries first, then the
// populations in stage order, then observations.
Tick Engine::State::step(Tick t) {
    now = t;
    for (const Wake& w : wakes.at(t)) apply(w, t);
    wakes.done(t);
    {
        auto& due_now = deliveries.at(t);
        for (std::size_t i = 0; i < due_now.size(); ++i) {
            if (i + 1 < due_now.size()) prefetch(due_now[i + 1]);
            deliver(due_now[i].projection, due_now[i].source, due_now[i].group);
        }
        deliveries.done(t);
    }
    bool next_tick_busy = false;
    for (std::uint32_t stage = 0; stage < pops.size(); ++stage) {
        const PopulationId p = net.population_at_stage(stage);
        if (pops[p].has_work(t)) update(p, t);
        next_tick_busy |= pops[p].sweeping || !pops[p].unresolved.empty();
    }
    for (auto it = std::lower_bound(observe_at.begin(), observe_at.end(), t); it != observe_at.end() && *it == t; ++it)
        observe(t);
    // Stale predictions stay in the calendar until their tick; bound them by the live ones.
    if (wakes.size() > 2 * neurons + 4096)
        wakes.compact([&](Tick at, const Wake& w) {
            const auto& ps = pops[w.population];
            return ps.source || (!ps.sweeping && ps.wake_at[w.neuron] == at);
        });
    if (next_tick_busy) return t + 1;
    Tick next = std::min(wakes.next_after(t), deliveries.next_after(t));
    const auto o = std::upper_bound(observe_at.begin(), observe_at.end(), t);
    if (o != observe_at.end()) next = std::min(next, *o);
    return next;
}

// Path switches, at the end of tick t, for tick t + 1. Entering the sweep path brings every
// neuron's state to t; leaving it makes every neuron's prediction due at t + 1.
template <class Unit>
void Engine::State::enter_sweep(PopulationId p, Tick t, const Unit& unit) {
    auto& ps = pops[p];
    const MembraneArrays a(ps);
    const int parts = parallel.parts(ps.size());
    parallel_steps += parts > 1;
    for_each_part(parts, [&](int k) {
        const auto [b, e] = part_range(k, parts, ps.size());
        for (auto j = std::uint32_t(b); j < e; ++j)
            if (ps.state_at[j] < t) unit.drift(a, j, t - ps.state_at[j]);
    });
    ps.unresolved.clear();
    ps.sweeping = true;
}

void Engine::State::leave_sweep(PopulationId p, Tick t) {
    auto& ps = pops[p];
    ps.sweeping = false;
    ps.state_at.assign(ps.size(), t);
    ps.wake_at.assign(ps.size(), unpredicted);
    ps.unresolved.resize(ps.size());
    for (std::uint32_t j = 0; j < ps.size(); ++j) ps.unresolved[j] = j;
}

// One object for a uniform population, else the network's per-neuron table.
template <template <class, class> class Unit, class Dynamics, class Model>
void Engine::State::update_spiking(PopulationId p, Tick t, const Model& model) {
    if (const auto* table = std::get_if<std::vector<Dynamics>>(&net.neuron_table(p)))
        update_membranes(p, t, Unit<Dynamics, PerNeuronTable<Dynamics>>{{table->data()}});
    else
        update_membranes(p, t, Unit<Dynamics, Uniform<Dynamics>>{{Dynamics(model)}});
}

template <class Unit>
void Engine::State::update_membranes(PopulationId p, Tick t, const Unit& unit) {
    auto& ps = pops[p];
    MembraneUpdate<Unit> update(ps, unit, t, horizon, parallel);
    if (ps.sweeping) update.sweep();
    else update.lazy([&](Tick at, std::uint32_t j) { wakes.push(at, {p, j}); });
    update.count(result.ledger.populations[p]);
    parallel_steps += update.splits();
    // The path of tick t + 1, by a fixed rule on this tick's visits, with hysteresis.
    if constexpr (Unit::spikes) {
        if (path != UpdatePath::automatic) return;
        const std::uint64_t n = ps.size(), visits = update.visits();
        if (!ps.sweeping && visits * sweep_above >= n) enter_sweep(p, t, unit);
        else if (ps.sweeping && visits * lazy_below < n) leave_sweep(p, t);
    }
}

// A source's due neurons are its spikes; a Bernoulli source draws each one's next spike.
void Engine::State::spike_sources(PopulationId p, Tick t) {
    auto& ps = pops[p];
    std::sort(ps.to_visit.begin(), ps.to_visit.end());
    ps.fired.assign(ps.to_visit.begin(), ps.to_visit.end());
    for (std::uint32_t j : ps.to_visit) ps.mark[j] = unmarked;
    ps.to_visit.clear();
    if (const auto* src = net.spike_process(p))
        for (std::uint32_t j : ps.fired) schedule_source_spike(p, *src, j, t + 1);
}

// Neuron j of a Bernoulli source spikes next at `from` plus a geometric gap (from its own stream).
void Engine::State::schedule_source_spike(PopulationId p, const BernoulliSource& src, std::uint32_t j, Tick from) {
    const double q = src.probability.size() == 1 ? src.probability[0] : src.probability[j];
    if (q <= 0.0) return;
    const Tick at = q >= 1.0 ? from : from + Tick(GeometricGaps(q).next(pops[p].rng, std::uint64_t(horizon)));
    if (at < horizon) wakes.push(at, {p, j});
}

void Engine::State::update(PopulationId p, Tick t) {
    auto& ps = pops[p];
    ps.fired.clear();
    flush_accumulators(p);
    for (std::uint32_t op : net.operators_into(p)) apply_operator(op, p, t);
    for (std::uint32_t h : net.heads_into(p)) apply_head(h, p, t);
    std::visit(
        [&](const auto& model) {
            using M = std::decay_t<decltype(model)>;
            if constexpr (std::is_same_v<M, IfNeuron>) update_spiking<VoltageUnit, IfDynamics>(p, t, model);
            else if constexpr (std::is_same_v<M, LifNeuron>) update_spiking<VoltageUnit, LifDynamics>(p, t, model);
            else if constexpr (std::is_same_v<M, CubaLifNeuron>) update_spiking<CubaLifUnit, CubaLifDynamics>(p, t, model);
            else if constexpr (std::is_same_v<M, ReadoutNeuron>) update_membranes(p, t, ReadoutUnit{});
            else spike_sources(p, t);
        },
        net.population(p).model);

    if (ps.fired.empty()) return;
    ps.fired_tick = t;
    result.ledger.populations[p].spikes += ps.fired.size();
    if (sink) sink->on_spikes(p, t, ps.fired);
    if (recording[p])
        for (std::uint32_t j : ps.fired) result.spikes.push_back({t, p, j});
    propagate(p, t);
    for (PopulationId target : net.operator_targets(p)) pops[target].held_input_at = t;
}

// Per-spike release (RSM) on input `input` (0 q, 1 k, 2 scores) of operator op: the spikes that
// survive, drawn per tick (with a spread, each source neuron with its own probability).
std::span<const std::uint32_t> Engine::State::kept(std::uint32_t op, int input, PopulationId source, const Release& r,
                                                   std::vector<std::uint32_t>& out, std::uint64_t& masked) {
    const auto& fired = pops[source].fired;
    if (r.mode == ReleaseMode::none || r.mask_ratio == 0.0) return fired;
    auto& rng = operator_rng[3 * op + input];
    out.clear();
    if (const ReleaseSpread* spread = net.operator_spread(op, input)) {
        const std::uint64_t key = operator_spread_key[3 * op + input];
        for (std::uint32_t j : fired)
            if (spread->keep(rng, key, j)) out.push_back(j);
    } else {
        const BernoulliThreshold keep(1.0 - r.mask_ratio);
        for (std::uint32_t j : fired)
            if (keep(rng)) out.push_back(j);
    }
    masked += fired.size() - out.size();
    return out;
}

// Computes an operator's input to population p for tick t from its sources' spikes of tick t.
void Engine::State::apply_operator(std::uint32_t op, PopulationId p, Tick t) {
    const auto& a = std::get<SoftmaxAttention>(net.operators()[op]);
    const auto& attention = net.attention(op);
    auto& counts = result.ledger.operators[op];
    auto& target = pops[p];
    auto add = [&](std::uint32_t n, double x) { target.add_input(n, x); };
    auto fired_now = [&](PopulationId q) { return pops[q].fired_tick == t; };
    if (p == a.scores && fired_now(a.q) && fired_now(a.k)) {
        const auto q = kept(op, 0, a.q, a.q_release, kept_a, counts.masked_spikes);
        const auto k = kept(op, 1, a.k, a.k_release, kept_b, counts.masked_spikes);
        // Compensation scales the surviving q and k spikes: their product by both factors.
        const double amount = a.scale * pops[a.q].spike_value * pops[a.k].spike_value * a.q_release.scale() * a.k_release.scale();
        attention.coincide(q, k, amount, add, counts, attention_scratch);
    }
    if (p == a.output && fired_now(a.v)) {
        std::span<const std::uint32_t> scores;
        if (fired_now(a.scores)) scores = kept(op, 2, a.scores, a.score_release, kept_a, counts.masked_spikes);
        // A surviving score spike adds its value x 1 / (1 - r) to the softmax's argument.
        attention.attend(scores, pops[a.scores].spike_value * a.score_release.scale(), pops[a.v].fired,
                         pops[a.v].spike_value, add, counts, attention_scratch);
    }
}

// A LayerNorm head on a tick when some source fired: its result minus the idle result, which
// reset() made part of the output's drive.
void Engine::State::apply_head(std::uint32_t h, PopulationId p, Tick t) {
    const auto& head = net.heads()[h];
    bool any = false;
    for (PopulationId s : head.sources) any |= pops[s].fired_tick == t;
    if (!any) return;
    const std::size_t c_n = head.gamma.size();
    const std::uint32_t positions = net.population(head.sources.front()).size() / std::uint32_t(c_n);
    head_z.resize(c_n * positions);
    for (std::size_t c = 0; c < c_n; ++c)
        std::fill_n(head_z.begin() + std::ptrdiff_t(c * positions), positions, double(head.offset[c]));
    for (std::size_t i = 0; i < head.sources.size(); ++i) {
        const auto& src = pops[head.sources[i]];
        if (src.fired_tick != t) continue;
        for (std::uint32_t j : src.fired)
            head_z[j] += double(head.source_weight[i * c_n + j / positions]) * src.spike_value;
    }
    const auto idle = net.head_idle(h);
    head_out.assign(idle.size(), 0.0);
    layer_norm_head(head, head_z, positions, head_out);
    auto& target = pops[p];
    for (std::uint32_t o = 0; o < head_out.size(); ++o) target.add_input(o, head_out[o] - idle[o]);
}

void Engine::State::propagate(PopulationId p, Tick t) {
    const auto& fired = pops[p].fired;
    for (ProjectionId pr : net.outgoing(p)) {
        const auto& projection = net.projection(pr);
        const auto& fanout = net.fanout(pr);
        const auto& plan = plans[pr];
        auto& counts = result.ledger.projections[pr];
        auto& rng = proj_rng[pr];
        if (const auto* sparse = std::get_if<SparseFanout>(&fanout)) {
            for (std::uint32_t j : fired) {
                const auto g0 = sparse->group_begin[j], g1 = sparse->group_begin[j + 1];
                std::uint64_t in_time = 0; // synapses whose delivery falls inside the sample
                for (auto g = g0; g < g1; ++g)
                    if (t + sparse->groups[g].delay < horizon) in_time += sparse->groups[g].end - sparse->groups[g].begin;
                if (in_time == 0) continue;
                ++counts.spikes_in;
                if (plan.mode() == ReleaseMode::spike && plan.drop_spike(rng, j)) {
                    ++counts.masked_spikes, counts.attempted += in_time;
                    continue;
                }
                for (auto g = g0; g < g1; ++g) {
                    const Tick at = t + sparse->groups[g].delay;
                    if (at >= horizon) continue;
                    if (at == t) deliver(pr, j, g);
                    else deliveries.push(at, {pr, j, g});
                }
            }
            continue;
        }
        const Tick at = t + projection.delay;
        if (at >= horizon) continue; // would arrive after the sample ends
        if (accumulated[pr] && at == t) { // the busiest case, without a call per spike
            const auto& conv = std::get<ConvFanout>(fanout);
            counts.spikes_in += fired.size();
            std::span<const std::uint32_t> sent = fired;
            if (plan.mode() == ReleaseMode::spike) { // the draws first, in spike order
                kept_spikes.clear();
                for (std::uint32_t j : fired) {
                    if (!plan.drop_spike(rng, j)) {
                        kept_spikes.push_back(j);
                        continue;
                    }
                    ++counts.masked_spikes;
                    counts.attempted += conv.size(j);
                }
                sent = kept_spikes;
            }
            accumulate_all(pr, conv, sent, pops[p].spike_value * plan.scale());
            continue;
        }
        for (std::uint32_t j : fired) {
            ++counts.spikes_in;
            if (plan.mode() == ReleaseMode::spike && plan.drop_spike(rng, j)) {
                ++counts.masked_spikes;
                counts.attempted += std::visit([&](const auto& f) { return f.size(j); }, fanout);
                continue;
            }
            if (at == t) deliver(pr, j, 0);
            else deliveries.push(at, {pr, j, 0});
        }
    }
}

void Engine::State::deliver(ProjectionId pr, std::uint32_t src, std::uint64_t group) {
    const auto& projection = net.projection(pr);
    const auto& fanout = net.fanout(pr);
    auto& target = pops[projection.target];
    auto& counts = result.ledger.projections[pr];
    std::uint64_t begin = 0, end = 0;
    if (const auto* sparse = std::get_if<SparseFanout>(&fanout)) begin = sparse->groups[group].begin, end = sparse->groups[group].end;
    const double value = pops[projection.source].spike_value * plans[pr].scale(); // compensation: x 1 / (1 - r)
    if (accumulated[pr]) {
        accumulate(pr, std::get<ConvFanout>(fanout), src, value);
        return;
    }
    double* const input = target.input.data();
    Mark* const mark = target.mark.data();
    auto& to_visit = target.to_visit;
    const auto& plan = plans[pr];
    auto send = [&](auto&& add) {
        return plan.mode() == ReleaseMode::synapse && plan.draw() == ReleasePlan::Draw::heterogeneous
                   ? transmit_each(fanout, src, begin, end, value, plan, proj_rng[pr], add)
                   : transmit(fanout, src, begin, end, value, plan, proj_rng[pr], add);
    };
    if (target.sweeping) // every neuron is stepped anyway: the input is all it needs
        counts.transmitted += send([&](std::uint32_t k, double x) { input[k] += x; });
    else
        counts.transmitted += send([&](std::uint32_t k, double x) {
            input[k] += x;
            if (!mark[k]) to_visit.push_back(k);
            mark[k] = Mark(mark[k] | has_input);
        });
    counts.attempted += std::holds_alternative<SparseFanout>(fanout)
                            ? end - begin
                            : std::visit([&](const auto& f) { return f.size(src); }, fanout);
}

// A conv spike into its projection's accumulator; the target takes the sum before its update.
void Engine::State::accumulate(ProjectionId pr, const ConvFanout& conv, std::uint32_t src, double value) {
    const auto n = accumulators[pr].add(conv, src, value);
    auto& counts = result.ledger.projections[pr];
    counts.transmitted += n, counts.attempted += n;
    pops[net.projection(pr).target].held_input_at = now;
}

// A tick's spikes into a conv's accumulator; when they are many, each part of its targets on its
// own thread (every part takes all spikes in order, so each target's sum is the one-thread sum).
void Engine::State::accumulate_all(ProjectionId pr, const ConvFanout& conv, std::span<const std::uint32_t> spikes,
                                   double value) {
    auto& acc = accumulators[pr];
    if (spikes.empty()) return;
    if (acc.parts() == 1 || !parallel.worth(spikes.size() * conv.size(spikes.front()))) {
        for (std::uint32_t j : spikes) accumulate(pr, conv, j, value);
        return;
    }
    std::vector<std::uint64_t> synapses(static_cast<std::size_t>(acc.parts()));
    ++parallel_steps;
    for_each_part(acc.parts(), [&](int k) { synapses[std::size_t(k)] = acc.add_part(conv, spikes, value, k); });
    auto& counts = result.ledger.projections[pr];
    for (auto n : synapses) counts.transmitted += n, counts.attempted += n;
    pops[net.projection(pr).target].held_input_at = now;
}

// The convs' sums of tick t into population p, in projection order. Into a sweeping population
// (no marks to set) large flushes run in parallel, one part of the targets per thread: the
// accumulators into p have the same positions (p's H x W) and so the same parts.
void Engine::State::flush_accumulators(PopulationId p) {
    auto& ps = pops[p];
    const auto& into = accumulated_into[p];
    if (into.empty()) return;
    double* const input = ps.input.data();
    auto add = [input](std::uint32_t j, double x) { input[j] += x; };
    std::uint64_t held = 0;
    const auto& first = accumulators[into.front()];
    bool same_parts = true; // a part's targets are then the same in every accumulator
    for (ProjectionId pr : into) {
        held += accumulators[pr].held();
        same_parts &= accumulators[pr].parts() == first.parts() && accumulators[pr].positions() == first.positions();
    }
    const int parts = first.parts();
    if (ps.sweeping && parts > 1 && same_parts && parallel.worth(held)) {
        ++parallel_steps;
        for_each_part(parts, [&](int k) {
            for (ProjectionId pr : into) accumulators[pr].flush_part(k, add);
        });
        return;
    }
    for (ProjectionId pr : into) {
        if (ps.sweeping) accumulators[pr].flush(add);
        else accumulators[pr].flush([&](std::uint32_t j, double x) { ps.add_input(j, x); });
    }
}

void Engine::State::observe(Tick t) {
    for (auto& r : result.readouts) {
        const auto& ps = pops[r.population];
        r.ticks.push_back(t);
        for (std::size_t j = 0; j < ps.v.size(); ++j)
            r.values.push_back(ReadoutDynamics::drift(ps.v[j], ps.drive[j], t - ps.state_at[j]));
    }
}

// Frames of the probed potentials for the ticks before `until` (docs/traces.md, "Membrane reports").
void Engine::State::record_potentials(Tick until) {
    potentials.record_until(std::min(until, horizon), pops, [&](std::size_t probe, Tick t, std::span<const double> v) {
        if (sink) sink->on_potentials(probe, t, v);
        if (record) result.potentials[probe].insert(result.potentials[probe].end(), v.begin(), v.end());
    });
}

// A neuron's drift ticks are the gaps between its visits, which add up to its last visit + 1.
void Engine::State::count_drift_ticks() {
    for (PopulationId p = 0; p < pops.size(); ++p) {
        std::uint64_t ticks = 0;
        for (Tick last : pops[p].last_visit) ticks += std::uint64_t(last + 1);
        result.ledger.populations[p].drift_ticks = ticks;
    }
}

void Engine::State::begin(const Stimulus& stimulus, const RunOptions& options, std::uint64_t sample, SpikeSink* to) {
    if (options.ticks < 0) throw InputError("run: ticks must be >= 0, got " + std::to_string(options.ticks));
    if (options.threads_per_sample < 1 || options.threads_per_sample > max_batch_threads)
        throw InputError("run: threads per sample must be 1 to " + std::to_string(max_batch_threads) + ", got " +
                         std::to_string(options.threads_per_sample));
    validate(stimulus);
    PotentialRecorder::validate(net, options.potentials);
    const auto& only = options.record_populations;
    if (!only.empty() && only.size() != net.populations().size())
        throw InputError("run: record_populations has " + std::to_string(only.size()) + " flags for " +
                         std::to_string(net.populations().size()) + " populations");
    sink = to;
    record = options.record_spikes;
    recording.assign(net.populations().size(), record);
    if (record && !only.empty())
        for (std::size_t p = 0; p < only.size(); ++p) recording[p] = only[p];
    reset(stimulus, options, sample);
    potentials.reset(net, options.potentials, pops);
    if (record) result.potentials.resize(options.potentials.size());
    next = 0;
    started = true;
}

EngineState Engine::State::save() const {
    if (!started) throw std::logic_error("Engine::save: no sample is running");
    for (const auto& a : accumulators)
        if (!a.empty()) throw std::logic_error("Engine::save: a conv accumulator holds input between ticks");
    EngineState e;
    e.sample = result.sample;
    e.ticks = horizon;
    e.seed = seed;
    e.update_path = std::uint8_t(path);
    e.now = now;
    e.next = next;
    e.populations.resize(pops.size());
    for (PopulationId p = 0; p < pops.size(); ++p) {
        const auto& ps = pops[p];
        auto& out = e.populations[p];
        out.v = ps.v, out.input = ps.input, out.syn = ps.syn;
        out.state_at = ps.state_at, out.last_visit = ps.last_visit, out.wake_at = ps.wake_at;
        out.mark.assign(ps.mark.begin(), ps.mark.end());
        out.to_visit = ps.to_visit, out.unresolved = ps.unresolved, out.fired = ps.fired;
        out.sweeping = ps.sweeping;
        out.fired_tick = ps.fired_tick, out.held_input_at = ps.held_input_at;
        out.rng = ps.rng.state();
    }
    for (const auto& r : proj_rng) e.projection_rng.push_back(r.state());
    for (const auto& r : operator_rng) e.operator_rng.push_back(r.state());
    wakes.for_each([&](Tick at, const Wake& w) { e.wakes.push_back({at, w.population, w.neuron}); });
    deliveries.for_each([&](Tick at, const Delivery& d) {
        e.deliveries.push_back({at, d.projection, d.source, d.group});
    });
    e.observe_at = observe_at;
    e.result = result;
    return e;
}

// Called after begin() with the same stimulus and options, so everything derived from them (drives,
// release plans, observation ticks, readouts) is in place; the saved state must fit it.
void Engine::State::restore(const EngineState& e) {
    auto bad = [](const std::string& what) { throw InputError("engine state: " + what); };
    if (e.ticks != horizon) bad("for samples of " + std::to_string(e.ticks) + " ticks, not " + std::to_string(horizon));
    if (e.update_path != std::uint8_t(path)) bad("saved with another update path");
    if (e.seed != seed) bad("saved with seed " + std::to_string(e.seed) + ", not " + std::to_string(seed));
    if (e.now < 0 || e.next < e.now || e.next > horizon) bad("tick out of range");
    if (e.observe_at != observe_at) bad("observes other ticks");
    if (potentials.probes() != 0) bad("membrane potentials cannot be recorded in a continued sample");
    if (e.result.sample != e.sample) bad("its result belongs to another sample");
    if (e.populations.size() != pops.size() || e.projection_rng.size() != proj_rng.size() ||
        e.operator_rng.size() != operator_rng.size())
        bad("does not fit the network's populations, projections or operators");
    const auto& l = e.result.ledger;
    if (l.populations.size() != pops.size() || l.projections.size() != proj_rng.size() ||
        l.operators.size() != net.operators().size() || e.result.readouts.size() != result.readouts.size())
        bad("ledger or readouts do not fit the network");
    for (std::size_t r = 0; r < result.readouts.size(); ++r) {
        const auto& ro = e.result.readouts[r];
        if (ro.population != result.readouts[r].population ||
            ro.values.size() != ro.ticks.size() * pops[ro.population].size())
            bad("readout values do not fit the network");
    }
    auto in_range = [](const auto& list, std::size_t n) {
        return std::all_of(list.begin(), list.end(), [n](auto j) { return std::size_t(j) < n; });
    };
    for (PopulationId p = 0; p < pops.size(); ++p) {
        auto& ps = pops[p];
        const auto& in = e.populations[p];
        const std::size_t n = ps.size();
        if (in.v.size() != n || in.input.size() != n || in.syn.size() != ps.syn.size() || in.state_at.size() != n ||
            in.last_visit.size() != n || in.wake_at.size() != n || in.mark.size() != n || !in_range(in.to_visit, n) ||
            !in_range(in.unresolved, n) || !in_range(in.fired, n) ||
            std::any_of(in.mark.begin(), in.mark.end(), [](std::uint8_t m) { return m > (has_input | due); }) ||
            (in.sweeping && (ps.source || is_readout(net.population(p).model))) || in.rng == EngineState::Stream{})
            bad("population '" + net.population(p).name + "' does not fit the network");
        ps.v = in.v, ps.input = in.input, ps.syn = in.syn;
        ps.state_at = in.state_at, ps.last_visit = in.last_visit, ps.wake_at = in.wake_at;
        for (std::size_t j = 0; j < n; ++j) ps.mark[j] = Mark(in.mark[j]);
        ps.to_visit = in.to_visit, ps.unresolved = in.unresolved, ps.fired = in.fired;
        ps.sweeping = in.sweeping;
        ps.fired_tick = in.fired_tick, ps.held_input_at = in.held_input_at;
        ps.rng = RandomEngine::from_state(in.rng[0], in.rng[1], in.rng[2], in.rng[3]);
    }
    auto stream = [&](const EngineState::Stream& s) {
        if (s == EngineState::Stream{}) bad("a random stream is all zero");
        return RandomEngine::from_state(s[0], s[1], s[2], s[3]);
    };
    for (std::size_t r = 0; r < proj_rng.size(); ++r) proj_rng[r] = stream(e.projection_rng[r]);
    for (std::size_t r = 0; r < operator_rng.size(); ++r) operator_rng[r] = stream(e.operator_rng[r]);

    // Pending work goes back in its canonical order, into calendars whose present is the saved one.
    wakes.reset(std::min<Tick>(std::max<Tick>(horizon, 1), 1024), e.now);
    deliveries.reset(delivery_window, e.now);
    Tick previous = e.next;
    for (const auto& w : e.wakes) {
        if (w.tick < previous || w.tick >= horizon || w.population >= pops.size() ||
            w.neuron >= pops[w.population].size())
            bad("a pending wake-up is out of order or out of range");
        wakes.push(w.tick, {w.population, w.neuron});
        previous = w.tick;
    }
    previous = e.next;
    for (const auto& d : e.deliveries) {
        if (d.tick < previous || d.tick >= horizon || d.projection >= proj_rng.size())
            bad("a pending delivery is out of order or out of range");
        const auto& pr = net.projection(d.projection);
        const auto* sparse = std::get_if<SparseFanout>(&net.fanout(d.projection));
        const bool group_ok =
            sparse ? d.group >= sparse->group_begin[d.source] && d.group < sparse->group_begin[d.source + 1]
                   : d.group == 0;
        if (d.source >= pops[pr.source].size() || !group_ok) bad("a pending delivery is out of range");
        deliveries.push(d.tick, {d.projection, d.source, d.group});
        previous = d.tick;
    }
    now = e.now;
    next = e.next;
    result = e.result;
}

namespace {

// Physical memory, or the container's limit when one is set (cgroup v2): what a sample may use.
std::uint64_t machine_memory_bytes() {
    std::uint64_t bytes = std::uint64_t(sysconf(_SC_PHYS_PAGES)) * std::uint64_t(sysconf(_SC_PAGE_SIZE));
    std::ifstream limit("/sys/fs/cgroup/memory.max");
    std::uint64_t cgroup = 0;
    if (limit >> cgroup && cgroup > 0) bytes = std::min(bytes, cgroup); // "max" (no limit) fails to parse
    return bytes;
}

// A network accepted by build() can still be far too large to simulate (a population of 2^31
// neurons: fuzz_network); refuse it with numbers instead of being killed for memory mid-sample.
void require_memory_for(const Network& net) {
    std::uint64_t neurons = 0;
    for (const auto& pop : net.populations()) neurons += pop.size();
    const std::uint64_t needed = neurons * PopulationState::bytes_per_neuron, available = machine_memory_bytes();
    if (needed <= available) return;
    constexpr double gib = 1024.0 * 1024.0 * 1024.0;
    char line[256];
    std::snprintf(line, sizeof line,
                  "network: simulating its %llu neurons needs about %.1f GiB of state per engine (thread); "
                  "this machine has %.1f GiB",
                  static_cast<unsigned long long>(neurons), double(needed) / gib, double(available) / gib);
    throw InputError(line);
}

} // namespace

Engine::Engine(const Network& net) {
    require_memory_for(net);
    state_ = std::make_unique<State>(net);
}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;

SampleResult Engine::run(const Stimulus& stimulus, const RunOptions& options, std::uint64_t sample, SpikeSink* sink) {
    start(stimulus, options, sample, sink);
    advance();
    return finish();
}

void Engine::start(const Stimulus& stimulus, const RunOptions& options, std::uint64_t sample, SpikeSink* sink) {
    state_->begin(stimulus, options, sample, sink);
}

bool Engine::advance(Tick until, const std::function<bool()>& stop) {
    auto& s = *state_;
    if (!s.started) throw std::logic_error("Engine::advance: no sample is running");
    while (s.next < s.horizon && s.next < until) {
        const Tick t = s.next;
        s.record_potentials(t); // ticks without work before t
        s.next = s.step(t);
        s.record_potentials(t + 1);
        if (stop && stop()) break;
    }
    s.record_potentials(s.next);
    return done();
}

bool Engine::done() const { return state_->next >= state_->horizon; }

std::uint64_t Engine::parallel_steps() const { return state_->parallel_steps; }

Tick Engine::next_tick() const { return state_->next; }

SampleResult Engine::finish() {
    auto& s = *state_;
    if (!s.started || !done()) throw std::logic_error("Engine::finish: the sample is not complete");
    s.started = false;
    s.count_drift_ticks();
    return std::move(s.result);
}

EngineState Engine::save() const { return state_->save(); }

void Engine::restore(const EngineState& state, const Stimulus& stimulus, const RunOptions& options, SpikeSink* sink) {
    state_->begin(stimulus, options, state.sample, sink);
    try {
        state_->restore(state);
    } catch (...) {
        state_->started = false;
        throw;
    }
}

std::vector<SampleResult> run_batch(const Network& net, std::span<const Stimulus> stimuli, const RunOptions& options,
                                    std::uint64_t first_sample, int threads, const std::function<bool()>& stop) {
    return SampleBatches(net, threads).run(stimuli, options, first_sample, stop);
}

SampleBatches::SampleBatches(const Network& net, int threads) : net_(net) {
    if (threads < 0 || threads > max_batch_threads)
        throw InputError("run_batch: threads must be 0 (OpenMP's default) to " + std::to_string(max_batch_threads) +
                         ", got " + std::to_string(threads));
    require_memory_for(net); // here, not first inside the threads' engines: it throws
#ifdef _OPENMP
    if (threads <= 0) threads = omp_get_max_threads();
#endif
    engines_.resize(std::size_t(std::max(threads, 1)));
}

Engine& SampleBatches::first_engine() {
    if (!engines_.front()) engines_.front() = std::make_unique<Engine>(net_);
    return *engines_.front();
}

std::vector<SampleResult> SampleBatches::run(std::span<const Stimulus> stimuli, const RunOptions& options,
                                             std::uint64_t first_sample, const std::function<bool()>& stop) {
    const int threads = int(engines_.size());
    std::vector<SampleResult> results(stimuli.size());
    std::vector<char> ran(stimuli.size(), 0); // char, not bool: threads write neighbouring entries
    std::atomic<bool> stopped{false};
    std::exception_ptr error;
    const long n = long(stimuli.size());
    if (std::int64_t(threads) * options.threads_per_sample > max_batch_threads)
        throw InputError("run_batch: " + std::to_string(threads) + " threads over samples x " +
                         std::to_string(options.threads_per_sample) + " threads per sample exceed " +
                         std::to_string(max_batch_threads));
#ifdef _OPENMP
    // Each sample's own threads are a nested team: let OpenMP run it (it would run one thread otherwise).
    if (threads > 1 && options.threads_per_sample > 1 && omp_get_max_active_levels() < omp_get_level() + 2)
        omp_set_max_active_levels(omp_get_level() + 2);
#endif
#pragma omp parallel num_threads(threads)
    {
        int self = 0;
#ifdef _OPENMP
        self = omp_get_thread_num();
#endif
        auto& engine = engines_[std::size_t(self)];
#pragma omp for schedule(dynamic, 1)
        for (long i = 0; i < n; ++i) {
            try {
                if (stopped.load() || (stop && stop())) {
                    stopped.store(true);
                    continue;
                }
                if (!engine) engine = std::make_unique<Engine>(net_);
                results[i] = engine->run(stimuli[i], options, first_sample + std::uint64_t(i));
                ran[std::size_t(i)] = 1;
            } catch (...) {
#pragma omp critical
                if (!error) error = std::current_exception();
            }
        }
    }
    if (error) std::rethrow_exception(error);
    results.resize(std::size_t(std::find(ran.begin(), ran.end(), 0) - ran.begin()));
    return results;
}

} // namespace quantal
