#include "sim/engine.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "neurons/dynamics.hpp"
#include "sim/errors.hpp"
#include "sim/event_queue.hpp"
#include "sim/random.hpp"
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

// Per-population dynamic state of one sample.
struct PopulationState {
    std::vector<double> v, input, drive;
    std::vector<double> syn;    // synaptic current (CubaLIF only; empty otherwise)
    std::vector<Tick> last;     // tick of the last update; -1 before the first
    std::vector<Tick> wake_at;  // the one valid predicted crossing, or never
    std::vector<std::uint8_t> touched;
    std::vector<std::uint32_t> touched_list;
    Tick queued_for = -1;       // an update event for this tick is already queued
    std::vector<std::uint32_t> fired; // the spikes of the last update that had any ...
    Tick fired_tick = -1;             // ... and its tick (operators read them within the tick)
    double spike_value = 0;
    RandomEngine rng;           // Bernoulli sources

    void touch(std::uint32_t j) {
        if (!touched[j]) touched[j] = 1, touched_list.push_back(j);
    }
};

struct Engine::State {
    explicit State(const Network& n) : net(n) {
        for (ProjectionId pr = 0; pr < net.projections().size(); ++pr)
            plans.emplace_back(net.projection(pr).release, net.fanout(pr));
        pops.resize(net.populations().size());
        proj_rng.resize(net.projections().size());
        operator_rng.resize(3 * net.operators().size());
    }

    const Network& net;
    std::vector<ReleasePlan> plans;
    std::vector<PopulationState> pops;
    std::vector<RandomEngine> proj_rng;
    std::vector<RandomEngine> operator_rng; // per operator: q, k and score masks
    EventQueue queue;
    std::vector<std::uint32_t> kept_a, kept_b; // masked spike lists handed to operators
    WindowAttention::Scratch attention_scratch; // the network's operators are shared between threads
    Tick horizon = 0;
    SampleResult result;
    SpikeSink* sink = nullptr;
    bool record = false;

    void validate(const Stimulus& s) const;
    void reset(const Stimulus& s, const RunOptions& o, std::uint64_t sample);
    void schedule_crossing(PopulationId p, std::uint32_t j, Tick k_from_last);
    void request_update(PopulationId p, Tick t);
    void apply(const Event& e);
    void update(PopulationId p, Tick t);
    void propagate(PopulationId p, Tick t);
    void apply_operator(std::uint32_t op, PopulationId p, Tick t);
    std::span<const std::uint32_t> kept(PopulationId source, const Release& r, RandomEngine& rng,
                                        std::vector<std::uint32_t>& out, std::uint64_t& masked);
    void deliver(ProjectionId pr, std::uint32_t src, std::uint64_t group, Tick t);
    void observe(Tick t);
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
    queue.clear();
    result = SampleResult{};
    result.sample = sample;
    result.ledger = EnergyLedger::for_network(net, std::uint64_t(o.ticks));
    result.ledger.samples = 1;
    for (ProjectionId pr = 0; pr < proj_rng.size(); ++pr) proj_rng[pr] = make_stream(o.seed, sample, pr);
    for (std::size_t r = 0; r < operator_rng.size(); ++r) operator_rng[r] = make_stream(o.seed, sample, operator_stream + r);

    for (PopulationId p = 0; p < pops.size(); ++p) {
        const auto& pop = net.population(p);
        auto& ps = pops[p];
        const std::uint32_t n = pop.size();
        ps.v.assign(n, initial_potential(pop.model));
        ps.input.assign(n, 0.0);
        ps.syn.assign(std::holds_alternative<CubaLifNeuron>(pop.model) ? n : 0, 0.0);
        ps.drive.assign(n, pop.bias.size() == 1 ? pop.bias[0] : 0.0);
        if (pop.bias.size() == n) ps.drive = pop.bias;
        if (!s.current[p].empty())
            for (std::uint32_t j = 0; j < n; ++j) ps.drive[j] += s.current[p][j];
        ps.last.assign(n, -1);
        ps.wake_at.assign(n, never);
        ps.touched.assign(n, 0);
        ps.touched_list.clear();
        ps.queued_for = -1;
        ps.fired.clear();
        ps.fired_tick = -1;
        ps.spike_value = spike_value(pop.model);
        ps.rng = make_stream(o.seed, sample, population_stream + p);
        result.ledger.populations[p].macs = s.current_macs[p] * std::uint64_t(o.ticks);

        const std::uint32_t stage = net.stage(p);
        if (const auto* src = std::get_if<BernoulliSource>(&pop.model)) {
            for (std::uint32_t j = 0; j < n; ++j) {
                const double q = src->probability.size() == 1 ? src->probability[0] : src->probability[j];
                if (q <= 0.0) continue;
                const Tick first = q >= 1.0 ? 0 : Tick(GeometricGaps(q).next(ps.rng, std::uint64_t(horizon)));
                if (first < horizon) queue.push({first, stage, Event::Kind::wake, p, j});
            }
        } else if (std::holds_alternative<SpikeSource>(pop.model)) {
            for (const auto& sp : s.spikes[p])
                if (sp.tick < horizon) queue.push({sp.tick, stage, Event::Kind::wake, p, sp.neuron});
        } else if (!is_readout(pop.model)) {
            for (std::uint32_t j = 0; j < n; ++j) schedule_crossing(p, j, -1);
        } else {
            result.readouts.push_back(Readout{p, {}, {}});
        }
    }

    std::vector<Tick> observe = o.observe;
    if (observe.empty() && horizon > 0) observe.push_back(horizon - 1);
    const auto after_all = std::uint32_t(pops.size());
    for (Tick t : observe)
        if (t >= 0 && t < horizon) queue.push({t, after_all, Event::Kind::observe, 0, 0});
}

// Predicts when neuron j, last updated at tick `now`, crosses threshold under drift alone.
void Engine::State::schedule_crossing(PopulationId p, std::uint32_t j, Tick now) {
    auto& ps = pops[p];
    const Tick k = std::visit(
        [&](const auto& model) -> Tick {
            using M = std::decay_t<decltype(model)>;
            if constexpr (std::is_same_v<M, IfNeuron>)
                return IfDynamics(model).ticks_to_crossing(ps.v[j], ps.drive[j]);
            else if constexpr (std::is_same_v<M, LifNeuron>)
                return LifDynamics(model).ticks_to_crossing(ps.v[j], ps.drive[j]);
            else if constexpr (std::is_same_v<M, CubaLifNeuron>)
                return CubaLifDynamics(model).ticks_to_crossing(ps.syn[j], ps.v[j], ps.drive[j]);
            else
                return never;
        },
        net.population(p).model);
    const Tick at = (k == never || k >= horizon - now) ? never : now + k;
    if (at == ps.wake_at[j]) return; // the event for it is already queued
    ps.wake_at[j] = at;
    if (at != never) queue.push({at, net.stage(p), Event::Kind::wake, p, j});
}

void Engine::State::request_update(PopulationId p, Tick t) {
    if (pops[p].queued_for == t) return;
    pops[p].queued_for = t;
    queue.push({t, net.stage(p), Event::Kind::update, p, 0});
}

void Engine::State::apply(const Event& e) {
    switch (e.kind) {
    case Event::Kind::deliver: deliver(e.index, e.neuron, e.group, e.tick); break;
    case Event::Kind::wake: {
        auto& ps = pops[e.index];
        const bool spiking = !is_source(net.population(e.index).model);
        if (spiking && ps.wake_at[e.neuron] != e.tick) break; // superseded by a later prediction
        if (spiking) ++result.ledger.populations[e.index].wakeups;
        ps.touch(e.neuron);
        break;
    }
    case Event::Kind::update:
    case Event::Kind::observe: break;
    }
}

// Touched neurons in ascending order, whatever the delivery order. Dense fan-outs deliver in
// order already; when many neurons are touched (sparse fan-outs with random targets), one scan of
// the flags is cheaper than sorting them (docs/performance.md).
static void canonical_order(PopulationState& ps) {
    auto& list = ps.touched_list;
    if (std::is_sorted(list.begin(), list.end())) return;
    if (list.size() < ps.touched.size() / 16) {
        std::sort(list.begin(), list.end());
        return;
    }
    std::size_t n = 0;
    for (std::uint32_t j = 0; j < ps.touched.size(); ++j)
        if (ps.touched[j]) list[n++] = j;
}

void Engine::State::update(PopulationId p, Tick t) {
    auto& ps = pops[p];
    auto& counts = result.ledger.populations[p];
    auto& fired = ps.fired;
    fired.clear();
    for (std::uint32_t op : net.operators_into(p)) apply_operator(op, p, t);
    canonical_order(ps);

    auto integrate = [&](auto drift, auto&& on_value) {
        for (std::uint32_t j : ps.touched_list) {
            const Tick k = t - ps.last[j];
            double v = drift(ps.v[j], ps.drive[j], k) + ps.input[j];
            ps.input[j] = 0.0;
            ps.last[j] = t;
            counts.drift_ticks += std::uint64_t(k);
            on_value(j, v);
            ps.v[j] = v;
        }
        counts.updates += ps.touched_list.size();
    };
    auto spiking = [&](const auto& dyn) {
        integrate([&](double v, double b, Tick k) { return dyn.drift(v, b, k); }, [&](std::uint32_t j, double& v) {
            if (dyn.rule().crossed(v)) v = dyn.rule().after_spike(v), fired.push_back(j);
        });
        for (std::uint32_t j : ps.touched_list) schedule_crossing(p, j, t);
    };

    // Current-based: the input enters the synaptic current, the threshold watches v.
    auto current_based = [&](const CubaLifDynamics& dyn) {
        for (std::uint32_t j : ps.touched_list) {
            const Tick k = t - ps.last[j];
            dyn.advance(ps.syn[j], ps.v[j], ps.drive[j], ps.input[j], k);
            ps.input[j] = 0.0;
            ps.last[j] = t;
            counts.drift_ticks += std::uint64_t(k);
            if (dyn.rule().crossed(ps.v[j])) ps.v[j] = dyn.rule().after_spike(ps.v[j]), fired.push_back(j);
        }
        counts.updates += ps.touched_list.size();
        for (std::uint32_t j : ps.touched_list) schedule_crossing(p, j, t);
    };

    std::visit(
        [&](const auto& model) {
            using M = std::decay_t<decltype(model)>;
            if constexpr (std::is_same_v<M, IfNeuron>) spiking(IfDynamics(model));
            else if constexpr (std::is_same_v<M, LifNeuron>) spiking(LifDynamics(model));
            else if constexpr (std::is_same_v<M, CubaLifNeuron>) current_based(CubaLifDynamics(model));
            else if constexpr (std::is_same_v<M, ReadoutNeuron>)
                integrate(&ReadoutDynamics::drift, [](std::uint32_t, double&) {});
            else {
                fired = ps.touched_list; // a source's due neurons are its spikes
                if constexpr (std::is_same_v<M, BernoulliSource>)
                    for (std::uint32_t j : fired) {
                        const double q = model.probability.size() == 1 ? model.probability[0] : model.probability[j];
                        const Tick next = q >= 1.0 ? t + 1 : t + 1 + Tick(GeometricGaps(q).next(ps.rng, std::uint64_t(horizon)));
                        if (next < horizon) queue.push({next, net.stage(p), Event::Kind::wake, p, j});
                    }
            }
        },
        net.population(p).model);

    for (std::uint32_t j : ps.touched_list) ps.touched[j] = 0;
    ps.touched_list.clear();
    if (fired.empty()) return;
    ps.fired_tick = t;
    counts.spikes += fired.size();
    if (sink) sink->on_spikes(p, t, fired);
    if (record)
        for (std::uint32_t j : fired) result.spikes.push_back({t, p, j});
    propagate(p, t);
    for (PopulationId target : net.operator_targets(p)) request_update(target, t);
}

// Per-spike release (RSM) on an operator's input: the spikes that survive, drawn per tick.
std::span<const std::uint32_t> Engine::State::kept(PopulationId source, const Release& r, RandomEngine& rng,
                                                   std::vector<std::uint32_t>& out, std::uint64_t& masked) {
    const auto& fired = pops[source].fired;
    if (r.mode == ReleaseMode::none || r.mask_ratio == 0.0) return fired;
    const BernoulliThreshold keep(1.0 - r.mask_ratio);
    out.clear();
    for (std::uint32_t j : fired)
        if (keep(rng)) out.push_back(j);
    masked += fired.size() - out.size();
    return out;
}

// Computes an operator's input to population p for tick t from its sources' spikes of tick t.
void Engine::State::apply_operator(std::uint32_t op, PopulationId p, Tick t) {
    const auto& a = std::get<SoftmaxAttention>(net.operators()[op]);
    const auto& attention = net.attention(op);
    auto& counts = result.ledger.operators[op];
    auto& target = pops[p];
    auto add = [&](std::uint32_t n, double x) {
        target.input[n] += x;
        target.touch(n);
    };
    auto fired_now = [&](PopulationId q) { return pops[q].fired_tick == t; };
    if (p == a.scores && fired_now(a.q) && fired_now(a.k)) {
        const auto q = kept(a.q, a.q_release, operator_rng[3 * op], kept_a, counts.masked_spikes);
        const auto k = kept(a.k, a.k_release, operator_rng[3 * op + 1], kept_b, counts.masked_spikes);
        attention.coincide(q, k, a.scale * pops[a.q].spike_value * pops[a.k].spike_value, add, counts,
                            attention_scratch);
    }
    if (p == a.output && fired_now(a.v)) {
        std::span<const std::uint32_t> scores;
        if (fired_now(a.scores)) scores = kept(a.scores, a.score_release, operator_rng[3 * op + 2], kept_a, counts.masked_spikes);
        attention.attend(scores, pops[a.scores].spike_value, pops[a.v].fired, pops[a.v].spike_value, add, counts,
                         attention_scratch);
    }
}

void Engine::State::propagate(PopulationId p, Tick t) {
    const auto& fired = pops[p].fired;
    for (ProjectionId pr : net.outgoing(p)) {
        const auto& projection = net.projection(pr);
        const auto& fanout = net.fanout(pr);
        const auto& plan = plans[pr];
        auto& counts = result.ledger.projections[pr];
        auto& rng = proj_rng[pr];
        const std::uint32_t stage = net.stage(projection.target);
        if (const auto* sparse = std::get_if<SparseFanout>(&fanout)) {
            for (std::uint32_t j : fired) {
                const auto g0 = sparse->group_begin[j], g1 = sparse->group_begin[j + 1];
                std::uint64_t in_time = 0; // synapses whose delivery falls inside the sample
                for (auto g = g0; g < g1; ++g)
                    if (t + sparse->groups[g].delay < horizon) in_time += sparse->groups[g].end - sparse->groups[g].begin;
                if (in_time == 0) continue;
                ++counts.spikes_in;
                if (plan.mode() == ReleaseMode::spike && plan.drop_spike(rng)) {
                    ++counts.masked_spikes, counts.attempted += in_time;
                    continue;
                }
                for (auto g = g0; g < g1; ++g) {
                    const Tick at = t + sparse->groups[g].delay;
                    if (at >= horizon) continue;
                    if (at == t) deliver(pr, j, g, t);
                    else queue.push({at, stage, Event::Kind::deliver, pr, j, g});
                }
            }
            continue;
        }
        const Tick at = t + projection.delay;
        if (at >= horizon) continue; // would arrive after the sample ends
        for (std::uint32_t j : fired) {
            ++counts.spikes_in;
            if (plan.mode() == ReleaseMode::spike && plan.drop_spike(rng)) {
                ++counts.masked_spikes;
                counts.attempted += std::visit([&](const auto& f) { return f.size(j); }, fanout);
                continue;
            }
            if (at == t) deliver(pr, j, 0, t);
            else queue.push({at, stage, Event::Kind::deliver, pr, j});
        }
    }
}

void Engine::State::deliver(ProjectionId pr, std::uint32_t src, std::uint64_t group, Tick t) {
    const auto& projection = net.projection(pr);
    const auto& fanout = net.fanout(pr);
    auto& target = pops[projection.target];
    auto& counts = result.ledger.projections[pr];
    std::uint64_t begin = 0, end = 0;
    if (const auto* sparse = std::get_if<SparseFanout>(&fanout)) begin = sparse->groups[group].begin, end = sparse->groups[group].end;
    const double value = pops[projection.source].spike_value;
    // Raw pointers held in locals: stores to the uint8_t flags may alias anything, so going through
    // the vectors would reload their data pointers for every synapse.
    double* const input = target.input.data();
    std::uint8_t* const touched = target.touched.data();
    counts.transmitted += transmit(fanout, src, begin, end, value, plans[pr], proj_rng[pr], [&](std::uint32_t k, double x) {
        input[k] += x;
        if (!touched[k]) touched[k] = 1, target.touched_list.push_back(k);
    });
    counts.attempted += std::holds_alternative<SparseFanout>(fanout)
                            ? end - begin
                            : std::visit([&](const auto& f) { return f.size(src); }, fanout);
    request_update(projection.target, t);
}

void Engine::State::observe(Tick t) {
    for (auto& r : result.readouts) {
        const auto& ps = pops[r.population];
        r.ticks.push_back(t);
        for (std::size_t j = 0; j < ps.v.size(); ++j)
            r.values.push_back(ReadoutDynamics::drift(ps.v[j], ps.drive[j], t - ps.last[j]));
    }
}

Engine::Engine(const Network& net) : state_(std::make_unique<State>(net)) {}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;

SampleResult Engine::run(const Stimulus& stimulus, const RunOptions& options, std::uint64_t sample, SpikeSink* sink) {
    auto& s = *state_;
    if (options.ticks < 0) throw InputError("run: ticks must be >= 0, got " + std::to_string(options.ticks));
    s.validate(stimulus);
    s.sink = sink;
    s.record = options.record_spikes;
    s.reset(stimulus, options, sample);
    const auto after_all = std::uint32_t(s.pops.size());

    while (!s.queue.empty() && s.queue.top().tick < s.horizon) {
        const Tick t = s.queue.top().tick;
        const std::uint32_t stage = s.queue.top().stage;
        if (stage == after_all) {
            s.queue.pop();
            s.observe(t);
            continue;
        }
        const PopulationId p = s.net.population_at_stage(stage);
        s.pops[p].queued_for = t; // everything due for (t, stage) is applied below
        while (!s.queue.empty() && s.queue.top().tick == t && s.queue.top().stage == stage) {
            const Event e = s.queue.top();
            s.queue.pop();
            s.apply(e);
        }
        s.update(p, t);
    }
    s.queue.clear();
    return std::move(s.result);
}

std::vector<SampleResult> run_batch(const Network& net, std::span<const Stimulus> stimuli, const RunOptions& options,
                                    std::uint64_t first_sample, int threads) {
    std::vector<SampleResult> results(stimuli.size());
    std::exception_ptr error;
    const long n = long(stimuli.size());
#ifdef _OPENMP
    if (threads <= 0) threads = omp_get_max_threads();
#endif
#pragma omp parallel num_threads(threads > 0 ? threads : 1)
    {
        Engine engine(net);
#pragma omp for schedule(dynamic, 1)
        for (long i = 0; i < n; ++i) {
            try {
                results[i] = engine.run(stimuli[i], options, first_sample + std::uint64_t(i));
            } catch (...) {
#pragma omp critical
                if (!error) error = std::current_exception();
            }
        }
    }
    if (error) std::rethrow_exception(error);
    return results;
}

} // namespace quantal
