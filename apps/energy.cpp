// `quantal energy TRACE.h5 | STUDY.h5 [--model M.h5] [--profile P.json] [--json]`: the energy models of
// docs/energy.md applied to a trace's ledger, every assumption printed above the numbers. The
// trace records what the models need (counts, synapses, weight memories, the ANN's own MACs);
// --model fills in what an older trace lacks.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "apps/commands.hpp"
#include "apps/json.hpp"
#include "apps/plot_scripts.hpp"
#include "apps/study/study_file.hpp"
#include "io/contained.hpp"
#include "io/energy_profile.hpp"
#include "io/spike_trace.hpp"
#include "sim/errors.hpp"

namespace quantal::cli {

namespace {

struct EnergyOptions {
    std::string trace, model, profile, plot_dir;
    bool json = false;
    std::optional<double> load_timeout;
    EnergyCosts costs;
    bool costs_given = false;
};

// The model's record where the trace has none; the model must be the trace's (same projections).
void fill_from_model(EnergyInputs& in, const LoadedModel& m, const std::string& trace, const std::string& model) {
    const Network& net = m.network;
    if (net.projections().size() != in.projections.size())
        throw InputError(model + ": has " + std::to_string(net.projections().size()) + " projections, trace " + trace +
                         " " + std::to_string(in.projections.size()) + ": not the model the trace was run with");
    for (ProjectionId j = 0; j < net.projections().size(); ++j) {
        auto& p = in.projections[j];
        if (net.projection(j).name != p.name)
            throw InputError(model + ": projection '" + net.projection(j).name + "' is '" + p.name + "' in trace " +
                             trace + ": not the model the trace was run with");
        p.stored_weights = net.stored_weights(j);
        if (p.role.empty()) p.role = net.projection(j).role;
    }
    in.stored_weights_known = true;
    if (!in.ann) in.ann = net.ann();
    if (net.operators().size() != in.operators.size())
        throw InputError(model + ": has " + std::to_string(net.operators().size()) + " operators, trace " + trace +
                         " " + std::to_string(in.operators.size()) + ": not the model the trace was run with");
    for (std::size_t o = 0; o < net.operators().size(); ++o) { // populations are in the same order in both
        const auto& a = std::get<SoftmaxAttention>(net.operators()[o]);
        auto& op = in.operators[o];
        if (op.q == EnergyInputs::none)
            op.q = a.q, op.k = a.k, op.v = a.v, op.scores = a.scores, op.ann_macs = net.attention(o).ann_macs();
    }
}

// One configuration of a study as the energy models' input: its per-image counts (x N: totals)
// on its model. Neuron visits are there from study format version 3 on (older: clocked only).
EnergyInputs study_inputs(const study::StudyCounts& s, const study::StudyCounts::Row& r, const LoadedModel& m,
                          const std::string& path) {
    const Network& net = m.network;
    const auto& names = s.model_layers[r.model];
    bool same = names.populations.size() == net.populations().size() &&
                names.projections.size() == net.projections().size() &&
                names.operators.size() == net.operators().size();
    for (std::size_t j = 0; same && j < names.projections.size(); ++j)
        same = names.projections[j] == net.projection(ProjectionId(j)).name;
    if (!same)
        throw InputError(path + ": model " + std::to_string(r.model) + " '" + s.models[r.model] +
                         "' is not the model the study ran (its layers differ)");
    const double n = double(s.samples);
    auto total = [&](double per_image) { return std::uint64_t(std::llround(per_image * n)); };
    EnergyLedger ledger = EnergyLedger::for_network(net, s.ticks);
    ledger.samples = s.samples;
    double analog = r.macs;
    for (std::size_t o = 0; o < names.operators.size(); ++o) {
        auto& c = ledger.operators[o];
        c.coincidences = total(r.operator_coincidences[o]), c.deliveries = total(r.operator_deliveries[o]);
        c.macs = total(r.operator_macs[o]), c.masked_spikes = total(r.operator_masked[o]);
        analog -= r.operator_macs[o];
    }
    for (std::size_t p = 0; p < names.populations.size(); ++p) {
        ledger.populations[p].spikes = total(r.population_spikes[p]);
        if (!r.population_updates.empty()) ledger.populations[p].updates = total(r.population_updates[p]);
    }
    if (!m.inputs.empty()) // the analog input's MACs: the study keeps their sum only
        ledger.populations[*net.find_population(m.inputs.front().target)].macs = total(analog);
    for (ProjectionId j = 0; j < names.projections.size(); ++j) {
        auto& c = ledger.projections[j];
        c.spikes_in =
            ledger.populations[net.projection(j).source].spikes; // every spike is presented to every projection
        c.attempted = total(r.projection_attempted[j]), c.transmitted = total(r.projection_transmitted[j]);
        c.masked_spikes = total(r.projection_masked[j]);
    }
    return energy_inputs(ledger, net);
}

} // namespace

void print_study_energy(std::ostream& out, const std::string& path, const std::string& model_override,
                        const HardwareProfile& hw, std::optional<double> load_timeout, bool json) {
    // Contained: libhdf5 can loop forever on a damaged file (io/contained.hpp).
    const auto s = read_contained(path, load_timeout.value_or(default_read_seconds(path)),
                                  [&] { return study::read_study_counts(path); });
    if (!model_override.empty() && s.models.size() != 1)
        throw InputError(path + ": has " + std::to_string(s.models.size()) + " models; --model replaces one only");
    std::vector<LoadedModel> models;
    for (const auto& m : s.models)
        models.push_back(load_model(model_override.empty() ? m : model_override, load_timeout, std::nullopt));
    if (!hw.clocked_updates && !s.has_visits)
        throw InputError(path + ": study file format version " + std::to_string(s.format_version) +
                         " keeps no neuron visits (version 3 does: rerun the sweep); use a profile with clocked updates");
    // The memory model under the profile's update mode, and under the other one where the study has
    // the visits: both columns, so one call gives every model.
    HardwareProfile clocked = hw, event_driven = hw;
    clocked.clocked_updates = true, event_driven.clocked_updates = false;
    struct Result {
        ModelEnergy proxy, papers, memory, memory_clocked, memory_event_driven;
        AnnEnergy ann;
        double ann_memory_pj; // the ANN on the memory model's hardware
        std::vector<LayerEnergy> layers;
    };
    std::vector<Result> res;
    for (const auto& r : s.rows) {
        const auto in = study_inputs(s, r, models[r.model], path);
        const auto memory = memory_model(in, hw);
        res.push_back({measured_proxy(in, s.costs), papers_proxy(in, s.costs), memory.total,
                       memory_model(in, clocked).total,
                       s.has_visits ? memory_model(in, event_driven).total : ModelEnergy{"", NAN, NAN},
                       ann_energy(in, s.costs), in.ann ? memory.ann.per_tick_input_pj : NAN,
                       json ? layer_energy(in, s.costs, hw) : std::vector<LayerEnergy>{}});
    }
    char line[400];
    if (!json) {
        out << "study " << path << ": " << s.rows.size() << " configurations, " << s.samples
            << " images x T = " << s.ticks << " ticks; models as in `quantal energy TRACE` (docs/energy.md): E_AC "
            << s.costs.e_ac_pj << " pJ, E_MAC " << s.costs.e_mac_pj << " pJ; memory profile '" << hw.name << "', "
            << (hw.global_memory ? "ONE GLOBAL MEMORY" : "LOCAL MEMORIES") << ", memory pJ with "
            << (hw.clocked_updates ? "clocked updates (T x N)" : "event-driven updates (visits)") << "; memory pJ "
            << (s.has_visits ? "clocked | event-driven"
                             : "clocked | - (format version " + std::to_string(s.format_version) + ": no visits)")
            << "; the analog input every tick | once; "
            << "x base: over the configuration's baseline; x ANN: over "
            << ann_baseline_name(!res.empty() && res[0].ann.own) << "\n";
        std::snprintf(line, sizeof line, "  %4s %5s %-8s %6s %-24s %8s %23s %10s %12s %10s %12s %10s %23s %8s\n", "conf",
                      "model", "release", "ratio", "targets", "accuracy", "proxy pJ (tick | once)", "x base",
                      "papers pJ", "x base", "memory pJ", "x base", "memory pJ (clk | event)", "x ANN");
        out << line;
    } else {
        out << "{\n  \"study\": " << json_string(path) << ", \"samples\": " << s.samples << ", \"ticks\": " << s.ticks
            << ", \"format_version\": " << s.format_version << ", \"models\": [";
        for (std::size_t m = 0; m < s.models.size(); ++m) out << (m ? ", " : "") << json_string(s.models[m]);
        out << "],\n  \"memory\": "
            << json_string(hw.name + (hw.global_memory ? ", global" : ", local") + " memories, " +
                           (hw.clocked_updates ? "clocked" : "event-driven") + " updates")
            << ",\n  \"configurations\": [";
    }
    for (std::size_t c = 0; c < s.rows.size(); ++c) {
        const auto& r = s.rows[c];
        const auto& e = res[c];
        const auto& b = res[r.baseline < res.size() ? r.baseline : c];
        if (!json) {
            std::snprintf(line, sizeof line,
                          "  %4zu %5u %-8s %6.3g %-24s %8.4f %11.4g | %9.4g %10.3f %12.4g %10.3f %12.4g %10.3f %11.4g | %9.4g %8.3f\n",
                          c, r.model, r.release.c_str(), r.ratio, r.targets.c_str(), r.accuracy,
                          e.proxy.per_tick_input_pj, e.proxy.once_input_pj,
                          e.proxy.per_tick_input_pj / b.proxy.per_tick_input_pj, e.papers.per_tick_input_pj,
                          e.papers.per_tick_input_pj / b.papers.per_tick_input_pj, e.memory.per_tick_input_pj,
                          e.memory.per_tick_input_pj / b.memory.per_tick_input_pj, e.memory_clocked.per_tick_input_pj,
                          e.memory_event_driven.per_tick_input_pj,
                          e.ann.float_pj > 0 ? e.proxy.per_tick_input_pj / e.ann.float_pj : 0.0);
            out << line;
        } else {
            // Streamed, not formatted into `line`: a long targets list must not be cut.
            out << (c ? "," : "") << "\n    {\"configuration\": " << c << ", \"model\": " << r.model
                << ", \"release\": " << json_string(r.release) << ", \"ratio\": " << json_number(r.ratio)
                << ", \"targets\": " << json_string(r.targets) << ", \"accuracy\": " << json_number(r.accuracy)
                << ", \"baseline\": " << r.baseline << ", \"proxy_pj\": " << json_number(e.proxy.per_tick_input_pj)
                << ", \"proxy_once_pj\": " << json_number(e.proxy.once_input_pj)
                << ", \"papers_pj\": " << json_number(e.papers.per_tick_input_pj)
                << ", \"memory_pj\": " << json_number(e.memory.per_tick_input_pj)
                << ", \"memory_clocked_pj\": " << json_number(e.memory_clocked.per_tick_input_pj)
                << ", \"memory_event_driven_pj\": " << json_number(e.memory_event_driven.per_tick_input_pj)
                << ", \"ann_pj\": " << json_number(e.ann.float_pj) << ", \"ann_own\": " << (e.ann.own ? "true" : "false")
                << ", \"ann_memory_pj\": " << json_number(e.ann_memory_pj);
            out << ", \"layers\": " << energy_layers_json(e.layers, "    ") << "}";
        }
    }
    if (json) out << "\n  ]\n}\n";
}

void add_energy_command(CLI::App& app) {
    auto o = std::make_shared<EnergyOptions>();
    auto* cmd = app.add_subcommand("energy", "Energy of a run under every model (proxy measured and the papers' way, "
                                             "memory-inclusive, ANN baselines), assumptions first");
    cmd->add_option("trace", o->trace, "Trace (quantal run or demo) or study file (quantal sweep), HDF5")->required();
    cmd->add_option("--model", o->model,
                    "The model file the trace was run with (weight memories and /ann of older traces)");
    cmd->add_option("--profile", o->profile,
                    "Hardware profile (JSON) of the memory-inclusive model; default the built-in "
                    "45 nm one (examples/energy-profiles/45nm.json)");
    cmd->add_flag("--json", o->json, "Machine-readable output");
    cmd->add_option("--plot", o->plot_dir,
                    "Write energy_models.png (energy per group of layers under each model) and "
                    "energy_models.json into this directory");
    auto* ac = cmd->add_option("--e-ac", o->costs.e_ac_pj, "Energy of one accumulate, pJ (default: the trace's)");
    auto* mac =
        cmd->add_option("--e-mac", o->costs.e_mac_pj, "Energy of one multiply-accumulate, pJ (default: the trace's)");
    ac->check(CLI::Range(0.0, 1e6)), mac->check(CLI::Range(0.0, 1e6));
    add_load_timeout_option(*cmd, o->load_timeout);
    cmd->callback([o, ac, mac] {
        const HardwareProfile hw = o->profile.empty() ? HardwareProfile{} : read_hardware_profile(o->profile);
        if (study::is_study_file(o->trace)) { // a sweep's study: every configuration under every model
            if (!o->plot_dir.empty())
                throw InputError(o->trace + ": --plot draws traces; plot a study with quantal plot");
            print_study_energy(std::cout, o->trace, o->model, hw, o->load_timeout, o->json);
            return;
        }
        std::optional<LoadedModel> model;
        if (!o->model.empty()) model = load_model(o->model, o->load_timeout, std::nullopt);
        const double seconds = o->load_timeout.value_or(default_read_seconds(o->trace));
        auto report = [&](bool json) {
            return run_contained(o->trace, seconds, [&] {
                const TraceSummary s = read_trace_summary(o->trace);
                EnergyInputs in = energy_inputs(s);
                if (model) fill_from_model(in, *model, o->trace, o->model);
                EnergyCosts costs{s.e_ac_pj, s.e_mac_pj};
                if (*ac) costs.e_ac_pj = o->costs.e_ac_pj;
                if (*mac) costs.e_mac_pj = o->costs.e_mac_pj;
                std::ostringstream out;
                if (json) {
                    print_energy_json(out, in, costs, hw);
                } else {
                    out << "trace " << o->trace << (model ? ", model " + o->model : std::string()) << '\n';
                    print_energy_models(out, in, costs, hw);
                    print_energy_layers(out, in, costs, hw);
                }
                return out.str();
            });
        };
        std::cout << report(o->json);
        if (o->plot_dir.empty()) return;
        std::cout.flush();
        std::error_code ec;
        std::filesystem::create_directories(o->plot_dir, ec);
        if (ec) throw InputError(o->plot_dir + ": cannot create the plot directory (" + ec.message() + ")");
        const auto path = (std::filesystem::path(o->plot_dir) / "energy_models.json").string();
        std::ofstream(path) << report(true);
        // Plotting that fails (no interpreter, script error) is not the trace's fault: exit status 1.
        try {
            const int rc = run_plot_script("plot_trace.py", {o->trace, "--out", o->plot_dir, "--error-prefix",
                                                             "quantal", "--energy-models", path, "--energy-only"});
            if (rc != 0) throw std::runtime_error("plot_trace.py exit status " + std::to_string(rc));
        } catch (const std::runtime_error& e) {
            std::cerr << "quantal energy: plotting " << o->trace << " failed (" << e.what() << ")\n";
            std::exit(1);
        }
    });
}

} // namespace quantal::cli
