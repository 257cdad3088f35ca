#include "io/nir.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>

#include "io/hdf5_access.hpp"
#include "sim/errors.hpp"
#include "sim/overloaded.hpp"

namespace quantal {

namespace {

constexpr std::size_t none = std::numeric_limits<std::size_t>::max();

std::int64_t count_of(const Shape& s) {
    return std::accumulate(s.begin(), s.end(), std::int64_t{1}, std::multiplies<>());
}

// ---- the file, flattened ------------------------------------------------------------------

// One NIR node as stored: its numeric and string fields, read eagerly (files are small).
struct RawNode {
    std::string name; // dotted for nested graphs: outer.inner
    std::string type;
    bool top_level = true;
    std::map<std::string, h5::Array> numbers;
    std::map<std::string, std::string> strings;
};

enum class Role { source, neuron, linear, output };

const std::set<std::string> neuron_types{"IF", "LIF", "I", "LI", "Threshold", "CubaLIF", "CubaLI"};
const std::set<std::string> linear_types{"Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d",
                                         "AvgPool2d", "Flatten", "Delay"};

// A graph scope: resolves edge endpoints (names, nested graphs, dotted paths into them).
struct Scope {
    struct Entry {
        std::size_t node = none;       // flat index, or none for a nested graph
        std::unique_ptr<Scope> graph;  // the nested graph
    };
    std::map<std::string, Entry> entries;
    std::vector<std::size_t> inputs, outputs; // this graph's own Input / Output nodes
};

class NirFile {
public:
    NirFile(const std::string& path, double dt) : path_(path), dt_(dt) {}

    LoadedModel load();

private:
    // reading
    void read_graph(hid_t group, const std::string& prefix, bool top, Scope& scope);
    RawNode read_node(hid_t group, const std::string& name, const std::string& type, bool top);
    std::vector<std::size_t> resolve(const Scope& scope, const std::string& name, bool as_source,
                                     const std::string& edge, const std::string& full = {}) const;

    // interpretation
    Role role(std::size_t n) const;
    const Shape& out_shape(std::size_t n);
    Shape in_shape(std::size_t n);
    struct Op {
        Connectivity map = OneToOne{{1.0f}};
        Shape in, out;
        std::vector<double> bias; // per output element; empty: none
        std::uint32_t delay = 0;
        bool identity = true;     // Flatten, Delay, nested Input/Output: no weights
    };
    const Op& op(std::size_t n);
    Op make_op(std::size_t n);
    const std::vector<double>& bias_out(std::size_t n);
    std::vector<double> apply(const Op& o, const std::vector<double>& x) const;

    // neurons
    struct NeuronSpec {
        NeuronModel model;
        std::vector<double> gain; // input gain per neuron (weights and biases are multiplied by it)
        bool spiking = true;
    };
    NeuronSpec neuron(std::size_t n, std::int64_t size);

    // projections
    using Path = std::vector<std::size_t>; // linear nodes from a population towards a target
    void paths_into(std::size_t n, Path& suffix, std::vector<std::pair<std::size_t, Path>>& out, int depth);
    Projection compose(std::size_t source, const Path& path, std::size_t target, const std::vector<double>& gain);

    // helpers
    std::string where(std::size_t n) const { return path_ + ": node '" + nodes_[n].name + "'"; }
    [[noreturn]] void fail(std::size_t n, const std::string& what) const { throw InputError(where(n) + ": " + what); }
    const h5::Array& field(std::size_t n, const std::string& name) const;
    bool has(std::size_t n, const std::string& name) const { return nodes_[n].numbers.count(name) > 0; }
    std::vector<double> per_neuron(std::size_t n, const std::string& name, std::int64_t size, std::optional<double> fallback = {}) const;
    double uniform(std::size_t n, const std::string& name, const std::vector<double>& v) const;
    std::int64_t integer(std::size_t n, const std::string& name, std::int64_t fallback) const;
    std::int64_t whole(std::size_t n, const std::string& name, double v) const;
    Shape extents(std::size_t n, const std::string& name) const;
    std::array<std::int64_t, 2> pair(std::size_t n, const std::string& name, std::array<std::int64_t, 2> fallback) const;

    std::string path_;
    double dt_;
    std::string version_;
    std::vector<RawNode> nodes_;
    std::vector<std::vector<std::size_t>> preds_, succs_;
    std::map<std::size_t, Shape> out_shapes_;
    std::set<std::size_t> shaping_;
    std::map<std::size_t, Op> ops_;
    std::map<std::size_t, std::vector<double>> biases_;
    std::map<std::size_t, PopulationId> population_of_;
};

// ---- reading ------------------------------------------------------------------------------

RawNode NirFile::read_node(hid_t group, const std::string& name, const std::string& type, bool top) {
    RawNode node{name, type, top, {}, {}};
    const std::string at = path_ + ": node '" + name + "'";
    for (const auto& member : h5::member_names(group, at)) {
        if (member == "type" || h5::is_group(group, member)) continue; // metadata/ and the like
        if (h5::is_string_dataset(group, member)) {
            node.strings[member] = h5::read_string(group, member, at);
            continue;
        }
        auto a = h5::read_array(group, member, at);
        for (std::size_t i = 0; i < a.values.size(); ++i)
            if (!std::isfinite(a.values[i]))
                throw InputError(at + ": " + member + "[" + std::to_string(i) + "] is not finite (" +
                                 std::to_string(a.values[i]) + ")");
        node.numbers[member] = std::move(a);
    }
    return node;
}

void NirFile::read_graph(hid_t group, const std::string& prefix, bool top, Scope& scope) {
    const std::string at = path_ + ": graph '" + (prefix.empty() ? std::string("/node") : prefix.substr(0, prefix.size() - 1)) + "'";
    auto nodes = h5::open_group(group, "nodes", at);
    for (const auto& name : h5::member_names(nodes, at)) {
        const std::string full = prefix + name;
        auto g = h5::open_group(nodes, name, at);
        const auto type = h5::read_string(g, "type", path_ + ": node '" + full + "'");
        Scope::Entry entry;
        if (type == "NIRGraph") {
            entry.graph = std::make_unique<Scope>();
            read_graph(g, full + ".", false, *entry.graph);
        } else {
            if (!neuron_types.count(type) && !linear_types.count(type) && type != "Input" && type != "Output")
                throw InputError(path_ + ": node '" + full + "': unknown node type '" + type + "'");
            entry.node = nodes_.size();
            nodes_.push_back(read_node(g, full, type, top));
            if (type == "Input") scope.inputs.push_back(entry.node);
            if (type == "Output") scope.outputs.push_back(entry.node);
        }
        scope.entries[name] = std::move(entry);
    }
    preds_.resize(nodes_.size());
    succs_.resize(nodes_.size());
    if (!h5::has_link(group, "edges")) return;
    std::vector<std::int64_t> shape;
    const auto ends = h5::read_strings(group, "edges", shape, at);
    if (ends.empty()) return;
    if (shape.size() != 2 || shape[1] != 2) throw InputError(at + ": 'edges' has shape " + h5::shape_text(shape) + ", expected (E, 2)");
    for (std::size_t e = 0; e < ends.size(); e += 2) {
        const std::string edge = "('" + prefix + ends[e] + "', '" + prefix + ends[e + 1] + "')";
        for (auto s : resolve(scope, ends[e], true, edge))
            for (auto t : resolve(scope, ends[e + 1], false, edge)) {
                preds_[t].push_back(s);
                succs_[s].push_back(t);
            }
    }
}

// A name in a graph scope: a node, a nested graph (its Output nodes as a source, its Input nodes
// as a target), or a dotted path into a nested graph.
std::vector<std::size_t> NirFile::resolve(const Scope& scope, const std::string& name, bool as_source,
                                          const std::string& edge, const std::string& full) const {
    const std::string& shown = full.empty() ? name : full;
    auto it = scope.entries.find(name);
    if (it != scope.entries.end()) {
        if (it->second.node != none) return {it->second.node};
        const auto& inner = *it->second.graph;
        const auto& ends = as_source ? inner.outputs : inner.inputs;
        if (ends.empty())
            throw InputError(path_ + ": edge " + edge + ": nested graph '" + shown + "' has no " +
                             (as_source ? "Output" : "Input") + " node");
        return ends;
    }
    for (auto dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
        auto g = scope.entries.find(name.substr(0, dot));
        if (g != scope.entries.end() && g->second.graph)
            return resolve(*g->second.graph, name.substr(dot + 1), as_source, edge, shown);
    }
    throw InputError(path_ + ": edge " + edge + ": node '" + shown + "' does not exist");
}

// ---- shapes and fields --------------------------------------------------------------------

Role NirFile::role(std::size_t n) const {
    const auto& t = nodes_[n].type;
    if (t == "Input") return nodes_[n].top_level ? Role::source : Role::linear;
    if (t == "Output") return nodes_[n].top_level ? Role::output : Role::linear;
    return neuron_types.count(t) ? Role::neuron : Role::linear;
}

const h5::Array& NirFile::field(std::size_t n, const std::string& name) const {
    auto it = nodes_[n].numbers.find(name);
    if (it == nodes_[n].numbers.end()) {
        if (nodes_[n].strings.count(name)) fail(n, "dataset '" + name + "' should be numeric, it is a string");
        fail(n, "dataset '" + name + "' is missing");
    }
    return it->second;
}

std::int64_t NirFile::integer(std::size_t n, const std::string& name, std::int64_t fallback) const {
    if (!has(n, name)) return fallback;
    const auto& a = field(n, name);
    if (a.values.size() != 1) fail(n, "'" + name + "' should be one integer, it has shape " + h5::shape_text(a.shape));
    return whole(n, name, a.values[0]);
}

// An integer field stored as any type: a float only when integral, and in a range that cannot
// overflow later arithmetic (shapes, kernels, strides), checked before narrowing.
std::int64_t NirFile::whole(std::size_t n, const std::string& name, double v) const {
    constexpr double limit = double(std::int64_t{1} << 32);
    if (!std::isfinite(v) || v != std::floor(v)) fail(n, "'" + name + "' holds " + std::to_string(v) + ", not an integer");
    if (std::abs(v) > limit) fail(n, "'" + name + "' holds " + std::to_string(v) + ", beyond +-2^32");
    return std::int64_t(v);
}

Shape NirFile::extents(std::size_t n, const std::string& name) const {
    Shape s;
    for (double d : field(n, name).values) s.push_back(whole(n, name, d));
    return s;
}

std::array<std::int64_t, 2> NirFile::pair(std::size_t n, const std::string& name,
                                           std::array<std::int64_t, 2> fallback) const {
    if (!has(n, name)) return fallback;
    const auto& a = field(n, name);
    if (a.values.size() == 1) return {whole(n, name, a.values[0]), whole(n, name, a.values[0])};
    if (a.values.size() != 2) fail(n, "'" + name + "' has shape " + h5::shape_text(a.shape) + ", expected (2,)");
    return {whole(n, name, a.values[0]), whole(n, name, a.values[1])};
}

std::vector<double> NirFile::per_neuron(std::size_t n, const std::string& name, std::int64_t size,
                                        std::optional<double> fallback) const {
    if (!has(n, name) && fallback) return std::vector<double>(std::size_t(size), *fallback);
    const auto& a = field(n, name);
    if (a.values.size() == 1) return std::vector<double>(std::size_t(size), a.values[0]);
    if (std::int64_t(a.values.size()) != size)
        fail(n, "'" + name + "' has shape " + h5::shape_text(a.shape) + ", expected " + std::to_string(size) +
                    " values (one per neuron) or 1");
    return a.values;
}

double NirFile::uniform(std::size_t n, const std::string& name, const std::vector<double>& v) const {
    for (double x : v)
        if (x != v.front())
            fail(n, "'" + name + "' differs between neurons (" + std::to_string(v.front()) + ", " + std::to_string(x) +
                        "); a quantal population shares one value");
    return v.empty() ? 0.0 : v.front();
}

Shape NirFile::in_shape(std::size_t n) {
    if (preds_[n].empty()) return {};
    const Shape s = out_shape(preds_[n].front());
    for (auto p : preds_[n])
        if (!s.empty() && count_of(out_shape(p)) != count_of(s) && !out_shape(p).empty())
            fail(n, "its inputs differ in size: '" + nodes_[preds_[n].front()].name + "' gives " + h5::shape_text(s) +
                        ", '" + nodes_[p].name + "' gives " + h5::shape_text(out_shape(p)));
    return s;
}

const Shape& NirFile::out_shape(std::size_t n) {
    if (auto it = out_shapes_.find(n); it != out_shapes_.end()) return it->second;
    static const Shape unknown{};
    const auto& node = nodes_[n];
    if (shaping_.count(n)) { // a cycle: only neurons know their size by themselves
        if (role(n) == Role::neuron) {
            for (const char* f : {"v_threshold", "tau", "r", "tau_mem", "threshold"})
                if (has(n, f)) {
                    Shape s = field(n, f).shape;
                    return out_shapes_[n] = s.empty() ? Shape{1} : s;
                }
        }
        return unknown;
    }
    shaping_.insert(n);
    Shape s;
    if (role(n) == Role::source) {
        s = extents(n, "shape");
        if (s.empty()) fail(n, "'shape' is empty");
    } else if (role(n) == Role::neuron || role(n) == Role::output || node.type == "Input" || node.type == "Output" ||
               node.type == "Scale" || node.type == "Delay") {
        s = in_shape(n);
        if (s.empty() && role(n) == Role::neuron) s = out_shape(n); // no input: the parameters' shape
        if (s.empty() && (node.type == "Output" || node.type == "Input") && has(n, "shape")) s = extents(n, "shape");
    } else {
        s = make_op(n).out;
    }
    shaping_.erase(n);
    for (auto d : s)
        if (d <= 0) fail(n, "shape " + h5::shape_text(s) + " has a non-positive extent");
    return out_shapes_[n] = s;
}

// ---- weight nodes -------------------------------------------------------------------------

const NirFile::Op& NirFile::op(std::size_t n) {
    if (auto it = ops_.find(n); it != ops_.end()) return it->second;
    return ops_[n] = make_op(n);
}

NirFile::Op NirFile::make_op(std::size_t n) {
    const auto& type = nodes_[n].type;
    Op o;
    o.in = in_shape(n);
    auto require_input = [&] {
        if (o.in.empty()) fail(n, "has no input edge, so its input shape is unknown");
    };
    if (type == "Affine" || type == "Linear") {
        const auto& w = field(n, "weight");
        if (w.shape.size() != 2) fail(n, "weight has shape " + h5::shape_text(w.shape) + ", expected (out, in)");
        if (!o.in.empty() && count_of(o.in) != w.shape[1])
            fail(n, "weight has shape " + h5::shape_text(w.shape) + ", expected (" + std::to_string(w.shape[0]) + ", " +
                        std::to_string(count_of(o.in)) + ") for its input of shape " + h5::shape_text(o.in));
        if (o.in.empty()) o.in = {w.shape[1]};
        o.out = {w.shape[0]};
        o.map = Dense{std::vector<float>(w.values.begin(), w.values.end())};
        o.identity = false;
        if (type == "Affine") {
            const auto& b = field(n, "bias");
            if (std::int64_t(b.values.size()) != w.shape[0])
                fail(n, "bias has shape " + h5::shape_text(b.shape) + ", expected (" + std::to_string(w.shape[0]) + ",)");
            o.bias = b.values;
        }
    } else if (type == "Scale") {
        require_input();
        o.out = o.in;
        const auto s = per_neuron(n, "scale", count_of(o.in));
        o.map = OneToOne{std::vector<float>(s.begin(), s.end())};
        o.identity = false;
    } else if (type == "Conv2d" || type == "Conv1d") {
        const bool one_d = type == "Conv1d";
        const auto& w = field(n, "weight");
        if (w.shape.size() != (one_d ? 3u : 4u))
            fail(n, "weight has shape " + h5::shape_text(w.shape) + ", expected " + (one_d ? "(C_out, C_in, k)" : "(C_out, C_in, kh, kw)"));
        Conv2d c;
        c.groups = integer(n, "groups", 1);
        if (c.groups < 1) fail(n, "groups " + std::to_string(c.groups) + " must be >= 1");
        c.weight.assign(w.values.begin(), w.values.end());
        const std::int64_t c_in = w.shape[1] * c.groups;
        c.kernel = one_d ? std::array<std::int64_t, 2>{1, w.shape[2]} : std::array<std::int64_t, 2>{w.shape[2], w.shape[3]};
        auto geometry = [&](const std::string& name, std::int64_t fallback) {
            auto p = pair(n, name, {fallback, fallback});
            return one_d ? std::array<std::int64_t, 2>{name == "padding" ? 0 : 1, p[0]} : p;
        };
        c.stride = geometry("stride", 1);
        c.dilation = geometry("dilation", 1);
        // Spatial input shape: the input_shape field, else the incoming node's shape.
        Shape spatial;
        if (has(n, "input_shape"))
            spatial = extents(n, "input_shape");
        else if (!o.in.empty())
            spatial = o.in;
        else
            require_input();
        const std::size_t dims = one_d ? 1 : 2;
        if (spatial.size() > dims) spatial.erase(spatial.begin(), spatial.end() - std::ptrdiff_t(dims));
        if (spatial.size() != dims) fail(n, "cannot infer the input's spatial shape from " + h5::shape_text(spatial));
        const Shape in3 = one_d ? Shape{c_in, 1, spatial[0]} : Shape{c_in, spatial[0], spatial[1]};
        // A flat input (after Flatten or Affine) is reshaped; one with channels must match whole,
        // else channels and positions would be silently exchanged.
        const Shape natural = one_d ? Shape{c_in, spatial[0]} : in3;
        const bool whole_shape = o.in.size() > 1 && o.in != natural && o.in != in3;
        if (!o.in.empty() && (count_of(o.in) != count_of(in3) || whole_shape))
            fail(n, "weight has shape " + h5::shape_text(w.shape) + ", which expects an input of " + h5::shape_text(natural) +
                        ", but its input has shape " + h5::shape_text(o.in));
        if (auto it = nodes_[n].strings.find("padding"); it != nodes_[n].strings.end()) {
            if (it->second == "valid") c.padding = {0, 0};
            else if (it->second == "same") {
                for (int a = 0; a < 2; ++a) {
                    const auto span = c.dilation[a] * (c.kernel[a] - 1);
                    if (span % 2 || c.stride[a] != 1) fail(n, "padding 'same' needs stride 1 and an odd kernel extent");
                    c.padding[a] = span / 2;
                }
            } else fail(n, "padding '" + it->second + "' is not 'same', 'valid' or numbers");
        } else {
            c.padding = geometry("padding", 0);
        }
        for (int a = 0; a < 2; ++a)
            if (c.stride[a] < 1 || c.dilation[a] < 1 || c.padding[a] < 0)
                fail(n, "stride/dilation must be >= 1 and padding >= 0");
        auto out_extent = [&](int a) {
            return (in3[std::size_t(a) + 1] + 2 * c.padding[a] - c.dilation[a] * (c.kernel[a] - 1) - 1) / c.stride[a] + 1;
        };
        o.in = in3;
        o.out = {w.shape[0], out_extent(0), out_extent(1)};
        if (o.out[1] < 1 || o.out[2] < 1) fail(n, "the kernel is larger than its padded input " + h5::shape_text(in3));
        if (w.shape[0] % c.groups) fail(n, "groups " + std::to_string(c.groups) + " does not divide C_out " + std::to_string(w.shape[0]));
        if (has(n, "bias")) {
            const auto& b = field(n, "bias");
            const auto per_channel = count_of(o.out) / o.out[0];
            if (std::int64_t(b.values.size()) == o.out[0]) {
                for (std::int64_t i = 0; i < count_of(o.out); ++i) o.bias.push_back(b.values[std::size_t(i / per_channel)]);
            } else if (std::int64_t(b.values.size()) == count_of(o.out)) {
                o.bias = b.values;
            } else if (!(b.values.size() == 1 && b.values[0] == 0.0)) {
                fail(n, "bias has shape " + h5::shape_text(b.shape) + ", expected (" + std::to_string(o.out[0]) + ",)");
            }
        }
        if (!o.bias.empty() && std::all_of(o.bias.begin(), o.bias.end(), [](double b) { return b == 0.0; })) o.bias.clear();
        o.map = c;
        o.identity = false;
    } else if (type == "SumPool2d" || type == "AvgPool2d") {
        require_input();
        Pool2d p;
        p.kind = type == "SumPool2d" ? PoolKind::sum : PoolKind::average;
        p.kernel = pair(n, "kernel_size", {0, 0});
        if (!has(n, "kernel_size")) field(n, "kernel_size"); // reports it missing
        p.stride = pair(n, "stride", p.kernel);
        p.padding = pair(n, "padding", {0, 0});
        Shape in3 = o.in;
        if (in3.size() == 2) in3.insert(in3.begin(), 1);
        if (in3.size() != 3) fail(n, "input shape " + h5::shape_text(o.in) + " is not (C, H, W)");
        for (int a = 0; a < 2; ++a)
            if (p.kernel[a] < 1 || p.stride[a] < 1 || p.padding[a] < 0) fail(n, "kernel_size/stride must be >= 1, padding >= 0");
        o.in = in3;
        o.out = {in3[0], (in3[1] + 2 * p.padding[0] - p.kernel[0]) / p.stride[0] + 1,
                 (in3[2] + 2 * p.padding[1] - p.kernel[1]) / p.stride[1] + 1};
        if (o.out[1] < 1 || o.out[2] < 1) fail(n, "the pool window is larger than its input " + h5::shape_text(in3));
        o.map = p;
        o.identity = false;
    } else if (type == "Flatten") {
        require_input();
        // NIR's dims count the input without the batch axis? Exporters disagree; the flat order
        // is the same either way, so quantal keeps the elements and reports a flat shape.
        o.out = {count_of(o.in)};
    } else if (type == "Delay") {
        require_input();
        o.out = o.in;
        const auto d = per_neuron(n, "delay", count_of(o.in));
        const double ms = uniform(n, "delay", d);
        if (ms < 0) fail(n, "delay " + std::to_string(ms) + " ms is negative");
        const double ticks = ms / dt_;
        const double whole = std::round(ticks);
        if (std::abs(ticks - whole) > 1e-6 * std::max(1.0, ticks))
            fail(n, "delay " + std::to_string(ms) + " ms is not a whole number of ticks of " + std::to_string(dt_) + " ms");
        if (whole > double(1 << 24)) fail(n, "delay of " + std::to_string(whole) + " ticks is out of range");
        o.delay = std::uint32_t(whole);
    } else { // nested Input / Output: pass-through
        if (o.in.empty() && has(n, "shape")) o.in = extents(n, "shape");
        o.out = o.in;
    }
    return o;
}

// Applies a weight node to a vector (biases flowing through later weight nodes).
std::vector<double> NirFile::apply(const Op& o, const std::vector<double>& x) const {
    if (o.identity) return x;
    std::vector<double> y(std::size_t(count_of(o.out)), 0.0);
    const Fanout f = compile_fanout(o.map, o.in, o.out, 0, "bias");
    std::visit(overloaded{[&](const SparseFanout&) {},
                          [&](const auto& fan) {
                              for (std::uint32_t i = 0; i < x.size(); ++i)
                                  if (x[i] != 0.0) fan.for_each(i, [&](std::uint32_t j, float w) { y[j] += x[i] * double(w); });
                          }},
               f);
    return y;
}

// The constant a weight node adds to its output: its own bias plus its inputs' biases mapped.
const std::vector<double>& NirFile::bias_out(std::size_t n) {
    if (auto it = biases_.find(n); it != biases_.end()) return it->second;
    biases_[n] = {}; // cycle guard: a cycle of weight nodes is rejected elsewhere
    const Op& o = op(n);
    std::vector<double> in(std::size_t(count_of(o.in)), 0.0);
    bool any = false;
    for (auto p : preds_[n])
        if (role(p) == Role::linear)
            if (const auto& b = bias_out(p); !b.empty()) {
                for (std::size_t i = 0; i < in.size() && i < b.size(); ++i) in[i] += b[i];
                any = true;
            }
    std::vector<double> out = any ? apply(o, in) : std::vector<double>{};
    if (!o.bias.empty()) {
        out.resize(o.bias.size(), 0.0);
        for (std::size_t i = 0; i < out.size(); ++i) out[i] += o.bias[i];
    }
    return biases_[n] = out;
}

// ---- neurons ------------------------------------------------------------------------------

// NIR's per-neuron arrays as a quantal parameter: one value when every neuron has it (the fast
// uniform path), else one per neuron.
PerNeuron compact(std::vector<double> v) {
    if (!v.empty() && std::all_of(v.begin(), v.end(), [&](double x) { return x == v.front(); })) return v.front();
    return v;
}

// Forward Euler on the tick grid (docs/nir.md): the input I[t] of a tick (weighted spikes of that
// tick plus biases) is held over the tick and
//   I:   v += dt R I                       IF:  the same, then threshold
//   LI:  v += dt/tau (v_leak - v + R I)    LIF: the same, then threshold
// which is quantal's LIF with alpha = 1 - dt/tau and an input gain dt R / tau.
NirFile::NeuronSpec NirFile::neuron(std::size_t n, std::int64_t size) {
    const auto& type = nodes_[n].type;
    NeuronSpec spec;
    auto rule = [&](const char* threshold_field) {
        ThresholdRule r;
        r.threshold = compact(per_neuron(n, threshold_field, size));
        r.comparison = Comparison::greater;
        r.reset = ResetMode::to_value;
        r.v_reset = compact(per_neuron(n, "v_reset", size, 0.0)); // absent in old files: 0
        return r;
    };
    // Per neuron: alpha = 1 - dt / tau, and tau in ms.
    auto alpha_of = [&](const char* tau_field) {
        const auto tau = per_neuron(n, tau_field, size);
        std::vector<double> alpha(tau.size());
        for (std::size_t j = 0; j < tau.size(); ++j) {
            std::string which = tau_field; // appended piece by piece: GCC 12's -Wrestrict misreads a + chain here
            if (tau.size() > 1) which.append("[").append(std::to_string(j)).append("]");
            if (!(tau[j] > 0)) fail(n, which + " " + std::to_string(tau[j]) + " ms must be positive");
            alpha[j] = 1.0 - dt_ / tau[j];
            if (alpha[j] < 0)
                fail(n, which + " " + std::to_string(tau[j]) + " ms is shorter than dt " + std::to_string(dt_) +
                            " ms: forward Euler is unstable; use a smaller --dt");
        }
        return std::pair{alpha, tau};
    };
    // quantal's LIF stores tau in ticks, alpha = exp(-1 / tau_ticks); alpha = 0 forgets at once.
    auto tau_ticks = [](const std::vector<double>& alpha) {
        std::vector<double> ticks(alpha.size());
        for (std::size_t j = 0; j < alpha.size(); ++j)
            ticks[j] = alpha[j] > 0 ? -1.0 / std::log(alpha[j]) : std::numeric_limits<double>::min();
        return compact(std::move(ticks));
    };
    if (type == "I" || type == "IF") {
        spec.gain = per_neuron(n, "r", size);
        for (auto& g : spec.gain) g *= dt_;
        if (type == "I") {
            spec.model = ReadoutNeuron{};
            spec.spiking = false;
        } else {
            spec.model = IfNeuron{rule("v_threshold"), 0.0, 1.0};
        }
    } else if (type == "LI" || type == "LIF") {
        const auto [alpha, tau] = alpha_of("tau");
        spec.gain = per_neuron(n, "r", size);
        for (std::size_t j = 0; j < spec.gain.size(); ++j) spec.gain[j] *= dt_ / tau[j];
        LifNeuron m;
        m.tau_ticks = tau_ticks(alpha);
        m.v_leak = compact(per_neuron(n, "v_leak", size));
        if (type == "LIF") {
            m.rule = rule("v_threshold");
        } else { // a leaky integrator never fires
            m.rule = ThresholdRule{std::numeric_limits<double>::max(), Comparison::greater, ResetMode::to_value, 0.0};
            spec.spiking = false;
        }
        spec.model = m;
    } else if (type == "Threshold") { // memoryless: z[t] = [I[t] > theta]
        LifNeuron m;
        m.tau_ticks = tau_ticks({0.0});
        m.rule = ThresholdRule{compact(per_neuron(n, "threshold", size)), Comparison::greater, ResetMode::to_value, 0.0};
        spec.model = m;
        spec.gain.assign(std::size_t(size), 1.0);
    } else { // CubaLI, CubaLIF: I += dt/tau_syn (-I + w_in x); v += dt/tau_mem (v_leak - v + R I)
        // quantal's CubaLIF keeps i = (dt R / tau_mem) I, so its input gain is the product of both.
        const auto [alpha_syn, tau_syn] = alpha_of("tau_syn");
        const auto [alpha, tau_mem] = alpha_of("tau_mem");
        spec.gain = per_neuron(n, "r", size);
        const auto w_in = per_neuron(n, "w_in", size, 1.0);
        for (std::size_t j = 0; j < spec.gain.size(); ++j)
            spec.gain[j] *= (dt_ / tau_mem[j]) * (dt_ / tau_syn[j]) * w_in[j];
        CubaLifNeuron m;
        m.tau_syn_ticks = tau_ticks(alpha_syn);
        m.tau_ticks = tau_ticks(alpha);
        m.v_leak = compact(per_neuron(n, "v_leak", size));
        if (type == "CubaLIF") {
            m.rule = rule("v_threshold");
        } else { // a current-based leaky integrator never fires
            m.rule = ThresholdRule{std::numeric_limits<double>::max(), Comparison::greater, ResetMode::to_value, 0.0};
            spec.spiking = false;
        }
        spec.model = m;
    }
    return spec;
}

// ---- projections --------------------------------------------------------------------------

// Every chain of weight nodes that ends at `n`, with the population it starts from.
void NirFile::paths_into(std::size_t n, Path& suffix, std::vector<std::pair<std::size_t, Path>>& out, int depth) {
    if (depth > 10000) fail(n, "is on a cycle of weight nodes without a neuron");
    for (auto p : preds_[n]) {
        switch (role(p)) {
        case Role::source:
        case Role::neuron:
            out.emplace_back(p, Path(suffix.rbegin(), suffix.rend()));
            break;
        case Role::output:
            fail(p, "is an Output node but has outgoing edges");
        case Role::linear:
            if (std::find(suffix.begin(), suffix.end(), p) != suffix.end())
                fail(p, "is on a cycle of weight nodes without a neuron");
            suffix.push_back(p);
            paths_into(p, suffix, out, depth + 1);
            suffix.pop_back();
            break;
        }
    }
}

Projection NirFile::compose(std::size_t source, const Path& path, std::size_t target, const std::vector<double>& gain) {
    Projection proj;
    proj.source = population_of_.at(source);
    proj.target = population_of_.at(target);
    const Shape& src_shape = out_shape(source);
    const Shape& dst_shape = out_shape(target);
    const auto n_src = count_of(src_shape), n_dst = count_of(dst_shape);
    std::vector<std::size_t> weighted;
    std::uint32_t delay = 0;
    for (auto n : path) {
        if (!op(n).identity) weighted.push_back(n);
        delay += op(n).delay;
    }
    proj.delay = delay;
    const bool uniform_gain = std::all_of(gain.begin(), gain.end(), [&](double g) { return g == gain.front(); });

    if (weighted.empty()) {
        if (n_src != n_dst)
            fail(target, "receives '" + nodes_[source].name + "' of size " + std::to_string(n_src) + " directly, but has " +
                             std::to_string(n_dst) + " neurons");
        proj.connectivity = uniform_gain ? OneToOne{{float(gain.front())}} : OneToOne{std::vector<float>(gain.begin(), gain.end())};
        return proj;
    }
    // One weight node between two populations whose shapes it accepts: keep its compact form.
    if (weighted.size() == 1) {
        const Op& o = op(weighted.front());
        const bool sizes_match = count_of(o.in) == n_src && count_of(o.out) == n_dst;
        const bool shapes_match = o.in == src_shape && o.out == dst_shape;
        if (const auto* d = std::get_if<Dense>(&o.map); d && sizes_match) {
            Dense scaled = *d;
            for (std::int64_t j = 0; j < n_dst; ++j)
                for (std::int64_t i = 0; i < n_src; ++i) {
                    auto& w = scaled.weight[std::size_t(j * n_src + i)];
                    w = float(double(w) * gain[std::size_t(j)]);
                }
            proj.connectivity = scaled;
            return proj;
        }
        if (const auto* s = std::get_if<OneToOne>(&o.map); s && sizes_match) {
            OneToOne scaled;
            for (std::int64_t j = 0; j < n_dst; ++j)
                scaled.weight.push_back(float(double(s->weight.size() == 1 ? s->weight[0] : s->weight[std::size_t(j)]) * gain[std::size_t(j)]));
            proj.connectivity = scaled;
            return proj;
        }
        if (const auto* c = std::get_if<Conv2d>(&o.map); c && shapes_match && uniform_gain) {
            Conv2d scaled = *c;
            for (auto& w : scaled.weight) w = float(double(w) * gain.front());
            proj.connectivity = scaled;
            return proj;
        }
        if (const auto* p = std::get_if<Pool2d>(&o.map); p && shapes_match && uniform_gain && gain.front() == 1.0) {
            proj.connectivity = *p;
            return proj;
        }
    }
    // Otherwise multiply the chain out into explicit synapses (exact, at the cost of memory).
    std::vector<Fanout> fans;
    for (auto n : path)
        fans.push_back(op(n).identity ? Fanout{OneToOneFanout{{1.0f}}}
                                      : compile_fanout(op(n).map, op(n).in, op(n).out, 0, where(n)));
    // One source row at a time: a sparse vector pushed through each map, accumulated in a dense
    // buffer per map whose touched entries alone are read back and cleared (cost ~ non-zeros).
    std::vector<std::vector<double>> acc(path.size());
    std::vector<std::vector<char>> seen(path.size());
    for (std::size_t k = 0; k < path.size(); ++k) {
        acc[k].assign(std::size_t(count_of(op(path[k]).out)), 0.0);
        seen[k].assign(acc[k].size(), 0);
    }
    Sparse sparse;
    sparse.row_begin.push_back(0);
    std::vector<std::pair<std::uint32_t, double>> cur, next;
    for (std::int64_t s = 0; s < n_src; ++s) {
        cur = {{std::uint32_t(s), 1.0}};
        for (std::size_t k = 0; k < path.size(); ++k) {
            auto& sum = acc[k];
            auto& flag = seen[k];
            std::vector<std::uint32_t> order;
            std::visit(overloaded{[&](const SparseFanout&) {},
                                  [&](const auto& fan) {
                                      for (const auto& entry : cur) // not a structured binding: clang 14 cannot capture one
                                          fan.for_each(entry.first, [&, x = entry.second](std::uint32_t j, float w) {
                                              sum[j] += x * double(w);
                                              if (!flag[j]) flag[j] = 1, order.push_back(j);
                                          });
                                  }},
                       fans[k]);
            next.clear();
            for (auto j : order) {
                next.emplace_back(j, sum[j]);
                sum[j] = 0.0;
                flag[j] = 0;
            }
            std::swap(cur, next);
        }
        std::sort(cur.begin(), cur.end());
        for (const auto& [j, x] : cur)
            if (x != 0.0) {
                sparse.target.push_back(j);
                sparse.weight.push_back(float(x * gain[j]));
            }
        sparse.row_begin.push_back(sparse.target.size());
    }
    if (std::int64_t(sparse.target.size()) * 4 >= n_src * n_dst && n_src * n_dst <= (std::int64_t{1} << 26)) {
        Dense d;
        d.weight.assign(std::size_t(n_src * n_dst), 0.0f);
        for (std::int64_t s = 0; s < n_src; ++s)
            for (auto k = sparse.row_begin[std::size_t(s)]; k < sparse.row_begin[std::size_t(s) + 1]; ++k)
                d.weight[std::size_t(sparse.target[k]) * std::size_t(n_src) + std::size_t(s)] = sparse.weight[k];
        proj.connectivity = std::move(d);
    } else {
        proj.connectivity = std::move(sparse);
    }
    return proj;
}

LoadedModel NirFile::load() {
    if (!(dt_ > 0) || !std::isfinite(dt_)) throw InputError(path_ + ": dt " + std::to_string(dt_) + " ms must be positive");
    auto file = h5::open_file(path_);
    if (h5::has_link(file, "version") && h5::is_string_dataset(file, "version"))
        version_ = h5::read_string(file, "version", path_);
    auto top = h5::open_group(file, "node", path_);
    const auto type = h5::read_string(top, "type", path_ + ": /node");
    if (type != "NIRGraph") throw InputError(path_ + ": /node has type '" + type + "', expected 'NIRGraph'");
    Scope scope;
    read_graph(top, "", true, scope);

    std::vector<Population> populations;
    auto add_population = [&](std::size_t n, Shape shape, NeuronModel model) {
        populations.push_back(Population{nodes_[n].name, std::move(shape), std::move(model), {}});
        return PopulationId(populations.size() - 1);
    };
    std::vector<NeuronSpec> specs(nodes_.size());
    for (std::size_t n = 0; n < nodes_.size(); ++n) {
        if (role(n) == Role::source) {
            population_of_[n] = add_population(n, out_shape(n), SpikeSource{});
        } else if (role(n) == Role::neuron) {
            const Shape& s = out_shape(n);
            if (s.empty()) fail(n, "its shape is unknown: it has no input and no per-neuron parameter arrays");
            specs[n] = neuron(n, count_of(s));
            population_of_[n] = add_population(n, s, specs[n].model);
        }
    }
    if (populations.empty()) // an empty model would run and report success with nothing simulated
        throw InputError(path_ + ": /node: the graph has no Input or neuron node, so nothing to simulate");
    LoadedModel out;
    // Outputs: a readout when weight nodes feed them, else the spiking population itself.
    for (std::size_t n = 0; n < nodes_.size(); ++n) {
        if (role(n) != Role::output) continue;
        const bool direct = std::all_of(preds_[n].begin(), preds_[n].end(), [&](auto p) { return role(p) != Role::linear; });
        if (direct) {
            if (preds_[n].size() == 1 && out.readout.empty() && role(preds_[n][0]) == Role::neuron &&
                std::holds_alternative<ReadoutNeuron>(specs[preds_[n][0]].model))
                out.readout = nodes_[preds_[n][0]].name;
            continue;
        }
        const Shape& s = out_shape(n);
        population_of_[n] = add_population(n, s, ReadoutNeuron{});
        specs[n].gain.assign(std::size_t(count_of(s)), 1.0);
        specs[n].spiking = false;
        if (out.readout.empty()) out.readout = nodes_[n].name;
    }

    // Projections and biases into every population that has inputs.
    std::vector<Projection> projections;
    for (std::size_t n = 0; n < nodes_.size(); ++n) {
        if (!population_of_.count(n) || role(n) == Role::source) continue;
        std::vector<std::pair<std::size_t, Path>> paths;
        Path suffix;
        paths_into(n, suffix, paths, 0);
        const auto& gain = specs[n].gain;
        for (const auto& [src, path] : paths) {
            if (role(src) == Role::neuron && !specs[src].spiking)
                fail(src, "(" + nodes_[src].type + ") does not spike, so it can only feed an Output node");
            Projection p = compose(src, path, n, gain);
            std::string name;
            for (auto k : path)
                if (!op(k).identity) name += (name.empty() ? "" : "+") + nodes_[k].name;
            p.name = name.empty() ? nodes_[src].name + "->" + nodes_[n].name : name;
            projections.push_back(std::move(p));
        }
        std::vector<double> bias;
        for (auto p : preds_[n])
            if (role(p) == Role::linear)
                if (const auto& b = bias_out(p); !b.empty()) {
                    bias.resize(b.size(), 0.0);
                    for (std::size_t i = 0; i < b.size(); ++i) bias[i] += b[i];
                }
        if (!bias.empty()) {
            for (std::size_t i = 0; i < bias.size(); ++i) bias[i] *= gain[i];
            populations[population_of_[n]].bias = std::move(bias);
        }
    }
    // A weight node shared by several chains names each projection after its ends as well.
    std::map<std::string, int> uses;
    for (const auto& p : projections) ++uses[p.name];
    // A chain that closes a cycle of zero-delay projections gets one tick of delay: the previous
    // tick's spikes, as in a discrete-time recurrent network.
    std::vector<std::vector<std::size_t>> out_edges(populations.size());
    for (std::size_t i = 0; i < projections.size(); ++i) out_edges[projections[i].source].push_back(i);
    std::vector<int> state(populations.size(), 0); // 0 new, 1 on the stack, 2 done
    std::function<void(PopulationId)> visit = [&](PopulationId v) {
        state[v] = 1;
        for (auto i : out_edges[v]) {
            auto& p = projections[i];
            if (p.delay > 0) continue;
            if (state[p.target] == 1) p.delay = 1;
            else if (state[p.target] == 0) visit(p.target);
        }
        state[v] = 2;
    };
    for (PopulationId v = 0; v < state.size(); ++v)
        if (state[v] == 0) visit(v);

    NetworkBuilder builder;
    builder.set_dt(dt_); // the discretisation: traces and rates of this network are on this grid
    std::vector<std::string> populations_names;
    for (auto& p : populations) {
        populations_names.push_back(p.name);
        builder.add_population(std::move(p));
    }
    std::set<std::string> taken;
    for (auto& p : projections) {
        if (uses[p.name] > 1) p.name = populations_names[p.source] + "->" + p.name + "->" + populations_names[p.target];
        const std::string base = p.name; // parallel chains between the same ends: number them
        for (int k = 2; !taken.insert(p.name).second; ++k) p.name = base + "#" + std::to_string(k);
        builder.connect(std::move(p));
    }
    try {
        out.network = builder.build();
    } catch (const ModelError& e) {
        throw InputError(path_ + ": " + e.what());
    }
    auto slash = path_.find_last_of('/');
    out.name = path_.substr(slash == std::string::npos ? 0 : slash + 1);
    out.producer = "NIR" + (version_.empty() ? std::string() : " " + version_);
    return out;
}

} // namespace

LoadedModel read_nir(const std::string& path, const NirOptions& options) {
    return NirFile(path, options.dt_ms).load();
}

} // namespace quantal
