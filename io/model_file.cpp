#include "io/model_file.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <set>

#include "io/hdf5_access.hpp"
#include "sim/errors.hpp"
#include "sim/overloaded.hpp"

namespace quantal {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw InputError(where + ": " + what); }

// ---- reading -------------------------------------------------------------------------------

constexpr std::int64_t format_version = 2;
constexpr std::int64_t max_delay = std::int64_t{1} << 24; // the engine's calendar bound (network.cpp)
constexpr std::int64_t max_extent = (std::int64_t{1} << 32) - 1;
constexpr std::int64_t max_geometry = (std::int64_t{1} << 31) - 1; // kernel, stride, padding, ...

// Names in the metadata namespace (docs/model-format.md, "Metadata") are for other tools.
bool is_metadata(const std::string& name) { return name.rfind("meta:", 0) == 0; }

std::string number_text(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", v);
    return text;
}

// A value stored as any integer or float type, as the integer it must be: floats are accepted
// only when integral, and the range is checked before narrowing (|lo|, |hi| <= 2^53, exact in a
// double, so that the comparison itself cannot round).
std::int64_t whole(double v, std::int64_t lo, std::int64_t hi, const std::string& what, const std::string& where) {
    if (!std::isfinite(v) || v != std::floor(v)) fail(where, what + " is " + number_text(v) + ", not an integer");
    if (v < double(lo) || v > double(hi))
        fail(where, what + " is " + number_text(v) + ", outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return std::int64_t(v);
}

// One group of the file as the reader consumes it. Every attribute and member it reads is
// marked used, and `finish` refuses whatever is left (unknown, misspelt, or meaningless with the
// object's other settings), so no value in a file is silently ignored.
class Item {
public:
    Item(h5::Handle group, std::string where, FloatRounding& rounding)
        : group_(std::move(group)), where_(std::move(where)), rounding_(&rounding) {}
    const std::string& where() const { return where_; }
    [[noreturn]] void fail(const std::string& what) const { quantal::fail(where_, what); }

    bool has_attribute(const std::string& name) const { return h5::has_attribute(group_, name); }
    bool has_dataset(const std::string& name) const { return h5::has_link(group_, name); }

    std::string text(const std::string& name) {
        used_attributes_.insert(name);
        return h5::read_string_attribute(group_, name, where_);
    }
    std::string text(const std::string& name, const std::string& fallback) {
        return has_attribute(name) ? text(name) : fallback;
    }
    std::vector<std::string> texts(const std::string& name) {
        used_attributes_.insert(name);
        return h5::read_string_array_attribute(group_, name, where_);
    }
    double real(const std::string& name) {
        used_attributes_.insert(name);
        const double v = h5::read_double_attribute(group_, name, where_);
        if (!std::isfinite(v)) fail("attribute '" + name + "' is not finite");
        return v;
    }
    double real(const std::string& name, double fallback) { return has_attribute(name) ? real(name) : fallback; }
    std::int64_t integer(const std::string& name, std::int64_t lo, std::int64_t hi) {
        used_attributes_.insert(name);
        return whole(h5::read_double_attribute(group_, name, where_), lo, hi, "attribute '" + name + "'", where_);
    }
    std::int64_t integer(const std::string& name, std::int64_t lo, std::int64_t hi, std::int64_t fallback) {
        return has_attribute(name) ? integer(name, lo, hi) : fallback;
    }

    // A numeric dataset of exactly `rank` dimensions (any shape if rank < 0), every value finite.
    h5::Array array(const std::string& name, int rank = -1) {
        used_links_.insert(name);
        auto a = h5::read_array(group_, name, where_);
        if (rank >= 0 && a.shape.size() != std::size_t(rank))
            fail("dataset '" + name + "' has shape " + h5::shape_text(a.shape) + ", expected " + std::to_string(rank) +
                 (rank == 1 ? " dimension" : " dimensions"));
        for (std::size_t i = 0; i < a.values.size(); ++i)
            if (!std::isfinite(a.values[i])) fail("dataset '" + name + "'[" + std::to_string(i) + "] is not finite");
        return a;
    }
    // A one-dimensional dataset of values (n,), or one value for all (1,) when `or_one`.
    std::vector<double> vector(const std::string& name, std::int64_t n, bool or_one) {
        auto a = array(name, 1);
        if (a.shape[0] != n && !(or_one && a.shape[0] == 1))
            fail("dataset '" + name + "' has shape " + h5::shape_text(a.shape) + ", expected " + h5::shape_text({n}) +
                 (or_one ? " or (1,)" : ""));
        return a.values;
    }
    // A neuron parameter: an attribute (one value for the population) or a dataset (n,) or (1,) of
    // per-neuron values; never both.
    PerNeuron values(const std::string& name, std::int64_t n) {
        if (has_attribute(name) && has_dataset(name))
            fail("'" + name + "' is given twice, as an attribute and as a dataset (keep one)");
        if (has_dataset(name)) return vector(name, n, true);
        return real(name);
    }
    PerNeuron values(const std::string& name, std::int64_t n, double fallback) {
        return has_attribute(name) || has_dataset(name) ? values(name, n) : PerNeuron(fallback);
    }
    std::vector<float> floats(const std::string& name, const Shape& expected) {
        auto a = array(name);
        if (a.shape != expected)
            fail("dataset '" + name + "' has shape " + h5::shape_text(a.shape) + ", expected " + h5::shape_text(expected));
        return to_float(name, a.values);
    }
    // quantal holds weights (and the other float datasets) in float32: a float64 value beyond its
    // range is refused, one it cannot hold exactly is rounded and counted (the loader warns).
    std::vector<float> to_float(const std::string& name, const std::vector<double>& values) {
        std::vector<float> out(values.size());
        std::uint64_t rounded = 0;
        double largest = 0;
        for (std::size_t i = 0; i < values.size(); ++i) {
            const double x = values[i];
            if (std::abs(x) > double(std::numeric_limits<float>::max()))
                fail("dataset '" + name + "'[" + std::to_string(i) + "] is " + number_text(x) +
                     ", beyond float32's range (quantal holds these values in float32)");
            out[i] = float(x);
            if (double(out[i]) != x) ++rounded, largest = std::max(largest, std::abs(double(out[i]) - x) / std::abs(x));
        }
        if (rounded > 0) rounding_->add(where_ + ", dataset '" + name + "'", rounded, largest); // once per dataset
        return out;
    }
    // A one-dimensional integer dataset (any stored type; floats only when integral), narrowed
    // to T after its range check.
    template <class T = std::int64_t> std::vector<T> integers(const std::string& name, std::int64_t lo, std::int64_t hi) {
        const auto a = array(name, 1);
        std::vector<T> v(a.values.size());
        for (std::size_t i = 0; i < v.size(); ++i) {
            const double x = a.values[i];
            if (x == std::floor(x) && x >= double(lo) && x <= double(hi)) v[i] = T(x); // the message only when needed
            else whole(x, lo, hi, "dataset '" + name + "'[" + std::to_string(i) + "]", where_);
        }
        return v;
    }
    std::array<std::int64_t, 2> pair(const std::string& name, std::int64_t lo, std::array<std::int64_t, 2> fallback) {
        if (!has_dataset(name)) return fallback;
        auto v = integers(name, lo, max_geometry);
        if (v.size() != 2) fail("dataset '" + name + "' has shape " + h5::shape_text({std::int64_t(v.size())}) + ", expected (2,)");
        return {v[0], v[1]};
    }

    Item group(const std::string& name, const std::string& where) {
        used_links_.insert(name);
        return Item(h5::open_group(group_, name, where), where, *rounding_);
    }
    // The members of a collection group, in the order its `order` attribute gives (else HDF5's).
    std::vector<std::string> members() {
        std::vector<std::string> present;
        for (auto& name : h5::member_names(group_, where_))
            if (!is_metadata(name)) present.push_back(std::move(name));
        used_links_.insert(present.begin(), present.end());
        if (!has_attribute("order")) return present;
        used_attributes_.insert("order");
        auto order = h5::read_string_array_attribute(group_, "order", where_);
        std::set<std::string> listed;
        for (const auto& name : order) {
            if (!h5::has_link(group_, name) || is_metadata(name)) fail("attribute 'order' names '" + name + "', which is missing");
            if (!listed.insert(name).second) fail("attribute 'order' names '" + name + "' twice");
        }
        if (order.size() != present.size()) fail("attribute 'order' does not list every member");
        return order;
    }

    void finish() const {
        const std::string why = " is not read by quantal here (misspelt, unknown, or meaningless with the other "
                                "settings; metadata goes under a 'meta:' name)";
        for (const auto& name : h5::attribute_names(group_, where_))
            if (!is_metadata(name) && !used_attributes_.count(name)) fail("attribute '" + name + "'" + why);
        for (const auto& name : h5::member_names(group_, where_))
            if (!is_metadata(name) && !used_links_.count(name))
                fail((h5::is_group(group_, name) ? "group '" : "dataset '") + name + "'" + why);
    }

private:
    h5::Handle group_;
    std::string where_;
    FloatRounding* rounding_;
    std::set<std::string> used_attributes_, used_links_;
};

std::int64_t element_count(const Shape& s) {
    return std::accumulate(s.begin(), s.end(), std::int64_t{1}, std::multiplies<>());
}

ThresholdRule read_rule(Item& g, std::int64_t n) {
    ThresholdRule r;
    r.threshold = g.values("threshold", n);
    const auto cmp = g.text("comparison");
    if (cmp != ">=" && cmp != ">") g.fail("comparison '" + cmp + "' is not '>=' or '>'");
    r.comparison = cmp == ">" ? Comparison::greater : Comparison::greater_equal;
    const auto reset = g.text("reset");
    if (reset == "value") {
        r.reset = ResetMode::to_value;
        r.v_reset = g.values("v_reset", n);
    } else if (reset == "subtract") {
        r.reset = ResetMode::subtract;
        if (g.has_attribute("v_reset")) g.fail("attribute 'v_reset' has no effect with reset 'subtract'");
        if (g.has_dataset("v_reset")) g.fail("dataset 'v_reset' has no effect with reset 'subtract'");
    } else {
        g.fail("reset '" + reset + "' is not 'subtract' or 'value'");
    }
    return r;
}

Population read_population(Item& g, const std::string& name) {
    Population p;
    p.name = name;
    p.shape = g.integers("shape", 1, max_extent);
    if (p.shape.empty()) g.fail("dataset 'shape' is empty");
    const std::int64_t n = element_count(p.shape);
    const auto model = g.text("model");
    if (model == "IF") {
        p.model = IfNeuron{read_rule(g, n), g.values("v0", n), g.real("spike_value", 1.0)};
    } else if (model == "LIF") {
        p.model = LifNeuron{read_rule(g, n), g.values("tau_ticks", n), g.values("v_leak", n, 0.0), g.values("v0", n),
                            g.real("spike_value", 1.0)};
    } else if (model == "CubaLIF") {
        p.model = CubaLifNeuron{read_rule(g, n),          g.values("tau_syn_ticks", n), g.values("tau_ticks", n),
                                g.values("v_leak", n, 0.0), g.values("v0", n),          g.real("spike_value", 1.0)};
    } else if (model == "readout") {
        p.model = ReadoutNeuron{g.values("v0", n, 0.0)};
    } else if (model == "spike_source") {
        p.model = SpikeSource{g.real("spike_value", 1.0)};
    } else if (model == "bernoulli_source") {
        p.model = BernoulliSource{g.vector("probability", n, true), g.real("spike_value", 1.0)};
    } else if (model == "poisson_source") {
        p.model = PoissonSource{g.values("rate", n).values(), g.real("spike_value", 1.0)};
    } else {
        g.fail("unknown model '" + model + "'");
    }
    if (g.has_dataset("bias")) p.bias = g.vector("bias", n, true);
    return p;
}

// (C_out, C_in / groups, kh, kw) for a map from `source` to `target` images.
Conv2d read_conv(Item& g, const Shape& source, const Shape& target) {
    Conv2d c;
    c.groups = g.integer("groups", 1, max_geometry, 1);
    auto w = g.array("weight", 4);
    if (source.size() == 3 && target.size() == 3 && source[0] % c.groups == 0) {
        const Shape expected{target[0], source[0] / c.groups, w.shape[2], w.shape[3]};
        if (w.shape != expected)
            g.fail("dataset 'weight' has shape " + h5::shape_text(w.shape) + ", expected " + h5::shape_text(expected) +
                   " = (C_out, C_in / groups, kh, kw) for " + h5::shape_text(source) + " -> " + h5::shape_text(target));
    }
    c.kernel = {w.shape[2], w.shape[3]};
    c.weight = g.to_float("weight", w.values);
    c.stride = g.pair("stride", 1, {1, 1});
    c.padding = g.pair("padding", 0, {0, 0});
    c.dilation = g.pair("dilation", 1, {1, 1});
    return c;
}

Dense read_dense(Item& g, const Shape& source, const Shape& target) {
    return Dense{g.floats("weight", {element_count(target), element_count(source)})};
}

Connectivity read_connectivity(Item& g, const std::string& kind, const Shape& source, const Shape& target) {
    if (kind == "dense") return read_dense(g, source, target);
    if (kind == "conv2d") return read_conv(g, source, target);
    if (kind == "sum_pool2d" || kind == "avg_pool2d") {
        Pool2d p;
        p.kind = kind == "sum_pool2d" ? PoolKind::sum : PoolKind::average;
        if (!g.has_dataset("kernel_size")) g.fail("dataset 'kernel_size' is missing");
        p.kernel = g.pair("kernel_size", 1, {0, 0});
        p.stride = g.pair("stride", 1, p.kernel);
        p.padding = g.pair("padding", 0, {0, 0});
        return p;
    }
    if (kind == "one_to_one") {
        if (!g.has_dataset("weight")) return OneToOne{{1.0f}};
        return OneToOne{g.to_float("weight", g.vector("weight", element_count(target), true))};
    }
    if (kind == "sparse") {
        Sparse s;
        s.row_begin = g.integers<std::uint64_t>("row_begin", 0, std::int64_t{1} << 53);
        s.target = g.integers<std::uint32_t>("target", 0, UINT32_MAX);
        const std::int64_t nnz = std::int64_t(s.target.size());
        s.weight = g.to_float("weight", g.vector("weight", nnz, false));
        if (g.has_dataset("delay")) s.delay = g.integers<std::uint32_t>("delay", 0, max_delay);
        if (g.has_dataset("probability")) {
            s.probability = g.to_float("probability", g.vector("probability", nnz, false));
        }
        if (s.row_begin.empty() || s.row_begin.back() != s.target.size())
            g.fail("sparse arrays disagree: row_begin ends at " + std::to_string(s.row_begin.empty() ? 0 : s.row_begin.back()) +
                   ", target has " + std::to_string(s.target.size()));
        return s;
    }
    g.fail("unknown kind '" + kind + "'");
}

// Release `mode` and its ratio (`mask_ratio` attribute): the ratio is required with a releasing
// mode, and a non-zero ratio with mode "none" would be ignored.
Release read_release(Item& g, const std::string& mode_attribute, const std::string& ratio_attribute, bool per_synapse_allowed) {
    Release r;
    const auto mode = g.text(mode_attribute, "none");
    if (mode == "none") r.mode = ReleaseMode::none;
    else if (mode == "spike") r.mode = ReleaseMode::spike;
    else if (mode == "synapse" && per_synapse_allowed) r.mode = ReleaseMode::synapse;
    else
        g.fail("attribute '" + mode_attribute + "' is '" + mode + "', expected 'none', 'spike'" +
               (per_synapse_allowed ? " or 'synapse'" : ""));
    if (r.mode == ReleaseMode::none) {
        r.mask_ratio = g.real(ratio_attribute, 0.0);
        if (r.mask_ratio != 0.0)
            g.fail("attribute '" + ratio_attribute + "' is " + number_text(r.mask_ratio) + " but '" + mode_attribute +
                   "' is 'none' (the ratio would be ignored)");
    } else {
        r.mask_ratio = g.real(ratio_attribute);
    }
    // The release variants (docs/engine.md): `compensate` 0 or 1, `release_spread` κ (0: none),
    // with the mode attribute's prefix ("q_", "k_", "score_" on operators); checked when built.
    const std::string prefix = mode_attribute.substr(0, mode_attribute.size() - std::string("release").size());
    r.compensate = g.integer(prefix + "compensate", 0, 1, 0) == 1;
    r.spread = g.real(prefix + "release_spread", 0.0);
    return r;
}

// The variants only where set, so a file without them reads the same in older versions.
void write_release_variants(hid_t g, const std::string& prefix, const Release& r) {
    if (r.compensate) h5::write_int_attribute(g, prefix + "compensate", 1);
    if (r.spread != 0.0) h5::write_double_attribute(g, prefix + "release_spread", r.spread);
}

// The data shape the map sees: the sample's shape with (H, W) padded to pad_to.
Shape mapped_shape(const AnalogInput& in) {
    Shape s = in.shape;
    if (in.pad_to && s.size() >= 2) {
        s[s.size() - 2] = (*in.pad_to)[0];
        s[s.size() - 1] = (*in.pad_to)[1];
    }
    return s;
}

AnalogInput read_input(Item& g, const std::string& name, const Network& net) {
    AnalogInput in;
    in.name = name;
    in.target = g.text("target");
    const auto target = net.find_population(in.target);
    if (!target) g.fail("target '" + in.target + "' is not a population");
    const Population& pop = net.population(*target);
    if (is_source(pop.model))
        g.fail("target '" + in.target + "' is a " + model_name(pop.model) + ", which takes no input current");
    in.shape = g.integers("shape", 1, max_extent);
    if (in.shape.empty()) g.fail("dataset 'shape' is empty");
    if (g.has_dataset("pad_to")) in.pad_to = g.pair("pad_to", 1, {0, 0});
    const auto kind = g.text("kind");
    if (kind == "conv2d") in.map = read_conv(g, mapped_shape(in), pop.shape);
    else if (kind == "dense") in.map = read_dense(g, mapped_shape(in), pop.shape);
    else g.fail("analog input kind '" + kind + "' is not 'conv2d' or 'dense'");
    if (g.has_dataset("bias")) {
        in.bias = g.array("bias", 1).values;
        const auto n_out = std::int64_t(pop.size()), channels = pop.shape.front();
        if (std::int64_t(in.bias.size()) != n_out && std::int64_t(in.bias.size()) != channels)
            g.fail("dataset 'bias' has shape " + h5::shape_text({std::int64_t(in.bias.size())}) + ", expected " +
                   h5::shape_text({n_out}) + " or " + h5::shape_text({channels}));
    }
    in.scale = g.real("scale", 1.0);
    in.offset = g.real("offset", 0.0);
    return in;
}

template <class Find> SoftmaxAttention read_attention(Item& g, const std::string& name, const Find& find, const std::vector<Shape>& shapes) {
    const auto layout = g.text("layout");
    if (layout != "image") g.fail("layout '" + layout + "' is not supported (the format defines 'image')");
    SoftmaxAttention a;
    a.name = name;
    a.q = find(g.text("q"), g.where());
    a.k = find(g.text("k"), g.where());
    a.v = find(g.text("v"), g.where());
    a.scores = find(g.text("scores"), g.where());
    a.output = find(g.text("output"), g.where());
    a.heads = g.integer("heads", 1, max_geometry);
    a.window = g.integer("window", 1, max_geometry);
    a.shift = g.integer("shift", 0, max_geometry, 0);
    a.scale = g.real("scale");
    const std::int64_t tokens = a.window * a.window;
    a.bias = g.floats("bias", {a.heads, tokens, tokens});
    const Shape& scores = shapes[a.scores];
    if (g.has_dataset("mask")) a.mask = g.floats("mask", {scores.size() == 4 ? scores[0] : 0, tokens, tokens});
    a.q_release = read_release(g, "q_release", "q_mask_ratio", false);
    a.k_release = read_release(g, "k_release", "k_mask_ratio", false);
    a.score_release = read_release(g, "score_release", "score_mask_ratio", false);
    return a;
}

template <class Find>
LayerNormHead read_layer_norm_head(Item& g, const std::string& name, const Find& find, const std::vector<Shape>& shapes) {
    LayerNormHead h;
    h.name = name;
    for (const auto& s : g.texts("sources")) h.sources.push_back(find(s, g.where()));
    if (h.sources.empty()) g.fail("attribute 'sources' names no population");
    h.output = find(g.text("output"), g.where());
    h.eps = g.real("eps");
    const Shape& map = shapes[h.sources.front()];
    if (map.size() < 2) g.fail("sources must be token maps (C, H, W) or (C, N)");
    const std::int64_t c = map[0];
    h.source_weight = g.floats("source_weight", {std::int64_t(h.sources.size()), c});
    h.offset = g.floats("offset", {c});
    h.gamma = g.floats("gamma", {c});
    h.beta = g.floats("beta", {c});
    h.weight = g.floats("weight", {std::int64_t(element_count(shapes[h.output])), c});
    return h;
}

// ---- writing -------------------------------------------------------------------------------

std::vector<hsize_t> dims(std::initializer_list<std::int64_t> d) { return {d.begin(), d.end()}; }

std::vector<std::int64_t> pair_vec(const std::array<std::int64_t, 2>& a) { return {a[0], a[1]}; }

// One value as an attribute, per-neuron values as a dataset (n,).
void write_values(hid_t g, const std::string& name, const PerNeuron& x) {
    if (x.uniform()) h5::write_double_attribute(g, name, x[0]);
    else h5::write_dataset(g, name, x.values(), {x.size()});
}

void write_rule(hid_t g, const ThresholdRule& r) {
    write_values(g, "threshold", r.threshold);
    h5::write_string_attribute(g, "comparison", r.comparison == Comparison::greater ? ">" : ">=");
    h5::write_string_attribute(g, "reset", r.reset == ResetMode::subtract ? "subtract" : "value");
    if (r.reset == ResetMode::to_value) write_values(g, "v_reset", r.v_reset);
}

void write_population(hid_t g, const Population& p) {
    h5::write_string_attribute(g, "model", model_name(p.model));
    auto spiking = [&](const auto& m) { // what every thresholded model has
        write_rule(g, m.rule);
        write_values(g, "v0", m.v0);
        h5::write_double_attribute(g, "spike_value", m.spike_value);
    };
    std::visit(overloaded{[&](const IfNeuron& m) { spiking(m); },
                          [&](const LifNeuron& m) {
                              spiking(m);
                              write_values(g, "tau_ticks", m.tau_ticks);
                              write_values(g, "v_leak", m.v_leak);
                          },
                          [&](const CubaLifNeuron& m) {
                              spiking(m);
                              write_values(g, "tau_ticks", m.tau_ticks);
                              write_values(g, "tau_syn_ticks", m.tau_syn_ticks);
                              write_values(g, "v_leak", m.v_leak);
                          },
                          [&](const ReadoutNeuron& m) { write_values(g, "v0", m.v0); },
                          [&](const SpikeSource& m) { h5::write_double_attribute(g, "spike_value", m.spike_value); },
                          [&](const BernoulliSource& m) {
                              h5::write_double_attribute(g, "spike_value", m.spike_value);
                              h5::write_dataset(g, "probability", m.probability, {m.probability.size()});
                          },
                          [&](const PoissonSource& m) { // in Hz, as the user gave it
                              h5::write_double_attribute(g, "spike_value", m.spike_value);
                              write_values(g, "rate", m.rate_hz);
                          }},
               p.model);
    h5::write_dataset(g, "shape", std::vector<std::int64_t>(p.shape), {p.shape.size()});
    if (!p.bias.empty()) h5::write_dataset(g, "bias", p.bias, {p.bias.size()});
}

void write_conv(hid_t g, const Conv2d& c, std::int64_t c_out) {
    const std::int64_t per_out = c_out ? std::int64_t(c.weight.size()) / c_out : 0;
    const std::int64_t taps = c.kernel[0] * c.kernel[1];
    const std::int64_t c_in_g = taps > 0 ? per_out / taps : 0;
    h5::write_dataset(g, "weight", c.weight, dims({c_out, c_in_g, c.kernel[0], c.kernel[1]}));
    h5::write_dataset(g, "stride", pair_vec(c.stride), {2});
    h5::write_dataset(g, "padding", pair_vec(c.padding), {2});
    h5::write_dataset(g, "dilation", pair_vec(c.dilation), {2});
    h5::write_int_attribute(g, "groups", c.groups);
}

void write_connectivity(hid_t g, const Connectivity& c, const Shape& source, const Shape& target) {
    const auto n_src = std::accumulate(source.begin(), source.end(), std::int64_t{1}, std::multiplies<>());
    const auto n_dst = std::accumulate(target.begin(), target.end(), std::int64_t{1}, std::multiplies<>());
    std::visit(overloaded{[&](const Dense& d) { h5::write_dataset(g, "weight", d.weight, dims({n_dst, n_src})); },
                          [&](const Conv2d& cv) { write_conv(g, cv, target.empty() ? 0 : target[0]); },
                          [&](const Pool2d& p) {
                              h5::write_dataset(g, "kernel_size", pair_vec(p.kernel), {2});
                              h5::write_dataset(g, "stride", pair_vec(p.stride), {2});
                              h5::write_dataset(g, "padding", pair_vec(p.padding), {2});
                          },
                          [&](const OneToOne& o) { h5::write_dataset(g, "weight", o.weight, {o.weight.size()}); },
                          [&](const Sparse& s) {
                              h5::write_dataset(g, "row_begin", s.row_begin, {s.row_begin.size()});
                              h5::write_dataset(g, "target", s.target, {s.target.size()});
                              h5::write_dataset(g, "weight", s.weight, {s.weight.size()});
                              if (!s.delay.empty()) h5::write_dataset(g, "delay", s.delay, {s.delay.size()});
                              if (!s.probability.empty())
                                  h5::write_dataset(g, "probability", s.probability, {s.probability.size()});
                          }},
               c);
}

std::string kind_attribute(const Connectivity& c) {
    if (const auto* p = std::get_if<Pool2d>(&c)) return p->kind == PoolKind::sum ? "sum_pool2d" : "avg_pool2d";
    return std::visit(overloaded{[](const Dense&) { return "dense"; }, [](const Conv2d&) { return "conv2d"; },
                                 [](const Pool2d&) { return "sum_pool2d"; }, [](const OneToOne&) { return "one_to_one"; },
                                 [](const Sparse&) { return "sparse"; }},
                      c);
}

// `/ann`: the converted-from ANN's own cost, per layer, as its exporter counted it.
AnnBaseline read_ann(Item& g) {
    AnnBaseline a;
    const auto names = g.texts("layers");
    const auto kinds = g.texts("kinds");
    if (names.empty()) g.fail("attribute 'layers' is empty");
    if (kinds.size() != names.size())
        g.fail("attribute 'kinds' has " + std::to_string(kinds.size()) + " values, 'layers' has " + std::to_string(names.size()));
    auto column = [&](const std::string& name) {
        auto v = g.integers<std::uint64_t>(name, 0, std::int64_t{1} << 53);
        if (v.size() != names.size())
            g.fail("dataset '" + name + "' has shape " + h5::shape_text({std::int64_t(v.size())}) + ", expected " +
                   h5::shape_text({std::int64_t(names.size())}) + " (one value per layer)");
        return v;
    };
    const auto macs = column("macs"), weights = column("weights"), inputs = column("inputs"), outputs = column("outputs");
    for (std::size_t i = 0; i < names.size(); ++i)
        a.layers.push_back({names[i], kinds[i], macs[i], weights[i], inputs[i], outputs[i]});
    a.levels = std::uint32_t(g.integer("levels", 1, 65535, 0));
    return a;
}

} // namespace

std::string FloatRounding::text() const {
    if (values == 0) return {};
    char rel[32];
    std::snprintf(rel, sizeof rel, "%.2g", max_relative);
    return std::to_string(values) + " float64 value" + (values == 1 ? "" : "s") +
           " rounded to float32, quantal's precision for weights (largest relative change " + rel + "; first: " + first + ")";
}

LoadedModel read_model_file(const std::string& path, std::optional<double> dt_ms) {
    LoadedModel out;
    Item root(h5::open_file(path), path, out.rounded_to_float);
    const auto format = root.has_attribute("format") ? root.text("format") : "";
    if (format != "quantal-model") root.fail("attribute 'format' is '" + format + "', expected 'quantal-model'");
    const auto version = root.integer("format_version", INT32_MIN, INT32_MAX);
    if (version == 1)
        root.fail("format_version 1 is no longer read (it ignored unknown attributes and defaulted some silently); "
                  "rewrite the file with scripts/migrate-model-v1.py (docs/model-format.md, \"Versions\")");
    if (version != format_version)
        root.fail("format_version " + std::to_string(version) + " is not supported (this reader: " +
                  std::to_string(format_version) + ")");

    NetworkBuilder builder;
    if (root.has_attribute("dt")) { // ms per tick; without it the documented default
        const auto unit = root.text("time_unit", "ms");
        if (unit != "ms" && unit != "s") root.fail("attribute 'time_unit' is '" + unit + "', expected 'ms' or 's'");
        out.file_dt_ms = root.real("dt") * (unit == "s" ? 1000.0 : 1.0);
        if (!(*out.file_dt_ms > 0)) root.fail("attribute 'dt' is " + number_text(*out.file_dt_ms) + ", expected > 0 (ms per tick)");
    } else if (root.has_attribute("time_unit")) {
        root.fail("attribute 'time_unit' has no effect without 'dt'");
    }
    if (const auto dt = dt_ms ? dt_ms : out.file_dt_ms) builder.set_dt(*dt);
    out.name = root.text("name", "");
    out.producer = root.text("producer", "");
    out.provenance = root.text("provenance", "");

    Item pops = root.group("populations", path + ": /populations");
    const std::vector<std::string> pop_names = pops.members();
    if (pop_names.empty()) pops.fail("has no populations: a model needs at least one");
    std::vector<Shape> shapes;
    for (const auto& name : pop_names) {
        Item g = pops.group(name, path + ": population '" + name + "'");
        auto p = read_population(g, name);
        g.finish();
        shapes.push_back(p.shape);
        builder.add_population(std::move(p));
    }
    pops.finish();
    auto find = [&](const std::string& name, const std::string& where) -> PopulationId {
        for (PopulationId i = 0; i < pop_names.size(); ++i)
            if (pop_names[i] == name) return i;
        fail(where, "names population '" + name + "', which does not exist");
    };
    if (root.has_dataset("projections")) {
        Item prjs = root.group("projections", path + ": /projections");
        for (const auto& name : prjs.members()) {
            Item g = prjs.group(name, path + ": projection '" + name + "'");
            Projection p;
            p.name = name;
            p.source = find(g.text("source"), g.where());
            p.target = find(g.text("target"), g.where());
            p.connectivity = read_connectivity(g, g.text("kind"), shapes[p.source], shapes[p.target]);
            const auto* sparse = std::get_if<Sparse>(&p.connectivity);
            if (sparse && !sparse->delay.empty() && g.has_attribute("delay"))
                g.fail("attribute 'delay' has no effect: every synapse has its own in dataset 'delay'");
            p.delay = std::uint32_t(g.integer("delay", 0, max_delay, 0));
            p.release = read_release(g, "release", "mask_ratio", true);
            p.role = g.text("role", "");
            g.finish();
            builder.connect(std::move(p));
        }
        prjs.finish();
    }
    if (root.has_dataset("operators")) {
        Item ops = root.group("operators", path + ": /operators");
        for (const auto& name : ops.members()) {
            Item g = ops.group(name, path + ": operator '" + name + "'");
            const auto op = g.text("op");
            if (op == "softmax_attention") builder.add_operator(read_attention(g, name, find, shapes));
            else if (op == "layer_norm_head") builder.add_layer_norm_head(read_layer_norm_head(g, name, find, shapes));
            else
                g.fail("op '" + op +
                       "' is not executable by this version of quantal (it knows 'softmax_attention' and 'layer_norm_head')");
            g.finish();
        }
        ops.finish();
    }
    if (root.has_dataset("ann")) {
        Item g = root.group("ann", path + ": /ann");
        builder.set_ann(read_ann(g));
        g.finish();
    }
    try {
        out.network = builder.build();
    } catch (const ModelError& e) {
        throw ModelError(path + ": " + e.what());
    }

    if (root.has_dataset("inputs")) {
        Item ins = root.group("inputs", path + ": /inputs");
        for (const auto& name : ins.members()) {
            Item g = ins.group(name, path + ": input '" + name + "'");
            auto in = read_input(g, name, out.network);
            g.finish();
            try { // validates the map against the data and target shapes once, here
                compile_fanout(in.map, mapped_shape(in), out.network.population(*out.network.find_population(in.target)).shape,
                               0, g.where());
            } catch (const ModelError& e) {
                throw InputError(e.what());
            }
            out.inputs.push_back(std::move(in));
        }
        ins.finish();
    }
    if (root.has_dataset("readout")) {
        Item g = root.group("readout", path + ": /readout");
        out.readout = g.text("population");
        if (!out.network.find_population(out.readout)) g.fail("population '" + out.readout + "' does not exist");
        const auto accumulate = g.text("accumulate", "sum");
        if (accumulate != "sum") g.fail("accumulate '" + accumulate + "' is not supported (the format defines 'sum')");
        g.finish();
    }
    root.finish();
    return out;
}

void write_model_file(const std::string& path, const Network& net, const ModelFileInfo& info,
                      std::span<const AnalogInput> inputs, const std::string& readout) {
    // A name in the metadata namespace would be skipped by the reader: refuse it before writing.
    auto check_name = [&](const std::string& what, const std::string& name) {
        if (is_metadata(name)) fail(path, what + " '" + name + "': names starting with 'meta:' are metadata, not objects");
    };
    for (const auto& p : net.populations()) check_name("population", p.name);
    for (const auto& p : net.projections()) check_name("projection", p.name);
    for (const auto& op : net.operators()) check_name("operator", std::get<SoftmaxAttention>(op).name);
    for (const auto& h : net.heads()) check_name("operator", h.name);
    for (const auto& in : inputs) check_name("input", in.name);
    auto file = h5::create_file(path);
    try {
        h5::write_string_attribute(file, "format", "quantal-model");
        h5::write_int_attribute(file, "format_version", format_version);
        h5::write_string_attribute(file, "name", info.name);
        h5::write_string_attribute(file, "producer", info.producer);
        h5::write_string_attribute(file, "provenance", info.provenance);
        h5::write_double_attribute(file, "dt", net.dt_ms());
        h5::write_string_attribute(file, "time_unit", "ms");

        auto pops = h5::create_group(file, "populations", path);
        std::vector<std::string> order;
        for (const auto& p : net.populations()) {
            auto g = h5::create_group(pops, p.name, path);
            write_population(g, p);
            order.push_back(p.name);
        }
        h5::write_string_array_attribute(pops, "order", order);

        auto prjs = h5::create_group(file, "projections", path);
        order.clear();
        for (ProjectionId id = 0; id < net.projections().size(); ++id) {
            const auto& p = net.projection(id);
            const Connectivity connectivity = net.connectivity(id); // one projection's weights at a time
            auto g = h5::create_group(prjs, p.name, path);
            h5::write_string_attribute(g, "kind", kind_attribute(connectivity));
            h5::write_string_attribute(g, "source", net.population(p.source).name);
            h5::write_string_attribute(g, "target", net.population(p.target).name);
            const auto* sparse = std::get_if<Sparse>(&connectivity);
            if (!sparse || sparse->delay.empty()) h5::write_int_attribute(g, "delay", p.delay); // else per synapse
            h5::write_string_attribute(g, "release", mode_name(p.release.mode));
            h5::write_double_attribute(g, "mask_ratio", p.release.mask_ratio);
            write_release_variants(g, "", p.release);
            if (!p.role.empty()) h5::write_string_attribute(g, "role", p.role);
            write_connectivity(g, connectivity, net.population(p.source).shape, net.population(p.target).shape);
            order.push_back(p.name);
        }
        h5::write_string_array_attribute(prjs, "order", order);

        if (!net.operators().empty() || !net.heads().empty()) {
            auto ops = h5::create_group(file, "operators", path);
            order.clear();
            for (const auto& op : net.operators()) {
                const auto& a = std::get<SoftmaxAttention>(op);
                auto g = h5::create_group(ops, a.name, path);
                h5::write_string_attribute(g, "op", "softmax_attention");
                h5::write_string_attribute(g, "layout", "image");
                h5::write_string_attribute(g, "q", net.population(a.q).name);
                h5::write_string_attribute(g, "k", net.population(a.k).name);
                h5::write_string_attribute(g, "v", net.population(a.v).name);
                h5::write_string_attribute(g, "scores", net.population(a.scores).name);
                h5::write_string_attribute(g, "output", net.population(a.output).name);
                h5::write_int_attribute(g, "heads", a.heads);
                h5::write_int_attribute(g, "window", a.window);
                h5::write_int_attribute(g, "shift", a.shift);
                h5::write_double_attribute(g, "scale", a.scale);
                const auto& scores = net.population(a.scores).shape; // (windows, heads, tokens, tokens)
                const std::int64_t tokens = scores.size() == 4 ? scores[3] : 0;
                h5::write_dataset(g, "bias", a.bias, dims({a.heads, tokens, tokens}));
                if (!a.mask.empty()) h5::write_dataset(g, "mask", a.mask, dims({scores.empty() ? 0 : scores[0], tokens, tokens}));
                for (const auto& [prefix, r] : {std::pair<std::string, Release>{"q", a.q_release}, {"k", a.k_release},
                                                {"score", a.score_release}}) {
                    h5::write_string_attribute(g, prefix + "_release", mode_name(r.mode));
                    h5::write_double_attribute(g, prefix + "_mask_ratio", r.mask_ratio);
                    write_release_variants(g, prefix + "_", r);
                }
                order.push_back(a.name);
            }
            for (const auto& h : net.heads()) {
                auto g = h5::create_group(ops, h.name, path);
                h5::write_string_attribute(g, "op", "layer_norm_head");
                std::vector<std::string> sources;
                for (auto s : h.sources) sources.push_back(net.population(s).name);
                h5::write_string_array_attribute(g, "sources", sources);
                h5::write_string_attribute(g, "output", net.population(h.output).name);
                h5::write_double_attribute(g, "eps", h.eps);
                const auto c = std::int64_t(h.gamma.size());
                h5::write_dataset(g, "source_weight", h.source_weight, dims({std::int64_t(h.sources.size()), c}));
                for (const auto& [key, v] : {std::pair{"offset", &h.offset}, {"gamma", &h.gamma}, {"beta", &h.beta}})
                    h5::write_dataset(g, key, *v, dims({c}));
                h5::write_dataset(g, "weight", h.weight, dims({std::int64_t(h.weight.size()) / c, c}));
                order.push_back(h.name);
            }
            h5::write_string_array_attribute(ops, "order", order);
        }

        if (!inputs.empty()) {
            auto ins = h5::create_group(file, "inputs", path);
            order.clear();
            for (const auto& in : inputs) {
                auto g = h5::create_group(ins, in.name, path);
                h5::write_string_attribute(g, "target", in.target);
                h5::write_dataset(g, "shape", std::vector<std::int64_t>(in.shape), {in.shape.size()});
                const auto target = net.find_population(in.target);
                const Shape target_shape = target ? net.population(*target).shape : Shape{};
                if (const auto* conv = std::get_if<Conv2d>(&in.map)) {
                    h5::write_string_attribute(g, "kind", "conv2d");
                    write_conv(g, *conv, target_shape.empty() ? 0 : target_shape[0]);
                } else {
                    h5::write_string_attribute(g, "kind", "dense");
                    write_connectivity(g, in.map, mapped_shape(in), target_shape);
                }
                if (!in.bias.empty()) h5::write_dataset(g, "bias", in.bias, {in.bias.size()});
                h5::write_double_attribute(g, "scale", in.scale);
                h5::write_double_attribute(g, "offset", in.offset);
                if (in.pad_to) h5::write_dataset(g, "pad_to", pair_vec(*in.pad_to), {2});
                order.push_back(in.name);
            }
            h5::write_string_array_attribute(ins, "order", order);
        }
        if (const auto& ann = net.ann()) {
            auto g = h5::create_group(file, "ann", path);
            std::vector<std::string> names, kinds;
            std::vector<std::int64_t> macs, weights, ins, outs;
            for (const auto& l : ann->layers) {
                names.push_back(l.name), kinds.push_back(l.kind);
                macs.push_back(std::int64_t(l.macs)), weights.push_back(std::int64_t(l.weights));
                ins.push_back(std::int64_t(l.inputs)), outs.push_back(std::int64_t(l.outputs));
            }
            h5::write_string_array_attribute(g, "layers", names);
            h5::write_string_array_attribute(g, "kinds", kinds);
            for (const auto& [name, v] : {std::pair{"macs", &macs}, {"weights", &weights}, {"inputs", &ins}, {"outputs", &outs}})
                h5::write_dataset(g, name, *v, {v->size()});
            if (ann->levels) h5::write_int_attribute(g, "levels", ann->levels);
        }
        if (!readout.empty()) {
            auto g = h5::create_group(file, "readout", path);
            h5::write_string_attribute(g, "population", readout);
            h5::write_string_attribute(g, "accumulate", "sum");
        }
    } catch (const InputError& e) {
        throw InputError(path + ": " + e.what());
    }
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) fail(path, "cannot be written");
}

AnalogDrive analog_drive(const AnalogInput& input, const Network& net, std::span<const double> raw) {
    const auto target = net.find_population(input.target);
    if (!target) throw InputError("input '" + input.name + "': target '" + input.target + "' is not a population");
    const auto n_raw = std::accumulate(input.shape.begin(), input.shape.end(), std::int64_t{1}, std::multiplies<>());
    if (std::int64_t(raw.size()) != n_raw)
        throw InputError("input '" + input.name + "': a sample has " + std::to_string(raw.size()) + " values, expected " +
                         h5::shape_text(input.shape));
    // Preprocess, then centre in the zero padding (padding stays exactly 0, as in the exporter).
    const Shape padded = mapped_shape(input);
    std::vector<double> x(std::size_t(std::accumulate(padded.begin(), padded.end(), std::int64_t{1}, std::multiplies<>())), 0.0);
    const std::int64_t h = input.shape.size() >= 2 ? input.shape[input.shape.size() - 2] : 1;
    const std::int64_t w = input.shape.empty() ? 1 : input.shape.back();
    const std::int64_t ph = padded.size() >= 2 ? padded[padded.size() - 2] : 1, pw = padded.empty() ? 1 : padded.back();
    const std::int64_t top = (ph - h) / 2, left = (pw - w) / 2;
    if (top < 0 || left < 0) throw InputError("input '" + input.name + "': pad_to is smaller than the data");
    for (std::int64_t i = 0; i < n_raw; ++i) {
        const std::int64_t plane = i / (h * w), y = (i / w) % h, xx = i % w;
        x[std::size_t((plane * ph + y + top) * pw + xx + left)] = raw[std::size_t(i)] * input.scale + input.offset;
    }
    const auto& pop = net.population(*target);
    const Fanout fanout = compile_fanout(input.map, padded, pop.shape, 0, "input '" + input.name + "'");
    AnalogDrive d;
    d.current.assign(pop.size(), 0.0);
    std::visit(overloaded{[&](const SparseFanout&) {},
                          [&](const auto& f) {
                              for (std::uint32_t i = 0; i < x.size(); ++i)
                                  if (x[i] != 0.0) f.for_each(i, [&](std::uint32_t j, float wt) { d.current[j] += x[i] * wt; });
                          }},
               fanout);
    if (!input.bias.empty()) {
        const std::size_t per_channel = input.bias.size() == pop.size() ? 1 : pop.size() / input.bias.size();
        for (std::size_t j = 0; j < d.current.size(); ++j) d.current[j] += input.bias[j / per_channel];
    }
    d.macs = synapse_count(fanout, x.size());
    return d;
}

} // namespace quantal
