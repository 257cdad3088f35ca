// quantal sweep: a failure-probability study. Every configuration of the grid (apps/study/plan.hpp)
// runs the same samples with the same seeds, so each is compared with its ratio-0 baseline pair by
// pair. The work is cut into units (configuration x block of samples, apps/study/work.hpp), shared
// among threads and MPI ranks (apps/study/distributed.hpp); after every unit the progress is saved
// with Cereal beside the output (OUT.state), so a stopped study continues where it stopped. The
// results go to OUT.tmp, renamed to OUT once complete (docs/sweep.md).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <unistd.h>

#include "quantal_build_version.hpp" // generated: version and git describe (apps/CMakeLists.txt)
#include "apps/commands.hpp"
#include "apps/stimuli.hpp"
#include "apps/study/distributed.hpp"
#include "apps/study/plan.hpp"
#include "apps/study/study_file.hpp"
#include "apps/study/work.hpp"
#include "apps/values.hpp"
#include "io/sealed_file.hpp"
#include "network/targets.hpp"
#include "sim/errors.hpp"

namespace quantal::cli {

namespace {

struct SweepOptions {
    std::vector<std::string> models;
    std::string input, labels, out, csv;
    std::uint64_t samples = 0, offset = 0, ticks = 0, block = 64;
    std::vector<std::uint64_t> observe;
    std::vector<double> ratios;
    std::vector<std::string> releases, targets;
    std::vector<std::uint64_t> seeds{1};
    bool compensate = false;
    double spread = 0; // Beta concentration of per-synapse release probabilities; 0 = homogeneous
    int threads = 1;
    bool force = false;
    std::optional<double> load_timeout;
    EnergyCosts costs;
};

template <class T> std::string joined(const std::vector<T>& values) {
    std::ostringstream s;
    for (std::size_t i = 0; i < values.size(); ++i) s << (i ? "," : "") << values[i];
    return s.str();
}

std::string exact(double x) {
    char text[40];
    std::snprintf(text, sizeof text, "%.17g", x);
    return text;
}

std::string command_line(const SweepOptions& o) {
    std::ostringstream s;
    s << "quantal sweep";
    for (const auto& m : o.models) s << " --model " << m;
    s << " --input " << o.input << " --labels " << o.labels << " --samples " << o.samples << " --offset " << o.offset
      << " --ticks " << o.ticks;
    if (!o.observe.empty()) s << " --observe " << joined(o.observe);
    s << " --ratios " << joined(o.ratios) << " --release " << joined(o.releases) << " --targets " << joined(o.targets)
      << " --seeds " << joined(o.seeds) << (o.compensate ? " --compensate" : "");
    if (o.spread > 0) s << " --release-spread " << o.spread;
    s << " --block " << o.block
      << " --threads " << o.threads << " --e-ac " << o.costs.e_ac_pj << " --e-mac " << o.costs.e_mac_pj << " --out "
      << o.out;
    if (!o.csv.empty()) s << " --csv " << o.csv;
    return s.str();
}

// Everything that decides the study's results, for its state file: a state is resumed only by a
// sweep with the same list (threads, ranks, --csv, --force and the energy costs, applied when the
// file is written, are not in it).
std::vector<std::pair<std::string, std::string>> identity(const SweepOptions& o, const study::StudyDescription& d) {
    std::vector<std::pair<std::string, std::string>> id{{"quantal version", d.version}};
    for (std::size_t m = 0; m < o.models.size(); ++m) id.emplace_back("--model " + o.models[m] + " (SHA-256)", d.model_sha256[m]);
    id.insert(id.end(), {{"--input (SHA-256)", d.input_sha256}, {"--labels (SHA-256)", d.labels_sha256},
                         {"--offset", std::to_string(o.offset)}, {"--samples", std::to_string(o.samples)},
                         {"--ticks", std::to_string(o.ticks)}, {"--observe", joined(d.observe)},
                         {"--ratios", joined(o.ratios)}, {"--release", joined(o.releases)},
                         {"--targets", joined(o.targets)}, {"--seeds", joined(o.seeds)},
                         {"--compensate", o.compensate ? "yes" : "no"}, {"--release-spread", exact(o.spread)},
                         {"--block", std::to_string(o.block)}});
    return id;
}

ReleaseMode release_mode(const std::string& name) {
    if (name == "spike") return ReleaseMode::spike;
    if (name == "synapse") return ReleaseMode::synapse;
    throw InputError("--release: '" + name + "' is not spike or synapse");
}

std::string duration(double seconds) {
    const auto s = std::uint64_t(std::max(0.0, seconds));
    char text[32];
    std::snprintf(text, sizeof text, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
    return text;
}

// One line of progress: redrawn in place on a terminal, else one line per completed configuration.
class Progress {
public:
    Progress(std::span<const study::WorkUnit> units, const study::StudyState& state, std::size_t configurations)
        : units_(units), configurations_(configurations), terminal_(::isatty(STDERR_FILENO)),
          began_(std::chrono::steady_clock::now()) {
        left_in_configuration_.assign(configurations, 0);
        for (std::size_t u = 0; u < units.size(); ++u) {
            total_samples_ += units[u].count;
            if (state.done[u]) done_samples_ += units[u].count;
            else ++left_in_configuration_[units[u].configuration];
        }
        for (std::size_t c = 0; c < configurations; ++c)
            if (left_in_configuration_[c] == 0) ++configurations_done_;
        configurations_done_ -= configurations - run_configurations(units);
    }

    void unit_done(std::size_t u) {
        const auto& unit = units_[u];
        done_samples_ += unit.count, new_samples_ += unit.count;
        const bool configuration_done = --left_in_configuration_[unit.configuration] == 0;
        configurations_done_ += configuration_done;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began_).count();
        const double rate = double(new_samples_) / std::max(seconds, 1e-9);
        std::ostringstream line;
        line << "quantal sweep: " << configurations_done_ << " / " << run_configurations(units_) << " configurations, "
             << done_samples_ << " / " << total_samples_ << " samples, " << std::fixed;
        line.precision(1);
        line << rate << " samples/s, " << duration(double(total_samples_ - done_samples_) / rate) << " left";
        if (terminal_) std::cerr << "\r" << line.str() << "\033[K" << std::flush;
        else if (configuration_done) std::cerr << line.str() << "\n";
    }
    void finish() const {
        if (terminal_) std::cerr << "\n";
    }

private:
    static std::size_t run_configurations(std::span<const study::WorkUnit> units) {
        std::size_t n = 0;
        for (std::size_t u = 0; u < units.size(); ++u) n += u == 0 || units[u].configuration != units[u - 1].configuration;
        return n;
    }
    std::span<const study::WorkUnit> units_;
    std::size_t configurations_;
    bool terminal_;
    std::chrono::steady_clock::time_point began_;
    std::vector<std::size_t> left_in_configuration_;
    std::uint64_t total_samples_ = 0, done_samples_ = 0, new_samples_ = 0;
    std::size_t configurations_done_ = 0;
};

// Simulates work units: one process's models, configured for the unit's configuration on demand.
class UnitRunner {
public:
    UnitRunner(std::vector<LoadedModel>& models, std::vector<Network>& nets, std::vector<Stimuli>& stimuli,
               std::span<const study::Configuration> plan, std::span<const study::WorkUnit> units, RunOptions run,
               std::uint64_t offset, int threads, double spread)
        : models_(models), nets_(nets), stimuli_(stimuli), plan_(plan), units_(units), run_(std::move(run)),
          offset_(offset), threads_(threads), spread_(spread) {}

    study::UnitResult operator()(std::uint64_t u) {
        const study::WorkUnit& unit = units_[u];
        const auto& c = plan_[unit.configuration];
        Network& net = nets_[c.model];
        if (configured_[c.model] != std::optional{unit.configuration}) {
            const Targets targets = resolve_targets(net, c.ratio == 0 ? "all" : c.targets);
            const Release release = c.ratio == 0 ? Release{}
                                                 : Release{c.release, c.ratio, SynapseSampling::automatic,
                                                           c.compensated, spread_};
            net = with_targeted_release(std::move(net), targets, release);
            configured_[c.model] = unit.configuration;
        }
        const PopulationId readout = net.find_population(models_[c.model].readout).value_or(no_readout);
        RunOptions run = run_;
        run.seed = c.seed;
        std::vector<Stimulus> inputs;
        for (std::uint64_t k = unit.first; k < unit.first + unit.count; ++k) inputs.push_back(stimuli_[c.model].make(k));
        const auto results = run_batch(net, inputs, run, offset_ + unit.first, threads_);
        study::UnitResult r;
        r.unit = u;
        r.ledger = EnergyLedger::for_network(net, std::uint64_t(run.ticks));
        const std::uint64_t observed = run.observe.size();
        r.correct.assign(observed * unit.count, 0);
        for (std::uint64_t k = 0; k < results.size(); ++k) {
            r.ledger += results[k].ledger;
            for (std::uint64_t t = 0; t < observed; ++t)
                r.correct[t * unit.count + k] = prediction(results[k], readout, t) == stimuli_[c.model].label(unit.first + k);
        }
        return r;
    }

private:
    std::vector<LoadedModel>& models_;
    std::vector<Network>& nets_;
    std::vector<Stimuli>& stimuli_;
    std::span<const study::Configuration> plan_;
    std::span<const study::WorkUnit> units_;
    RunOptions run_;
    std::uint64_t offset_;
    int threads_;
    double spread_;
    std::map<std::uint32_t, std::optional<std::size_t>> configured_; // per model: the configuration its release is set for
};

int sweep(const SweepOptions& o, const study::Processes& processes, const std::function<bool()>& stop) {
    if (o.input.empty() || o.labels.empty()) throw InputError("quantal sweep needs --input IMAGES and --labels LABELS");
    const std::string state_path = o.out + ".state";
    std::vector<NamedFile> inputs{{"--input", o.input}, {"--labels", o.labels}};
    for (const auto& m : o.models) inputs.emplace_back("--model", m);
    if (processes.coordinator()) {
        check_output_file(o.out, inputs, o.force);
        check_output_file(state_path, inputs, true);
        if (!o.csv.empty()) check_output_file(o.csv, inputs, o.force);
    }

    std::vector<LoadedModel> models;
    for (const auto& m : o.models) models.push_back(load_model(m, o.load_timeout, std::nullopt));
    std::vector<Network> nets;
    std::vector<const Network*> pointers;
    for (auto& m : models) nets.push_back(std::move(m.network));
    for (const auto& n : nets) pointers.push_back(&n);
    for (std::size_t m = 0; m < models.size(); ++m)
        if (!nets[m].find_population(models[m].readout))
            throw InputError(o.models[m] + ": has no /readout to predict with");

    study::Grid grid;
    grid.ratios = o.ratios;
    for (const auto& r : o.releases) grid.releases.push_back(release_mode(r));
    for (auto spec : o.targets) { // '+' joins names into one set: --targets of `run` uses ','
        std::replace(spec.begin(), spec.end(), '+', ',');
        grid.targets.push_back(spec);
    }
    grid.seeds = o.seeds;
    grid.compensate = o.compensate;
    const auto plan = study::plan(grid, pointers);

    study::StudyDescription d;
    d.command_line = command_line(o);
    d.version = QUANTAL_BUILD_VERSION;
    d.models = o.models;
    for (const auto& m : o.models) d.model_sha256.push_back(sha256_file(m));
    d.input = o.input, d.input_sha256 = sha256_file(o.input);
    d.labels = o.labels, d.labels_sha256 = sha256_file(o.labels);
    d.offset = o.offset, d.ticks = o.ticks, d.block = o.block, d.costs = o.costs, d.release_spread = o.spread;
    d.observe = o.observe.empty() ? std::vector<std::uint64_t>{o.ticks} : o.observe;
    RunOptions run;
    run.ticks = Tick(o.ticks);
    for (auto t : d.observe) {
        if (t < 1 || t > o.ticks)
            throw InputError("--observe " + std::to_string(t) + " is outside [1, --ticks " + std::to_string(o.ticks) + "]");
        run.observe.push_back(Tick(t) - 1); // observed after tick t - 1, i.e. after t ticks
    }

    std::vector<Stimuli> stimuli;
    for (std::size_t m = 0; m < models.size(); ++m)
        stimuli.emplace_back(o.models[m], models[m], nets[m], StimulusFiles{o.input, o.labels, {}, o.offset, o.samples});
    d.samples = stimuli.front().count();
    if (d.samples == 0) throw InputError(o.input + ": no image from offset " + std::to_string(o.offset));

    const auto units = study::work_units(plan, d.samples, o.block);
    UnitRunner runner(models, nets, stimuli, plan, units, run, o.offset, o.threads, o.spread);
    if (!processes.coordinator()) {
        study::distribute(processes, {}, std::ref(runner), {});
        return 0;
    }

    study::StudyState state(identity(o, d), units.size(), plan.size(), d.observe.size(), d.samples);
    if (std::filesystem::exists(state_path)) {
        study::StudyState saved = study::read_state(state_path);
        if (saved.identity != state.identity) {
            std::string differs = "its identity";
            for (std::size_t i = 0; i < std::min(saved.identity.size(), state.identity.size()); ++i)
                if (saved.identity[i] != state.identity[i]) {
                    differs = saved.identity[i].first + " was " + saved.identity[i].second + ", now " +
                              state.identity[i].second;
                    break;
                }
            throw InputError("sweep state " + state_path + ": belongs to another study (" + differs +
                             "); remove it or choose another --out");
        }
        state = std::move(saved);
        std::cerr << "quantal sweep: resuming " << state_path << ": " << state.units_done() << " of " << units.size()
                  << " work units done\n";
    }
    std::vector<std::uint64_t> todo;
    for (std::uint64_t u = 0; u < units.size(); ++u)
        if (!state.done[u]) todo.push_back(u);

    std::cerr << "quantal sweep: " << plan.size() << " configurations, " << study::distinct(plan) << " to run, "
              << d.samples << " samples each, " << units.size() << " work units of up to " << o.block << " samples, "
              << processes.size() << (processes.size() == 1 ? " process" : " processes") << "\n";
    Progress progress(units, state, plan.size());
    double collect_seconds = 0;
    std::size_t collected = 0;
    study::distribute(processes, todo, std::ref(runner), [&](study::UnitResult&& r) {
        const auto began = std::chrono::steady_clock::now();
        state.add(units[r.unit], r);
        study::write_state(state_path, state);
        collect_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
        ++collected;
        progress.unit_done(r.unit);
        // One process computes units one after another here: stopping between two loses nothing.
        if (processes.size() == 1 && stop && stop())
            throw Stopped("sweep stopped after " + std::to_string(state.units_done()) + " of " +
                          std::to_string(units.size()) + " work units; " + state_path +
                          " keeps them: run the same sweep again to continue");
    });
    progress.finish();
    if (collected)
        std::cerr << "quantal sweep: rank 0 spent " << 1e3 * collect_seconds / double(collected)
                  << " ms per work unit collecting it (merge and state file)\n";

    const std::string partial = o.out + ".tmp";
    try {
        study::write_study_file(partial, d, plan, state, nets);
        std::filesystem::rename(partial, o.out);
    } catch (...) {
        std::filesystem::remove(partial); // never leave a half-written study behind
        throw;
    }
    if (!o.csv.empty()) study::write_study_csv(o.csv, d, plan, state, nets);
    std::filesystem::remove(state_path); // complete: the output is the record now
    std::cout << "study: " << plan.size() << " configurations (" << study::distinct(plan) << " run) x " << d.samples
              << " samples -> " << o.out << (o.csv.empty() ? "" : " and " + o.csv) << "\n";
    return 0;
}

int sweep_command(const SweepOptions& o, const std::function<bool()>& stop) {
    study::Processes processes;
    try {
        return sweep(o, processes, stop);
    } catch (const Stopped&) {
        throw;
    } catch (const InputError& e) {
        processes.abort_job(e.what(), 2);
        throw;
    } catch (const ModelError& e) {
        processes.abort_job(e.what(), 2);
        throw;
    } catch (const std::exception& e) {
        processes.abort_job(e.what(), 4);
        throw;
    }
}

} // namespace

void add_sweep_command(CLI::App& app, std::function<bool()> stop) {
    auto o = std::make_shared<SweepOptions>();
    auto* cmd = app.add_subcommand("sweep", "Failure-probability study: accuracy and energy over a grid of masks");
    cmd->add_option("--model", o->models, "Model file (.h5); repeat for several")->required();
    cmd->add_option("--input", o->input, "IDX images or a .npy array (docs/run.md, \"Inputs\"), one sample each")->required();
    cmd->add_option("--labels", o->labels, "IDX labels or a .npy integer array matching --input")->required();
    cmd->add_option("--samples", o->samples, "Images per configuration")->required()->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--offset", o->offset, "First image")->transform(whole_number(0, max_run_ticks));
    cmd->add_option("--ticks", o->ticks, "Ticks per sample")->required()->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--observe", o->observe, "Ticks at which accuracy is also read (default: --ticks only)")
        ->delimiter(',')->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--ratios", o->ratios, "Failure probabilities, e.g. 0,0.25,0.5,0.75,0.9")->required()->delimiter(',')
        ->check(real_number(0.0, 1.0));
    cmd->add_option("--release", o->releases, "Release modes: spike, synapse")->required()->delimiter(',');
    cmd->add_option("--targets", o->targets,
                    "Target sets, one configuration each: attention, linear, all, a role or a name, SET@LAYER; "
                    "'+' joins several into one set (e.g. fc1_in+fc2_in); 'each': one configuration per layer group")
        ->required()->delimiter(',');
    cmd->add_option("--seeds", o->seeds, "Run seeds (default 1)")->delimiter(',')
        ->transform(whole_number(0, std::numeric_limits<std::uint64_t>::max()));
    cmd->add_flag("--compensate", o->compensate,
                  "Scale surviving transmissions by 1/(1-ratio) in every masked configuration (ratio 1 refused)");
    cmd->add_option("--release-spread", o->spread,
                    "Per-synapse release probabilities drawn once per seed from a Beta distribution with the "
                    "configuration's mean and this concentration (default: homogeneous)")
        ->transform(real_number(0.0, max_release_spread, true));
    cmd->add_option("--block", o->block, "Samples per work unit: the granularity of resuming and sharing (default 64)")
        ->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--threads", o->threads, "Samples simulated in parallel per process")->transform(whole_number(1, max_threads));
    cmd->add_option("--out", o->out, "Study file to write (HDF5, docs/sweep.md); progress is kept in OUT.state")->required();
    cmd->add_option("--csv", o->csv, "Also write the results table as CSV");
    cmd->add_flag("--force", o->force, "Replace an existing --out (and --csv) file");
    add_energy_options(*cmd, o->costs);
    add_load_timeout_option(*cmd, o->load_timeout);
    cmd->callback([o, stop] {
        const int status = sweep_command(*o, stop);
        std::cout.flush();
        if (status) std::exit(status);
    });
}

} // namespace quantal::cli
