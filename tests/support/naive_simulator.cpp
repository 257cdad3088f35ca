#include "support/naive_simulator.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>

namespace quantal::testing {

// The one place the oracle reads weights: the user's form, rebuilt from the network's compiled
// fan-out (the round trip is tested exact in test_network.cpp).
Connectivity user_connectivity(const Network& net, ProjectionId p) { return net.connectivity(p); }

namespace {

template <class... F> struct visitor : F... { using F::operator()...; };
template <class... F> visitor(F...) -> visitor<F...>;

// A neuron model's per-tick arithmetic, re-derived from neurons/models.hpp's equations and
// DESIGN.md: with drive b (bias + analog current) and synaptic input I of tick t,
//   IF       v = v + b + I
//   LIF      v = v_leak + alpha (v - v_leak) + b + I,  alpha = exp(-1 / tau)
//   CubaLIF  i = alpha_syn i + b + I;  v = v_leak + alpha (v - v_leak) + i
//   readout  v = v + b + I  (never spikes)
// then one threshold check (>= or, NIR's, >) and a reset by subtraction or to v_reset.
struct Model {
    enum class Kind { integrate, leaky, current_based, readout, listed_source, random_source } kind;
    double threshold = 0, v_reset = 0, v0 = 0, value = 0;
    bool strict = false;   // spike when v > threshold (else v >= threshold)
    bool subtract = true;  // reset v - threshold (else v_reset)
    double v_leak = 0, alpha = 1, alpha_syn = 0;

    bool spikes_at(double v) const { return strict ? v > threshold : v >= threshold; }
    double reset(double v) const { return subtract ? v - threshold : v_reset; }
};

// Neuron j's model: every parameter is read at j (a parameter holds one value for all, or one per neuron).
Model model_of(const NeuronModel& m, std::uint32_t j) {
    auto with_rule = [j](Model x, const ThresholdRule& r, const PerNeuron& v0, double value) {
        x.threshold = r.threshold[j], x.strict = r.comparison == Comparison::greater, x.subtract = r.reset == ResetMode::subtract;
        x.v_reset = r.v_reset[j], x.v0 = v0[j], x.value = value;
        return x;
    };
    return std::visit(
        visitor{[&](const IfNeuron& n) { return with_rule(Model{Model::Kind::integrate}, n.rule, n.v0, n.spike_value); },
                [&](const LifNeuron& n) {
                    Model x = with_rule(Model{Model::Kind::leaky}, n.rule, n.v0, n.spike_value);
                    x.v_leak = n.v_leak[j], x.alpha = std::exp(-1.0 / n.tau_ticks[j]);
                    return x;
                },
                [&](const CubaLifNeuron& n) {
                    Model x = with_rule(Model{Model::Kind::current_based}, n.rule, n.v0, n.spike_value);
                    x.v_leak = n.v_leak[j], x.alpha = std::exp(-1.0 / n.tau_ticks[j]),
                    x.alpha_syn = std::exp(-1.0 / n.tau_syn_ticks[j]);
                    return x;
                },
                [&](const ReadoutNeuron& n) {
                    Model x{Model::Kind::readout};
                    x.v0 = n.v0[j];
                    return x;
                },
                [](const SpikeSource& s) {
                    Model x{Model::Kind::listed_source};
                    x.value = s.spike_value;
                    return x;
                },
                [](const BernoulliSource& s) {
                    Model x{Model::Kind::random_source};
                    x.value = s.spike_value;
                    return x;
                },
                [](const PoissonSource& s) {
                    Model x{Model::Kind::random_source};
                    x.value = s.spike_value;
                    return x;
                }},
        m);
}

std::int64_t count(const Shape& s) {
    std::int64_t n = 1;
    for (auto e : s) n *= e;
    return n;
}

// One synapse as the user described it; `own` is a sparse synapse's own release probability
// (1 for other kinds). It transmits a spike with probability own x (1 - mask_ratio). `index`: a
// sparse synapse's position in the projection's CSR (its identity for a release spread).
struct Synapse {
    std::uint32_t target;
    double weight;
    std::uint32_t delay;
    double own;
    std::uint64_t index = 0;
};

double projection_release(const Release& r) { return r.mode == ReleaseMode::none ? 1.0 : 1.0 - r.mask_ratio; }
// --compensate: what survives carries 1 / (1 - ratio) (docs/sweep.md "Release variants").
double compensation(const Release& r) {
    return r.compensate && r.mode != ReleaseMode::none && r.mask_ratio > 0.0 ? 1.0 / (1.0 - r.mask_ratio) : 1.0;
}

// Every synapse of a projection, by source neuron, enumerated by direct loops over the
// description (conv/pool: output position x kernel tap, window cut at the padded border).
std::vector<std::vector<Synapse>> synapses_by_source(const Network& net, ProjectionId id) {
    const auto& pr = net.projection(id);
    const auto& conn = user_connectivity(net, id);
    const Shape &src = net.population(pr.source).shape, &dst = net.population(pr.target).shape;
    std::vector<std::vector<Synapse>> out(std::size_t(count(src)));
    auto add = [&](std::int64_t i, std::int64_t j, double w) { out[std::size_t(i)].push_back({std::uint32_t(j), w, pr.delay, 1.0}); };
    std::visit(visitor{[&](const Dense& d) {
                           const auto n_in = count(src), n_out = count(dst);
                           for (std::int64_t i = 0; i < n_in; ++i)
                               for (std::int64_t j = 0; j < n_out; ++j) add(i, j, d.weight[std::size_t(j * n_in + i)]);
                       },
                       [&](const Conv2d& c) {
                           const auto C = src[0], H = src[1], W = src[2], Co = dst[0], Ho = dst[1], Wo = dst[2];
                           const auto cig = C / c.groups, cog = Co / c.groups;
                           for (std::int64_t co = 0; co < Co; ++co)
                               for (std::int64_t oy = 0; oy < Ho; ++oy)
                                   for (std::int64_t ox = 0; ox < Wo; ++ox)
                                       for (std::int64_t ci = 0; ci < cig; ++ci)
                                           for (std::int64_t ky = 0; ky < c.kernel[0]; ++ky)
                                               for (std::int64_t kx = 0; kx < c.kernel[1]; ++kx) {
                                                   const auto iy = oy * c.stride[0] - c.padding[0] + ky * c.dilation[0];
                                                   const auto ix = ox * c.stride[1] - c.padding[1] + kx * c.dilation[1];
                                                   if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                                   const auto c_in = (co / cog) * cig + ci;
                                                   add((c_in * H + iy) * W + ix, (co * Ho + oy) * Wo + ox,
                                                       c.weight[std::size_t(((co * cig + ci) * c.kernel[0] + ky) * c.kernel[1] + kx)]);
                                               }
                       },
                       [&](const Pool2d& q) {
                           const auto C = src[0], H = src[1], W = src[2], Ho = dst[1], Wo = dst[2];
                           const auto sy = q.stride[0] ? q.stride[0] : q.kernel[0], sx = q.stride[1] ? q.stride[1] : q.kernel[1];
                           // average: 1 / (kh kw) whatever the padding, stored as float32 like every weight
                           const double w = q.kind == PoolKind::sum ? 1.0 : double(float(1.0 / double(q.kernel[0] * q.kernel[1])));
                           for (std::int64_t ch = 0; ch < C; ++ch)
                               for (std::int64_t oy = 0; oy < Ho; ++oy)
                                   for (std::int64_t ox = 0; ox < Wo; ++ox)
                                       for (std::int64_t ky = 0; ky < q.kernel[0]; ++ky)
                                           for (std::int64_t kx = 0; kx < q.kernel[1]; ++kx) {
                                               const auto iy = oy * sy - q.padding[0] + ky, ix = ox * sx - q.padding[1] + kx;
                                               if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                               add((ch * H + iy) * W + ix, (ch * Ho + oy) * Wo + ox, w);
                                           }
                       },
                       [&](const OneToOne& o) {
                           for (std::int64_t i = 0; i < count(src); ++i)
                               add(i, i, o.weight.size() == 1 ? o.weight[0] : o.weight[std::size_t(i)]);
                       },
                       [&](const Sparse& s) {
                           for (std::size_t i = 0; i + 1 < s.row_begin.size(); ++i)
                               for (auto k = s.row_begin[i]; k < s.row_begin[i + 1]; ++k)
                                   out[i].push_back({s.target[k], s.weight[k], s.delay.empty() ? pr.delay : s.delay[k],
                                                     s.probability.empty() ? 1.0 : double(s.probability[k]), k});
                       }},
               conn);
    return out;
}

// The oracle transmits only what is certain.
bool transmits(double release, const std::string& what) {
    if (release == 1.0) return true;
    if (release == 0.0) return false;
    throw std::invalid_argument("naive oracle: " + what + " transmits with probability " + std::to_string(release) +
                                "; only 0 and 1 are decided here (test the statistics instead)");
}

bool operator_transmits(const Release& r, const std::string& what) { return transmits(projection_release(r), what); }

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
    void scores(const std::vector<double>& q, const std::vector<double>& k, std::vector<double>& out,
                std::vector<double>& magnitude) const {
        for (std::int64_t w = 0; w < windows; ++w)
            for (std::int64_t h = 0; h < heads; ++h)
                for (std::int64_t i = 0; i < T; ++i)
                    for (std::int64_t j = 0; j < T; ++j) {
                        double dot = 0;
                        for (std::int64_t d = 0; d < hd; ++d) dot += at(q, w, h, i, d) * at(k, w, h, j, d);
                        const auto e = std::size_t(((w * heads + h) * T + i) * T + j);
                        out[e] += op.scale * dot;
                        magnitude[e] += std::abs(op.scale * dot);
                    }
    }
    // output input: softmax(s + bias + mask) v per window and head
    void attend(const std::vector<double>& s, const std::vector<double>& v, std::vector<double>& out,
                std::vector<double>& magnitude) const {
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
                        double acc = 0, mag = 0;
                        for (std::int64_t j = 0; j < T; ++j) {
                            acc += a[j] / sum * at(v, w, h, j, d);
                            mag += std::abs(a[j] / sum * at(v, w, h, j, d));
                        }
                        const auto n = std::size_t((h * hd + d) * H * W + position(w, i));
                        if (acc != 0.0) out[n] += acc, magnitude[n] += mag;
                    }
                }
    }
};

// A rounding budget per tick, relative to the magnitudes a membrane's update adds up (|v|, |b|,
// Σ|input terms|). Two orders of summing n terms each lie within (n - 1) 2^-53 Σ|x| of the exact
// sum, so they differ by at most 2 (n - 1) 2^-53 Σ|x|: 2.2e-13 Σ|x| for n <= 1000 (the largest
// fan-in here is a dense layer over 4 x 16 x 16 inputs plus recurrent ones); the softmax's
// exp, sum and division add a few ulps of its output. 1e-12 covers both with room.
constexpr double rounding_per_tick = 1e-12;

NaiveRun simulate(const Network& net, const Stimulus& stim, Tick ticks, std::span<const SpikeRecord> replayed,
                  const SpikeMasks& masks) {
    const auto pops = net.populations();
    const std::size_t P = pops.size();
    std::vector<std::vector<Model>> neuron(P); // per population, per neuron
    for (PopulationId p = 0; p < P; ++p)
        for (std::uint32_t j = 0; j < pops[p].size(); ++j) neuron[p].push_back(model_of(pops[p].model, j));
    std::vector<Model> model(P); // what every neuron of a population shares: its kind and spike value
    for (PopulationId p = 0; p < P; ++p) model[p] = neuron[p].front();
    std::vector<std::vector<std::vector<Synapse>>> synapses(net.projections().size());
    for (ProjectionId pr = 0; pr < synapses.size(); ++pr) synapses[pr] = synapses_by_source(net, pr);

    // An order in which every zero-delay source comes before its target (Kahn's algorithm).
    std::vector<int> indegree(P, 0);
    std::vector<std::pair<PopulationId, PopulationId>> instant;
    for (ProjectionId pr = 0; pr < synapses.size(); ++pr) {
        bool zero = false;
        for (const auto& row : synapses[pr])
            for (const auto& s : row) zero |= s.delay == 0;
        if (zero) instant.emplace_back(net.projection(pr).source, net.projection(pr).target);
    }
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
    if (order.size() != P) throw std::invalid_argument("naive oracle: zero-delay cycle");

    // Source spikes by tick: listed in the stimulus, or replayed for Bernoulli sources.
    std::map<Tick, std::vector<std::pair<PopulationId, std::uint32_t>>> source_spikes;
    for (PopulationId p = 0; p < P; ++p)
        if (model[p].kind == Model::Kind::listed_source)
            for (const auto& sp : stim.spikes[p]) source_spikes[sp.tick].emplace_back(p, sp.neuron);
    for (const auto& sp : replayed)
        if (model[sp.population].kind == Model::Kind::random_source) source_spikes[sp.tick].emplace_back(sp.population, sp.neuron);

    NaiveRun run;
    std::vector<std::vector<double>> v(P), current(P), drive(P), err(P), err_current(P);
    for (PopulationId p = 0; p < P; ++p) {
        const auto n = pops[p].size();
        v[p].resize(n);
        for (std::uint32_t j = 0; j < n; ++j) v[p][j] = neuron[p][j].v0;
        current[p].assign(n, 0.0);
        err[p].assign(n, 0.0);
        err_current[p].assign(n, 0.0);
        drive[p].assign(n, 0.0);
        for (std::uint32_t j = 0; j < n; ++j) {
            if (!pops[p].bias.empty()) drive[p][j] += pops[p].bias.size() == 1 ? pops[p].bias[0] : pops[p].bias[j];
            if (!stim.current[p].empty()) drive[p][j] += stim.current[p][j];
        }
    }
    // pending[t][p]: input arriving at tick t, and the sum of its terms' magnitudes.
    struct Inbox {
        std::vector<double> sum, magnitude;
    };
    std::map<Tick, std::vector<Inbox>> pending;
    auto inbox = [&](Tick t, PopulationId p) -> Inbox& {
        auto& slot = pending[t];
        if (slot.empty()) slot.resize(P);
        if (slot[p].sum.empty()) slot[p].sum.assign(pops[p].size(), 0.0), slot[p].magnitude.assign(pops[p].size(), 0.0);
        return slot[p];
    };
    std::vector<std::vector<double>> output(P); // this tick's spikes x spike value
    for (Tick t = 0; t < ticks; ++t) {
        for (PopulationId p : order) {
            const auto n = pops[p].size();
            std::vector<char> fired(n, 0);
            Inbox in = inbox(t, p);
            for (std::size_t o = 0; o < net.operators().size(); ++o) {
                const auto& a = std::get<SoftmaxAttention>(net.operators()[o]);
                const DenseAttention dense(a, pops[a.q].shape);
                auto kept = [&](PopulationId src, const Release& r, const char* role) {
                    auto x = operator_transmits(r, "operator '" + a.name + "' " + role) ? output[src]
                                                                                       : std::vector<double>(output[src].size(), 0.0);
                    for (auto& e : x) e *= compensation(r);
                    return x;
                };
                if (a.scores == p) dense.scores(kept(a.q, a.q_release, "q"), kept(a.k, a.k_release, "k"), in.sum, in.magnitude);
                if (a.output == p) dense.attend(kept(a.scores, a.score_release, "scores"), output[a.v], in.sum, in.magnitude);
            }
            auto& vp = v[p];
            auto& e = err[p];
            auto check = [&](std::uint32_t j) {
                const Model& m = neuron[p][j];
                if (std::abs(vp[j] - m.threshold) <= e[j]) run.first_near_tie = std::min(run.first_near_tie, t);
                if (!m.spikes_at(vp[j])) return;
                fired[j] = 1;
                e[j] = m.subtract ? e[j] + rounding_per_tick * std::abs(vp[j]) : 0.0;
                vp[j] = m.reset(vp[j]);
            };
            for (std::uint32_t j = 0; j < n; ++j) {
                const Model& m = neuron[p][j];
                const double b = drive[p][j], x = in.sum[j], mag = std::abs(b) + in.magnitude[j];
                switch (m.kind) {
                case Model::Kind::integrate:
                    e[j] += rounding_per_tick * (std::abs(vp[j]) + mag);
                    vp[j] = vp[j] + b + x;
                    check(j);
                    break;
                case Model::Kind::leaky:
                    e[j] = m.alpha * e[j] + rounding_per_tick * (std::abs(vp[j]) + std::abs(m.v_leak) + mag);
                    vp[j] = m.v_leak + m.alpha * (vp[j] - m.v_leak) + b + x;
                    check(j);
                    break;
                case Model::Kind::current_based: {
                    auto& i = current[p][j];
                    auto& ei = err_current[p][j];
                    ei = m.alpha_syn * ei + rounding_per_tick * (std::abs(i) + mag);
                    i = m.alpha_syn * i + b + x;
                    e[j] = m.alpha * e[j] + ei + rounding_per_tick * (std::abs(vp[j]) + std::abs(m.v_leak) + std::abs(i));
                    vp[j] = m.v_leak + m.alpha * (vp[j] - m.v_leak) + i;
                    check(j);
                    break;
                }
                case Model::Kind::readout: vp[j] = vp[j] + b + x; break;
                case Model::Kind::listed_source:
                case Model::Kind::random_source: break;
                }
            }
            if (auto it = source_spikes.find(t); it != source_spikes.end())
                for (auto [q, j] : it->second)
                    if (q == p) fired[j] = 1;
            output[p].assign(n, 0.0);
            const Model& m = model[p];
            for (std::uint32_t j = 0; j < n; ++j)
                if (fired[j]) run.spikes.push_back({t, p, j}), output[p][j] = m.value;
            for (ProjectionId pr = 0; pr < synapses.size(); ++pr) {
                if (net.projection(pr).source != p) continue;
                const auto target = net.projection(pr).target;
                const std::string what = "projection '" + net.projection(pr).name + "'";
                const double release = projection_release(net.projection(pr).release);
                const double gain = compensation(net.projection(pr).release);
                // A replayed spike mask decides the spike; its synapses then transmit as their own probability says.
                const bool replay = masks && net.projection(pr).release.mode == ReleaseMode::spike && release > 0 && release < 1;
                for (std::uint32_t j = 0; j < n; ++j) {
                    if (!fired[j] || (replay && !masks(pr, t, j))) continue;
                    for (const auto& s : synapses[pr][j]) {
                        if (t + Tick(s.delay) >= ticks || !transmits(s.own * (replay ? 1.0 : release), what)) continue;
                        auto& box = inbox(t + Tick(s.delay), target);
                        box.sum[s.target] += s.weight * (m.value * gain);
                        box.magnitude[s.target] += std::abs(s.weight * (m.value * gain));
                    }
                }
            }
        }
        pending.erase(t);
        run.potentials.resize(P);
        for (PopulationId p = 0; p < P; ++p) run.potentials[p].insert(run.potentials[p].end(), v[p].begin(), v[p].end());
    }
    std::sort(run.spikes.begin(), run.spikes.end(), [](const auto& a, const auto& b) {
        return std::tie(a.tick, a.population, a.neuron) < std::tie(b.tick, b.population, b.neuron);
    });
    for (PopulationId p = 0; p < P; ++p)
        if (model[p].kind == Model::Kind::readout) run.readouts.push_back(v[p]);
    return run;
}

} // namespace

NaiveRun naive_run(const Network& net, const Stimulus& stimulus, Tick ticks, std::span<const SpikeRecord> replayed,
                   const SpikeMasks& masks) {
    return simulate(net, stimulus, ticks, replayed, masks);
}

std::vector<SpikeRecord> naive_simulate(const Network& net, const Stimulus& stimulus, Tick ticks) {
    return simulate(net, stimulus, ticks, {}, {}).spikes;
}

std::vector<std::vector<double>> naive_readouts(const Network& net, const Stimulus& stimulus, Tick ticks) {
    return simulate(net, stimulus, ticks, {}, {}).readouts;
}

std::vector<ExpectedTraffic> expected_traffic(const Network& net, std::span<const SpikeRecord> spikes, Tick ticks,
                                              std::uint64_t seed) {
    std::vector<ExpectedTraffic> out(net.projections().size());
    for (ProjectionId pr = 0; pr < out.size(); ++pr) {
        const auto& projection = net.projection(pr);
        const auto synapses = synapses_by_source(net, pr);
        const bool per_spike = projection.release.mode == ReleaseMode::spike;
        const bool sparse = std::holds_alternative<Sparse>(user_connectivity(net, pr));
        // A spread gives each synapse (spike release: each source neuron) its own probability,
        // looked up by the documented key: (seed, projection index, synapse identity).
        const ReleaseSpread* spread = projection.release.heterogeneous() ? net.spread(pr) : nullptr;
        const std::uint64_t key = ReleaseSpread::key(seed, pr);
        auto p_of = [&](std::uint64_t id) {
            return spread ? spread->probability(ReleaseSpread::level(key, id)) : projection_release(projection.release);
        };
        auto& x = out[pr];
        std::int64_t fanout = -1; // -1 none seen yet, -2 varies
        for (const auto& sp : spikes) {
            if (sp.population != projection.source) continue;
            // A spike-mode draw keeps or drops all of a spike's synapses: X = B Y with B ~ Bernoulli(p)
            // and Y the sum of the synapses' own Bernoulli(own); otherwise each synapse on its own.
            std::uint64_t n = 0;
            double mean_y = 0, var_y = 0;
            const double p_spike = per_spike ? p_of(sp.neuron) : 1.0;
            for (const auto& s : synapses[sp.neuron]) {
                if (sp.tick + Tick(s.delay) >= ticks) continue;
                ++n;
                const double q = per_spike ? s.own : s.own * p_of(sparse ? s.index : ReleaseSpread::synapse(sp.neuron, s.target));
                mean_y += q, var_y += q * (1 - q);
            }
            // A spike is presented when a delivery of it falls inside the sample: for a sparse
            // projection one of its synapses' (an empty row delivers nothing), for the others the
            // one delivery at t + delay, even where the window reaches no target (a strided conv).
            if (sparse ? n == 0 : sp.tick + Tick(projection.delay) >= ticks) continue;
            ++x.spikes_in, x.attempted += n;
            x.mean_transmitted += p_spike * mean_y;
            x.var_transmitted += p_spike * (var_y + mean_y * mean_y) - p_spike * p_spike * mean_y * mean_y;
            fanout = fanout == -1 || fanout == std::int64_t(n) ? std::int64_t(n) : -2;
        }
        x.fanout = fanout > 0 ? std::uint64_t(fanout) : 0;
    }
    return out;
}

} // namespace quantal::testing
