// `quantal demo`: a built-in layered network (Bernoulli input -> dense IF layers -> readout) run
// over a batch of samples, with the energy report. The smallest complete end-to-end run.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <limits>
#include <sstream>

#include "quantal_build_version.hpp" // generated: version and git describe (apps/CMakeLists.txt)
#include "apps/commands.hpp"
#include "apps/values.hpp"
#include "io/spike_trace.hpp"
#include "sim/engine.hpp"
#include "sim/random.hpp"

namespace quantal::cli {

namespace {

struct DemoOptions {
    std::vector<std::uint32_t> layers{784, 512, 256, 10};
    double input_rate = 0.1;
    double mask = 0.0;
    std::string release = "synapse";
    std::uint64_t seed = 1;
    Tick ticks = 64;
    std::uint64_t samples = 8;
    int threads = 0;
    std::string trace;  // SONATA spike trace to write (samples then run one after another)
    bool force = false; // --force: an existing trace may be replaced
    double dt_ms = 1.0; // ms per tick in the trace
    EnergyCosts costs;
};

Network demo_network(const DemoOptions& o) {
    NetworkBuilder b;
    b.set_dt(o.dt_ms); // the report's rates in Hz
    RandomEngine rng(o.seed);
    auto uniform = [&] { return uniform_open0(rng) - 0.5; };
    PopulationId prev = b.add_population("input", {o.layers.front()}, BernoulliSource{{o.input_rate}, 1.0});
    Release release;
    release.mode = o.mask > 0 ? (o.release == "spike" ? ReleaseMode::spike : ReleaseMode::synapse) : ReleaseMode::none;
    release.mask_ratio = o.mask;
    for (std::size_t l = 1; l < o.layers.size(); ++l) {
        const bool last = l + 1 == o.layers.size();
        const std::uint32_t n_in = o.layers[l - 1], n = o.layers[l];
        Dense d;
        d.weight.resize(std::size_t(n) * n_in);
        const double scale = 4.0 / std::sqrt(double(n_in));
        for (auto& w : d.weight) w = float(uniform() * scale + 0.5 * scale / std::sqrt(double(n_in)));
        NeuronModel model = last ? NeuronModel{ReadoutNeuron{}} : NeuronModel{IfNeuron{ThresholdRule{}, 0.5, 1.0}};
        PopulationId pop = b.add_population(last ? "readout" : "hidden" + std::to_string(l), {n}, model);
        b.connect(Projection{"fc" + std::to_string(l), prev, pop, d, 0, release});
        prev = pop;
    }
    return b.build();
}

// The index of the largest readout value at the last observed tick (-1 without a readout).
std::int64_t prediction(const SampleResult& r) {
    if (r.readouts.empty() || r.readouts[0].ticks.empty()) return -1;
    const auto& v = r.readouts[0].values;
    const std::size_t n = v.size() / r.readouts[0].ticks.size();
    const auto last = v.begin() + std::ptrdiff_t(v.size() - n);
    return std::max_element(last, v.end()) - last;
}

// Samples one after another on one engine, streaming spikes into the trace: memory stays
// bounded however many samples run (run_batch would keep every sample's result).
EnergyLedger run_traced(const Network& net, const DemoOptions& o, const RunOptions& run) {
    TraceOptions options;
    options.ticks_per_sample = o.ticks;
    options.dt_ms = o.dt_ms;
    options.costs = o.costs;
    options.replace_existing = o.force;
    RunMetadata meta;
    meta.model = "demo";
    meta.seed = o.seed;
    meta.release = o.mask > 0 ? o.release : "none";
    meta.mask_ratio = o.mask;
    meta.version = QUANTAL_BUILD_VERSION;
    std::ostringstream cmd; // the options that shaped the run, as a command that repeats it
    cmd << "quantal demo --samples " << o.samples << " --ticks " << o.ticks << " --seed " << o.seed << " --rate "
        << o.input_rate << " --mask " << o.mask << " --release " << o.release << " --dt " << o.dt_ms << " --trace "
        << o.trace << (o.force ? " --force" : "");
    meta.command_line = cmd.str();
    SpikeTraceWriter trace(o.trace, net, options, meta);
    Engine engine(net);
    const Stimulus stimulus = Stimulus::for_network(net);
    EnergyLedger total;
    for (std::uint64_t k = 0; k < o.samples; ++k) {
        trace.begin_sample(k);
        const auto r = engine.run(stimulus, run, k, &trace);
        trace.end_sample(prediction(r), r.ledger);
        total += r.ledger;
    }
    trace.finish();
    std::cout << "trace: " << o.trace << " (" << trace.spikes_written() << " spikes, " << trace.samples_written()
              << " samples)\n";
    return total;
}

void run_demo(const DemoOptions& o) {
    if (!o.trace.empty()) check_output_file(o.trace, {}, o.force);
    const Network net = demo_network(o);
    RunOptions run;
    run.ticks = o.ticks;
    run.seed = o.seed;
    const auto start = std::chrono::steady_clock::now();
    EnergyLedger total;
    if (!o.trace.empty()) {
        total = run_traced(net, o, run);
    } else {
        std::vector<Stimulus> stimuli(o.samples, Stimulus::for_network(net));
        for (const auto& r : run_batch(net, stimuli, run, 0, o.threads)) total += r.ledger;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "demo: " << o.samples << " samples x " << o.ticks << " ticks, release "
              << (o.mask > 0 ? o.release : "none") << " mask " << o.mask << ", seed " << o.seed << ", " << seconds
              << " s\n";
    print_energy_report(std::cout, net, total, o.costs, o.dt_ms);
}

} // namespace

void add_demo_command(CLI::App& app) {
    auto o = std::make_shared<DemoOptions>();
    auto* cmd = app.add_subcommand("demo", "Run a built-in layered IF network on Bernoulli input and report energy");
    cmd->add_option("--mask", o->mask, "Mask ratio (synaptic failure probability)")->transform(real_number(0.0, 1.0));
    cmd->add_option("--release", o->release, "Release mode when masking")->check(CLI::IsMember({"spike", "synapse"}));
    cmd->add_option("--seed", o->seed, "Run seed")->transform(whole_number(0, UINT64_MAX));
    cmd->add_option("--ticks", o->ticks, "Ticks per sample")->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--samples", o->samples, "Number of samples")->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--threads", o->threads, "OpenMP threads (0: OpenMP's default)")
        ->transform(whole_number(0, max_threads));
    cmd->add_option("--rate", o->input_rate, "Input spike probability per tick")->transform(real_number(0.0, 1.0));
    add_energy_options(*cmd, o->costs);
    cmd->add_option("--trace", o->trace, "Write the spikes to this SONATA trace (HDF5); samples run one after another");
    cmd->add_flag("--force", o->force, "Replace an existing --trace file");
    cmd->add_option("--dt", o->dt_ms, "Milliseconds per tick in the trace")
        ->transform(real_number(0.0, std::numeric_limits<double>::max(), true));
    cmd->callback([o] {
        try {
            run_demo(*o);
        } catch (const std::bad_alloc&) {
            throw OutOfMemory("out of memory while running the demo (" + std::to_string(o->samples) + " samples of " +
                              std::to_string(o->ticks) + " ticks)");
        }
    });
}

} // namespace quantal::cli
