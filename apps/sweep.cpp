// quantal sweep: a failure-probability study. Every configuration of the grid (apps/study/plan.hpp)
// runs the same samples with the same seeds, so each is compared with its ratio-0 baseline pair by
// pair; the results go into one HDF5 file (docs/sweep.md), written to OUT.tmp and renamed when
// complete, so no half-written study is ever presented as one.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <unistd.h>

#include "quantal_build_version.hpp" // generated: version and git describe (apps/CMakeLists.txt)
#include "apps/commands.hpp"
#include "apps/stimuli.hpp"
#include "apps/study/plan.hpp"
#include "apps/study/statistics.hpp"
#include "apps/values.hpp"
#include "io/contained.hpp"
#include "io/hdf5_access.hpp"
#include "io/model_file.hpp"
#include "network/targets.hpp"
#include "sim/errors.hpp"

namespace quantal::cli {

namespace {

struct SweepOptions {
    std::vector<std::string> models;
    std::string input, labels, out, csv;
    std::uint64_t samples = 0, offset = 0, ticks = 0;
    std::vector<std::uint64_t> observe;
    std::vector<double> ratios;
    std::vector<std::string> releases, targets;
    std::vector<std::uint64_t> seeds{1};
    int threads = 1;
    bool force = false;
    EnergyCosts costs;
};

// What one configuration measured, per sample and in total.
struct Measured {
    std::vector<std::uint8_t> correct; // (observed ticks) x (samples), 1 when the prediction was right
    EnergyLedger ledger;
};

std::string command_line(const SweepOptions& o) {
    std::ostringstream s;
    s << "quantal sweep";
    for (const auto& m : o.models) s << " --model " << m;
    s << " --input " << o.input << " --labels " << o.labels << " --samples " << o.samples << " --offset " << o.offset
      << " --ticks " << o.ticks;
    auto list = [&](const char* name, const auto& values) {
        s << " " << name << " ";
        for (std::size_t i = 0; i < values.size(); ++i) s << (i ? "," : "") << values[i];
    };
    if (!o.observe.empty()) list("--observe", o.observe);
    list("--ratios", o.ratios);
    list("--release", o.releases);
    list("--targets", o.targets);
    list("--seeds", o.seeds);
    s << " --threads " << o.threads << " --e-ac " << o.costs.e_ac_pj << " --e-mac " << o.costs.e_mac_pj << " --out "
      << o.out;
    return s.str();
}

Measured measure(const Network& net, const Stimuli& stimuli, PopulationId readout, const RunOptions& run,
                 std::uint64_t offset, int threads) {
    const std::uint64_t n = stimuli.count(), observed = run.observe.size();
    Measured m;
    m.correct.assign(observed * n, 0);
    m.ledger = EnergyLedger::for_network(net, std::uint64_t(run.ticks));
    const std::uint64_t batch = std::uint64_t(std::max(threads, 1)) * 16;
    for (std::uint64_t first = 0; first < n; first += batch) {
        std::vector<Stimulus> inputs;
        for (std::uint64_t k = first; k < std::min(n, first + batch); ++k) inputs.push_back(stimuli.make(k));
        const auto results = run_batch(net, inputs, run, offset + first, threads);
        for (std::uint64_t k = 0; k < results.size(); ++k) {
            m.ledger += results[k].ledger;
            for (std::uint64_t t = 0; t < observed; ++t)
                m.correct[t * n + first + k] = prediction(results[k], readout, t) == stimuli.label(first + k);
        }
    }
    return m;
}

ReleaseMode release_mode(const std::string& name) {
    if (name == "spike") return ReleaseMode::spike;
    if (name == "synapse") return ReleaseMode::synapse;
    throw InputError("--release: '" + name + "' is not spike or synapse");
}

// The results file of docs/sweep.md.
void write_study(const std::string& path, const SweepOptions& o, std::span<const study::Configuration> plan,
                 std::span<const Measured> measured, std::span<const Network> nets, std::uint64_t samples) {
    namespace h5 = quantal::h5;
    const std::uint64_t C = plan.size(), O = o.observe.size(), N = samples;
    auto file = h5::create_file(path);
    h5::write_string_attribute(file, "format", "quantal-study");
    h5::write_int_attribute(file, "format_version", 1);
    h5::write_string_attribute(file, "version", QUANTAL_BUILD_VERSION);
    h5::write_string_attribute(file, "command_line", command_line(o));
    h5::write_string_array_attribute(file, "models", o.models);
    h5::write_string_attribute(file, "input", o.input);
    h5::write_string_attribute(file, "labels", o.labels);
    h5::write_int_attribute(file, "offset", std::int64_t(o.offset));
    h5::write_int_attribute(file, "samples", std::int64_t(N));
    h5::write_int_attribute(file, "ticks", std::int64_t(o.ticks));
    h5::write_double_attribute(file, "e_ac_pj", o.costs.e_ac_pj);
    h5::write_double_attribute(file, "e_mac_pj", o.costs.e_mac_pj);
    h5::write_dataset(file, "observe", o.observe, {O});

    auto g = h5::create_group(file, "configurations", path);
    std::vector<std::uint32_t> model;
    std::vector<std::uint64_t> seed, baseline;
    std::vector<std::int64_t> same_as;
    std::vector<double> ratio;
    std::vector<std::string> release, targets;
    for (const auto& c : plan) {
        model.push_back(c.model);
        seed.push_back(c.seed);
        ratio.push_back(c.ratio);
        release.push_back(mode_name(c.release));
        targets.push_back(c.targets);
        baseline.push_back(c.baseline);
        same_as.push_back(c.same_as ? std::int64_t(*c.same_as) : -1);
    }
    h5::write_dataset(g, "model", model, {C});
    h5::write_dataset(g, "seed", seed, {C});
    h5::write_dataset(g, "ratio", ratio, {C});
    h5::write_dataset(g, "baseline", baseline, {C});
    h5::write_dataset(g, "same_as", same_as, {C});
    h5::write_string_array_attribute(g, "release", release);
    h5::write_string_array_attribute(g, "targets", targets);

    auto r = h5::create_group(file, "results", path);
    std::vector<std::uint32_t> correct;
    std::vector<double> accuracy, low, high, change, change_low, change_high, p_value;
    std::vector<double> energy, relative_baseline, relative_ann, sops, macs, spikes, attempted, transmitted, masked;
    auto own = [&](std::size_t i) -> const Measured& { return measured[plan[i].same_as.value_or(i)]; };
    for (std::size_t i = 0; i < C; ++i) {
        const Measured& m = own(i);
        const Measured& b = own(plan[i].baseline);
        for (std::uint64_t t = 0; t < O; ++t) {
            std::uint64_t right = 0, gained = 0, lost = 0;
            for (std::uint64_t k = 0; k < N; ++k) {
                const bool x = m.correct[t * N + k], y = b.correct[t * N + k];
                right += x;
                gained += x && !y;
                lost += y && !x;
                correct.push_back(x);
            }
            const auto ci = study::clopper_pearson(right, N);
            const auto pc = study::paired_change(gained, lost, N);
            accuracy.push_back(double(right) / double(N));
            low.push_back(ci.low);
            high.push_back(ci.high);
            change.push_back(pc.difference);
            change_low.push_back(pc.interval.low);
            change_high.push_back(pc.interval.high);
            p_value.push_back(pc.p_value);
        }
        const Network& net = nets[plan[i].model];
        const auto e = summarize(m.ledger, net, o.costs), eb = summarize(b.ledger, net, o.costs);
        energy.push_back(e.snn_pj);
        relative_baseline.push_back(e.snn_pj / eb.snn_pj);
        relative_ann.push_back(e.snn_pj / e.ann_pj);
        sops.push_back(e.sops);
        macs.push_back(double(m.ledger.total_macs()) / double(N));
        spikes.push_back(double(m.ledger.total_spikes()) / double(N));
        double a = 0, tr = 0, ms = 0;
        for (const auto& p : m.ledger.projections) a += double(p.attempted), tr += double(p.transmitted), ms += double(p.masked_spikes);
        for (const auto& op : m.ledger.operators) ms += double(op.masked_spikes);
        attempted.push_back(a / double(N));
        transmitted.push_back(tr / double(N));
        masked.push_back(ms / double(N));
    }
    h5::write_dataset(r, "correct", correct, {C, O, N});
    for (auto [name, values] : {std::pair{"accuracy", &accuracy}, {"accuracy_low", &low}, {"accuracy_high", &high},
                                {"change", &change}, {"change_low", &change_low}, {"change_high", &change_high},
                                {"p_value", &p_value}})
        h5::write_dataset(r, name, *values, {C, O});
    for (auto [name, values] : {std::pair{"energy_pj", &energy}, {"energy_vs_baseline", &relative_baseline},
                                {"energy_vs_ann", &relative_ann}, {"sops", &sops}, {"macs", &macs},
                                {"spikes", &spikes}, {"attempted", &attempted}, {"transmitted", &transmitted},
                                {"masked_spikes", &masked}})
        h5::write_dataset(r, name, *values, {C});
}

int sweep_command(const SweepOptions& o) {
    if (o.input.empty() || o.labels.empty()) throw InputError("quantal sweep needs --input IMAGES and --labels LABELS");
    std::vector<NamedFile> inputs{{"--input", o.input}, {"--labels", o.labels}};
    for (const auto& m : o.models) inputs.emplace_back("--model", m);
    check_output_file(o.out, inputs, o.force);
    if (!o.csv.empty()) check_output_file(o.csv, inputs, o.force);

    std::vector<LoadedModel> models;
    for (const auto& m : o.models) {
        if (m.size() < 3 || m.substr(m.size() - 3) != ".h5")
            throw InputError("--model " + m + ": quantal sweep reads quantal model files (.h5)");
        // parsed in a child process first: libhdf5 may crash or hang on a damaged file (io/contained.hpp)
        models.push_back(read_contained(m, default_read_seconds(m), [&] { return read_model_file(m); }));
    }
    std::vector<Network> nets;
    std::vector<const Network*> pointers;
    for (auto& m : models) nets.push_back(std::move(m.network));
    for (const auto& n : nets) pointers.push_back(&n);

    study::Grid grid;
    grid.ratios = o.ratios;
    for (const auto& r : o.releases) grid.releases.push_back(release_mode(r));
    for (auto spec : o.targets) { // '+' joins names into one set: --targets of `run` uses ','
        std::replace(spec.begin(), spec.end(), '+', ',');
        grid.targets.push_back(spec);
    }
    grid.seeds = o.seeds;
    const auto plan = study::plan(grid, pointers);

    RunOptions run;
    run.ticks = Tick(o.ticks);
    for (auto t : o.observe) {
        if (t < 1 || t > o.ticks)
            throw InputError("--observe " + std::to_string(t) + " is outside [1, --ticks " + std::to_string(o.ticks) + "]");
        run.observe.push_back(Tick(t) - 1); // observed after tick t - 1, i.e. after t ticks
    }
    SweepOptions opts = o;
    if (opts.observe.empty()) {
        opts.observe = {o.ticks};
        run.observe = {Tick(o.ticks) - 1};
    }

    std::vector<Stimuli> stimuli;
    for (std::size_t m = 0; m < models.size(); ++m)
        stimuli.emplace_back(o.models[m], models[m], nets[m], StimulusFiles{o.input, o.labels, o.offset, o.samples});
    const std::uint64_t samples = stimuli.front().count();
    if (samples == 0) throw InputError(o.input + ": no image from offset " + std::to_string(o.offset));

    std::cerr << "quantal sweep: " << plan.size() << " configurations, " << study::distinct(plan) << " to run, "
              << samples << " samples each\n";
    std::vector<Measured> measured(plan.size());
    std::size_t done = 0;
    for (std::size_t i = 0; i < plan.size(); ++i) {
        const auto& c = plan[i];
        if (c.same_as) continue;
        const PopulationId readout = nets[c.model].find_population(models[c.model].readout).value_or(no_readout);
        if (readout == no_readout) throw InputError(o.models[c.model] + ": has no /readout to predict with");
        const Targets targets = c.ratio == 0 ? resolve_targets(nets[c.model], "all")
                                             : resolve_targets(nets[c.model], c.targets);
        const Release release{c.ratio == 0 ? ReleaseMode::none : c.release, c.ratio};
        nets[c.model] = with_targeted_release(std::move(nets[c.model]), targets, release);
        run.seed = c.seed;
        measured[i] = measure(nets[c.model], stimuli[c.model], readout, run, o.offset, o.threads);
        std::cerr << "quantal sweep: " << ++done << " / " << study::distinct(plan) << " configurations done\n";
    }
    const std::string partial = o.out + ".tmp";
    write_study(partial, opts, plan, measured, nets, samples);
    std::filesystem::rename(partial, o.out);
    std::cout << "study: " << plan.size() << " configurations (" << study::distinct(plan) << " run) x " << samples
              << " samples -> " << o.out << "\n";
    return 0;
}

} // namespace

void add_sweep_command(CLI::App& app) {
    auto o = std::make_shared<SweepOptions>();
    auto* cmd = app.add_subcommand("sweep", "Failure-probability study: accuracy and energy over a grid of masks");
    cmd->add_option("--model", o->models, "Model file (.h5); repeat for several")->required();
    cmd->add_option("--input", o->input, "IDX images, one sample each")->required();
    cmd->add_option("--labels", o->labels, "IDX labels matching --input")->required();
    cmd->add_option("--samples", o->samples, "Images per configuration")->required()->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--offset", o->offset, "First image")->transform(whole_number(0, max_run_ticks));
    cmd->add_option("--ticks", o->ticks, "Ticks per sample")->required()->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--observe", o->observe, "Ticks at which accuracy is also read (default: --ticks only)")
        ->delimiter(',');
    cmd->add_option("--ratios", o->ratios, "Failure probabilities, e.g. 0,0.25,0.5,0.75,0.9")->required()->delimiter(',')
        ->check(real_number(0.0, 1.0));
    cmd->add_option("--release", o->releases, "Release modes: spike, synapse")->required()->delimiter(',');
    cmd->add_option("--targets", o->targets,
                    "Target sets, one configuration each: attention, linear, all, a role or a name; '+' joins "
                    "several into one set (e.g. fc1_in+fc2_in)")
        ->required()->delimiter(',');
    cmd->add_option("--seeds", o->seeds, "Run seeds (default 1)")->delimiter(',');
    cmd->add_option("--threads", o->threads, "Samples simulated in parallel")->transform(whole_number(1, max_threads));
    cmd->add_option("--out", o->out, "Study file to write (HDF5, docs/sweep.md)")->required();
    cmd->add_flag("--force", o->force, "Replace an existing --out file");
    add_energy_options(*cmd, o->costs);
    cmd->callback([o] {
        const int status = sweep_command(*o);
        std::cout.flush();
        if (status) std::exit(status);
    });
}

} // namespace quantal::cli
