// Propagation throughput on one core: transmitted synaptic events per second (the ledger's
// `transmitted`) for
//   1. a dense layered IF network (1000 Bernoulli inputs -> 500 -> 500 -> 500 IF, 10^6 synapses)
//      with release none, spike and synapse at mask ratio 0.75;
//   2. one projection (Bernoulli inputs -> readouts, so activity does not depend on release),
//      dense, sparse and conv2d fan-outs, synapse release drawn by geometric skipping or by Bernoulli
//      compares at several release probabilities: the crossovers ReleasePlan::geometric_below_*.
// With --export DIR it also writes the layered network's weights, one sample's input spikes and
// every layer's spikes, for bench/brian2_dense.py (the same network run by Brian2).
//
// Timing: CPU time (std::clock, as Brian2 measures its own loop) and wall time around Engine::run
// (one thread), repeated; configurations are interleaved within each repetition so that load from
// other processes hits them alike; medians reported.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "sim/engine.hpp"
#include "sim/random.hpp"
#include "synapses/transmit.hpp"

#include <boost/random/mersenne_twister.hpp>

using namespace quantal;

namespace {

// The benchmark networks' weights come from Mersenne Twister, as before quantal's own streams
// moved to xoshiro256++: the networks (and the exported weights) stay the same.
using WeightEngine = boost::random::mt19937_64;

// ---------------------------------------------------------------------------------------------
// The layered network. Weights are multiples of 2^-12 and v0, theta are dyadic too, so every sum
// the engine (input accumulated, then added) or Brian2 (v += w per synapse) forms is exact in
// double: both must then produce identical spikes, whatever the summation order.
struct LayeredShape {
    std::vector<std::uint32_t> sizes{1000, 500, 500, 500};
    double input_probability = 0.1; // per tick
    double threshold = 1.0;
    double v0 = 0.5;
    std::uint64_t weight_seed = 7;
};

// Per layer: w = (offset + uniform integer in [-spread, spread]) / 4096.
struct LayerWeights {
    int offset;
    int spread;
};
const LayerWeights layer_weights[] = {{6, 200}, {3, 160}, {3, 160}};

std::vector<std::vector<float>> layered_weights(const LayeredShape& s) {
    WeightEngine rng(s.weight_seed);
    std::vector<std::vector<float>> w;
    for (std::size_t l = 1; l < s.sizes.size(); ++l) {
        const auto [offset, spread] = layer_weights[std::min<std::size_t>(l - 1, 2)];
        std::vector<float> m(std::size_t(s.sizes[l]) * s.sizes[l - 1]);
        for (auto& x : m) {
            const int k = offset + int(rng() % std::uint64_t(2 * spread + 1)) - spread;
            x = float(std::ldexp(double(k), -12));
        }
        w.push_back(std::move(m));
    }
    return w;
}

Network layered_network(const LayeredShape& s, const std::vector<std::vector<float>>& weights, Release release) {
    NetworkBuilder b;
    PopulationId prev = b.add_population("input", {s.sizes[0]}, BernoulliSource{{s.input_probability}, 1.0});
    for (std::size_t l = 1; l < s.sizes.size(); ++l) {
        ThresholdRule rule;
        rule.threshold = s.threshold;
        rule.comparison = Comparison::greater_equal;
        rule.reset = ResetMode::subtract;
        PopulationId pop = b.add_population("layer" + std::to_string(l), {s.sizes[l]}, IfNeuron{rule, s.v0, 1.0});
        b.connect(Projection{"fc" + std::to_string(l), prev, pop, Dense{weights[l - 1]}, 0, release});
        prev = pop;
    }
    return b.build();
}

// ---------------------------------------------------------------------------------------------
// One projection for the sampling crossover: Bernoulli inputs into readouts (never spike).
enum class FanoutKind { dense, sparse_long, sparse_short, conv };

const char* fanout_name(FanoutKind k) {
    switch (k) {
    case FanoutKind::dense: return "dense 1000x1000";
    case FanoutKind::sparse_long: return "sparse 1000/10000";
    case FanoutKind::sparse_short: return "sparse 100/10000";
    case FanoutKind::conv: return "conv 3x3 16x32x32";
    }
    return "?";
}

struct SingleProjection {
    Connectivity connectivity;
    Shape source, target;
};

// Dense: 1000 -> 1000. Sparse: 1000 -> 10000 with 1000 or 100 random targets per source.
// Conv: 16 x 32 x 32 -> 16 x 32 x 32, 3 x 3 kernel, padding 1 (fan-out 144 inside the image).
SingleProjection single_connectivity(FanoutKind kind) {
    const std::uint32_t n_in = 1000;
    WeightEngine rng(11);
    auto weight = [&] { return float(std::ldexp(double(int(rng() % 401) - 200), -12)); };
    if (kind == FanoutKind::dense) {
        Dense d;
        d.weight.resize(std::size_t(n_in) * 1000);
        for (auto& w : d.weight) w = weight();
        return {d, {n_in}, {1000}};
    } else if (kind == FanoutKind::conv) {
        Conv2d c;
        c.kernel = {3, 3};
        c.padding = {1, 1};
        c.weight.resize(16 * 16 * 9);
        for (auto& w : c.weight) w = weight();
        return {c, {16, 32, 32}, {16, 32, 32}};
    } else {
        const std::uint32_t n_out = 10000, per_row = kind == FanoutKind::sparse_long ? 1000 : 100;
        Sparse sp;
        sp.row_begin.push_back(0);
        std::vector<std::uint32_t> all(n_out);
        for (std::uint32_t i = 0; i < n_in; ++i) {
            for (std::uint32_t k = 0; k < n_out; ++k) all[k] = k;
            for (std::uint32_t k = 0; k < per_row; ++k) std::swap(all[k], all[k + rng() % (n_out - k)]);
            std::sort(all.begin(), all.begin() + per_row);
            for (std::uint32_t k = 0; k < per_row; ++k) sp.target.push_back(all[k]), sp.weight.push_back(weight());
            sp.row_begin.push_back(sp.target.size());
        }
        return {sp, {n_in}, {n_out}};
    }
}

Network single_projection(const SingleProjection& c, Release release) {
    NetworkBuilder b;
    PopulationId in = b.add_population("input", c.source, BernoulliSource{{0.1}, 1.0});
    PopulationId out = b.add_population("out", c.target, ReadoutNeuron{});
    b.connect(Projection{"proj", in, out, c.connectivity, 0, release});
    return b.build();
}

// ---------------------------------------------------------------------------------------------
// CPU time of this (single-threaded) process, as Brian2's standalone main loop measures itself
// (std::clock without OpenMP): on a machine shared with other jobs, wall time also counts the
// time the scheduler gave to them. Wall time is kept alongside.
struct Elapsed {
    double cpu, wall;
};
class Stopwatch {
public:
    Stopwatch() : cpu_(std::clock()), wall_(std::chrono::steady_clock::now()) {}
    Elapsed elapsed() const {
        return {double(std::clock() - cpu_) / CLOCKS_PER_SEC,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_).count()};
    }

private:
    std::clock_t cpu_;
    std::chrono::steady_clock::time_point wall_;
};

double median(std::vector<double> s) {
    std::sort(s.begin(), s.end());
    const auto n = s.size();
    return n == 0 ? 0.0 : n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

struct Measurement {
    std::string group;   // "layered" or "crossover"
    std::string fanout;
    std::string mode;    // none, spike, synapse
    std::string sampling; // "-", automatic, geometric, bernoulli
    double p = 1.0;      // release probability
    std::vector<double> seconds; // CPU time, one per repetition
    std::uint64_t attempted = 0, transmitted = 0, spikes = 0; // per repetition (identical across them)
    std::vector<double> wall;    // wall time, one per repetition

    double median_seconds() const { return median(seconds); }
    double events_per_second() const { return double(transmitted) / median_seconds(); }
    double ns_per_attempted() const { return 1e9 * median_seconds() / double(attempted); }
};

// Networks are built just before they are timed (and dropped after): keeping all of them alive
// would hold ~50 copies of 10^6 synapses.
struct Case {
    Measurement m;
    std::function<Network()> build;
    Tick ticks;
    std::uint64_t samples;
};

const char* sampling_name(SynapseSampling s) {
    switch (s) {
    case SynapseSampling::automatic: return "automatic";
    case SynapseSampling::geometric: return "geometric";
    case SynapseSampling::bernoulli: return "bernoulli";
    }
    return "?";
}

// Runs `samples` samples on one Engine (one thread) and returns the wall time.
Elapsed time_case(Case& c) {
    const Network net = c.build();
    Engine engine(net);
    const Stimulus stimulus = Stimulus::for_network(net);
    RunOptions o;
    o.ticks = c.ticks;
    o.seed = 1;
    EnergyLedger total;
    const Stopwatch watch;
    for (std::uint64_t s = 0; s < c.samples; ++s) total += engine.run(stimulus, o, s).ledger;
    const Elapsed seconds = watch.elapsed();
    std::uint64_t attempted = 0;
    for (const auto& pc : total.projections) attempted += pc.attempted;
    c.m.attempted = attempted;
    c.m.transmitted = total.total_transmitted();
    c.m.spikes = total.total_spikes();
    return seconds;
}

std::string json_escape(const std::string& s) {
    std::string o;
    for (char ch : s) o += ch == '"' ? std::string("\\\"") : std::string(1, ch);
    return o;
}

// ---------------------------------------------------------------------------------------------
// Export for bench/brian2_dense.py: raw little-endian files plus a small JSON description.
void write_raw(const std::filesystem::path& path, const void* data, std::size_t bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(static_cast<const char*>(data), std::streamsize(bytes));
    if (!f) throw std::runtime_error("cannot write " + path.string());
}

void export_for_brian2(const std::filesystem::path& dir, const LayeredShape& shape, Tick ticks, int reps) {
    std::filesystem::create_directories(dir);
    const auto weights = layered_weights(shape);
    const Network net = layered_network(shape, weights, Release{});
    Engine engine(net);
    const Stimulus stimulus = Stimulus::for_network(net);
    RunOptions o;
    o.ticks = ticks;
    o.seed = 1;
    o.record_spikes = true;
    const SampleResult recorded = engine.run(stimulus, o, 0);

    // The same run without recording, timed: the throughput to compare with Brian2's.
    o.record_spikes = false;
    std::vector<double> seconds, wall;
    std::uint64_t transmitted = 0;
    for (int r = 0; r < reps; ++r) {
        const Stopwatch watch;
        const SampleResult res = engine.run(stimulus, o, 0);
        const Elapsed e = watch.elapsed();
        seconds.push_back(e.cpu), wall.push_back(e.wall);
        transmitted = res.ledger.total_transmitted();
    }
    const double cpu_median = median(seconds);

    for (std::size_t l = 0; l < weights.size(); ++l)
        write_raw(dir / ("weight" + std::to_string(l + 1) + ".f32"), weights[l].data(), weights[l].size() * sizeof(float));
    // Spikes per population as int32 pairs (tick, neuron), in simulation order.
    std::vector<std::vector<std::int32_t>> spikes(net.populations().size());
    for (const auto& sp : recorded.spikes) {
        spikes[sp.population].push_back(std::int32_t(sp.tick));
        spikes[sp.population].push_back(std::int32_t(sp.neuron));
    }
    for (std::size_t p = 0; p < spikes.size(); ++p)
        write_raw(dir / ("spikes_" + net.population(PopulationId(p)).name + ".i32"), spikes[p].data(),
                  spikes[p].size() * sizeof(std::int32_t));

    std::ofstream meta(dir / "network.json");
    meta << "{\n  \"sizes\": [";
    for (std::size_t l = 0; l < shape.sizes.size(); ++l) meta << (l ? ", " : "") << shape.sizes[l];
    meta << "],\n  \"populations\": [";
    for (std::size_t p = 0; p < net.populations().size(); ++p)
        meta << (p ? ", " : "") << '"' << net.population(PopulationId(p)).name << '"';
    meta << "],\n  \"threshold\": " << shape.threshold << ",\n  \"v0\": " << shape.v0
         << ",\n  \"input_probability\": " << shape.input_probability << ",\n  \"ticks\": " << ticks
         << ",\n  \"spike_counts\": [";
    for (std::size_t p = 0; p < spikes.size(); ++p) meta << (p ? ", " : "") << spikes[p].size() / 2;
    meta << "],\n  \"transmitted\": " << transmitted << ",\n  \"run_seconds\": [";
    for (std::size_t r = 0; r < seconds.size(); ++r) meta << (r ? ", " : "") << seconds[r];
    meta << "],\n  \"run_wall_seconds\": [";
    for (std::size_t r = 0; r < wall.size(); ++r) meta << (r ? ", " : "") << wall[r];
    meta << "],\n  \"run_seconds_median\": " << cpu_median
         << ",\n  \"events_per_second\": " << double(transmitted) / cpu_median << "\n}\n";
    std::cout << "exported to " << dir.string() << ": " << ticks << " ticks, spikes per population";
    for (const auto& s : spikes) std::cout << ' ' << s.size() / 2;
    std::cout << ", " << transmitted << " transmitted, median " << cpu_median << " s CPU (" << median(wall)
              << " s wall) = " << double(transmitted) / cpu_median / 1e6 << " M events/s (1 thread)\n";
}

// One timed run of the exported sample (same network, same input spikes), for brian2_dense.py to
// interleave with its own runs: both see the same machine load. `mask` > 0: synapse release at
// that mask ratio (sampling automatic), for the comparison with Brian2's `w*int(rand()<p)`.
void time_layered(const LayeredShape& shape, Tick ticks, double mask) {
    const Release release = mask > 0 ? Release{ReleaseMode::synapse, mask} : Release{};
    const Network net = layered_network(shape, layered_weights(shape), release);
    Engine engine(net);
    const Stimulus stimulus = Stimulus::for_network(net);
    RunOptions o;
    o.ticks = ticks;
    o.seed = 1;
    engine.run(stimulus, o, 0); // warm-up: first-touch page faults of the state vectors
    const Stopwatch watch;
    const SampleResult res = engine.run(stimulus, o, 0);
    const Elapsed e = watch.elapsed();
    std::uint64_t attempted = 0;
    for (const auto& pc : res.ledger.projections) attempted += pc.attempted;
    std::cout << "{\"seconds\": " << e.cpu << ", \"wall_seconds\": " << e.wall << ", \"mask\": " << mask
              << ", \"transmitted\": " << res.ledger.total_transmitted() << ", \"attempted\": " << attempted
              << ", \"spikes\": [";
    for (std::size_t p = 0; p < res.ledger.populations.size(); ++p)
        std::cout << (p ? ", " : "") << res.ledger.populations[p].spikes;
    std::cout << "]}\n";
}

void usage() {
    std::cout << "bench_propagate [--json | --json-out FILE] [--reps N] [--quick] [--only layered|crossover]\n"
                 "                [--export DIR] [--export-ticks T] [--time-layered T [--mask M]]\n"
                 "  Transmitted synaptic events per second on one core (see docs/performance.md).\n";
}

} // namespace

int main(int argc, char** argv) {
    bool json = false, quick = false;
    int reps = 5;
    std::string only, export_dir, json_out;
    Tick export_ticks = 1000, time_layered_ticks = -1;
    double mask = 0.0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--json") json = true;
        else if (a == "--json-out") json_out = next();
        else if (a == "--quick") quick = true;
        else if (a == "--reps") reps = std::stoi(next());
        else if (a == "--only") only = next();
        else if (a == "--export") export_dir = next();
        else if (a == "--export-ticks") export_ticks = std::stol(next());
        else if (a == "--time-layered") time_layered_ticks = std::stol(next());
        else if (a == "--mask") mask = std::stod(next());
        else if (a == "--help" || a == "-h") return usage(), 0;
        else return usage(), 2;
    }

    const LayeredShape shape;
    if (time_layered_ticks >= 0) return time_layered(shape, time_layered_ticks, mask), 0;
    if (!export_dir.empty()) {
        export_for_brian2(export_dir, shape, export_ticks, reps);
        if (only.empty()) return 0;
    }

    std::vector<Case> cases;
    const Tick ticks = 100;
    if (only.empty() || only == "layered") {
        const auto weights = layered_weights(shape);
        const std::uint64_t samples = quick ? 2 : 10;
        auto add = [&](ReleaseMode mode, double mask_ratio, SynapseSampling sampling) {
            Release r{mode, mask_ratio, sampling};
            Measurement m{"layered", "dense 1000-500-500-500", mode_name(mode),
                          mode == ReleaseMode::synapse ? sampling_name(sampling) : "-", r.probability(), {}, 0, 0, 0, {}};
            cases.push_back(Case{m, [&shape, weights, r] { return layered_network(shape, weights, r); }, ticks, samples});
        };
        add(ReleaseMode::none, 0.0, SynapseSampling::automatic);
        add(ReleaseMode::spike, 0.0, SynapseSampling::automatic);
        add(ReleaseMode::synapse, 0.0, SynapseSampling::automatic);
        add(ReleaseMode::spike, 0.75, SynapseSampling::automatic);
        add(ReleaseMode::synapse, 0.75, SynapseSampling::automatic);
        add(ReleaseMode::synapse, 0.75, SynapseSampling::geometric);
        add(ReleaseMode::synapse, 0.75, SynapseSampling::bernoulli);
    }
    if (only.empty() || only == "crossover") {
        const std::vector<double> ps = quick ? std::vector<double>{0.1, 0.5}
                                             : std::vector<double>{0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9};
        for (FanoutKind kind : {FanoutKind::dense, FanoutKind::sparse_long, FanoutKind::sparse_short, FanoutKind::conv}) {
            const std::uint64_t samples = quick ? 2 : kind == FanoutKind::sparse_short ? 20 : kind == FanoutKind::conv ? 2 : 4;
            auto conn = std::make_shared<const SingleProjection>(single_connectivity(kind));
            cases.push_back(Case{Measurement{"crossover", fanout_name(kind), "none", "-", 1.0, {}, 0, 0, 0, {}},
                                 [conn] { return single_projection(*conn, Release{}); }, ticks, samples});
            for (double p : ps)
                for (SynapseSampling s : {SynapseSampling::geometric, SynapseSampling::bernoulli}) {
                    Release r{ReleaseMode::synapse, 1.0 - p, s};
                    cases.push_back(Case{Measurement{"crossover", fanout_name(kind), "synapse", sampling_name(s), p, {}, 0, 0, 0, {}},
                                         [conn, r] { return single_projection(*conn, r); }, ticks, samples});
                }
        }
    }

    for (int r = 0; r < reps; ++r)
        for (auto& c : cases) {
            const Elapsed e = time_case(c);
            c.m.seconds.push_back(e.cpu), c.m.wall.push_back(e.wall);
        }

    std::ostringstream js;
    js << "{\n  \"geometric_below_contiguous\": " << ReleasePlan::geometric_below_contiguous
       << ",\n  \"geometric_below_windows\": " << ReleasePlan::geometric_below_windows << ",\n  \"reps\": " << reps
       << ",\n  \"results\": [\n";
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const auto& m = cases[i].m;
        js << "    {\"group\": \"" << m.group << "\", \"fanout\": \"" << json_escape(m.fanout) << "\", \"mode\": \""
           << m.mode << "\", \"sampling\": \"" << m.sampling << "\", \"p\": " << m.p << ", \"samples\": " << cases[i].samples
           << ", \"ticks\": " << cases[i].ticks << ", \"spikes\": " << m.spikes << ", \"attempted\": " << m.attempted
           << ", \"transmitted\": " << m.transmitted << ", \"median_seconds\": " << m.median_seconds()
           << ", \"median_wall_seconds\": " << median(m.wall)
           << ", \"events_per_second\": " << m.events_per_second() << ", \"ns_per_attempted\": " << m.ns_per_attempted()
           << "}" << (i + 1 < cases.size() ? "," : "") << "\n";
    }
    js << "  ]\n}\n";
    if (json) {
        std::cout << js.str();
        return 0;
    }
    if (!json_out.empty()) std::ofstream(json_out) << js.str();

    std::printf("%d repetitions, medians of CPU time (wall time in the last column); one thread\n", reps);
    std::string group;
    for (const auto& c : cases) {
        const auto& m = c.m;
        if (m.group != group) {
            group = m.group;
            std::printf("\n%-10s %-24s %-8s %-10s %5s %10s %12s %10s %9s %11s\n", group.c_str(), "fan-out", "mode",
                        "sampling", "p", "spikes", "transmitted", "M ev/s", "ns/att", "M ev/s wall");
        }
        std::printf("%-10s %-24s %-8s %-10s %5.2f %10llu %12llu %10.1f %9.3f %11.1f\n", "", m.fanout.c_str(),
                    m.mode.c_str(), m.sampling.c_str(), m.p, (unsigned long long)m.spikes,
                    (unsigned long long)m.transmitted, m.events_per_second() / 1e6, m.ns_per_attempted(),
                    double(m.transmitted) / median(m.wall) / 1e6);
    }
    // Issue 8: attempted synapses per second with synapse release at mask 0.75 against mask 0.
    auto attempted_rate = [&](const char* mode, const char* sampling, double p) {
        for (const auto& c : cases)
            if (c.m.group == "layered" && c.m.mode == mode && c.m.sampling == sampling && c.m.p == p)
                return double(c.m.attempted) / c.m.median_seconds();
        return 0.0;
    };
    if (const double r0 = attempted_rate("synapse", "automatic", 1.0); r0 > 0) {
        std::printf("\nlayered, attempted synapses per second relative to synapse release at mask 0 (%.1f M/s):\n",
                    r0 / 1e6);
        for (const char* sampling : {"automatic", "geometric", "bernoulli"})
            std::printf("  synapse, mask 0.75, %-9s  %7.1f M/s  = %.2f x\n", sampling,
                        attempted_rate("synapse", sampling, 0.25) / 1e6, attempted_rate("synapse", sampling, 0.25) / r0);
        std::printf("  spike,   mask 0.75             %7.1f M/s  = %.2f x\n", attempted_rate("spike", "-", 0.25) / 1e6,
                    attempted_rate("spike", "-", 0.25) / r0);
    }
    // The crossover: per fan-out, the largest p at which geometric is still faster than bernoulli.
    std::map<std::string, std::vector<std::pair<double, double>>> ratio; // fanout -> (p, t_geo / t_bern)
    for (std::size_t i = 0; i + 1 < cases.size(); ++i) {
        const auto& a = cases[i].m;
        const auto& b = cases[i + 1].m;
        if (a.group == "crossover" && a.sampling == "geometric" && b.sampling == "bernoulli" && a.p == b.p)
            ratio[a.fanout].push_back({a.p, a.median_seconds() / b.median_seconds()});
    }
    if (!ratio.empty()) std::printf("\ngeometric time / bernoulli time (< 1: geometric faster)\n");
    for (const auto& [fanout, rs] : ratio) {
        std::printf("%-24s", fanout.c_str());
        for (const auto& [p, x] : rs) std::printf("  p=%.2f: %.2f", p, x);
        std::printf("\n");
    }
    return 0;
}
