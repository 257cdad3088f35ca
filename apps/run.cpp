// `quantal run`: one network (a quantal model file or a NIR graph) over one or more samples,
// recorded as a SONATA spike trace, with the energy report. SIGINT/SIGTERM stop the run after the
// current sample; the trace is closed cleanly and the exit status is 128 + signal.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <unistd.h>

#include "apps/commands.hpp"
#include "apps/values.hpp"
#include "io/contained.hpp"
#include "io/idx.hpp"
#include "io/model_file.hpp"
#include "io/nir.hpp"
#include "io/spike_trace.hpp"
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
    std::string input, labels;
    std::uint64_t samples = 1, offset = 0;
    std::optional<double> mask;
    std::optional<std::string> release; // only with --mask; "synapse" when --mask comes alone
    UpdatePath update_path = UpdatePath::automatic;
    std::uint64_t seed = 1;
    double dt = 1.0;
    int threads = 1;
    std::string trace;
    bool force = false; // --force: an existing trace may be replaced (never an input)
    std::vector<std::string> record;
    std::optional<std::uint64_t> record_samples;
    EnergyCosts costs;
    std::optional<double> load_timeout; // seconds for reading --model; default: default_read_seconds()
};

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

LoadedModel load_model(const RunCommandOptions& o) {
    const double seconds = o.load_timeout.value_or(default_read_seconds(o.model));
    try { // parsed in a child process first: libhdf5 may crash or hang on a damaged file (io/contained.hpp)
        return read_contained(o.model, seconds, [&] {
            return ends_with(o.model, ".nir") ? read_nir(o.model, NirOptions{o.dt}) : read_model_file(o.model);
        });
    } catch (const std::bad_alloc&) {
        throw InputError(o.model + ": is too large to load (or corrupt)");
    }
}

// --mask/--release set the release of every projection (MST's paper text: all spiking inputs)
// and of every attention operator's q, k and score inputs (operators know only per-spike release).
Network with_release(const Network& net, const Release& release) {
    NetworkBuilder b;
    for (const auto& p : net.populations()) b.add_population(p);
    for (auto p : net.projections()) {
        p.release = release;
        b.connect(std::move(p));
    }
    Release per_spike = release;
    if (per_spike.mode == ReleaseMode::synapse) per_spike.mode = ReleaseMode::spike;
    for (auto op : net.operators()) {
        auto& a = std::get<SoftmaxAttention>(op);
        a.q_release = a.k_release = a.score_release = per_spike;
        b.add_operator(std::move(op));
    }
    return b.build();
}

std::string command_line(const RunCommandOptions& o) {
    std::ostringstream s;
    s << "quantal run --model " << o.model << " --ticks " << o.ticks;
    if (!o.input.empty()) s << " --input " << o.input;
    if (!o.labels.empty()) s << " --labels " << o.labels;
    s << " --samples " << o.samples << " --offset " << o.offset;
    if (o.mask) s << " --mask " << *o.mask << " --release " << o.release.value_or("synapse");
    s << " --seed " << o.seed << " --dt " << o.dt << " --threads " << o.threads;
    if (!o.trace.empty()) s << " --trace " << o.trace << (o.force ? " --force" : "");
    for (const auto& r : o.record) s << " --record " << r;
    if (o.record_samples) s << " --record-samples " << *o.record_samples;
    s << " --e-ac " << o.costs.e_ac_pj << " --e-mac " << o.costs.e_mac_pj;
    return s.str();
}

// Builds one stimulus per sample: nothing (input nodes stay silent) or an IDX image fed through
// the model's analog inputs.
class Stimuli {
public:
    Stimuli(const RunCommandOptions& o, const LoadedModel& model, const Network& net) : model_(model), net_(net) {
        if (o.input.empty()) {
            count_ = o.samples;
            return;
        }
        if (model.inputs.empty())
            throw InputError(o.model + ": has no /inputs, so it cannot take --input " + o.input);
        images_ = read_idx_images(o.input, o.offset, o.samples);
        count_ = images_->count;
        const std::uint64_t pixels = std::uint64_t(images_->rows) * images_->cols;
        for (const auto& in : model.inputs) {
            std::uint64_t values = 1;
            for (auto d : in.shape) values *= std::uint64_t(d);
            if (values != pixels)
                throw InputError(o.input + ": images of " + std::to_string(images_->rows) + " x " +
                                 std::to_string(images_->cols) + " = " + std::to_string(pixels) +
                                 " values do not fit " + o.model + ": input '" + in.name + "', which takes " +
                                 std::to_string(values) + " values per sample");
        }
        if (!o.labels.empty()) {
            labels_ = read_idx_labels(o.labels, o.offset, o.samples);
            if (labels_.size() < count_)
                throw InputError(o.labels + ": has " + std::to_string(labels_.size()) + " labels from offset " +
                                 std::to_string(o.offset) + ", fewer than the " + std::to_string(count_) + " images");
        }
    }
    std::uint64_t count() const { return count_; }
    std::int64_t label(std::uint64_t k) const { return k < labels_.size() ? labels_[k] : -1; }
    Stimulus make(std::uint64_t k) const {
        Stimulus s = Stimulus::for_network(net_);
        if (!images_) return s;
        const auto pixels = images_->image(k);
        const std::vector<double> raw(pixels.begin(), pixels.end());
        for (const auto& in : model_.inputs) {
            const auto target = *net_.find_population(in.target);
            const auto drive = analog_drive(in, net_, raw);
            auto& current = s.current[target];
            current.resize(drive.current.size(), 0.0);
            for (std::size_t j = 0; j < current.size(); ++j) current[j] += drive.current[j];
            s.current_macs[target] += drive.macs;
        }
        return s;
    }

private:
    const LoadedModel& model_;
    const Network& net_;
    std::optional<IdxImages> images_;
    std::vector<std::uint8_t> labels_;
    std::uint64_t count_ = 0;
};

constexpr PopulationId no_readout = ~PopulationId{0};

// argmax of the readout's value at the last tick (a readout integrates: the sum over ticks).
std::int64_t prediction(const SampleResult& r, PopulationId readout) {
    for (const auto& ro : r.readouts) {
        if (ro.population != readout || ro.ticks.empty()) continue;
        const std::size_t n = ro.values.size() / ro.ticks.size();
        const auto last = ro.values.begin() + std::ptrdiff_t((ro.ticks.size() - 1) * n);
        return std::int64_t(std::max_element(last, last + std::ptrdiff_t(n)) - last);
    }
    return -1;
}

// Feeds a finished sample's recorded spikes to the trace in simulation order, one call per
// (tick, population), as the engine would have while running.
void replay(const SampleResult& r, SpikeSink& sink) {
    std::vector<std::uint32_t> group;
    for (std::size_t i = 0; i < r.spikes.size();) {
        const auto& first = r.spikes[i];
        group.clear();
        for (; i < r.spikes.size() && r.spikes[i].tick == first.tick && r.spikes[i].population == first.population; ++i)
            group.push_back(r.spikes[i].neuron);
        sink.on_spikes(first.population, first.tick, group);
    }
}

// Sample k of the run holds ticks [k*T, (k+1)*T) of one time axis (the trace's timestamps):
// the last one must be exact in a double, and its time in ms finite.
void check_time_axis(const RunCommandOptions& o) {
    const auto ticks = std::uint64_t(o.ticks); // each of the three is <= 2^53 (checked when parsed)
    if (o.offset + o.samples > max_run_ticks / ticks)
        throw InputError("--offset " + std::to_string(o.offset) + " with --samples " + std::to_string(o.samples) +
                         " of --ticks " + std::to_string(ticks) + " ends beyond tick 2^53 = " +
                         std::to_string(max_run_ticks) + ", the last one a trace timestamp holds exactly");
    const double end_tick = double((o.offset + o.samples) * ticks);
    if (!std::isfinite(end_tick * o.dt)) {
        char text[160];
        std::snprintf(text, sizeof text, "--dt %g: the run's last tick %.17g is not a finite time in ms", o.dt, end_tick);
        throw InputError(text);
    }
}

// Options that only mean something with another one are refused alone: no silent defaults.
void check_option_pairs(const RunCommandOptions& o) {
    if (o.release && !o.mask)
        throw InputError("--release " + *o.release + " needs --mask R (without --mask the model file's release "
                         "settings are used as they are)");
    if (!o.labels.empty() && o.input.empty())
        throw InputError("--labels " + o.labels + " needs --input IMAGES (labels belong to images)");
}

int run_command(const RunCommandOptions& o) {
    check_option_pairs(o);
    check_time_axis(o);
    // Before anything is read: the trace must not replace an input, nor an old trace unasked.
    if (!o.trace.empty())
        check_output_file(o.trace, {{"--model", o.model}, {"--input", o.input}, {"--labels", o.labels}}, o.force);
    LoadedModel model = load_model(o);
    Release release;
    if (o.mask) {
        release.mode = *o.mask > 0 ? (o.release == "spike" ? ReleaseMode::spike : ReleaseMode::synapse) : ReleaseMode::none;
        release.mask_ratio = *o.mask;
    }
    // One network alive during the run: --mask replaces the loaded one (it was copied before).
    if (o.mask) model.network = with_release(model.network, release);
    const Network& net = model.network;
    const Stimuli stimuli = [&] {
        try {
            return Stimuli(o, model, net);
        } catch (const std::bad_alloc&) {
            throw OutOfMemory("out of memory while reading " + (o.input.empty() ? o.model : o.input));
        }
    }();
    const PopulationId readout = net.find_population(model.readout).value_or(no_readout);

    // What can be checked is checked before the trace file exists.
    if (stimuli.count() > 0) (void)stimuli.make(0);
    for (const auto& name : o.record)
        if (!net.find_population(name))
            throw InputError(o.model + ": --record names population '" + name + "', which is not in the model");

    std::optional<SpikeTraceWriter> trace;
    if (!o.trace.empty()) {
        TraceOptions topts;
        topts.ticks_per_sample = o.ticks;
        topts.dt_ms = o.dt;
        topts.populations = o.record;
        topts.costs = o.costs;
        topts.replace_existing = o.force;
        if (o.record_samples)
            for (std::uint64_t k = 0; k < std::min(*o.record_samples, stimuli.count()); ++k)
                topts.samples.push_back(o.offset + k);
        RunMetadata meta;
        meta.model = o.model;
        meta.seed = o.seed;
        meta.release = o.mask ? mode_name(release.mode) : "file";
        meta.mask_ratio = o.mask.value_or(0.0);
        meta.version = QUANTAL_VERSION;
        meta.command_line = command_line(o);
        trace.emplace(o.trace, net, topts, meta);
    }

    const StopOnSignal stop_guard;

    RunOptions run;
    run.ticks = o.ticks;
    run.seed = o.seed;
    run.update_path = o.update_path;
    EnergyLedger total = EnergyLedger::for_network(net, std::uint64_t(o.ticks));
    std::uint64_t done = 0, correct = 0, labelled = 0;
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
        if (progress) std::cerr << "\rquantal run: " << done << " / " << stimuli.count() << " samples" << std::flush;
    };
    // One thread: stream each sample's spikes straight into the trace. More: simulate a batch of
    // samples in parallel (spikes kept in memory per sample), then write them in sample order.
    // Batches of several samples per thread keep threads busy across uneven samples; with a trace
    // they stay at two per thread, as every sample's spikes are held until its batch is written.
    const std::uint64_t batch = o.threads > 1 ? std::uint64_t(o.threads) * (trace ? 2 : 16) : 1;
    Engine engine(net);
    try {
        while (done < stimuli.count() && !stop_signal) {
            const std::uint64_t first = done, n = std::min(batch, stimuli.count() - done);
            if (n == 1) {
                const auto stimulus = stimuli.make(first);
                if (trace) trace->begin_sample(o.offset + first, stimuli.label(first));
                const auto r = engine.run(stimulus, run, o.offset + first, trace ? &*trace : nullptr);
                finish_sample(first, r);
                continue;
            }
            std::vector<Stimulus> inputs;
            for (std::uint64_t k = first; k < first + n; ++k) inputs.push_back(stimuli.make(k));
            RunOptions recorded = run;
            recorded.record_spikes = trace.has_value() && (!o.record_samples || first < *o.record_samples);
            const auto results = run_batch(net, inputs, recorded, o.offset + first, o.threads);
            for (std::uint64_t k = 0; k < n; ++k) {
                if (trace) {
                    trace->begin_sample(o.offset + first + k, stimuli.label(first + k));
                    replay(results[k], *trace);
                }
                finish_sample(first + k, results[k]);
            }
        }
    } catch (const std::bad_alloc&) {
        // The trace (if any) is closed by its destructor: "incomplete", the completed samples kept.
        throw OutOfMemory("out of memory while simulating sample " + std::to_string(o.offset + done) + " (" +
                          std::to_string(done) + " of " + std::to_string(stimuli.count()) + " done)" +
                          (trace ? "; " + o.trace + " holds the completed samples" : std::string()));
    }
    const int signal = stop_signal;
    if (progress) std::cerr << '\n';
    if (trace) trace->finish(signal ? TraceStatus::interrupted : TraceStatus::complete);

    std::cout << "run: " << model.name << " (" << net.populations().size() << " populations, "
              << net.projections().size() << " projections), " << done << " of " << stimuli.count() << " samples x "
              << o.ticks << " ticks, dt " << o.dt << " ms, seed " << o.seed << "\n";
    if (labelled) std::cout << "accuracy: " << correct << " / " << labelled << "\n";
    print_energy_report(std::cout, net, total, o.costs);
    if (signal) {
        std::cerr << "quantal run: interrupted by " << (signal == SIGINT ? "SIGINT" : "SIGTERM") << " after " << done
                  << " of " << stimuli.count() << " samples"
                  << (trace ? "; " + o.trace + " holds the completed samples" : std::string()) << '\n';
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
    cmd->add_option("--input", o->input, "IDX images (.gz or plain), one sample each, fed through the model's /inputs");
    cmd->add_option("--labels", o->labels, "IDX labels matching --input (accuracy, trace labels)");
    cmd->add_option("--samples", o->samples, "Samples to run (with --input: at most this many images)")
        ->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--offset", o->offset, "First image of --input (first sample index)")
        ->transform(whole_number(0, max_run_ticks));
    cmd->add_option("--mask", o->mask, "Mask ratio for every projection (overrides the file; 0: no failures)")
        ->transform(real_number(0.0, 1.0));
    cmd->add_option("--release", o->release, "Release mode with --mask (default synapse)")->check(CLI::IsMember({"spike", "synapse"}));
    cmd->add_option("--seed", o->seed, "Run seed")->transform(whole_number(0, UINT64_MAX));
    cmd->add_option("--dt", o->dt, "ms per tick (NIR time constants and delays; trace timestamps)")
        ->transform(real_number(0.0, std::numeric_limits<double>::max(), true));
    cmd->add_option("--threads", o->threads, "Samples simulated in parallel (1: streaming, lowest memory)")
        ->transform(whole_number(1, max_threads));
    cmd->add_option("--trace", o->trace, "SONATA spike trace to write (HDF5); an existing file is refused");
    cmd->add_flag("--force", o->force, "Replace an existing --trace file (never one of the inputs)");
    cmd->add_option("--record", o->record, "Populations whose spikes are recorded (default: all spiking)")->delimiter(',');
    cmd->add_option("--record-samples", o->record_samples,
                    "Record the spikes of the first N samples only (the ledger and /samples cover all)")
        ->transform(whole_number(1, max_run_ticks));
    cmd->add_option("--update-path", o->update_path,
                    "How neurons are visited: automatic, lazy or sweep (never changes results; for measurements)")
        ->transform(CLI::CheckedTransformer(std::map<std::string, UpdatePath>{{"automatic", UpdatePath::automatic},
                                                                             {"lazy", UpdatePath::lazy},
                                                                             {"sweep", UpdatePath::sweep}}));
    add_energy_options(*cmd, o->costs);
    add_load_timeout_option(*cmd, o->load_timeout);
    cmd->callback([o] {
        const int status = run_command(*o);
        std::cout.flush();
        if (status) std::exit(status); // every file is closed by now
    });
}

} // namespace quantal::cli
