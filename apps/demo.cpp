// `quantal demo`: a built-in layered network (Bernoulli input -> dense IF layers -> readout) run
// over a batch of samples, with the energy report. The smallest complete end-to-end run.
#include <chrono>
#include <iostream>

#include "apps/commands.hpp"
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
};

Network demo_network(const DemoOptions& o) {
    NetworkBuilder b;
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

void run_demo(const DemoOptions& o) {
    const Network net = demo_network(o);
    std::vector<Stimulus> stimuli(o.samples, Stimulus::for_network(net));
    RunOptions run;
    run.ticks = o.ticks;
    run.seed = o.seed;
    const auto start = std::chrono::steady_clock::now();
    const auto results = run_batch(net, stimuli, run, 0, o.threads);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EnergyLedger total;
    for (const auto& r : results) total += r.ledger;
    std::cout << "demo: " << o.samples << " samples x " << o.ticks << " ticks, release "
              << (o.mask > 0 ? o.release : "none") << " mask " << o.mask << ", seed " << o.seed << ", " << seconds << " s\n";
    print_energy_report(std::cout, net, total, EnergyCosts{});
}

} // namespace

void add_demo_command(CLI::App& app) {
    auto o = std::make_shared<DemoOptions>();
    auto* cmd = app.add_subcommand("demo", "Run a built-in layered IF network on Bernoulli input and report energy");
    cmd->add_option("--mask", o->mask, "Mask ratio (synaptic failure probability)")->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--release", o->release, "Release mode when masking")->check(CLI::IsMember({"spike", "synapse"}));
    cmd->add_option("--seed", o->seed, "Run seed");
    cmd->add_option("--ticks", o->ticks, "Ticks per sample")->check(CLI::PositiveNumber);
    cmd->add_option("--samples", o->samples, "Number of samples");
    cmd->add_option("--threads", o->threads, "OpenMP threads (0: default)");
    cmd->add_option("--rate", o->input_rate, "Input spike probability per tick")->check(CLI::Range(0.0, 1.0));
    cmd->callback([o] { run_demo(*o); });
}

} // namespace quantal::cli
