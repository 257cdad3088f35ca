#include "support/naive_simulator.hpp"

#include <algorithm>
#include <cmath>
#include <map>

namespace quantal::testing {

namespace {

// Adds W (s * value) for one projection into `out` (the target's input for one tick).
void project(const Projection& pr, const Shape& src_shape, const Shape& dst_shape, const std::vector<double>& s,
             double value, std::vector<double>& out, std::uint32_t only_delay, bool sparse_any_delay) {
    const std::size_t n_in = s.size(), n_out = out.size();
    if (const auto* d = std::get_if<Dense>(&pr.connectivity)) {
        for (std::size_t j = 0; j < n_out; ++j)
            for (std::size_t i = 0; i < n_in; ++i)
                if (s[i] != 0.0) out[j] += double(d->weight[j * n_in + i]) * s[i] * value;
    } else if (const auto* c = std::get_if<Conv2d>(&pr.connectivity)) {
        const auto C = src_shape[0], H = src_shape[1], W = src_shape[2];
        const auto Co = dst_shape[0], Ho = dst_shape[1], Wo = dst_shape[2];
        const auto cig = C / c->groups, cog = Co / c->groups;
        for (std::int64_t co = 0; co < Co; ++co)
            for (std::int64_t oy = 0; oy < Ho; ++oy)
                for (std::int64_t ox = 0; ox < Wo; ++ox)
                    for (std::int64_t ci = 0; ci < cig; ++ci)
                        for (std::int64_t ky = 0; ky < c->kernel[0]; ++ky)
                            for (std::int64_t kx = 0; kx < c->kernel[1]; ++kx) {
                                const auto iy = oy * c->stride[0] - c->padding[0] + ky * c->dilation[0];
                                const auto ix = ox * c->stride[1] - c->padding[1] + kx * c->dilation[1];
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                const auto c_in = (co / cog) * cig + ci;
                                const double x = s[(c_in * H + iy) * W + ix];
                                if (x == 0.0) continue;
                                const double w = c->weight[((co * cig + ci) * c->kernel[0] + ky) * c->kernel[1] + kx];
                                out[(co * Ho + oy) * Wo + ox] += w * x * value;
                            }
    } else if (const auto* p = std::get_if<Pool2d>(&pr.connectivity)) {
        const auto C = src_shape[0], H = src_shape[1], W = src_shape[2], Ho = dst_shape[1], Wo = dst_shape[2];
        const auto sy = p->stride[0] ? p->stride[0] : p->kernel[0], sx = p->stride[1] ? p->stride[1] : p->kernel[1];
        const double w = p->kind == PoolKind::sum ? 1.0 : double(float(1.0 / double(p->kernel[0] * p->kernel[1])));
        for (std::int64_t ch = 0; ch < C; ++ch)
            for (std::int64_t oy = 0; oy < Ho; ++oy)
                for (std::int64_t ox = 0; ox < Wo; ++ox)
                    for (std::int64_t ky = 0; ky < p->kernel[0]; ++ky)
                        for (std::int64_t kx = 0; kx < p->kernel[1]; ++kx) {
                            const auto iy = oy * sy - p->padding[0] + ky, ix = ox * sx - p->padding[1] + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            const double x = s[(ch * H + iy) * W + ix];
                            if (x != 0.0) out[(ch * Ho + oy) * Wo + ox] += w * x * value;
                        }
    } else if (const auto* o = std::get_if<OneToOne>(&pr.connectivity)) {
        for (std::size_t i = 0; i < n_in; ++i)
            if (s[i] != 0.0) out[i] += double(o->weight.size() == 1 ? o->weight[0] : o->weight[i]) * s[i] * value;
    } else if (const auto* sp = std::get_if<Sparse>(&pr.connectivity)) {
        for (std::size_t i = 0; i < n_in; ++i) {
            if (s[i] == 0.0) continue;
            for (auto k = sp->row_begin[i]; k < sp->row_begin[i + 1]; ++k) {
                const std::uint32_t delay = sp->delay.empty() ? pr.delay : sp->delay[k];
                if (sparse_any_delay || delay == only_delay) out[sp->target[k]] += double(sp->weight[k]) * s[i] * value;
            }
        }
    }
}

// Window attention computed densely, with the partition written from the window side: token
// (ty, tx) of window (wy, wx) is the map position ((wy win + ty + shift) mod H, (wx win + tx + shift) mod W).
struct DenseAttention {
    const SoftmaxAttention& op;
    std::int64_t C, H, W, win, heads, hd, T, wcols, windows;

    DenseAttention(const SoftmaxAttention& a, const Shape& map)
        : op(a), C(map[0]), H(map[1]), W(map[2]), win(a.window), heads(a.heads), hd(map[0] / a.heads), T(a.window * a.window),
          wcols(map[2] / a.window), windows((map[1] / a.window) * (map[2] / a.window)) {}

    std::int64_t position(std::int64_t w, std::int64_t token) const {
        const auto y = ((w / wcols) * win + token / win + op.shift) % H;
        const auto x = ((w % wcols) * win + token % win + op.shift) % W;
        return y * W + x;
    }
    double at(const std::vector<double>& map, std::int64_t w, std::int64_t h, std::int64_t token, std::int64_t d) const {
        return map[std::size_t((h * hd + d) * H * W + position(w, token))];
    }
    // scores input: scale * q k^T per window and head (q, k already multiplied by their spike values)
    void scores(const std::vector<double>& q, const std::vector<double>& k, std::vector<double>& out) const {
        for (std::int64_t w = 0; w < windows; ++w)
            for (std::int64_t h = 0; h < heads; ++h)
                for (std::int64_t i = 0; i < T; ++i)
                    for (std::int64_t j = 0; j < T; ++j) {
                        double dot = 0;
                        for (std::int64_t d = 0; d < hd; ++d) dot += at(q, w, h, i, d) * at(k, w, h, j, d);
                        out[std::size_t(((w * heads + h) * T + i) * T + j)] += op.scale * dot;
                    }
    }
    // output input: softmax(s + bias + mask) v per window and head
    void attend(const std::vector<double>& s, const std::vector<double>& v, std::vector<double>& out) const {
        for (std::int64_t w = 0; w < windows; ++w)
            for (std::int64_t h = 0; h < heads; ++h)
                for (std::int64_t i = 0; i < T; ++i) {
                    std::vector<double> a(static_cast<std::size_t>(T));
                    double top = -1e300, sum = 0;
                    for (std::int64_t j = 0; j < T; ++j) {
                        a[j] = s[std::size_t(((w * heads + h) * T + i) * T + j)] + op.bias[std::size_t((h * T + i) * T + j)] +
                               (op.mask.empty() ? 0.0 : op.mask[std::size_t((w * T + i) * T + j)]);
                        top = std::max(top, a[j]);
                    }
                    for (auto& x : a) sum += x = std::exp(x - top);
                    for (std::int64_t d = 0; d < hd; ++d) {
                        double acc = 0;
                        for (std::int64_t j = 0; j < T; ++j) acc += a[j] / sum * at(v, w, h, j, d);
                        if (acc != 0.0) out[std::size_t((h * hd + d) * H * W + position(w, i))] += acc;
                    }
                }
    }
};

std::vector<std::uint32_t> delays_of(const Projection& pr) {
    const auto* sp = std::get_if<Sparse>(&pr.connectivity);
    if (!sp || sp->delay.empty()) return {pr.delay};
    std::vector<std::uint32_t> d(sp->delay.begin(), sp->delay.end());
    std::sort(d.begin(), d.end());
    d.erase(std::unique(d.begin(), d.end()), d.end());
    return d;
}

struct Run {
    std::vector<SpikeRecord> spikes;
    std::vector<std::vector<double>> v;
};

// The projections in the user's form: the one place the oracle reads the network's weights.
// (The round trip user form -> Network -> user form is tested to be exact in test_network.cpp.)
std::vector<Projection> described_projections(const Network& net) {
    std::vector<Projection> out;
    for (ProjectionId id = 0; id < net.projections().size(); ++id) {
        const auto& p = net.projection(id);
        out.push_back({p.name, p.source, p.target, net.connectivity(id), p.delay, p.release});
    }
    return out;
}

Run simulate(const Network& net, const Stimulus& stim, Tick ticks) {
    const auto pops = net.populations();
    const std::size_t P = pops.size();
    const auto projections = described_projections(net);
    // An order in which every zero-delay source comes before its target (Kahn's algorithm).
    std::vector<int> indegree(P, 0);
    std::vector<std::pair<PopulationId, PopulationId>> instant;
    for (const auto& pr : projections)
        for (auto d : delays_of(pr))
            if (d == 0) instant.emplace_back(pr.source, pr.target);
    for (const auto& op : net.operators()) {
        const auto& a = std::get<SoftmaxAttention>(op);
        instant.insert(instant.end(), {{a.q, a.scores}, {a.k, a.scores}, {a.scores, a.output}, {a.v, a.output}});
    }
    for (auto [from, to] : instant) ++indegree[to];
    std::vector<PopulationId> order;
    for (PopulationId p = 0; p < P; ++p)
        if (indegree[p] == 0) order.push_back(p);
    for (std::size_t k = 0; k < order.size(); ++k)
        for (auto [from, to] : instant)
            if (from == order[k] && --indegree[to] == 0) order.push_back(to);

    Run run;
    run.v.resize(P);
    std::vector<std::vector<double>> bias(P);
    for (PopulationId p = 0; p < P; ++p) {
        const auto n = pops[p].size();
        run.v[p].assign(n, initial_potential(pops[p].model));
        bias[p].assign(n, 0.0);
        for (std::uint32_t j = 0; j < n; ++j) {
            if (!pops[p].bias.empty()) bias[p][j] += pops[p].bias.size() == 1 ? pops[p].bias[0] : pops[p].bias[j];
            if (!stim.current[p].empty()) bias[p][j] += stim.current[p][j];
        }
    }
    // pending[t][p]: input arriving at tick t.
    std::map<Tick, std::vector<std::vector<double>>> pending;
    auto inbox = [&](Tick t, PopulationId p) -> std::vector<double>& {
        auto& slot = pending[t];
        if (slot.empty()) slot.resize(P);
        if (slot[p].empty()) slot[p].assign(pops[p].size(), 0.0);
        return slot[p];
    };
    std::vector<std::vector<double>> output(P); // this tick's spikes x spike value
    for (Tick t = 0; t < ticks; ++t) {
        for (PopulationId p : order) {
            const auto& pop = pops[p];
            const auto n = pop.size();
            std::vector<double> s(n, 0.0);
            std::vector<double> in = inbox(t, p);
            for (const auto& op : net.operators()) {
                const auto& a = std::get<SoftmaxAttention>(op);
                const DenseAttention dense(a, pops[a.q].shape);
                if (a.scores == p) dense.scores(output[a.q], output[a.k], in);
                if (a.output == p) dense.attend(output[a.scores], output[a.v], in);
            }
            auto& v = run.v[p];
            auto spiking = [&](const ThresholdRule& rule, auto step) {
                for (std::uint32_t j = 0; j < n; ++j) {
                    v[j] = step(v[j]) + bias[p][j] + in[j];
                    if (rule.crossed(v[j])) s[j] = 1.0, v[j] = rule.after_spike(v[j]);
                }
            };
            if (const auto* m = std::get_if<IfNeuron>(&pop.model)) {
                spiking(m->rule, [](double x) { return x; });
            } else if (const auto* l = std::get_if<LifNeuron>(&pop.model)) {
                const double alpha = std::exp(-1.0 / l->tau_ticks);
                spiking(l->rule, [&](double x) { return l->v_leak + alpha * (x - l->v_leak); });
            } else if (std::holds_alternative<ReadoutNeuron>(pop.model)) {
                for (std::uint32_t j = 0; j < n; ++j) v[j] = v[j] + bias[p][j] + in[j];
            } else {
                for (const auto& sp : stim.spikes[p])
                    if (sp.tick == t) s[sp.neuron] = 1.0;
            }
            for (std::uint32_t j = 0; j < n; ++j)
                if (s[j] != 0.0) run.spikes.push_back({t, p, j});
            output[p] = s;
            for (auto& x : output[p]) x *= spike_value(pop.model);
            for (const auto& pr : projections) {
                if (pr.source != p) continue;
                const double value = spike_value(pop.model);
                const bool per_synapse = std::holds_alternative<Sparse>(pr.connectivity);
                for (auto delay : delays_of(pr)) {
                    if (t + Tick(delay) >= ticks) continue;
                    project(pr, pop.shape, pops[pr.target].shape, s, value, inbox(t + delay, pr.target), delay, !per_synapse);
                }
            }
        }
        pending.erase(t);
    }
    std::sort(run.spikes.begin(), run.spikes.end(), [](const auto& a, const auto& b) {
        return std::tie(a.tick, a.population, a.neuron) < std::tie(b.tick, b.population, b.neuron);
    });
    return run;
}

} // namespace

std::vector<SpikeRecord> naive_simulate(const Network& net, const Stimulus& stimulus, Tick ticks) {
    return simulate(net, stimulus, ticks).spikes;
}

std::vector<std::vector<double>> naive_readouts(const Network& net, const Stimulus& stimulus, Tick ticks) {
    auto run = simulate(net, stimulus, ticks);
    std::vector<std::vector<double>> out;
    for (PopulationId p = 0; p < net.populations().size(); ++p)
        if (is_readout(net.population(p).model)) out.push_back(run.v[p]);
    return out;
}

} // namespace quantal::testing
