#include "network/network.hpp"

#include <algorithm>
#include <boost/graph/depth_first_search.hpp>
#include <boost/graph/topological_sort.hpp>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <map>
#include <memory>
#include <numeric>
#include <set>

#include "network/targets.hpp"
#include "sim/errors.hpp"
#include "sim/overloaded.hpp"

namespace quantal {

namespace {

[[noreturn]] void fail(const std::string& what) { throw ModelError(what); }

void require(bool ok, const std::string& where, const std::string& what) {
    if (!ok) fail(where + ": " + what);
}

void check_release(const Release& r, const std::string& where) {
    require(std::isfinite(r.mask_ratio) && r.mask_ratio >= 0.0 && r.mask_ratio <= 1.0, where,
            "mask ratio " + std::to_string(r.mask_ratio) + " is outside [0, 1]");
    require(r.mode != ReleaseMode::none || r.mask_ratio == 0.0, where,
            "a mask ratio needs release mode 'spike' or 'synapse'");
    require(!r.compensate || r.mode == ReleaseMode::none || r.mask_ratio < 1.0, where,
            "compensation multiplies surviving weights by 1 / (1 - r), which needs a mask ratio below 1");
    require(std::isfinite(r.spread) && r.spread >= 0.0 && r.spread <= max_release_spread, where,
            "release spread " + std::to_string(r.spread) + " is outside [0, 1e6] (0: homogeneous)");
}

// One table per distinct (mean, concentration), shared by every projection and operator input
// that uses it: a table costs thousands of ibeta_inv calls.
void lower_spreads(Network& net, std::vector<std::shared_ptr<const ReleaseSpread>>& projections,
                   std::vector<std::shared_ptr<const ReleaseSpread>>& operators) {
    std::map<std::pair<double, double>, std::shared_ptr<const ReleaseSpread>> tables;
    auto table = [&](const Release& r) -> std::shared_ptr<const ReleaseSpread> {
        if (!r.heterogeneous()) return nullptr;
        auto& t = tables[{r.probability(), r.spread}];
        if (!t) t = std::make_shared<const ReleaseSpread>(r.probability(), r.spread);
        return t;
    };
    projections.clear();
    for (const auto& pr : net.projections()) projections.push_back(table(pr.release));
    operators.clear();
    for (const auto& op : net.operators()) {
        const auto& a = std::get<SoftmaxAttention>(op);
        for (const Release* r : {&a.q_release, &a.k_release, &a.score_release}) operators.push_back(table(*r));
    }
}

void check_operator_release(const Release& r, const std::string& where) {
    require(r.mode != ReleaseMode::synapse, where, "release must be 'none' or 'spike' (per-element masks)");
    check_release(r, where);
}

std::string number_text(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", v);
    return text;
}

// A parameter of one value or one per neuron, each finite and `ok`: what fails is named with its
// index when it is one neuron's ("tau_ticks[3] is -1, expected > 0").
template <class Ok>
void check_values(const PerNeuron& x, std::uint32_t n, const std::string& name, const std::string& where, Ok ok,
                  const char* expected) {
    require(x.size() == 1 || x.size() == n, where,
            name + " has " + std::to_string(x.size()) + " values, expected 1 or " + std::to_string(n) + " (one per neuron)");
    for (std::size_t j = 0; j < x.size(); ++j) {
        const std::string which = x.uniform() ? name : name + "[" + std::to_string(j) + "]";
        require(std::isfinite(x[j]), where, which + " is not finite");
        require(ok(x[j]), where, which + " is " + number_text(x[j]) + ", expected " + expected);
    }
}
void check_finite(const PerNeuron& x, std::uint32_t n, const std::string& name, const std::string& where) {
    check_values(x, n, name, where, [](double) { return true; }, "a finite number");
}
void check_tau(const PerNeuron& x, std::uint32_t n, const std::string& name, const std::string& where) {
    check_values(x, n, name, where, [](double v) { return v > 0; }, "> 0 ticks");
}

void check_rule(const ThresholdRule& r, std::uint32_t n, const std::string& where) {
    if (r.reset == ResetMode::subtract)
        check_values(r.threshold, n, "threshold", where, [](double v) { return v > 0; },
                     "> 0 (reset by subtraction needs a positive threshold)");
    else check_finite(r.threshold, n, "threshold", where);
    check_finite(r.v_reset, n, "v_reset", where);
    require(r.reset == ResetMode::to_value || r.v_reset == PerNeuron(0.0), where, "v_reset has no effect with reset by subtraction");
}

// Per-tick spike probabilities of a source given in Hz, at dt ms per tick.
BernoulliSource poisson_process(const PoissonSource& m, double dt_ms, const std::string& where) {
    BernoulliSource b{{}, m.spike_value};
    for (std::size_t j = 0; j < m.rate_hz.size(); ++j) {
        const double rate = m.rate_hz[j], p = rate * dt_ms / 1000.0;
        const std::string which = m.rate_hz.size() == 1 ? "rate" : "rate[" + std::to_string(j) + "]";
        require(std::isfinite(rate) && rate >= 0.0, where, which + " is " + number_text(rate) + " Hz, expected a finite rate >= 0");
        require(p <= 1.0, where, which + " " + number_text(rate) + " Hz at dt " + number_text(dt_ms) +
                                     " ms is a spike probability of " + number_text(p) +
                                     " per tick, above 1 (at most one spike per tick): use a smaller dt");
        b.probability.push_back(p);
    }
    return b;
}

void check_dt(double dt_ms) {
    require(std::isfinite(dt_ms) && dt_ms > 0.0, "network", "dt " + number_text(dt_ms) + " ms per tick must be finite and > 0");
}

void check_model(const Population& p, const std::string& where) {
    const std::uint32_t n = p.size();
    std::visit(overloaded{
                   [&](const IfNeuron& m) {
                       check_rule(m.rule, n, where);
                       check_finite(m.v0, n, "v0", where);
                       require(std::isfinite(m.spike_value), where, "spike_value is not finite");
                   },
                   [&](const LifNeuron& m) {
                       check_rule(m.rule, n, where);
                       check_tau(m.tau_ticks, n, "tau_ticks", where);
                       check_finite(m.v0, n, "v0", where);
                       check_finite(m.v_leak, n, "v_leak", where);
                       require(std::isfinite(m.spike_value), where, "spike_value is not finite");
                   },
                   [&](const CubaLifNeuron& m) {
                       check_rule(m.rule, n, where);
                       check_tau(m.tau_ticks, n, "tau_ticks", where);
                       check_tau(m.tau_syn_ticks, n, "tau_syn_ticks", where);
                       check_finite(m.v0, n, "v0", where);
                       check_finite(m.v_leak, n, "v_leak", where);
                       require(std::isfinite(m.spike_value), where, "spike_value is not finite");
                   },
                   [&](const ReadoutNeuron& m) { check_finite(m.v0, n, "v0", where); },
                   [&](const SpikeSource& m) { require(std::isfinite(m.spike_value), where, "spike_value is not finite"); },
                   [&](const BernoulliSource& m) {
                       require(m.probability.size() == 1 || m.probability.size() == p.size(), where,
                               "needs one spike probability or one per neuron");
                       for (double q : m.probability)
                           require(q >= 0.0 && q <= 1.0, where, "spike probability " + std::to_string(q) + " is outside [0, 1]");
                       require(std::isfinite(m.spike_value), where, "spike_value is not finite");
                   },
                   [&](const PoissonSource& m) {
                       require(m.rate_hz.size() == 1 || m.rate_hz.size() == n, where,
                               "rate has " + std::to_string(m.rate_hz.size()) + " values, expected 1 or " +
                                   std::to_string(n) + " (one per neuron)");
                       require(std::isfinite(m.spike_value), where, "spike_value is not finite");
                   }},
               p.model);
}

// The Poisson sources' per-tick processes at the network's dt (refused where a rate cannot be one).
void lower_poisson(Network& net, std::vector<std::optional<BernoulliSource>>& processes) {
    processes.assign(net.populations().size(), std::nullopt);
    for (PopulationId p = 0; p < processes.size(); ++p)
        if (const auto* m = std::get_if<PoissonSource>(&net.population(p).model))
            processes[p] = poisson_process(*m, net.dt_ms(), "population '" + net.population(p).name + "'");
}

// Names the populations on one zero-delay cycle, found by depth-first search.
struct CycleFinder : boost::default_dfs_visitor {
    std::vector<std::size_t>* parent;
    std::vector<std::size_t>* cycle;
    template <class E, class G> void tree_edge(E e, const G& g) { (*parent)[target(e, g)] = source(e, g); }
    template <class E, class G> void back_edge(E e, const G& g) {
        if (!cycle->empty()) return;
        for (auto v = source(e, g); v != target(e, g); v = (*parent)[v]) cycle->push_back(v);
        cycle->push_back(target(e, g));
        std::reverse(cycle->begin(), cycle->end());
    }
};

} // namespace

std::uint32_t Population::size() const {
    return std::uint32_t(std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>()));
}

std::optional<PopulationId> Network::find_population(std::string_view name) const {
    for (PopulationId p = 0; p < populations_.size(); ++p)
        if (populations_[p].name == name) return p;
    return std::nullopt;
}

std::optional<ProjectionId> Network::find_projection(std::string_view name) const {
    for (ProjectionId p = 0; p < projections_.size(); ++p)
        if (projections_[p].name == name) return p;
    return std::nullopt;
}

PopulationId NetworkBuilder::add_population(Population p) {
    populations_.push_back(std::move(p));
    return PopulationId(populations_.size() - 1);
}

std::uint32_t NetworkBuilder::add_operator(Operator op) {
    operators_.push_back(std::move(op));
    return std::uint32_t(operators_.size() - 1);
}

std::uint32_t NetworkBuilder::add_layer_norm_head(LayerNormHead h) {
    heads_.push_back(std::move(h));
    return std::uint32_t(heads_.size() - 1);
}

void layer_norm_head(const LayerNormHead& h, std::span<const double> z, std::uint32_t positions, std::span<double> out) {
    const std::size_t c_n = h.gamma.size();
    std::vector<double> pooled(c_n, 0.0);
    for (std::uint32_t p = 0; p < positions; ++p) {
        double mean = 0.0, var = 0.0;
        for (std::size_t c = 0; c < c_n; ++c) mean += z[c * positions + p];
        mean /= double(c_n);
        for (std::size_t c = 0; c < c_n; ++c) {
            const double d = z[c * positions + p] - mean;
            var += d * d;
        }
        const double inv = 1.0 / std::sqrt(var / double(c_n) + h.eps);
        for (std::size_t c = 0; c < c_n; ++c) pooled[c] += (z[c * positions + p] - mean) * inv;
    }
    // gamma and beta are per channel, so they commute with the mean over positions
    for (std::size_t c = 0; c < c_n; ++c) pooled[c] = h.gamma[c] * pooled[c] / double(positions) + h.beta[c];
    for (std::size_t o = 0; o < out.size(); ++o) {
        double sum = 0.0;
        for (std::size_t c = 0; c < c_n; ++c) sum += double(h.weight[o * c_n + c]) * pooled[c];
        out[o] += sum;
    }
}

std::uint64_t Network::head_macs(std::size_t h) const {
    const auto& head = heads_[h];
    const std::uint64_t map = populations_[head.sources.front()].size(), c = head.gamma.size();
    // the stream's sum, then mean, variance and normalisation per element, then the weight
    return map * (head.sources.size() + 3) + head_idle_[h].size() * c;
}

std::uint64_t AnnBaseline::macs() const {
    std::uint64_t n = 0;
    for (const auto& l : layers) n += l.macs;
    return n;
}

bool is_ann_layer_kind(std::string_view kind) {
    return kind == "analog_input" || kind == "linear" || kind == "attention";
}

std::uint64_t Network::ann_macs() const {
    std::uint64_t n = 0;
    for (auto s : synapses_) n += s;
    for (const auto& a : attention_) n += a.ann_macs();
    return n;
}

Connectivity Network::connectivity(ProjectionId p) const {
    return user_form(fanouts_.at(p), geometry_.at(p), projections_[p].delay);
}

Network with_release(Network net, std::span<const Release> projections, std::span<const Release> operators) {
    require(projections.size() == net.projections_.size() && operators.size() == net.operators_.size(),
            "with_release", "needs one release per projection and one per operator");
    for (std::size_t i = 0; i < projections.size(); ++i) {
        check_release(projections[i], "projection '" + net.projections_[i].name + "'");
        net.projections_[i].release = projections[i];
    }
    for (std::size_t i = 0; i < operators.size(); ++i) {
        auto& a = std::get<SoftmaxAttention>(net.operators_[i]);
        check_operator_release(operators[i], "operator '" + a.name + "'");
        a.q_release = a.k_release = a.score_release = operators[i];
    }
    lower_spreads(net, net.spreads_, net.operator_spreads_);
    return net;
}

const BernoulliSource* Network::spike_process(PopulationId p) const {
    if (const auto* m = std::get_if<BernoulliSource>(&populations_.at(p).model)) return m;
    return poisson_processes_[p] ? &*poisson_processes_[p] : nullptr;
}

Network with_dt(Network net, double dt_ms) {
    check_dt(dt_ms);
    net.dt_ms_ = dt_ms;
    lower_poisson(net, net.poisson_processes_);
    return net;
}

ProjectionId NetworkBuilder::connect(Projection p) {
    projections_.push_back(std::move(p));
    return ProjectionId(projections_.size() - 1);
}

Network NetworkBuilder::build() const {
    Network net;
    net.populations_ = populations_;
    const std::size_t n_pop = populations_.size();

    std::set<std::string> names;
    for (const auto& p : net.populations_) {
        const std::string where = "population '" + p.name + "'";
        require(!p.name.empty() && p.name.find('/') == std::string::npos, where, "name must be non-empty and contain no '/'");
        require(names.insert(p.name).second, where, "name is used twice");
        require(!p.shape.empty(), where, "shape is empty");
        std::int64_t n = 1;
        for (auto d : p.shape) {
            require(d > 0, where, "shape has a non-positive extent " + std::to_string(d));
            // Checked before multiplying: (3, 2^62) wrapped n negative and passed (fuzz_network).
            require(d <= ((std::int64_t{1} << 32) - 1) / n, where, "has more than 2^32 neurons");
            n *= d;
        }
        require(p.bias.size() <= 1 || p.bias.size() == std::size_t(n), where,
                "bias has " + std::to_string(p.bias.size()) + " values, expected 1 or " + std::to_string(n));
        for (double b : p.bias) require(std::isfinite(b), where, "bias is not finite");
        require(p.bias.empty() || !is_source(p.model), where, "a spike source takes no bias");
        check_model(p, where);
        net.neuron_tables_.push_back(neuron_table(p.model, p.size()));
    }
    check_dt(dt_ms_);
    net.dt_ms_ = dt_ms_;
    lower_poisson(net, net.poisson_processes_);

    names.clear();
    net.outgoing_.assign(n_pop, {});
    net.graph_ = PopulationGraph(n_pop);
    for (ProjectionId id = 0; id < projections_.size(); ++id) {
        const auto& user = projections_[id];
        net.projections_.push_back({user.name, user.source, user.target, user.delay, user.release, user.role});
        auto& pr = net.projections_.back();
        require(pr.source < n_pop && pr.target < n_pop, "projection #" + std::to_string(id),
                "connects a population that does not exist");
        const auto& src = net.populations_[pr.source];
        const auto& dst = net.populations_[pr.target];
        if (pr.name.empty()) pr.name = src.name + "->" + dst.name;
        const std::string where = "projection '" + pr.name + "'";
        require(names.insert(pr.name).second, where, "name is used twice");
        require(!is_source(dst.model), where, "targets spike source '" + dst.name + "', which takes no input");
        require(!is_readout(src.model), where, "starts at readout '" + src.name + "', which never spikes");
        require(pr.delay <= (1u << 24), where, "delay " + std::to_string(pr.delay) + " is out of range");
        // Per-synapse delays too: the engine's calendar spans the largest one (a delay of 2^32 - 1
        // asked for a 103 GB window; fuzz_network).
        if (const auto* sparse = std::get_if<Sparse>(&user.connectivity))
            for (const auto d : sparse->delay)
                require(d <= (1u << 24), where, "synapse delay " + std::to_string(d) + " is out of range (at most 2^24)");
        check_release(pr.release, where);
        if (!pr.role.empty() && !is_projection_role(pr.role)) {
            std::string known;
            for (auto r : projection_roles()) known += (known.empty() ? "" : ", ") + std::string(r);
            fail(where + ": role '" + pr.role + "' is not one of " + known);
        }
        net.fanouts_.push_back(compile_fanout(user.connectivity, src.shape, dst.shape, pr.delay, where));
        net.geometry_.push_back(geometry_of(user.connectivity));
        net.min_delay_.push_back(quantal::min_delay(net.fanouts_.back(), pr.delay));
        net.synapses_.push_back(synapse_count(net.fanouts_.back(), src.size()));
        net.stored_weights_.push_back(std::visit(overloaded{[](const Pool2d&) { return std::uint64_t{0}; },
                                                            [](const auto& c) { return std::uint64_t(c.weight.size()); }},
                                                 user.connectivity));
        net.outgoing_[pr.source].push_back(id);
        boost::add_edge(pr.source, pr.target, ProjectionEdge{id}, net.graph_);
    }

    // Operators: validated and compiled; their data flow is zero-delay, like a projection's.
    net.operators_ = operators_;
    net.operators_into_.assign(n_pop, {});
    net.operator_targets_.assign(n_pop, {});
    std::vector<std::pair<PopulationId, PopulationId>> operator_edges;
    names.clear();
    for (std::uint32_t id = 0; id < net.operators_.size(); ++id) {
        const auto& op = std::get<SoftmaxAttention>(net.operators_[id]);
        const std::string where = "operator '" + op.name + "'";
        require(!op.name.empty() && names.insert(op.name).second, where, "name must be non-empty and unique");
        for (PopulationId p : {op.q, op.k, op.v, op.scores, op.output}) {
            require(p < n_pop, where, "refers to a population that does not exist");
            require(!is_source(net.populations_[p].model) && !is_readout(net.populations_[p].model), where,
                    "population '" + net.populations_[p].name + "' must be a spiking neuron population");
        }
        const Shape& map = net.populations_[op.q].shape;
        for (PopulationId p : {op.k, op.v, op.output})
            require(net.populations_[p].shape == map, where,
                    "q, k, v and output must have one shape; '" + net.populations_[p].name + "' differs");
        for (const Release* r : {&op.q_release, &op.k_release, &op.score_release}) check_operator_release(*r, where);
        net.attention_.emplace_back(op, map, net.populations_[op.scores].shape, where);
        net.operators_into_[op.scores].push_back(id);
        net.operators_into_[op.output].push_back(id);
        for (auto [from, to] : {std::pair{op.q, op.scores}, {op.k, op.scores}, {op.scores, op.output}, {op.v, op.output}}) {
            operator_edges.emplace_back(from, to);
            auto& targets = net.operator_targets_[from];
            if (std::find(targets.begin(), targets.end(), to) == targets.end()) targets.push_back(to);
        }
    }

    // LayerNorm heads: sources of one (C, ...) shape into a readout; zero-delay data flow.
    net.heads_ = heads_;
    net.heads_into_.assign(n_pop, {});
    for (std::uint32_t id = 0; id < net.heads_.size(); ++id) {
        const auto& h = net.heads_[id];
        const std::string where = "operator '" + h.name + "'";
        require(!h.name.empty() && names.insert(h.name).second, where, "name must be non-empty and unique");
        require(!h.sources.empty(), where, "has no sources");
        require(h.output < n_pop && is_readout(net.populations_[h.output].model), where, "output must be a readout population");
        for (PopulationId p : h.sources) {
            require(p < n_pop, where, "refers to a population that does not exist");
            require(!is_readout(net.populations_[p].model), where,
                    "source '" + net.populations_[p].name + "' is a readout, which never spikes");
            require(net.populations_[p].shape == net.populations_[h.sources.front()].shape, where,
                    "sources must have one shape; '" + net.populations_[p].name + "' differs");
        }
        const Shape& map = net.populations_[h.sources.front()].shape;
        require(map.size() >= 2, where, "sources must be token maps (C, H, W) or (C, N)");
        const std::size_t c = std::size_t(map[0]), n_out = net.populations_[h.output].size();
        auto sized = [&](const std::vector<float>& v, std::size_t n, const char* what) {
            require(v.size() == n, where, std::string(what) + " has " + std::to_string(v.size()) + " values, expected " +
                                              std::to_string(n));
            for (float x : v) require(std::isfinite(x), where, std::string(what) + " is not finite");
        };
        sized(h.source_weight, h.sources.size() * c, "source_weight");
        sized(h.offset, c, "offset");
        sized(h.gamma, c, "gamma");
        sized(h.beta, c, "beta");
        sized(h.weight, n_out * c, "weight");
        require(std::isfinite(h.eps) && h.eps > 0.0, where, "eps must be positive and finite");
        net.heads_into_[h.output].push_back(id);
        for (PopulationId p : h.sources) {
            operator_edges.emplace_back(p, h.output);
            auto& targets = net.operator_targets_[p];
            if (std::find(targets.begin(), targets.end(), h.output) == targets.end()) targets.push_back(h.output);
        }
        const std::uint32_t positions = net.populations_[h.sources.front()].size() / std::uint32_t(c);
        std::vector<double> z(std::size_t(c) * positions);
        for (std::size_t k = 0; k < c; ++k)
            std::fill_n(z.begin() + std::ptrdiff_t(k * positions), positions, double(h.offset[k]));
        net.head_idle_.emplace_back(n_out, 0.0);
        layer_norm_head(h, z, positions, net.head_idle_.back());
    }

    // Stages: a topological order of the zero-delay sub-graph; a zero-delay cycle is an error.
    PopulationGraph instant(n_pop);
    for (ProjectionId id = 0; id < net.projections_.size(); ++id)
        if (net.min_delay_[id] == 0)
            boost::add_edge(net.projections_[id].source, net.projections_[id].target, ProjectionEdge{id}, instant);
    for (auto [from, to] : operator_edges) boost::add_edge(from, to, ProjectionEdge{ProjectionId(-1)}, instant);
    std::vector<std::size_t> reversed;
    try {
        boost::topological_sort(instant, std::back_inserter(reversed));
    } catch (const boost::not_a_dag&) {
        std::vector<std::size_t> parent(n_pop), cycle;
        CycleFinder finder;
        finder.parent = &parent;
        finder.cycle = &cycle;
        boost::depth_first_search(instant, boost::visitor(finder));
        std::string path;
        for (auto v : cycle) path += "'" + net.populations_[v].name + "' -> ";
        fail("zero-delay cycle between populations " + path + "'" + net.populations_[cycle.front()].name +
             "': give one projection on it a delay of at least one tick");
    }
    if (ann_) {
        require(!ann_->layers.empty(), "ann", "has no layers");
        std::set<std::string> layer_names;
        for (const auto& l : ann_->layers) {
            const std::string where = "ann layer '" + l.name + "'";
            require(!l.name.empty() && layer_names.insert(l.name).second, where, "name must be non-empty and unique");
            require(is_ann_layer_kind(l.kind), where, "kind '" + l.kind + "' is not analog_input, linear or attention");
        }
        net.ann_ = ann_;
    }
    net.by_stage_.assign(reversed.rbegin(), reversed.rend());
    net.stage_.assign(n_pop, 0);
    for (std::uint32_t s = 0; s < n_pop; ++s) net.stage_[net.by_stage_[s]] = s;
    lower_spreads(net, net.spreads_, net.operator_spreads_);
    return net;
}

} // namespace quantal
