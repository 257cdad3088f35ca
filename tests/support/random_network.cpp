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

NeuronModel spiking_model(Draw& d, bool lif) {
    ThresholdRule rule;
    rule.threshold = d.chance(0.5) ? 1.0 : d.value(0.5, 2.0);
    rule.comparison = d.chance(0.7) ? Comparison::greater_equal : Comparison::greater;
    rule.reset = d.chance(0.7) ? ResetMode::subtract : ResetMode::to_value;
    rule.v_reset = rule.reset == ResetMode::to_value ? d.value(-0.5, 0.25) : 0.0;
    const double v0 = d.value(0.0, rule.threshold * 0.5);
    const double lambda = d.chance(0.5) ? 1.0 : d.value(0.25, 2.0);
    if (lif) return LifNeuron{rule, double(d.integer(2, 20)), d.value(-0.25, 0.25), v0, lambda};
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

} // namespace

RandomCase random_case(std::uint64_t seed, const RandomNetworkOptions& o) {
    Draw d(seed, o.exact);
    NetworkBuilder b;
    const std::int64_t C = d.integer(1, 4), H = 4 * d.integer(1, 2), W = H;
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
            Conv2d conv;
            const std::int64_t co = d.integer(1, 4), p = d.integer(0, 1), s = d.integer(1, 2);
            const std::int64_t k = std::min<std::int64_t>(d.integer(1, 3), std::min(shape[1], shape[2]) + 2 * p);
            conv.kernel = {k, k}, conv.stride = {s, s}, conv.padding = {p, p};
            conv.groups = shape[0] % 2 == 0 && co % 2 == 0 && d.chance(0.5) ? 2 : 1;
            conv.weight = d.weights(std::size_t(co * (shape[0] / conv.groups) * k * k), scale * 2);
            c = conv;
            next = {co, (shape[1] + 2 * p - k) / s + 1, (shape[2] + 2 * p - k) / s + 1};
        } else if (kind == 3 && shape[1] % 2 == 0 && shape[2] % 2 == 0) {
            c = Pool2d{d.chance(0.5) ? PoolKind::sum : PoolKind::average, {2, 2}, {2, 2}, {0, 0}};
            next = {shape[0], shape[1] / 2, shape[2] / 2};
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
        const bool lif = o.lif && d.chance(0.5);
        Population pop{"layer" + std::to_string(l), next, spiking_model(d, lif), {}};
        pop.bias = random_bias(d, pop.size());
        layers.push_back(b.add_population(pop));
        b.connect(Projection{"", layers[l - 1], layers[l], c, delay, o.release});
        shape = next;
    }
    if (o.recurrent) {
        for (int r = 0, n = d.integer(1, 3); r < n; ++r) { // backward or self projections, delayed
            const auto from = layers[std::size_t(d.integer(1, o.layers))];
            const auto to = layers[std::size_t(d.integer(1, int(from)))];
            const auto n_from = b.population(from).size(), n_to = b.population(to).size();
            if (d.chance(0.5))
                b.connect(Projection{"recurrent" + std::to_string(r), from, to,
                                     Dense{d.weights(std::size_t(n_from) * n_to, 0.3)}, std::uint32_t(d.integer(1, 5)), o.release});
            else
                b.connect(Projection{"recurrent" + std::to_string(r), from, to, random_sparse(d, n_from, n_to, 0.5, false),
                                     1, o.release});
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
