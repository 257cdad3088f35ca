#include "support/random_network.hpp"

#include <random>

namespace quantal::testing {

namespace {

class Draw {
public:
    Draw(std::uint64_t seed, bool exact) : rng_(seed), exact_(exact) {}
    int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
    // A value in [lo, hi]: a multiple of 1/64 when exact.
    double value(double lo, double hi) {
        const double x = std::uniform_real_distribution<double>(lo, hi)(rng_);
        return exact_ ? std::round(x * 64.0) / 64.0 : x;
    }
    std::vector<float> weights(std::size_t n, double scale) {
        std::vector<float> w(n);
        for (auto& x : w) x = float(value(-scale, scale * 1.6));
        return w;
    }

private:
    std::mt19937_64 rng_;
    bool exact_;
};

// One value, or with `per_neuron` (half of the time) one per neuron, each from draw().
template <class DrawOne> PerNeuron parameter(Draw& d, bool per_neuron, std::uint32_t n, DrawOne draw) {
    if (!per_neuron || d.chance(0.5)) return draw();
    std::vector<double> v(n);
    for (auto& x : v) x = draw();
    return v;
}

NeuronModel spiking_model(Draw& d, bool lif, bool cuba, bool per_neuron, std::uint32_t n) {
    ThresholdRule rule;
    rule.threshold = parameter(d, per_neuron, n, [&] { return d.chance(0.5) ? 1.0 : d.value(0.5, 2.0); });
    rule.comparison = d.chance(0.7) ? Comparison::greater_equal : Comparison::greater;
    rule.reset = d.chance(0.7) ? ResetMode::subtract : ResetMode::to_value;
    if (rule.reset == ResetMode::to_value) rule.v_reset = parameter(d, per_neuron, n, [&] { return d.value(-0.5, 0.25); });
    const double theta = rule.threshold[0];
    const PerNeuron v0 = parameter(d, per_neuron, n, [&] { return d.value(0.0, theta * 0.5); });
    const double lambda = d.chance(0.5) ? 1.0 : d.value(0.25, 2.0);
    auto ticks = [&](int lo, int hi) { return parameter(d, per_neuron, n, [&] { return double(d.integer(lo, hi)); }); };
    auto leak = [&] { return parameter(d, per_neuron, n, [&] { return d.value(-0.25, 0.25); }); };
    if (cuba) // a slow current: its input stays for tau_syn ticks, so weights act ~tau_syn times
        return CubaLifNeuron{rule, ticks(1, 6), ticks(2, 20), leak(), v0, lambda};
    if (lif) return LifNeuron{rule, ticks(2, 20), leak(), v0, lambda};
    return IfNeuron{rule, v0, lambda};
}

std::vector<double> random_bias(Draw& d, std::uint32_t n) {
    switch (d.integer(0, 2)) {
    case 0: return {};
    case 1: return {d.value(-0.05, 0.15)};
    default: {
        std::vector<double> b(n);
        for (auto& x : b) x = d.value(-0.1, 0.2);
        return b;
    }
    }
}

Sparse random_sparse(Draw& d, std::uint32_t n_in, std::uint32_t n_out, double scale, bool zero_delay_ok) {
    Sparse s;
    s.row_begin.push_back(0);
    for (std::uint32_t i = 0; i < n_in; ++i) {
        for (std::uint32_t j = 0; j < n_out; ++j)
            if (d.chance(0.3)) {
                s.target.push_back(j);
                s.weight.push_back(float(d.value(-scale, scale * 1.6)));
                s.delay.push_back(std::uint32_t(d.integer(zero_delay_ok ? 0 : 1, 5)));
            }
        s.row_begin.push_back(s.target.size());
    }
    return s;
}

// Output length of a window along one axis (PyTorch's formula).
std::int64_t window_out(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t p, std::int64_t dil) {
    return (in + 2 * p - dil * (k - 1) - 1) / s + 1;
}

Conv2d random_conv(Draw& d, const Shape& shape, std::int64_t co, double scale, Shape& next) {
    Conv2d conv;
    for (int a = 0; a < 2; ++a) {
        const std::int64_t in = shape[std::size_t(1 + a)];
        conv.padding[a] = d.integer(0, 1);
        conv.stride[a] = d.integer(1, 2);
        conv.kernel[a] = std::min<std::int64_t>(d.integer(1, 3), in + 2 * conv.padding[a]);
        conv.dilation[a] = d.chance(0.3) && 2 * (conv.kernel[a] - 1) + 1 <= in + 2 * conv.padding[a] ? 2 : 1;
    }
    conv.groups = shape[0] % 2 == 0 && co % 2 == 0 && d.chance(0.5) ? 2 : 1;
    conv.weight = d.weights(std::size_t(co * (shape[0] / conv.groups) * conv.kernel[0] * conv.kernel[1]), scale * 2);
    next = {co, window_out(shape[1], conv.kernel[0], conv.stride[0], conv.padding[0], conv.dilation[0]),
            window_out(shape[2], conv.kernel[1], conv.stride[1], conv.padding[1], conv.dilation[1])};
    return conv;
}

Pool2d random_pool(Draw& d, const Shape& shape, Shape& next) {
    Pool2d pool;
    pool.kind = d.chance(0.5) ? PoolKind::sum : PoolKind::average;
    next = {shape[0], 0, 0};
    for (int a = 0; a < 2; ++a) {
        const std::int64_t in = shape[std::size_t(1 + a)];
        pool.kernel[a] = std::min<std::int64_t>(d.integer(1, 3), in);
        pool.stride[a] = d.integer(0, 2); // 0: same as the kernel
        pool.padding[a] = d.integer(0, int(pool.kernel[a] / 2));
        next[std::size_t(1 + a)] = window_out(in, pool.kernel[a], pool.stride[a] ? pool.stride[a] : pool.kernel[a], pool.padding[a], 1);
    }
    return pool;
}

// Release of one projection (drawn from its own stream, so the network's structure does not
// depend on the release choice); may give a sparse projection's synapses their own probabilities.
Release projection_release(Draw& r, const RandomNetworkOptions& o, Connectivity& c) {
    if (o.release_choice == ReleaseChoice::fixed) return o.release;
    const bool limits = o.release_choice == ReleaseChoice::limits;
    if (auto* sp = std::get_if<Sparse>(&c); sp && r.chance(0.5)) {
        sp->probability.resize(sp->target.size());
        for (auto& q : sp->probability) q = limits ? float(r.chance(0.7)) : float(r.value(0.0, 1.0));
    }
    if (r.chance(limits ? 0.3 : 0.1)) return Release{};
    Release rel;
    rel.mode = r.chance(0.5) ? ReleaseMode::spike : ReleaseMode::synapse;
    rel.mask_ratio = limits ? (r.chance(0.75) ? 0.0 : 1.0) : r.value(0.1, 0.9);
    rel.sampling = std::array{SynapseSampling::automatic, SynapseSampling::geometric, SynapseSampling::bernoulli}[std::size_t(r.integer(0, 2))];
    return rel;
}

} // namespace

RandomCase random_case(std::uint64_t seed, const RandomNetworkOptions& o) {
    Draw d(seed, o.exact);
    Draw r(seed ^ 0x9e3779b97f4a7c15ULL, false);
    NetworkBuilder b;
    auto connect = [&](std::string name, PopulationId from, PopulationId to, Connectivity c, std::uint32_t delay) {
        const Release rel = projection_release(r, o, c);
        b.connect(Projection{std::move(name), from, to, std::move(c), delay, rel});
    };
    const std::int64_t C = d.integer(1, 4), H = 4 * d.integer(1, 2), W = H + 2 * d.integer(-1, 1);
    std::vector<PopulationId> layers{b.add_population("input", {C, H, W}, SpikeSource{d.chance(0.5) ? 1.0 : 0.5})};
    Shape shape{C, H, W};
    for (int l = 1; l <= o.layers; ++l) {
        const bool image = shape.size() == 3;
        const int kind = image ? d.integer(0, 4) : d.integer(0, 2) * 2; // 0 dense, 1 conv, 2 sparse, 3 pool, 4 one_to_one
        const std::uint32_t delay = std::uint32_t(d.integer(0, 5) < 3 ? 0 : d.integer(1, 5));
        std::int64_t n_in = 1;
        for (auto e : shape) n_in *= e;
        const double scale = 2.0 / std::sqrt(double(n_in)) + 0.2;
        Connectivity c;
        Shape next;
        if (kind == 1) {
            c = random_conv(d, shape, d.integer(1, 4), scale, next);
        } else if (kind == 3) {
            c = random_pool(d, shape, next);
        } else if (kind == 4) {
            c = OneToOne{d.chance(0.5) ? std::vector<float>{float(d.value(0.5, 1.5))} : d.weights(std::size_t(n_in), 1.0)};
            next = shape;
        } else if (kind == 2) {
            next = {d.integer(4, 24)};
            c = random_sparse(d, std::uint32_t(n_in), std::uint32_t(next[0]), scale * 2, true);
        } else {
            next = {d.integer(4, 24)};
            c = Dense{d.weights(std::size_t(n_in * next[0]), scale * 2)};
        }
        const bool cuba = o.cuba && d.chance(0.4);
        const bool lif = !cuba && o.lif && d.chance(0.5);
        Population pop{"layer" + std::to_string(l), next, {}, {}};
        pop.model = spiking_model(d, lif, cuba, o.per_neuron, pop.size());
        pop.bias = random_bias(d, pop.size());
        layers.push_back(b.add_population(pop));
        connect("layer" + std::to_string(l), layers[std::size_t(l - 1)], layers[std::size_t(l)], c, delay);
        // A second, zero-delay path into this layer from an earlier one: within one tick the
        // target must take the input of both paths before its single threshold check.
        if (o.skips && l >= 2 && d.chance(0.5)) {
            const auto from = layers[std::size_t(d.integer(0, l - 2))];
            const auto n_from = b.population(from).size(), n_to = b.population(layers[std::size_t(l)]).size();
            const double s = 1.0 / std::sqrt(double(n_from)) + 0.1;
            Connectivity skip;
            if (n_from == n_to && d.chance(0.5)) skip = OneToOne{{float(d.value(0.25, 1.0))}};
            else if (d.chance(0.5)) skip = Dense{d.weights(std::size_t(n_from) * n_to, s)};
            else skip = random_sparse(d, n_from, n_to, s * 2, true);
            connect("skip" + std::to_string(l), from, layers[std::size_t(l)], std::move(skip), 0);
        }
        shape = next;
    }
    if (o.recurrent) {
        for (int k = 0, n = d.integer(1, 3); k < n; ++k) { // backward or self projections, delayed
            const auto from = layers[std::size_t(d.integer(1, o.layers))];
            const auto to = layers[std::size_t(d.integer(1, int(from)))];
            const auto n_from = b.population(from).size(), n_to = b.population(to).size();
            if (d.chance(0.5))
                connect("recurrent" + std::to_string(k), from, to, Dense{d.weights(std::size_t(n_from) * n_to, 0.3)},
                        std::uint32_t(d.integer(1, 5)));
            else
                connect("recurrent" + std::to_string(k), from, to, random_sparse(d, n_from, n_to, 0.5, false), 1);
        }
    }
    Network net = b.build();
    Stimulus s = Stimulus::for_network(net);
    for (Tick t = 0; t < o.ticks; ++t)
        for (std::uint32_t j = 0; j < net.population(0).size(); ++j)
            if (d.chance(0.2)) s.spikes[0].push_back({t, j});
    for (PopulationId p = 1; p < net.populations().size(); ++p)
        if (d.chance(0.3)) {
            s.current[p].resize(net.population(p).size());
            for (auto& x : s.current[p]) x = d.value(-0.05, 0.1);
        }
    return RandomCase{std::move(net), std::move(s)};
}

} // namespace quantal::testing
