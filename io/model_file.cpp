#include "io/model_file.hpp"

#include <cmath>
#include <numeric>

#include "io/hdf5_access.hpp"
#include "sim/errors.hpp"
#include "sim/overloaded.hpp"

namespace quantal {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw InputError(where + ": " + what); }

// ---- reading -------------------------------------------------------------------------------

// Members of a collection group in the order its `order` attribute gives (else HDF5's).
std::vector<std::string> ordered_members(hid_t group, const std::string& where) {
    auto present = h5::member_names(group, where);
    if (!h5::has_attribute(group, "order")) return present;
    auto order = h5::read_string_array_attribute(group, "order", where);
    for (const auto& name : order)
        if (!h5::has_link(group, name)) fail(where, "attribute 'order' names '" + name + "', which is missing");
    if (order.size() != present.size()) fail(where, "attribute 'order' does not list every member");
    return order;
}

std::string string_or(hid_t loc, const std::string& name, const std::string& fallback, const std::string& where) {
    return h5::has_attribute(loc, name) ? h5::read_string_attribute(loc, name, where) : fallback;
}

double double_or(hid_t loc, const std::string& name, double fallback, const std::string& where) {
    if (!h5::has_attribute(loc, name)) return fallback;
    const double v = h5::read_double_attribute(loc, name, where);
    if (!std::isfinite(v)) fail(where, "attribute '" + name + "' is not finite");
    return v;
}

std::vector<double> finite_values(hid_t loc, const std::string& name, const std::string& where) {
    auto a = h5::read_array(loc, name, where);
    for (std::size_t i = 0; i < a.values.size(); ++i)
        if (!std::isfinite(a.values[i])) fail(where, "'" + name + "'[" + std::to_string(i) + "] is not finite");
    return a.values;
}

std::vector<float> float_values(hid_t loc, const std::string& name, const std::string& where) {
    auto v = finite_values(loc, name, where);
    return {v.begin(), v.end()};
}

std::array<std::int64_t, 2> pair_or(hid_t loc, const std::string& name, std::array<std::int64_t, 2> fallback,
                                    const std::string& where) {
    if (!h5::has_link(loc, name)) return fallback;
    auto v = h5::read_ints(loc, name, where);
    if (v.size() != 2) fail(where, "'" + name + "' should have 2 values, it has " + std::to_string(v.size()));
    return {v[0], v[1]};
}

ThresholdRule read_rule(hid_t g, const std::string& where) {
    ThresholdRule r;
    r.threshold = double_or(g, "threshold", 1.0, where);
    const auto cmp = string_or(g, "comparison", ">=", where);
    if (cmp != ">=" && cmp != ">") fail(where, "comparison '" + cmp + "' is not '>=' or '>'");
    r.comparison = cmp == ">" ? Comparison::greater : Comparison::greater_equal;
    const auto reset = string_or(g, "reset", "subtract", where);
    if (reset != "subtract" && reset != "value") fail(where, "reset '" + reset + "' is not 'subtract' or 'value'");
    r.reset = reset == "value" ? ResetMode::to_value : ResetMode::subtract;
    r.v_reset = double_or(g, "v_reset", 0.0, where);
    return r;
}

Population read_population(hid_t g, const std::string& name, const std::string& where) {
    Population p;
    p.name = name;
    p.shape = h5::read_ints(g, "shape", where);
    const auto model = h5::read_string_attribute(g, "model", where);
    const double spike_value = double_or(g, "spike_value", 1.0, where);
    const double v0 = double_or(g, "v0", 0.0, where);
    if (model == "IF") {
        p.model = IfNeuron{read_rule(g, where), v0, spike_value};
    } else if (model == "LIF") {
        if (!h5::has_attribute(g, "tau_ticks")) fail(where, "attribute 'tau_ticks' is missing (needed by LIF)");
        p.model = LifNeuron{read_rule(g, where), double_or(g, "tau_ticks", 0.0, where), double_or(g, "v_leak", 0.0, where),
                            v0, spike_value};
    } else if (model == "CubaLIF") {
        for (const char* tau : {"tau_ticks", "tau_syn_ticks"})
            if (!h5::has_attribute(g, tau)) fail(where, std::string("attribute '") + tau + "' is missing (needed by CubaLIF)");
        p.model = CubaLifNeuron{read_rule(g, where), double_or(g, "tau_syn_ticks", 0.0, where),
                                double_or(g, "tau_ticks", 0.0, where), double_or(g, "v_leak", 0.0, where), v0, spike_value};
    } else if (model == "readout") {
        p.model = ReadoutNeuron{v0};
    } else if (model == "spike_source") {
        p.model = SpikeSource{spike_value};
    } else if (model == "bernoulli_source") {
        p.model = BernoulliSource{finite_values(g, "probability", where), spike_value};
    } else {
        fail(where, "unknown model '" + model + "'");
    }
    if (h5::has_link(g, "bias")) p.bias = finite_values(g, "bias", where);
    return p;
}

Conv2d read_conv(hid_t g, const std::string& where) {
    Conv2d c;
    auto w = h5::read_array(g, "weight", where);
    if (w.shape.size() != 4) fail(where, "conv2d weight has shape " + h5::shape_text(w.shape) + ", expected 4 dimensions");
    c.kernel = {w.shape[2], w.shape[3]};
    c.weight = float_values(g, "weight", where);
    c.stride = pair_or(g, "stride", {1, 1}, where);
    c.padding = pair_or(g, "padding", {0, 0}, where);
    c.dilation = pair_or(g, "dilation", {1, 1}, where);
    if (h5::has_attribute(g, "groups")) c.groups = h5::read_int_attribute(g, "groups", where);
    else if (h5::has_link(g, "groups")) {
        const auto groups = h5::read_ints(g, "groups", where);
        if (groups.size() != 1) fail(where, "'groups' should hold one value, it has " + std::to_string(groups.size()));
        c.groups = groups[0];
    }
    return c;
}

Connectivity read_connectivity(hid_t g, const std::string& kind, const std::string& where) {
    if (kind == "dense") return Dense{float_values(g, "weight", where)};
    if (kind == "conv2d") return read_conv(g, where);
    if (kind == "sum_pool2d" || kind == "avg_pool2d") {
        Pool2d p;
        p.kind = kind == "sum_pool2d" ? PoolKind::sum : PoolKind::average;
        p.kernel = pair_or(g, "kernel_size", {0, 0}, where);
        if (p.kernel[0] == 0) fail(where, "dataset 'kernel_size' is missing");
        p.stride = pair_or(g, "stride", {0, 0}, where);
        p.padding = pair_or(g, "padding", {0, 0}, where);
        return p;
    }
    if (kind == "one_to_one") return OneToOne{h5::has_link(g, "weight") ? float_values(g, "weight", where) : std::vector<float>{1.0f}};
    if (kind == "sparse") {
        Sparse s;
        s.row_begin = h5::read_uint64s(g, "row_begin", where);
        for (auto t : h5::read_ints(g, "target", where)) {
            if (t < 0 || t > std::int64_t(UINT32_MAX)) fail(where, "target index " + std::to_string(t) + " is out of range");
            s.target.push_back(std::uint32_t(t));
        }
        s.weight = float_values(g, "weight", where);
        if (h5::has_link(g, "delay"))
            for (auto d : h5::read_ints(g, "delay", where)) {
                if (d < 0) fail(where, "'delay' has a negative value " + std::to_string(d));
                s.delay.push_back(std::uint32_t(d));
            }
        if (h5::has_link(g, "probability")) s.probability = float_values(g, "probability", where);
        if (s.row_begin.empty() || s.row_begin.back() != s.target.size() || s.weight.size() != s.target.size())
            fail(where, "sparse arrays disagree: row_begin ends at " +
                            std::to_string(s.row_begin.empty() ? 0 : s.row_begin.back()) + ", target has " +
                            std::to_string(s.target.size()) + ", weight " + std::to_string(s.weight.size()));
        return s;
    }
    fail(where, "unknown kind '" + kind + "'");
}

Release read_release(hid_t g, const std::string& where) {
    Release r;
    const auto mode = string_or(g, "release", "none", where);
    if (mode == "none") r.mode = ReleaseMode::none;
    else if (mode == "spike") r.mode = ReleaseMode::spike;
    else if (mode == "synapse") r.mode = ReleaseMode::synapse;
    else fail(where, "release '" + mode + "' is not 'none', 'spike' or 'synapse'");
    r.mask_ratio = double_or(g, "mask_ratio", 0.0, where);
    return r;
}

AnalogInput read_input(hid_t g, const std::string& name, const std::string& where) {
    AnalogInput in;
    in.name = name;
    in.target = h5::read_string_attribute(g, "target", where);
    in.shape = h5::read_ints(g, "shape", where);
    const auto kind = h5::read_string_attribute(g, "kind", where);
    if (kind == "conv2d") in.map = read_conv(g, where);
    else if (kind == "dense") in.map = Dense{float_values(g, "weight", where)};
    else fail(where, "analog input kind '" + kind + "' is not 'conv2d' or 'dense'");
    if (h5::has_link(g, "bias")) in.bias = finite_values(g, "bias", where);
    in.scale = double_or(g, "scale", 1.0, where);
    in.offset = double_or(g, "offset", 0.0, where);
    if (h5::has_link(g, "pad_to")) in.pad_to = pair_or(g, "pad_to", {0, 0}, where);
    return in;
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

template <class Find>
SoftmaxAttention read_attention(hid_t g, const std::string& name, const Find& find, const std::string& where) {
    if (!h5::has_attribute(g, "layout")) fail(where, "attribute 'layout' is missing (version 1 defines 'image')");
    const auto layout = h5::read_string_attribute(g, "layout", where);
    if (layout != "image") fail(where, "layout '" + layout + "' is not supported (version 1 defines 'image')");
    SoftmaxAttention a;
    a.name = name;
    a.q = find(h5::read_string_attribute(g, "q", where), where);
    a.k = find(h5::read_string_attribute(g, "k", where), where);
    a.v = find(h5::read_string_attribute(g, "v", where), where);
    a.scores = find(h5::read_string_attribute(g, "scores", where), where);
    a.output = find(h5::read_string_attribute(g, "output", where), where);
    a.heads = h5::read_int_attribute(g, "heads", where);
    a.window = h5::read_int_attribute(g, "window", where);
    a.shift = h5::has_attribute(g, "shift") ? h5::read_int_attribute(g, "shift", where) : 0;
    a.scale = double_or(g, "scale", 1.0, where);
    a.bias = float_values(g, "bias", where);
    if (h5::has_link(g, "mask")) a.mask = float_values(g, "mask", where);
    auto release = [&](const std::string& prefix) {
        Release r;
        const auto mode = string_or(g, prefix + "_release", "none", where);
        if (mode == "none") r.mode = ReleaseMode::none;
        else if (mode == "spike") r.mode = ReleaseMode::spike;
        else fail(where, "attribute '" + prefix + "_release' is '" + mode + "', expected 'none' or 'spike'");
        r.mask_ratio = double_or(g, prefix + "_mask_ratio", 0.0, where);
        return r;
    };
    a.q_release = release("q");
    a.k_release = release("k");
    a.score_release = release("score");
    return a;
}

// ---- writing -------------------------------------------------------------------------------

std::vector<hsize_t> dims(std::initializer_list<std::int64_t> d) { return {d.begin(), d.end()}; }

std::vector<std::int64_t> pair_vec(const std::array<std::int64_t, 2>& a) { return {a[0], a[1]}; }

void write_rule(hid_t g, const ThresholdRule& r) {
    h5::write_double_attribute(g, "threshold", r.threshold);
    h5::write_string_attribute(g, "comparison", r.comparison == Comparison::greater ? ">" : ">=");
    h5::write_string_attribute(g, "reset", r.reset == ResetMode::subtract ? "subtract" : "value");
    h5::write_double_attribute(g, "v_reset", r.v_reset);
}

void write_population(hid_t g, const Population& p) {
    h5::write_string_attribute(g, "model", model_name(p.model));
    auto spiking = [&](const auto& m) { // what every thresholded model has
        write_rule(g, m.rule);
        h5::write_double_attribute(g, "v0", m.v0);
        h5::write_double_attribute(g, "spike_value", m.spike_value);
    };
    std::visit(overloaded{[&](const IfNeuron& m) { spiking(m); },
                          [&](const LifNeuron& m) {
                              spiking(m);
                              h5::write_double_attribute(g, "tau_ticks", m.tau_ticks);
                              h5::write_double_attribute(g, "v_leak", m.v_leak);
                          },
                          [&](const CubaLifNeuron& m) {
                              spiking(m);
                              h5::write_double_attribute(g, "tau_ticks", m.tau_ticks);
                              h5::write_double_attribute(g, "tau_syn_ticks", m.tau_syn_ticks);
                              h5::write_double_attribute(g, "v_leak", m.v_leak);
                          },
                          [&](const ReadoutNeuron& m) { h5::write_double_attribute(g, "v0", m.v0); },
                          [&](const SpikeSource& m) { h5::write_double_attribute(g, "spike_value", m.spike_value); },
                          [&](const BernoulliSource& m) {
                              h5::write_double_attribute(g, "spike_value", m.spike_value);
                              h5::write_dataset(g, "probability", m.probability, {m.probability.size()});
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

} // namespace

LoadedModel read_model_file(const std::string& path) {
    auto file = h5::open_file(path);
    const std::string root = path;
    const auto format = h5::has_attribute(file, "format") ? h5::read_string_attribute(file, "format", root) : "";
    if (format != "quantal-model") fail(root, "attribute 'format' is '" + format + "', expected 'quantal-model'");
    const auto version = h5::read_int_attribute(file, "format_version", root);
    if (version != 1) fail(root, "format_version " + std::to_string(version) + " is not supported (this reader: 1)");

    LoadedModel out;
    out.name = string_or(file, "name", "", root);
    out.producer = string_or(file, "producer", "", root);
    out.provenance = string_or(file, "provenance", "", root);

    NetworkBuilder builder;
    auto pops = h5::open_group(file, "populations", root);
    const std::vector<std::string> pop_names = ordered_members(pops, root + ": /populations");
    for (const auto& name : pop_names) {
        auto g = h5::open_group(pops, name, root);
        builder.add_population(read_population(g, name, root + ": population '" + name + "'"));
    }
    auto find = [&](const std::string& name, const std::string& where) -> PopulationId {
        for (PopulationId i = 0; i < pop_names.size(); ++i)
            if (pop_names[i] == name) return i;
        fail(where, "names population '" + name + "', which does not exist");
    };
    if (h5::has_link(file, "projections")) {
        auto prjs = h5::open_group(file, "projections", root);
        for (const auto& name : ordered_members(prjs, root + ": /projections")) {
            const std::string where = root + ": projection '" + name + "'";
            auto g = h5::open_group(prjs, name, where);
            Projection p;
            p.name = name;
            p.source = find(h5::read_string_attribute(g, "source", where), where);
            p.target = find(h5::read_string_attribute(g, "target", where), where);
            p.connectivity = read_connectivity(g, h5::read_string_attribute(g, "kind", where), where);
            if (h5::has_attribute(g, "delay")) {
                const auto d = h5::read_int_attribute(g, "delay", where);
                if (d < 0) fail(where, "delay " + std::to_string(d) + " is negative");
                if (d > (1 << 24)) fail(where, "delay " + std::to_string(d) + " is out of range");
                p.delay = std::uint32_t(d);
            }
            p.release = read_release(g, where);
            builder.connect(std::move(p));
        }
    }
    if (h5::has_link(file, "operators")) {
        auto ops = h5::open_group(file, "operators", root);
        for (const auto& name : ordered_members(ops, root + ": /operators")) {
            const std::string where = root + ": operator '" + name + "'";
            auto g = h5::open_group(ops, name, where);
            const auto op = string_or(g, "op", "", where);
            if (op != "softmax_attention")
                fail(where, "op '" + op + "' is not executable by this version of quantal (it knows 'softmax_attention')");
            builder.add_operator(read_attention(g, name, find, where));
        }
    }
    try {
        out.network = builder.build();
    } catch (const ModelError& e) {
        throw ModelError(path + ": " + e.what());
    }

    if (h5::has_link(file, "inputs")) {
        auto ins = h5::open_group(file, "inputs", root);
        for (const auto& name : ordered_members(ins, root + ": /inputs")) {
            const std::string where = root + ": input '" + name + "'";
            auto g = h5::open_group(ins, name, where);
            auto in = read_input(g, name, where);
            const auto target = out.network.find_population(in.target);
            if (!target) fail(where, "target '" + in.target + "' is not a population");
            try { // validates the map against the data and target shapes once, here
                compile_fanout(in.map, mapped_shape(in), out.network.population(*target).shape, 0, where);
            } catch (const ModelError& e) {
                throw InputError(e.what());
            }
            const auto n_out = out.network.population(*target).size();
            const auto channels = out.network.population(*target).shape.front();
            if (!in.bias.empty() && in.bias.size() != n_out && std::int64_t(in.bias.size()) != channels)
                fail(where, "bias has " + std::to_string(in.bias.size()) + " values, expected " + std::to_string(n_out) +
                                " or " + std::to_string(channels));
            out.inputs.push_back(std::move(in));
        }
    }
    if (h5::has_link(file, "readout")) {
        auto g = h5::open_group(file, "readout", root);
        out.readout = string_or(g, "population", "", root + ": /readout");
        if (!out.readout.empty() && !out.network.find_population(out.readout))
            fail(root + ": /readout", "population '" + out.readout + "' does not exist");
    }
    return out;
}

void write_model_file(const std::string& path, const Network& net, const ModelFileInfo& info,
                      std::span<const AnalogInput> inputs, const std::string& readout) {
    auto file = h5::create_file(path);
    try {
        h5::write_string_attribute(file, "format", "quantal-model");
        h5::write_int_attribute(file, "format_version", 1);
        h5::write_string_attribute(file, "name", info.name);
        h5::write_string_attribute(file, "producer", info.producer);
        h5::write_string_attribute(file, "provenance", info.provenance);

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
            h5::write_int_attribute(g, "delay", p.delay);
            h5::write_string_attribute(g, "release", mode_name(p.release.mode));
            h5::write_double_attribute(g, "mask_ratio", p.release.mask_ratio);
            write_connectivity(g, connectivity, net.population(p.source).shape, net.population(p.target).shape);
            order.push_back(p.name);
        }
        h5::write_string_array_attribute(prjs, "order", order);

        if (!net.operators().empty()) {
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
                }
                order.push_back(a.name);
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
