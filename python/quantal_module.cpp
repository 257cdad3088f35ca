// quantal._quantal: the C++ half of the `quantal` Python module (docs/python.md). It lowers what
// the pure-Python layer (python/quantal/__init__.py) collected into the library's own types and
// back into numpy arrays; every check on a network, a file or a stimulus is the library's, so its
// errors carry the messages `quantal run` prints. InputError and ModelError become
// quantal.InputError and quantal.ModelError, both ValueError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "apps/commands.hpp"
#include "apps/stimuli.hpp"
#include "io/spike_trace.hpp"
#include "quantal_build_version.hpp" // generated (apps/CMakeLists.txt)
#include "io/contained.hpp"
#include "io/model_file.hpp"
#include "io/nir.hpp"
#include "io/spike_trace.hpp"
#include "network/targets.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"
#include "sim/overloaded.hpp"
#include "sim/potential_probe.hpp"

namespace py = pybind11;
using namespace quantal;

namespace {

// A network with how samples enter it (analog inputs) and what it answers (readout). Immutable
// once made: runs that change release settings work on a copy.
struct Model {
    LoadedModel loaded;
    std::string origin; // the file read, or "<built>": names the model in messages
};

// ---- numpy <-> std::vector -------------------------------------------------------------------

template <class T> std::vector<T> values(const py::handle& h) {
    const auto a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(h);
    if (!a) throw py::type_error("expected an array of numbers");
    return std::vector<T>(a.data(), a.data() + a.size());
}

// Hands the vector's buffer to numpy without copying; the array owns it from then on.
template <class T> py::array_t<T> to_array(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
    auto* heap = new std::vector<T>(std::move(v));
    py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>(shape, heap->data(), owner);
}

template <class T> std::optional<T> item(const py::dict& d, const char* key) {
    if (!d.contains(key) || d[key].is_none()) return std::nullopt;
    return d[key].cast<T>();
}

// ---- Python descriptions -> library types ----------------------------------------------------

// A neuron parameter: a number (one for the population) or an array (one per neuron; its length
// is checked by NetworkBuilder::build, naming the population and the parameter).
PerNeuron per_neuron(const py::handle& h) {
    if (py::isinstance<py::float_>(h) || py::isinstance<py::int_>(h)) return h.cast<double>();
    return values<double>(h);
}
PerNeuron per_neuron(const py::dict& d, const char* key, double otherwise) {
    return d.contains(key) && !d[key].is_none() ? per_neuron(d[key]) : PerNeuron(otherwise);
}

ThresholdRule threshold_rule(const py::dict& d) {
    ThresholdRule r;
    r.threshold = per_neuron(d["threshold"]);
    r.comparison = d["comparison"].cast<std::string>() == ">" ? Comparison::greater : Comparison::greater_equal;
    r.reset = d["reset"].cast<std::string>() == "value" ? ResetMode::to_value : ResetMode::subtract;
    r.v_reset = per_neuron(d, "v_reset", 0.0);
    return r;
}

// A neuron model as python/quantal/__init__.py describes it: {"model": name, parameters...},
// names and parameters as in docs/model-format.md.
NeuronModel neuron_model(const py::dict& d) {
    const auto name = d["model"].cast<std::string>();
    const double spike = item<double>(d, "spike_value").value_or(1.0);
    if (name == "IF") return IfNeuron{threshold_rule(d), per_neuron(d["v0"]), spike};
    if (name == "LIF")
        return LifNeuron{threshold_rule(d), per_neuron(d["tau_ticks"]), per_neuron(d, "v_leak", 0.0), per_neuron(d["v0"]),
                         spike};
    if (name == "CubaLIF")
        return CubaLifNeuron{threshold_rule(d),
                             per_neuron(d["tau_syn_ticks"]),
                             per_neuron(d["tau_ticks"]),
                             per_neuron(d, "v_leak", 0.0),
                             per_neuron(d["v0"]),
                             spike};
    if (name == "readout") return ReadoutNeuron{per_neuron(d, "v0", 0.0)};
    if (name == "spike_source") return SpikeSource{spike};
    if (name == "bernoulli_source") return BernoulliSource{values<double>(d["probability"]), spike};
    if (name == "poisson_source") return PoissonSource{values<double>(d["rate"]), spike};
    throw ModelError("neuron model '" + name +
                     "' is not one of IF, LIF, CubaLIF, readout, spike_source, bernoulli_source, poisson_source");
}

std::array<std::int64_t, 2> extent2(const py::dict& d, const char* key, std::array<std::int64_t, 2> otherwise) {
    if (!d.contains(key) || d[key].is_none()) return otherwise;
    const auto v = d[key].cast<std::vector<std::int64_t>>();
    if (v.size() != 2) throw ModelError(std::string(key) + " needs two values (height, width)");
    return {v[0], v[1]};
}

// A connectivity as {"kind": ..., arrays...}; shapes were checked by the Python layer, values and
// sizes are checked by NetworkBuilder::build() like a model file's.
Connectivity connectivity(const py::dict& d) {
    const auto kind = d["kind"].cast<std::string>();
    if (kind == "dense") return Dense{values<float>(d["weight"])};
    if (kind == "one_to_one") return OneToOne{values<float>(d["weight"])};
    if (kind == "sparse") {
        Sparse s;
        s.row_begin = values<std::uint64_t>(d["row_begin"]);
        s.target = values<std::uint32_t>(d["target"]);
        s.weight = values<float>(d["weight"]);
        if (!d["delay"].is_none()) s.delay = values<std::uint32_t>(d["delay"]);
        if (!d["probability"].is_none()) s.probability = values<float>(d["probability"]);
        return s;
    }
    if (kind == "conv2d") {
        Conv2d c;
        c.weight = values<float>(d["weight"]);
        c.kernel = extent2(d, "kernel", {});
        c.stride = extent2(d, "stride", {1, 1});
        c.padding = extent2(d, "padding", {0, 0});
        c.dilation = extent2(d, "dilation", {1, 1});
        c.groups = item<std::int64_t>(d, "groups").value_or(1);
        return c;
    }
    if (kind == "sum_pool2d" || kind == "avg_pool2d") {
        Pool2d p;
        p.kind = kind == "sum_pool2d" ? PoolKind::sum : PoolKind::average;
        p.kernel = extent2(d, "kernel", {});
        p.stride = extent2(d, "stride", p.kernel);
        p.padding = extent2(d, "padding", {0, 0});
        return p;
    }
    throw ModelError("projection kind '" + kind +
                     "' is not one of dense, sparse, one_to_one, conv2d, sum_pool2d, avg_pool2d");
}

ReleaseMode release_mode(const std::string& name) {
    if (name == "none") return ReleaseMode::none;
    if (name == "spike") return ReleaseMode::spike;
    if (name == "synapse") return ReleaseMode::synapse;
    throw ModelError("release '" + name + "' is not one of none, spike, synapse");
}

// A release from a dict's prefix+"release", "mask_ratio", "compensate", "spread" (prefix "" on a
// projection, "q_", "k_", "score_" on an attention operator).
Release release(const py::dict& d, const std::string& prefix) {
    Release r;
    r.mode = release_mode(d[(prefix + "release").c_str()].cast<std::string>());
    r.mask_ratio = d[(prefix + "mask_ratio").c_str()].cast<double>();
    r.compensate = d[(prefix + "compensate").c_str()].cast<bool>();
    r.spread = d[(prefix + "spread").c_str()].cast<double>();
    return r;
}

// An operator dict of NetworkBuilder.add_attention or add_layer_norm_head: populations as
// indices, arrays flattened in the model file's layout (their shapes checked by the Python layer);
// values and sizes are checked by NetworkBuilder::build() like a model file's.
void add_operator(NetworkBuilder& b, const py::dict& d) {
    const auto kind = d["kind"].cast<std::string>();
    if (kind == "softmax_attention") {
        SoftmaxAttention a;
        a.name = d["name"].cast<std::string>();
        a.q = d["q"].cast<PopulationId>();
        a.k = d["k"].cast<PopulationId>();
        a.v = d["v"].cast<PopulationId>();
        a.scores = d["scores"].cast<PopulationId>();
        a.output = d["output"].cast<PopulationId>();
        a.heads = d["heads"].cast<std::int64_t>();
        a.window = d["window"].cast<std::int64_t>();
        a.shift = d["shift"].cast<std::int64_t>();
        a.scale = d["scale"].cast<double>();
        a.bias = values<float>(d["bias"]);
        if (!d["mask"].is_none()) a.mask = values<float>(d["mask"]);
        a.q_release = release(d, "q_");
        a.k_release = release(d, "k_");
        a.score_release = release(d, "score_");
        b.add_operator(std::move(a));
    } else {
        LayerNormHead h;
        h.name = d["name"].cast<std::string>();
        h.sources = d["sources"].cast<std::vector<std::uint32_t>>();
        h.output = d["output"].cast<PopulationId>();
        h.eps = d["eps"].cast<double>();
        h.source_weight = values<float>(d["source_weight"]);
        h.offset = values<float>(d["offset"]);
        h.gamma = values<float>(d["gamma"]);
        h.beta = values<float>(d["beta"]);
        h.weight = values<float>(d["weight"]);
        b.add_layer_norm_head(std::move(h));
    }
}

// populations: [(name, shape, model dict, bias array or None)]; projections: [dict with name,
// source, target (indices), connectivity, delay, release, mask_ratio, compensate, spread, role];
// operators: [dict of add_operator].
std::shared_ptr<Model> build(const py::list& populations, const py::list& projections, const py::list& operators,
                             const std::string& readout, double dt_ms) {
    NetworkBuilder b;
    b.set_dt(dt_ms);
    for (const auto& h : populations) {
        const auto t = h.cast<py::tuple>();
        std::vector<double> bias;
        if (!t[3].is_none()) bias = values<double>(t[3]);
        b.add_population(t[0].cast<std::string>(), t[1].cast<Shape>(), neuron_model(t[2].cast<py::dict>()),
                         std::move(bias));
    }
    for (const auto& h : projections) {
        const auto d = h.cast<py::dict>();
        b.connect(Projection{d["name"].cast<std::string>(), d["source"].cast<PopulationId>(),
                             d["target"].cast<PopulationId>(), connectivity(d["connectivity"].cast<py::dict>()),
                             d["delay"].cast<std::uint32_t>(), release(d, ""), d["role"].cast<std::string>()});
    }
    for (const auto& h : operators) add_operator(b, h.cast<py::dict>());
    auto m = std::make_shared<Model>();
    m->loaded.network = b.build();
    m->loaded.readout = readout;
    m->loaded.name = "built in Python";
    m->origin = "<built>";
    return m;
}

// The model and the warnings `quantal run` prints: `dt_ms` overriding a different dt of the file,
// float64 values rounded to float32.
py::tuple load(const std::string& path, std::optional<double> dt_ms) {
    (void)default_read_seconds(path); // the CLI's message for a file that cannot be examined
    const bool nir = path.size() >= 4 && path.compare(path.size() - 4, 4, ".nir") == 0;
    if (dt_ms && !(std::isfinite(*dt_ms) && *dt_ms > 0))
        throw InputError("dt " + std::to_string(*dt_ms) + " is not a finite number > 0 (ms per tick)");
    auto m = std::make_shared<Model>();
    cli::ResolvedDt dt;
    {
        const py::gil_scoped_release unlocked; // an MST file takes a while to read
        m->loaded = nir ? read_nir(path, NirOptions{dt_ms.value_or(default_dt_ms)}) : read_model_file(path, dt_ms);
        dt = cli::resolve_dt(m->loaded, dt_ms, path);
    }
    m->origin = path;
    py::list warnings;
    for (const auto& w : {dt.warning, m->loaded.rounded_to_float.text()})
        if (!w.empty()) warnings.append(w);
    return py::make_tuple(m, warnings);
}

// ---- introspection ---------------------------------------------------------------------------

// A number for one value, an array for per-neuron values.
py::object parameter(const PerNeuron& x) {
    if (x.uniform()) return py::float_(x[0]);
    return py::array_t<double>(py::ssize_t(x.size()), x.values().data());
}

py::dict neuron_parameters(const NeuronModel& model) {
    py::dict d;
    auto rule = [&](const ThresholdRule& r) {
        d["threshold"] = parameter(r.threshold);
        d["comparison"] = r.comparison == Comparison::greater ? ">" : ">=";
        d["reset"] = r.reset == ResetMode::subtract ? "subtract" : "value";
        if (r.reset == ResetMode::to_value) d["v_reset"] = parameter(r.v_reset);
    };
    std::visit(overloaded{[&](const IfNeuron& m) { rule(m.rule), d["v0"] = parameter(m.v0), d["spike_value"] = m.spike_value; },
                          [&](const LifNeuron& m) {
                              rule(m.rule), d["tau_ticks"] = parameter(m.tau_ticks), d["v_leak"] = parameter(m.v_leak);
                              d["v0"] = parameter(m.v0), d["spike_value"] = m.spike_value;
                          },
                          [&](const CubaLifNeuron& m) {
                              rule(m.rule), d["tau_ticks"] = parameter(m.tau_ticks);
                              d["tau_syn_ticks"] = parameter(m.tau_syn_ticks), d["v_leak"] = parameter(m.v_leak);
                              d["v0"] = parameter(m.v0), d["spike_value"] = m.spike_value;
                          },
                          [&](const ReadoutNeuron& m) { d["v0"] = parameter(m.v0); },
                          [&](const PoissonSource& m) {
                              d["rate"] = py::array_t<double>(py::ssize_t(m.rate_hz.size()), m.rate_hz.data());
                              d["spike_value"] = m.spike_value;
                          },
                          [&](const SpikeSource& m) { d["spike_value"] = m.spike_value; },
                          [&](const BernoulliSource& m) {
                              d["probability"] =
                                  py::array_t<double>(py::ssize_t(m.probability.size()), m.probability.data());
                              d["spike_value"] = m.spike_value;
                          }},
               model);
    return d;
}

py::list populations_of(const Model& m) {
    py::list out;
    for (const auto& p : m.loaded.network.populations()) {
        py::dict d;
        d["name"] = p.name;
        d["shape"] = py::tuple(py::cast(p.shape));
        d["size"] = p.size();
        d["model"] = model_name(p.model);
        d["parameters"] = neuron_parameters(p.model);
        d["bias"] = py::array_t<double>(py::ssize_t(p.bias.size()), p.bias.data());
        out.append(d);
    }
    return out;
}

py::list projections_of(const Model& m) {
    const Network& net = m.loaded.network;
    py::list out;
    for (ProjectionId j = 0; j < net.projections().size(); ++j) {
        const auto& p = net.projection(j);
        py::dict d;
        d["name"] = p.name;
        d["source"] = net.population(p.source).name;
        d["target"] = net.population(p.target).name;
        d["kind"] = net.kind(j);
        d["delay"] = p.delay;
        d["release"] = mode_name(p.release.mode);
        d["mask_ratio"] = p.release.mask_ratio;
        d["compensate"] = p.release.compensate;
        d["release_spread"] = p.release.spread;
        d["role"] = p.role;
        d["synapses"] = net.synapses(j);
        out.append(d);
    }
    return out;
}

template <class T> py::array_t<T> copy_array(const std::vector<T>& v) {
    return py::array_t<T>(py::ssize_t(v.size()), v.data());
}

// A projection's weights in the user's form (rebuilt from the compiled fan-out), as arrays.
py::dict connectivity_of(const Model& m, const std::string& name) {
    const Network& net = m.loaded.network;
    const auto j = net.find_projection(name);
    if (!j) throw InputError(m.origin + ": has no projection '" + name + "'");
    const auto& pr = net.projection(*j);
    py::dict d;
    d["kind"] = net.kind(*j);
    const auto n_source = py::ssize_t(net.population(pr.source).size());
    const auto n_target = py::ssize_t(net.population(pr.target).size());
    std::visit(overloaded{[&](const Dense& c) {
                              d["weight"] = copy_array(c.weight).reshape({n_target, n_source});
                          },
                          [&](const OneToOne& c) { d["weight"] = copy_array(c.weight); },
                          [&](const Sparse& c) {
                              std::vector<std::uint64_t> pre(c.target.size());
                              for (std::size_t i = 0; i + 1 < c.row_begin.size(); ++i)
                                  std::fill(pre.begin() + std::ptrdiff_t(c.row_begin[i]),
                                            pre.begin() + std::ptrdiff_t(c.row_begin[i + 1]), i);
                              d["pre"] = copy_array(pre), d["post"] = copy_array(c.target);
                              d["weight"] = copy_array(c.weight);
                              d["delay"] = c.delay.empty()
                                               ? copy_array(std::vector<std::uint32_t>(c.target.size(), pr.delay))
                                               : copy_array(c.delay);
                              d["probability"] =
                                  c.probability.empty() ? py::object(py::none()) : copy_array(c.probability);
                          },
                          [&](const Conv2d& c) {
                              d["weight"] = copy_array(c.weight).reshape(
                                  {py::ssize_t(net.population(pr.target).shape.at(0)), py::ssize_t(-1),
                                   py::ssize_t(c.kernel[0]), py::ssize_t(c.kernel[1])});
                              d["kernel"] = py::make_tuple(c.kernel[0], c.kernel[1]);
                              d["stride"] = py::make_tuple(c.stride[0], c.stride[1]);
                              d["padding"] = py::make_tuple(c.padding[0], c.padding[1]);
                              d["dilation"] = py::make_tuple(c.dilation[0], c.dilation[1]);
                              d["groups"] = c.groups;
                          },
                          [&](const Pool2d& c) {
                              d["kernel"] = py::make_tuple(c.kernel[0], c.kernel[1]);
                              d["stride"] = py::make_tuple(c.stride[0], c.stride[1]);
                              d["padding"] = py::make_tuple(c.padding[0], c.padding[1]);
                          }},
               net.connectivity(*j));
    return d;
}

py::list inputs_of(const Model& m) {
    py::list out;
    for (const auto& in : m.loaded.inputs) {
        py::dict d;
        d["name"] = in.name;
        d["target"] = in.target;
        d["shape"] = py::tuple(py::cast(in.shape));
        d["scale"] = in.scale;
        d["offset"] = in.offset;
        out.append(d);
    }
    return out;
}

// ---- running ---------------------------------------------------------------------------------

// What run() was asked, already checked for consistency by the Python layer.
struct RunRequest {
    Tick ticks = 0;
    std::uint64_t samples = 0, first_sample = 0, seed = 1;
    int threads = 1;
    int threads_per_sample = 1;
    std::optional<double> mask;
    std::string release = "synapse", targets = "all";
    bool compensate = false;
    double release_spread = 0.0;
    std::vector<Tick> observe;                      // readout ticks (0-based)
    std::optional<std::vector<std::string>> record; // none: every population but readouts
    std::uint64_t record_samples = 0;               // the first this many samples' spikes are kept
    std::vector<PotentialProbe> potentials;         // record_v, kept for the same samples
    std::optional<std::string> trace;               // a trace file, as `quantal run --trace` writes
    double dt_ms = 1.0;                             // its time axis
    std::vector<std::int64_t> labels;               // its /samples labels (empty: -1)
    EnergyCosts costs;
    // Direct inputs, per population: spike lists of spike sources (per-sample ranges of `tick`
    // and `neuron`) and constant currents (samples x size, row-major).
    struct SpikeInput {
        PopulationId population;
        std::vector<std::uint64_t> begin; // samples + 1 offsets
        std::vector<Tick> tick;
        std::vector<std::uint32_t> neuron;
    };
    struct CurrentInput {
        PopulationId population;
        std::vector<double> values;
    };
    std::vector<SpikeInput> spikes;
    std::vector<CurrentInput> currents;
};

// Everything a run produced, in flat arrays, filled sample after sample.
struct RunArrays {
    std::vector<double> readout;                       // S x observed x classes of the model's readout
    std::vector<std::int64_t> prediction;              // S
    std::vector<std::uint64_t> pop[5], proj[4], op[4]; // per-sample ledger rows (S x P, S x J, S x O)
    std::vector<double> snn_pj, ann_pj;                // S
    EnergyLedger total;                                // over the samples, for the energy models
    struct Spikes {
        std::vector<std::uint64_t> sample, node_id;
        std::vector<std::int64_t> tick;
    };
    std::vector<Spikes> spikes; // per population (only recorded ones fill theirs)
    std::vector<std::vector<double>> potentials; // per probe: kept samples x ticks x neurons
};

// argmax (first maximum) at the last observed tick, as `quantal run` predicts.
std::int64_t predicted(const double* row, std::size_t classes) {
    return classes ? std::int64_t(std::max_element(row, row + classes) - row) : -1;
}

void collect(const Network& net, PopulationId readout, const SampleResult& r,
             const EnergyCosts& costs, RunArrays& a) {
    const std::size_t classes = readout < net.populations().size() ? net.population(readout).size() : 0;
    for (const auto& ro : r.readouts) {
        if (ro.population != readout) continue;
        a.readout.insert(a.readout.end(), ro.values.begin(), ro.values.end());
        a.prediction.push_back(
            ro.ticks.empty() ? -1 : predicted(ro.values.data() + (ro.ticks.size() - 1) * classes, classes));
    }
    if (classes == 0) a.prediction.push_back(-1);
    for (const auto& c : r.ledger.populations) {
        a.pop[0].push_back(c.spikes), a.pop[1].push_back(c.updates), a.pop[2].push_back(c.drift_ticks);
        a.pop[3].push_back(c.wakeups), a.pop[4].push_back(c.macs);
    }
    for (const auto& c : r.ledger.projections) {
        a.proj[0].push_back(c.spikes_in), a.proj[1].push_back(c.masked_spikes);
        a.proj[2].push_back(c.attempted), a.proj[3].push_back(c.transmitted);
    }
    for (const auto& c : r.ledger.operators) {
        a.op[0].push_back(c.coincidences), a.op[1].push_back(c.deliveries), a.op[2].push_back(c.macs);
        a.op[3].push_back(c.masked_spikes);
    }
    const auto s = summarize(r.ledger, net, costs);
    a.snn_pj.push_back(s.snn_pj), a.ann_pj.push_back(s.ann_pj);
    a.total += r.ledger;
    for (std::size_t i = 0; i < r.potentials.size(); ++i)
        a.potentials[i].insert(a.potentials[i].end(), r.potentials[i].begin(), r.potentials[i].end());
    for (const auto& sp : r.spikes) { // only recorded populations' (RunOptions::record_populations)
        auto& out = a.spikes[sp.population];
        out.sample.push_back(r.sample), out.tick.push_back(sp.tick), out.node_id.push_back(sp.neuron);
    }
}

// The stimulus of sample k: images (samples x values, raw as the CLI reads IDX bytes) through the
// model's analog inputs, or silent inputs without images.
Stimulus stimulus(const LoadedModel& model, const Network& net, const double* images, std::size_t values,
                  const RunRequest& q, std::uint64_t k) {
    Stimulus s = Stimulus::for_network(net);
    for (const auto& in : q.spikes)
        for (auto i = in.begin[k]; i < in.begin[k + 1]; ++i)
            s.spikes[in.population].push_back({in.tick[i], in.neuron[i]});
    for (const auto& in : q.currents) {
        const std::size_t n = net.population(in.population).size();
        s.current[in.population].assign(in.values.begin() + std::ptrdiff_t(k * n),
                                        in.values.begin() + std::ptrdiff_t((k + 1) * n));
    }
    if (!images) return s;
    const std::span<const double> raw(images + k * values, values);
    cli::add_analog_drives(s, model, net, raw);
    return s;
}

// Ctrl-C while C++ works with the GIL released: Python's own SIGINT handler only flags the signal,
// and the calling thread runs it (with the GIL) when stop() asks, e.g. before each of its samples.
// KeyboardInterrupt stops the work (stop() is true from then on); any other exception a user's
// handler raises stops it too, and raise_other() raises it once the work has returned.
class PythonInterrupt {
public:
    bool stop() {
        if (interrupted_.load()) return true;
        if (std::this_thread::get_id() != caller_) return false;
        const py::gil_scoped_acquire locked;
        if (PyErr_CheckSignals() == 0) return false;
        if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt))
            PyErr_Clear();
        else
            PyErr_Fetch(&type_, &value_, &traceback_);
        interrupted_.store(true);
        return true;
    }
    bool interrupted() const { return interrupted_.load(); }
    void raise_other() {
        if (!type_) return;
        PyErr_Restore(type_, value_, traceback_);
        type_ = value_ = traceback_ = nullptr;
        throw py::error_already_set();
    }

private:
    const std::thread::id caller_ = std::this_thread::get_id();
    std::atomic<bool> interrupted_{false};
    PyObject *type_ = nullptr, *value_ = nullptr, *traceback_ = nullptr;
};

py::dict run(const Model& m,
             const std::optional<py::array_t<double, py::array::c_style | py::array::forcecast>>& images,
             const RunRequest& q) {
    // --mask replaces the file's release settings on a copy: the targets get it, the rest none.
    std::optional<Network> masked;
    std::string targeted;
    if (q.mask) {
        Release release;
        release.mode = *q.mask > 0 ? release_mode(q.release) : ReleaseMode::none;
        release.mask_ratio = *q.mask;
        release.compensate = q.compensate;
        release.spread = q.release_spread;
        const Targets targets = resolve_targets(m.loaded.network, q.targets);
        targeted = summary(m.loaded.network, targets);
        masked = with_targeted_release(m.loaded.network, targets, release);
    }
    const Network& net = masked ? *masked : m.loaded.network;
    const PopulationId readout = net.find_population(m.loaded.readout).value_or(PopulationId(-1));
    std::vector<bool> recorded(net.populations().size(), !q.record);
    for (PopulationId p = 0; p < recorded.size(); ++p)
        recorded[p] = recorded[p] && !is_readout(net.population(p).model);
    for (const auto& name : q.record.value_or(std::vector<std::string>{})) {
        const auto p = net.find_population(name);
        if (!p) throw InputError(m.origin + ": record names population '" + name + "', which is not in the model");
        recorded[*p] = true;
    }
    const double* data = images ? images->data() : nullptr;
    const std::size_t values = images ? std::size_t(images->shape(1)) : 0;
    if (data && m.loaded.inputs.empty()) throw InputError(m.origin + ": has no /inputs, so it cannot take images");

    RunArrays a;
    a.spikes.resize(net.populations().size());
    a.potentials.resize(q.potentials.size());
    // The trace (if asked) is created before anything runs, by the command line's writer; each
    // completed sample is written as `quantal run --threads N` writes it (docs/python.md).
    std::optional<SpikeTraceWriter> trace;
    if (q.trace) {
        TraceOptions topts;
        topts.ticks_per_sample = q.ticks;
        topts.dt_ms = q.dt_ms;
        topts.populations = q.record.value_or(std::vector<std::string>{});
        topts.costs = q.costs;
        topts.replace_existing = false;
        topts.potentials = q.potentials;
        for (std::uint64_t k = 0; k < std::min(q.record_samples, q.samples); ++k) topts.samples.push_back(q.first_sample + k);
        RunMetadata meta;
        meta.model = m.origin;
        meta.seed = q.seed;
        meta.release = q.mask ? mode_name(*q.mask > 0 ? release_mode(q.release) : ReleaseMode::none) : "file";
        meta.mask_ratio = q.mask.value_or(0.0);
        meta.compensate = q.compensate;
        meta.release_spread = q.release_spread;
        meta.version = QUANTAL_BUILD_VERSION;
        meta.command_line = "quantal Python module: Network.run(trace=...)";
        trace.emplace(*q.trace, net, topts, meta);
    }
    PythonInterrupt interrupt;
    const std::function<bool()> stop = [&] { return interrupt.stop(); };
    {
        const py::gil_scoped_release unlocked;
        RunOptions options;
        options.ticks = q.ticks;
        options.seed = q.seed;
        options.observe = q.observe;
        options.potentials = q.potentials;
        options.threads_per_sample = q.threads_per_sample;
        // Batches keep memory bounded (stimuli and spikes of one batch at a time) and all threads busy.
        const std::uint64_t batch = std::uint64_t(q.threads) * 16;
        // The engine keeps spikes (and potentials) only when asked: only ask when some are wanted.
        const bool any_recorded = std::find(recorded.begin(), recorded.end(), true) != recorded.end() ||
                                  !q.potentials.empty() || trace;
        options.record_populations = recorded; // only the spikes the result and the trace keep
        SampleBatches batches(net, q.threads);
        for (std::uint64_t first = 0; first < q.samples && !interrupt.interrupted();) {
            std::uint64_t n = std::min(batch, q.samples - first);
            if (first < q.record_samples) n = std::min(n, q.record_samples - first); // one recording setting per batch
            options.record_spikes = any_recorded && first < q.record_samples;
            std::vector<Stimulus> stimuli;
            for (std::uint64_t k = first; k < first + n; ++k)
                stimuli.push_back(stimulus(m.loaded, net, data, values, q, k));
            const auto results = batches.run(stimuli, options, q.first_sample + first, stop);
            for (const auto& r : results) {
                collect(net, readout, r, q.costs, a);
                if (!trace) continue;
                const auto k = r.sample - q.first_sample;
                trace->begin_sample(r.sample, k < q.labels.size() ? q.labels[k] : -1);
                trace->replay(r);
                trace->end_sample(cli::prediction(r, readout), r.ledger);
            }
            first += n;
        }
    }
    if (trace) trace->finish(interrupt.interrupted() ? TraceStatus::interrupted : TraceStatus::complete);
    interrupt.raise_other();

    // S: the completed samples, all of them unless interrupted.
    const auto S = py::ssize_t(a.prediction.size()), P = py::ssize_t(net.populations().size()),
               J = py::ssize_t(net.projections().size()), O = py::ssize_t(net.operators().size());
    py::dict out;
    const auto observed = py::ssize_t(q.observe.empty() ? 1 : q.observe.size());
    if (readout < net.populations().size())
        out["readout"] = to_array(std::move(a.readout), {S, observed, py::ssize_t(net.population(readout).size())});
    else
        out["readout"] = py::none();
    out["predictions"] = to_array(std::move(a.prediction), {S});
    const char* pop_names[] = {"spikes", "updates", "drift_ticks", "wakeups", "macs"};
    const char* proj_names[] = {"spikes_in", "masked_spikes", "attempted", "transmitted"};
    const char* op_names[] = {"coincidences", "deliveries", "macs", "masked_spikes"};
    py::dict pops, projs, ops;
    for (int i = 0; i < 5; ++i) pops[pop_names[i]] = to_array(std::move(a.pop[i]), {S, P});
    for (int i = 0; i < 4; ++i) projs[proj_names[i]] = to_array(std::move(a.proj[i]), {S, J});
    for (int i = 0; i < 4; ++i) ops[op_names[i]] = to_array(std::move(a.op[i]), {S, O});
    out["populations"] = pops, out["projections"] = projs, out["operators"] = ops;
    {
        std::ostringstream models; // what `quantal energy --json` prints for a trace of this run
        cli::print_energy_json(models, energy_inputs(a.total, net), q.costs, HardwareProfile{});
        out["energy_json"] = models.str();
    }
    out["snn_pj"] = to_array(std::move(a.snn_pj), {S});
    out["ann_pj"] = to_array(std::move(a.ann_pj), {S});
    py::dict spikes;
    for (PopulationId p = 0; p < net.populations().size(); ++p) {
        if (!recorded[p]) continue;
        auto& s = a.spikes[p];
        const auto n = py::ssize_t(s.tick.size());
        spikes[py::str(net.population(p).name)] = py::make_tuple(
            to_array(std::move(s.sample), {n}), to_array(std::move(s.tick), {n}), to_array(std::move(s.node_id), {n}));
    }
    out["spikes"] = spikes;
    py::dict potentials;
    for (std::size_t i = 0; i < q.potentials.size(); ++i) {
        const auto width = py::ssize_t(q.potentials[i].neurons.size());
        const auto kept = py::ssize_t(a.potentials[i].size()) / (py::ssize_t(q.ticks) * width);
        potentials[py::str(net.population(q.potentials[i].population).name)] =
            to_array(std::move(a.potentials[i]), {kept, py::ssize_t(q.ticks), width});
    }
    out["potentials"] = potentials;
    py::list release;
    for (const auto& p : net.projections())
        release.append(py::make_tuple(mode_name(p.release.mode), p.release.mask_ratio));
    out["release"] = release;
    out["targeted"] = targeted;
    out["interrupted"] = interrupt.interrupted();
    return out;
}

// Runs `quantal ARGS...` in this process with the executable's own parser and commands (so the
// options, their checks and messages are the command line's); a bad command line raises
// InputError with CLI11's message. Used by quantal.sweep. Ctrl-C stops a sweep after its current
// work unit (saved in its state file): returns the message saying so, or "" when it completed.
std::string command(const std::vector<std::string>& args) {
    PythonInterrupt interrupt; // as run()'s: KeyboardInterrupt stops, another exception is raised after
    const std::function<bool()> stop = [&] { return interrupt.stop(); };
    CLI::App app;
    cli::add_commands(app, stop);
    std::vector<const char*> argv{"quantal"};
    for (const auto& a : args) argv.push_back(a.c_str());
    std::string stopped;
    {
        const py::gil_scoped_release unlocked;
        try {
            app.parse(int(argv.size()), argv.data());
        } catch (const CLI::ParseError& e) {
            throw InputError(e.what());
        } catch (const cli::Stopped& e) {
            stopped = e.what();
        }
    }
    interrupt.raise_other();
    return stopped;
}

// `quantal energy TRACE --json`'s text, for quantal.plot.energy of a trace file.
std::string trace_energy_json(const std::string& path) {
    const TraceSummary s = read_trace_summary(path);
    if (!s.has_energy) throw InputError(path + ": has no /energy group (no ledger to price)");
    std::ostringstream out;
    cli::print_energy_json(out, energy_inputs(s), EnergyCosts{s.e_ac_pj, s.e_mac_pj}, HardwareProfile{});
    return out.str();
}

} // namespace

PYBIND11_MODULE(_quantal, m) {
    m.doc() = "quantal's C++ core; use the `quantal` package (docs/python.md)";
    py::register_exception<ModelError>(m, "ModelError", PyExc_ValueError);
    py::register_exception<InputError>(m, "InputError", PyExc_ValueError);

    py::class_<Model, std::shared_ptr<Model>>(m, "Model")
        .def_property_readonly("name", [](const Model& x) { return x.loaded.name; })
        .def_property_readonly("origin", [](const Model& x) { return x.origin; })
        .def_property_readonly("readout", [](const Model& x) { return x.loaded.readout; })
        .def_property_readonly("ann_macs", [](const Model& x) { return x.loaded.network.ann_macs(); })
        .def_property_readonly("dt_ms", [](const Model& x) { return x.loaded.network.dt_ms(); })
        .def_property_readonly("operators",
                               [](const Model& x) {
                                   std::vector<std::string> names;
                                   for (const auto& op : x.loaded.network.operators())
                                       names.push_back(std::visit([](const auto& o) { return o.name; }, op));
                                   return names;
                               })
        .def("populations", &populations_of)
        .def("projections", &projections_of)
        .def("inputs", &inputs_of)
        .def("connectivity", &connectivity_of)
        .def("save",
             [](const Model& x, const std::string& path, const std::string& name) {
                 ModelFileInfo info;
                 info.name = name;
                 info.producer = "quantal Python module";
                 write_model_file(path, x.loaded.network, info, x.loaded.inputs, x.loaded.readout);
             })
        .def(
            "spike_file",
            [](const Model& x, const std::string& path, Tick ticks, double dt_ms, std::uint64_t first_sample,
               std::optional<std::uint64_t> samples) {
                // `quantal run --input-spikes`'s reading and rules; (samples, {population: (sample, tick, node_id)}).
                const Network& net = x.loaded.network;
                auto s = cli::spikes_from_file(read_spike_file(path), x.origin, net, ticks, dt_ms, first_sample, samples);
                py::dict out;
                for (PopulationId p = 0; p < net.populations().size(); ++p) {
                    if (!std::holds_alternative<SpikeSource>(net.population(p).model)) continue;
                    std::vector<std::uint64_t> sample, node;
                    std::vector<Tick> tick;
                    for (std::uint64_t k = 0; k < s.samples; ++k)
                        for (const auto& sp : s.per_sample[k][p])
                            sample.push_back(first_sample + k), tick.push_back(sp.tick), node.push_back(sp.neuron);
                    const auto n = py::ssize_t(sample.size());
                    out[py::str(net.population(p).name)] = py::make_tuple(
                        to_array(std::move(sample), {n}), to_array(std::move(tick), {n}), to_array(std::move(node), {n}));
                }
                return py::make_tuple(s.samples, out);
            })
        .def("run", [](const Model& x,
                       const std::optional<py::array_t<double, py::array::c_style | py::array::forcecast>>& images,
                       Tick ticks, std::uint64_t samples, std::uint64_t first_sample, std::uint64_t seed, int threads,
                       int threads_per_sample, std::optional<double> mask, const std::string& release, const std::string& targets,
                       bool compensate, double release_spread, const std::vector<Tick>& observe,
                       const std::optional<std::vector<std::string>>& record, std::uint64_t record_samples, double e_ac,
                       double e_mac, const py::list& spikes, const py::list& currents, const py::list& record_v,
                       const std::optional<std::string>& trace, double dt_ms, const std::vector<std::int64_t>& labels) {
            RunRequest q;
            q.ticks = ticks, q.samples = samples, q.first_sample = first_sample, q.seed = seed, q.threads = threads;
            q.threads_per_sample = threads_per_sample;
            q.mask = mask, q.release = release, q.targets = targets, q.compensate = compensate;
            q.release_spread = release_spread, q.observe = observe, q.record = record,
            q.record_samples = record_samples;
            q.costs = EnergyCosts{e_ac, e_mac};
            // [(population, offsets, ticks, neurons)] and [(population, values)], checked in Python.
            auto population = [&](const py::handle& name) {
                const auto p = x.loaded.network.find_population(name.cast<std::string>());
                if (!p) throw InputError(x.origin + ": has no population '" + name.cast<std::string>() + "'");
                return *p;
            };
            for (const auto& h : spikes) {
                const auto t = h.cast<py::tuple>();
                q.spikes.push_back(
                    {population(t[0]), values<std::uint64_t>(t[1]), values<Tick>(t[2]), values<std::uint32_t>(t[3])});
            }
            for (const auto& h : currents) {
                const auto t = h.cast<py::tuple>();
                q.currents.push_back({population(t[0]), values<double>(t[1])});
            }
            // [(population, neuron ids)], checked by the engine (PotentialRecorder::validate).
            for (const auto& h : record_v) {
                const auto t = h.cast<py::tuple>();
                q.potentials.push_back({population(t[0]), values<std::uint32_t>(t[1])});
            }
            PotentialRecorder::validate(x.loaded.network, q.potentials);
            q.trace = trace, q.dt_ms = dt_ms, q.labels = labels;
            return run(x, images, q);
        });
    m.def(
        "read_npy_samples",
        [](const std::string& path) {
            // The command line's reader (--input FILE.npy): same dtypes, checks and messages.
            NpySamples a = read_npy_samples(path, 0, 0, 3, 4);
            std::vector<py::ssize_t> shape{py::ssize_t(a.count)};
            for (auto d : a.shape) shape.push_back(py::ssize_t(d));
            return to_array(std::move(a.values), shape);
        },
        py::arg("path"));
    m.def("load", &load, py::arg("path"), py::arg("dt_ms"));
    m.def("command", &command, py::arg("args"));
    m.def("trace_energy_json", &trace_energy_json, py::arg("path"));
    m.def("build", &build, py::arg("populations"), py::arg("projections"), py::arg("operators"), py::arg("readout"),
          py::arg("dt_ms"));
}
