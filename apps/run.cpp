// `quantal run`: one network (a quantal model file or a NIR graph) over one or more samples,
// recorded as a SONATA spike trace, with the energy report. SIGINT/SIGTERM stop the run after the
// current sample (with --checkpoint: at the next tick boundary, saved); the trace is closed cleanly
// and the exit status is 128 + signal. Checkpoints and resume: docs/checkpoints.md.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "quantal_build_version.hpp" // generated: version and git describe (apps/CMakeLists.txt)
#include "apps/commands.hpp"
#include "apps/stimuli.hpp"
#include "apps/values.hpp"
#include "io/checkpoint.hpp"
#include "io/contained.hpp"
#include "io/idx.hpp"
#include "io/model_file.hpp"
#include "io/nir.hpp"
#include "io/spike_trace.hpp"
#include "network/targets.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"

namespace quantal::cli {

namespace {

// The one piece of global state: which signal asked the run to stop (0: none).
volatile std::sig_atomic_t stop_signal = 0;

extern "C" void on_stop_signal(int sig) {
    stop_signal = sig;
    std::signal(sig, SIG_DFL); // a second Ctrl-C ends the process at once
}

// While alive, SIGINT/SIGTERM only raise stop_signal; the previous handlers come back after.
// Installs `handler` for two signals while alive; the previous handlers come back after.
class ScopedSignalHandler {
public:
    ScopedSignalHandler(int first, int second, void (*handler)(int)) : signals_{first, second} {
        struct sigaction action {};
        action.sa_handler = handler;
        sigemptyset(&action.sa_mask);
        for (int i = 0; i < 2; ++i) sigaction(signals_[i], &action, &old_[i]);
    }
    ~ScopedSignalHandler() {
        for (int i = 0; i < 2; ++i) sigaction(signals_[i], &old_[i], nullptr);
    }
    ScopedSignalHandler(const ScopedSignalHandler&) = delete;
    ScopedSignalHandler& operator=(const ScopedSignalHandler&) = delete;

private:
    int signals_[2];
    struct sigaction old_[2] {};
};

class StopOnSignal {
public:
    StopOnSignal() : handler_((stop_signal = 0, SIGINT), SIGTERM, on_stop_signal) {}

private:
    ScopedSignalHandler handler_;
};

struct RunCommandOptions {
    std::string model;
    Tick ticks = 0;
    std::string input, labels, input_spikes;
    std::uint64_t samples = 1, offset = 0;
    bool samples_given = false; // --input-spikes runs all of the file's samples unless --samples says
    std::optional<double> mask;
    std::optional<std::string> release; // only with --mask; "synapse" when --mask comes alone
    std::optional<std::string> targets; // only with --mask; "all" when --mask comes alone
    bool compensate = false;               // only with --mask < 1: surviving weights x 1 / (1 - R)
    std::optional<double> release_spread;  // only with --mask: Beta concentration κ of per-synapse release
    UpdatePath update_path = UpdatePath::automatic;
    std::uint64_t seed = 1;
    std::optional<double> dt_option; // --dt: else the model file's dt, else default_dt_ms
    double dt = default_dt_ms;       // the run's, once resolved (resolve_dt)
    int threads = 1;
    int threads_per_sample = 1; // threads inside each sample; threads x this in all
    std::string trace;
    bool force = false; // --force: an existing trace may be replaced (never an input)
    std::vector<std::string> record;
    std::vector<std::string> record_v; // POP or POP:first-last (inclusive), repeatable
    std::optional<std::uint64_t> record_samples;
    EnergyCosts costs;
    std::string checkpoint, resume;                // --checkpoint FILE, --resume FILE
    std::optional<std::uint64_t> checkpoint_every; // ticks; only with --checkpoint
    std::optional<double> load_timeout; // seconds for reading --model; default: default_read_seconds()
};

std::string command_line(const RunCommandOptions& o) {
    std::ostringstream s;
    s << "quantal run --model " << o.model << " --ticks " << o.ticks;
    if (!o.input.empty()) s << " --input " << o.input;
    if (!o.labels.empty()) s << " --labels " << o.labels;
    if (!o.input_spikes.empty()) s << " --input-spikes " << o.input_spikes;
    s << " --samples " << o.samples << " --offset " << o.offset;
    if (o.mask)
        s << " --mask " << *o.mask << " --release " << o.release.value_or("synapse") << " --targets "
          << o.targets.value_or("all");
    if (o.compensate) s << " --compensate";
    if (o.release_spread) s << " --release-spread " << *o.release_spread;
    s << " --seed " << o.seed << " --dt " << o.dt << " --threads " << o.threads;
    if (o.threads_per_sample != 1) s << " --threads-per-sample " << o.threads_per_sample;
    if (!o.trace.empty()) s << " --trace " << o.trace << (o.force ? " --force" : "");
    for (const auto& r : o.record) s << " --record " << r;
    for (const auto& r : o.record_v) s << " --record-v " << r;
    if (o.record_samples) s << " --record-samples " << *o.record_samples;
    s << " --e-ac " << o.costs.e_ac_pj << " --e-mac " << o.costs.e_mac_pj;
    return s.str();
}

// `--record-v POP[:first-last]`: neurons first..last of POP, both included (POP:k: neuron k alone;
// POP alone: all of them). Refuses an unknown population, a spike source (no potential), a range
// outside the population and bad syntax, naming the model and the option.
PotentialProbe parse_record_v(const std::string& spec, const Network& net, const std::string& model) {
    auto bad = [&](const std::string& why) { throw InputError(model + ": --record-v '" + spec + "': " + why); };
    const auto colon = spec.rfind(':');
    const std::string name = spec.substr(0, colon);
    const auto p = net.find_population(name);
    if (!p) bad("population '" + name + "' is not in the model");
    const auto& pop = net.population(*p);
    if (is_source(pop.model)) bad("population '" + name + "' is a spike source and has no membrane potential");
    std::uint64_t first = 0, last = pop.size() - 1;
    if (colon != std::string::npos) {
        const std::string range = spec.substr(colon + 1);
        auto whole = [&](const std::string& text) {
            if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos)
                bad("expected POP, POP:k or POP:first-last with whole numbers, got '" + range + "'");
            return std::stoull(text);
        };
        const auto dash = range.find('-');
        first = whole(range.substr(0, dash));
        last = dash == std::string::npos ? first : whole(range.substr(dash + 1));
        if (last < first) bad("the range's last neuron " + std::to_string(last) + " is before its first " + std::to_string(first));
        if (last >= pop.size())
            bad("neuron " + std::to_string(last) + " is outside population '" + name + "' (neurons 0-" +
                std::to_string(pop.size() - 1) + ")");
    }
    PotentialProbe probe{*p, {}};
    for (std::uint64_t j = first; j <= last; ++j) probe.neurons.push_back(std::uint32_t(j));
    return probe;
}


// Sample k of the run holds ticks [k*T, (k+1)*T) of one time axis (the trace's timestamps):
// the last one must be exact in a double, and its time in ms finite.
void check_time_axis(const RunCommandOptions& o, std::uint64_t samples) {
    const auto ticks = std::uint64_t(o.ticks); // each of the three is <= 2^53 (checked when parsed)
    if (o.offset + samples > max_run_ticks / ticks)
        throw InputError("--offset " + std::to_string(o.offset) + " with --samples " + std::to_string(samples) +
                         " of --ticks " + std::to_string(ticks) + " ends beyond tick 2^53 = " +
                         std::to_string(max_run_ticks) + ", the last one a trace timestamp holds exactly");
    const double end_tick = double((o.offset + samples) * ticks);
    if (!std::isfinite(end_tick * o.dt)) {
        char text[160];
        std::snprintf(text, sizeof text, "--dt %g: the run's last tick %.17g is not a finite time in ms", o.dt, end_tick);
        throw InputError(text);
    }
}

std::string number(double v) {
    char text[40];
    std::snprintf(text, sizeof text, "%.17g", v);
    return text;
}

std::string number_text(double v) { // as the report prints numbers
    std::ostringstream s;
    s << v;
    return s.str();
}

// Options that only mean something with another one are refused alone: no silent defaults.
void check_option_pairs(const RunCommandOptions& o) {
    if (o.release && !o.mask)
        throw InputError("--release " + *o.release + " needs --mask R (without --mask the model file's release "
                         "settings are used as they are)");
    if (o.targets && !o.mask) throw InputError("--targets " + *o.targets + " needs --mask R (the ratio to apply)");
    if (o.compensate && !o.mask)
        throw InputError("--compensate needs --mask R (it scales the weights that survive the mask by 1 / (1 - R))");
    if (o.compensate && *o.mask == 1.0)
        throw InputError("--compensate with --mask 1: nothing survives, and 1 / (1 - R) is undefined at R = 1");
    if (o.release_spread && !o.mask)
        throw InputError("--release-spread " + number(*o.release_spread) +
                         " needs --mask R (the spread is around the release probability 1 - R)");
    if (!o.labels.empty() && o.input.empty())
        throw InputError("--labels " + o.labels + " needs --input IMAGES (labels belong to images)");
    if (o.checkpoint_every && o.checkpoint.empty())
        throw InputError("--checkpoint-every " + std::to_string(*o.checkpoint_every) +
                         " needs --checkpoint FILE (where the checkpoints go)");
    if (!o.resume.empty() && o.force)
        throw InputError("--force has no meaning with --resume " + o.resume +
                         ": the run's trace is continued, never replaced");
    if (!o.record_v.empty() && o.trace.empty())
        throw InputError("--record-v " + o.record_v.front() + " needs --trace FILE (where the potentials are written)");
    if (!o.record_v.empty() && (!o.checkpoint.empty() || !o.resume.empty()))
        throw InputError("--record-v cannot be combined with --checkpoint or --resume (a membrane report is written "
                         "in one run)");
    if (std::int64_t(o.threads) * o.threads_per_sample > max_threads)
        throw InputError("--threads " + std::to_string(o.threads) + " x --threads-per-sample " +
                         std::to_string(o.threads_per_sample) + " = " +
                         std::to_string(std::int64_t(o.threads) * o.threads_per_sample) + " threads, more than " +
                         std::to_string(max_threads));
}

bool same_file(const std::string& a, const std::string& b) {
    struct stat sa {};
    struct stat sb {};
    if (a.empty() || b.empty()) return false;
    if (::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    std::error_code ec; // one of them does not exist yet: compare the paths
    return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
}

// --checkpoint may replace only an older checkpoint: never an input or the trace, and an existing
// file only if it is the one resumed or --force is given.
void check_checkpoint_file(const RunCommandOptions& o) {
    if (o.checkpoint.empty()) return;
    for (const auto& [option, path] : std::vector<NamedFile>{
             {"--model", o.model}, {"--input", o.input}, {"--labels", o.labels}, {"--input-spikes", o.input_spikes},
             {"--trace", o.trace}})
        if (same_file(o.checkpoint, path))
            throw InputError("--checkpoint " + o.checkpoint + " is the same file as " + option + " " + path +
                             ": refusing to overwrite it");
    if (!o.force && !same_file(o.checkpoint, o.resume) && std::filesystem::exists(o.checkpoint))
        throw InputError("--checkpoint " + o.checkpoint + " already exists: refusing to overwrite it (use --resume " +
                         o.checkpoint + " to continue that run, or --force to replace it)");
}

// What a checkpoint belongs to: the model's bytes and every option that changes a result or the
// trace, in a fixed order. --checkpoint, --checkpoint-every and --resume itself are not part of it.
std::vector<std::pair<std::string, std::string>> run_identity(const RunCommandOptions& o) {
    std::string record;
    for (const auto& r : o.record) record += (record.empty() ? "" : ",") + r;
    const char* paths[] = {"automatic", "lazy", "sweep"};
    std::vector<std::pair<std::string, std::string>> identity{{"--model (SHA-256)", sha256_file(o.model)},
            {"--ticks", std::to_string(o.ticks)},
            {"--input (SHA-256)", o.input.empty() ? "none" : sha256_file(o.input)},
            {"--labels (SHA-256)", o.labels.empty() ? "none" : sha256_file(o.labels)},
            {"--samples", std::to_string(o.samples)},
            {"--offset", std::to_string(o.offset)},
            {"--mask", o.mask ? number(*o.mask) : "none"},
            {"--release", o.mask ? o.release.value_or("synapse") : "none"},
            {"--targets", o.mask ? o.targets.value_or("all") : "none"},
            {"--compensate", o.compensate ? "yes" : "no"},
            {"--release-spread", o.release_spread ? number(*o.release_spread) : "none"},
            {"--seed", std::to_string(o.seed)},
            {"--dt", number(o.dt)},
            {"--threads", std::to_string(o.threads)},
            {"--update-path", paths[int(o.update_path)]},
            {"--trace", o.trace.empty() ? "none" : std::filesystem::absolute(o.trace).lexically_normal().string()},
            {"--record", record.empty() ? "all" : record},
            {"--record-samples", o.record_samples ? std::to_string(*o.record_samples) : "all"},
            {"--e-ac", number(o.costs.e_ac_pj)},
            {"--e-mac", number(o.costs.e_mac_pj)}};
    // Only when given: checkpoints of runs without it keep their identity.
    if (!o.input_spikes.empty()) {
        identity.emplace_back("--input-spikes (SHA-256)", sha256_file(o.input_spikes));
        identity.emplace_back("--samples given", o.samples_given ? "yes" : "no");
    }
    return identity;
}

// One line naming the first option in which the checkpoint and this run differ.
void check_same_run(const std::string& file, const RunCheckpoint& c,
                    const std::vector<std::pair<std::string, std::string>>& now) {
    for (std::size_t i = 0; i < now.size(); ++i) {
        const std::string& name = now[i].first;
        const auto it = std::find_if(c.run.begin(), c.run.end(), [&](const auto& e) { return e.first == name; });
        if (it == c.run.end()) throw InputError("checkpoint " + file + ": does not record " + name);
        if (it->second == now[i].second) continue;
        const auto hashed = name.find(" (SHA-256)");
        if (hashed != std::string::npos) // a file's contents, not its name
            throw InputError("checkpoint " + file + ": belongs to a run whose " + name.substr(0, hashed) +
                             " file had SHA-256 " + it->second + "; this run's has " + now[i].second);
        throw InputError("checkpoint " + file + ": belongs to a run with " + name + " " + it->second +
                         ", this run has " + name + " " + now[i].second);
    }
    if (c.run.size() != now.size())
        throw InputError("checkpoint " + file + ": records options this quantal does not know");
}

// Wall time of loading (model and inputs) and of simulating (trace writing included), and the
// spikes and synaptic transmissions per second of simulating, from the ledger.
void print_timing(std::ostream& out, double load_seconds, double simulate_seconds, const EnergyLedger& total) {
    std::uint64_t spikes = 0, transmitted = 0;
    for (const auto& p : total.populations) spikes += p.spikes;
    for (const auto& p : total.projections) transmitted += p.transmitted;
    const double per_second = simulate_seconds > 0 ? 1.0 / simulate_seconds : 0.0;
    char line[256];
    std::snprintf(line, sizeof line, "time: loading %.3f s, simulating %.3f s\n", load_seconds, simulate_seconds);
    out << line;
    std::snprintf(line, sizeof line, "speed: %.4g spikes/s, %.4g synaptic events/s\n", double(spikes) * per_second,
                  double(transmitted) * per_second);
    out << line;
}

int run_command(RunCommandOptions& o) {
    check_option_pairs(o);
    o.dt = o.dt_option.value_or(default_dt_ms); // a first check of the time axis; again once the file's dt is known
    check_time_axis(o, o.samples);
    // Before anything is read: the trace must not replace an input, nor an old trace unasked (a
    // resumed run continues its own trace).
    if (!o.trace.empty())
        check_output_file(o.trace,
                          {{"--model", o.model}, {"--input", o.input}, {"--labels", o.labels}, {"--input-spikes", o.input_spikes}},
                          o.force || !o.resume.empty());
    check_checkpoint_file(o);
    const bool checkpointing = !o.checkpoint.empty();
    std::optional<RunCheckpoint> resumed;
    if (!o.resume.empty()) resumed = read_checkpoint(o.resume);
    const auto load_start = std::chrono::steady_clock::now();
    LoadedModel model = load_model(o.model, o.load_timeout, o.dt_option);
    const ResolvedDt dt = resolve_dt(model, o.dt_option, o.model);
    if (!dt.warning.empty()) std::cerr << "quantal run: warning: " << dt.warning << '\n';
    o.dt = dt.ms;
    check_time_axis(o, o.samples);
    Release release;
    if (o.mask) {
        release.mode = *o.mask > 0 ? (o.release == "spike" ? ReleaseMode::spike : ReleaseMode::synapse) : ReleaseMode::none;
        release.mask_ratio = *o.mask;
        release.compensate = o.compensate;
        release.spread = o.release_spread.value_or(0.0);
    }
    // --mask replaces the file's release settings: the targets get `release`, everything else none.
    // The network is moved, never copied: one set of weights alive.
    std::string targeted;
    if (o.mask) {
        const Targets targets = resolve_targets(model.network, o.targets.value_or("all"));
        targeted = summary(model.network, targets);
        model.network = with_targeted_release(std::move(model.network), targets, release);
    }
    const Network& net = model.network;
    const Stimuli stimuli = [&] {
        try {
            const bool all_of_file = !o.input_spikes.empty() && !o.samples_given;
            return Stimuli(o.model, model, net,
                           StimulusFiles{o.input, o.labels, o.input_spikes, o.offset,
                                         all_of_file ? std::nullopt : std::optional(o.samples), o.ticks, o.dt});
        } catch (const std::bad_alloc&) {
            throw OutOfMemory("out of memory while reading " + (o.input.empty() ? o.model : o.input));
        }
    }();
    check_time_axis(o, stimuli.count()); // a spike file sets the count
    const PopulationId readout = net.find_population(model.readout).value_or(no_readout);
    const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

    // What can be checked is checked before the trace file exists.
    if (stimuli.count() > 0) (void)stimuli.make(0);
    std::vector<bool> recorded_populations; // empty: all (the trace's default)
    for (const auto& name : o.record) {
        const auto p = net.find_population(name);
        if (!p) throw InputError(o.model + ": --record names population '" + name + "', which is not in the model");
        recorded_populations.resize(net.populations().size());
        recorded_populations[*p] = true;
    }
    std::vector<PotentialProbe> probes;
    for (const auto& spec : o.record_v) {
        probes.push_back(parse_record_v(spec, net, o.model));
        for (std::size_t i = 0; i + 1 < probes.size(); ++i)
            if (probes[i].population == probes.back().population)
                throw InputError(o.model + ": --record-v '" + spec + "': population '" +
                                 net.population(probes.back().population).name + "' is given twice (one range each)");
    }
    // After the files were read: a bad file is named as such, not as a checksum mismatch.
    std::vector<std::pair<std::string, std::string>> identity;
    if (checkpointing || resumed) identity = run_identity(o);
    if (resumed) check_same_run(o.resume, *resumed, identity);
    if (resumed && (resumed->completed > stimuli.count() ||
                    (resumed->in_sample && (resumed->completed == stimuli.count() ||
                                            resumed->engine.sample != o.offset + resumed->completed))))
        throw InputError("checkpoint " + o.resume + ": its sample position does not fit this run");
    RunOptions run;
    run.ticks = o.ticks;
    run.seed = o.seed;
    run.update_path = o.update_path;
    run.potentials = probes;
    run.threads_per_sample = o.threads_per_sample;
    // The stopped sample's state must fit before the trace is touched.
    if (resumed && resumed->in_sample) {
        try {
            Engine(net).restore(resumed->engine, stimuli.make(resumed->completed), run);
        } catch (const InputError& e) {
            throw InputError("checkpoint " + o.resume + ": " + e.what());
        }
    }
    // A resumed run's trace was created with the first run's command line; its checkpoints keep it.
    const std::string trace_command_line = resumed ? resumed->run_command_line : command_line(o);

    std::optional<SpikeTraceWriter> trace;
    if (!o.trace.empty()) {
        TraceOptions topts;
        topts.ticks_per_sample = o.ticks;
        topts.dt_ms = o.dt;
        topts.populations = o.record;
        topts.costs = o.costs;
        topts.replace_existing = o.force;
        topts.potentials = probes;
        if (o.record_samples)
            for (std::uint64_t k = 0; k < std::min(*o.record_samples, stimuli.count()); ++k)
                topts.samples.push_back(o.offset + k);
        RunMetadata meta;
        meta.model = o.model;
        meta.seed = o.seed;
        meta.release = o.mask ? mode_name(release.mode) : "file";
        meta.mask_ratio = o.mask.value_or(0.0);
        meta.compensate = o.compensate;
        meta.release_spread = o.release_spread.value_or(0.0);
        meta.version = QUANTAL_BUILD_VERSION;
        meta.command_line = trace_command_line;
        meta.extra.emplace_back("dt_source", dt.source);
        if (resumed)
            trace.emplace(o.trace, net, topts, meta, resumed->trace);
        else
            trace.emplace(o.trace, net, topts, meta);
    }

    const StopOnSignal stop_guard;

    EnergyLedger total = EnergyLedger::for_network(net, std::uint64_t(o.ticks));
    std::uint64_t done = 0, correct = 0, labelled = 0;
    std::optional<EngineState> open_sample; // a resumed sample, at its tick boundary
    if (resumed) {
        done = resumed->completed, total = resumed->total;
        correct = resumed->correct, labelled = resumed->labelled;
        if (resumed->in_sample) open_sample = std::move(resumed->engine);
    }
    // A checkpoint of the run as it stands: after a completed sample, or inside one (`inside`).
    // The stopped sample's spikes so far stay in the trace while the run goes on, and are carried
    // in the checkpoint when it stops (closing the trace drops them: it holds completed samples).
    auto save_checkpoint = [&](EngineState* inside, bool stopping) {
        RunCheckpoint c;
        c.run = identity;
        c.run_command_line = trace_command_line;
        c.completed = done, c.total = total, c.correct = correct, c.labelled = labelled;
        if (trace) c.has_trace = true, c.trace = trace->position(stopping);
        if (inside) c.in_sample = true, c.engine = std::move(*inside);
        write_checkpoint(o.checkpoint, c);
    };
    const bool progress = isatty(STDERR_FILENO) && stimuli.count() > 1; // a progress line on a terminal only
    auto finish_sample = [&](std::uint64_t k, const SampleResult& r) {
        const auto predicted = prediction(r, readout);
        if (trace) trace->end_sample(predicted, r.ledger);
        total += r.ledger;
        if (stimuli.label(k) >= 0) {
            ++labelled;
            correct += predicted == stimuli.label(k);
        }
        ++done;
        if (checkpointing) save_checkpoint(nullptr, false);
        if (progress) std::cerr << "\rquantal run: " << done << " / " << stimuli.count() << " samples" << std::flush;
    };
    // With --checkpoint a signal stops a sample at the next tick boundary; without, it finishes.
    const std::function<bool()> stop_inside = [] { return stop_signal != 0; };
    std::optional<Tick> stopped_at; // the tick boundary of a sample stopped by a signal
    // One thread: stream each sample's spikes straight into the trace. More: simulate a batch of
    // samples in parallel (spikes kept in memory per sample), then write them in sample order.
    // Batches of several samples per thread keep threads busy across uneven samples; with a trace
    // they stay at two per thread, as every sample's spikes are held until its batch is written.
    // Batches are checkpointed at sample boundaries only.
    const std::uint64_t batch = o.threads > 1 ? std::uint64_t(o.threads) * (trace ? 2 : 16) : 1;
    const auto simulate_start = std::chrono::steady_clock::now();
    SampleBatches batches(net, o.threads); // the threads' engines, built once for the whole run
    try {
        while (done < stimuli.count() && !stop_signal) {
            const std::uint64_t first = done;
            std::uint64_t n = std::min(batch, stimuli.count() - done);
            if (o.record_samples && first < *o.record_samples) n = std::min(n, *o.record_samples - first); // one recording setting per batch
            if (n == 1 || open_sample) {
                Engine& engine = batches.first_engine();
                const auto stimulus = stimuli.make(first);
                SpikeSink* sink = trace ? &*trace : nullptr;
                if (open_sample) { // the trace reopened this sample with its spikes so far
                    engine.restore(*open_sample, stimulus, run, sink);
                    open_sample.reset();
                } else {
                    if (trace) trace->begin_sample(o.offset + first, stimuli.label(first));
                    engine.start(stimulus, run, o.offset + first, sink);
                }
                // In-sample checkpoints at the sample's ticks N, 2N, ... (every tick before them simulated).
                auto next_boundary = [&]() -> Tick {
                    if (!o.checkpoint_every) return never;
                    const auto every = Tick(*o.checkpoint_every);
                    return (engine.next_tick() / every + 1) * every;
                };
                while (!engine.advance(next_boundary(), checkpointing ? stop_inside : std::function<bool()>{})) {
                    const bool stopping = stop_signal != 0; // read once: a signal may arrive meanwhile
                    auto state = engine.save();
                    save_checkpoint(&state, stopping);
                    if (stopping) {
                        stopped_at = engine.next_tick();
                        break;
                    }
                }
                if (stopped_at) break;
                finish_sample(first, engine.finish());
                continue;
            }
            std::vector<Stimulus> inputs;
            for (std::uint64_t k = first; k < first + n; ++k) inputs.push_back(stimuli.make(k));
            RunOptions recorded = run;
            recorded.record_spikes = trace.has_value() && (!o.record_samples || first < *o.record_samples);
            recorded.record_populations = recorded_populations; // a batch holds only the spikes the trace keeps
            const auto results = batches.run(inputs, recorded, o.offset + first);
            for (std::uint64_t k = 0; k < n; ++k) {
                if (trace) {
                    trace->begin_sample(o.offset + first + k, stimuli.label(first + k));
                    trace->replay(results[k]);
                }
                finish_sample(first + k, results[k]);
            }
        }
        // Stopped between samples: the checkpoint after the last completed sample may be an older
        // file's (--resume A --checkpoint B), so one is written here too.
        if (stop_signal && !stopped_at && checkpointing) save_checkpoint(nullptr, true);
    } catch (const std::bad_alloc&) {
        // The trace (if any) is closed by its destructor: "incomplete", the completed samples kept.
        throw OutOfMemory("out of memory while simulating sample " + std::to_string(o.offset + done) + " (" +
                          std::to_string(done) + " of " + std::to_string(stimuli.count()) + " done)" +
                          (trace ? "; " + o.trace + " holds the completed samples" : std::string()));
    }
    const double simulate_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - simulate_start).count();
    const int signal = stop_signal;
    if (progress) std::cerr << '\n';
    if (trace) trace->finish(signal ? TraceStatus::interrupted : TraceStatus::complete);

    std::cout << "run: " << model.name << " (" << net.populations().size() << " populations, "
              << net.projections().size() << " projections), " << done << " of " << stimuli.count() << " samples x "
              << o.ticks << " ticks, dt " << o.dt << " ms, seed " << o.seed << "\n";
    if (o.mask)
        std::cout << "masked: ratio " << *o.mask << ", release " << mode_name(release.mode)
                  << (o.compensate ? ", compensated (surviving weights x " + number_text(release.scale()) + ")" : "")
                  << (o.release_spread ? ", release spread " + number_text(*o.release_spread) + " (Beta)" : "")
                  << ", targets " << o.targets.value_or("all") << " = " << targeted << "\n";
    if (labelled) std::cout << "accuracy: " << correct << " / " << labelled << "\n";
    print_timing(std::cout, load_seconds, simulate_seconds, total);
    print_energy_report(std::cout, net, total, o.costs, o.dt);
    if (signal) {
        std::cerr << "quantal run: interrupted by " << (signal == SIGINT ? "SIGINT" : "SIGTERM") << " after " << done
                  << " of " << stimuli.count() << " samples"
                  << (stopped_at ? " (sample " + std::to_string(o.offset + done) + " stopped at tick " +
                                       std::to_string(*stopped_at) + ")"
                                 : std::string())
                  << (trace ? "; " + o.trace + " holds the completed samples" : std::string())
                  << (checkpointing ? "; continue with --resume " + o.checkpoint : std::string()) << '\n';
        return 128 + signal;
    }
    return 0;
}

} // namespace

void add_run_command(CLI::App& app) {
    auto o = std::make_shared<RunCommandOptions>();
    auto* cmd = app.add_subcommand("run", "Run one network (model file .h5 or NIR graph .nir) and record its spikes");
    cmd->add_option("--model", o->model, "Model file: quantal HDF5 (.h5) or NIR (.nir)")->required();
    cmd->add_option("--ticks", o->ticks, "Ticks per sample")->required()->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--input", o->input,
                    "IDX images (.gz or plain) or a .npy array (N, H, W) / (N, C, H, W), one sample each, fed "
                    "through the model's /inputs");
    cmd->add_option("--labels", o->labels, "IDX labels or a .npy integer array matching --input (accuracy, trace labels)");
    cmd->add_option("--input-spikes", o->input_spikes,
                    "SONATA spike file (HDF5) driving the model's spike_source populations, matched by name "
                    "(docs/run.md, \"Spike inputs\")");
    cmd->add_option("--samples", o->samples,
                    "Samples to run (with --input: at most this many images; with --input-spikes: this many of the "
                    "file's, default all)")
        ->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--offset", o->offset, "First image of --input, first sample of --input-spikes (first sample index)")
        ->transform(whole_number(0, max_run_ticks));
    cmd->add_option("--mask", o->mask, "Mask ratio for every projection (overrides the file; 0: no failures)")
        ->transform(real_number(0.0, 1.0));
    cmd->add_option("--release", o->release, "Release mode with --mask (default synapse)")->check(CLI::IsMember({"spike", "synapse"}));
    cmd->add_option("--targets", o->targets,
                    "What --mask applies to (default all): attention, linear, all, roles, projection or operator "
                    "names, comma-separated; everything else runs without failures");
    cmd->add_flag("--compensate", o->compensate,
                  "With --mask R < 1: surviving transmissions deliver weight / (1 - R), keeping the mean drive");
    cmd->add_option("--release-spread", o->release_spread,
                    "With --mask: per-synapse release probabilities ~ Beta with mean 1 - R and this concentration "
                    "(> 0, at most 1e6), drawn once per seed")
        ->transform(real_number(0.0, max_release_spread, true));
    cmd->add_option("--seed", o->seed, "Run seed")->transform(whole_number(0, UINT64_MAX));
    cmd->add_option("--dt", o->dt_option,
                    "ms per tick (default: the model file's dt, else 1; NIR: the discretisation); trace times, "
                    "rates in Hz, Poisson sources")
        ->transform(real_number(0.0, std::numeric_limits<double>::max(), true));
    cmd->add_option("--threads", o->threads, "Samples simulated in parallel (1: streaming, lowest memory)")
        ->transform(whole_number(1, max_threads));
    cmd->add_option("--threads-per-sample", o->threads_per_sample,
                    "Threads inside each sample (default 1; never changes results): for networks whose tick "
                    "costs milliseconds or more")
        ->transform(whole_number(1, max_threads));
    cmd->add_option("--trace", o->trace, "SONATA spike trace to write (HDF5); an existing file is refused");
    cmd->add_flag("--force", o->force, "Replace an existing --trace file (never one of the inputs)");
    cmd->add_option("--record", o->record, "Populations whose spikes are recorded (default: all spiking)")->delimiter(',');
    cmd->add_option("--record-v", o->record_v,
                    "Record membrane potentials of POP (all neurons), POP:k or POP:first-last (both included) "
                    "at every tick into the trace's /report (repeatable; needs --trace)");
    cmd->add_option("--record-samples", o->record_samples,
                    "Record the spikes of the first N samples only (the ledger and /samples cover all)")
        ->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--update-path", o->update_path,
                    "How neurons are visited: automatic, lazy or sweep (never changes results; for measurements)")
        ->transform(CLI::CheckedTransformer(std::map<std::string, UpdatePath>{{"automatic", UpdatePath::automatic},
                                                                             {"lazy", UpdatePath::lazy},
                                                                             {"sweep", UpdatePath::sweep}}));
    cmd->add_option("--checkpoint", o->checkpoint,
                    "Checkpoint file, replaced after every sample (and every --checkpoint-every ticks); "
                    "SIGINT/SIGTERM then stop at the next tick and save");
    cmd->add_option("--checkpoint-every", o->checkpoint_every, "Also checkpoint every N ticks inside a sample")
        ->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--resume", o->resume, "Continue the run saved in this checkpoint (give the same options)");
    add_energy_options(*cmd, o->costs);
    add_load_timeout_option(*cmd, o->load_timeout);
    cmd->callback([o, cmd] {
        o->samples_given = cmd->count("--samples") > 0;
        const int status = run_command(*o);
        std::cout.flush();
        if (status) std::exit(status); // every file is closed by now
    });
}

} // namespace quantal::cli
