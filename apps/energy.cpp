// `quantal energy TRACE.h5 [--model M.h5] [--profile P.json] [--json]`: the energy models of
// docs/energy.md applied to a trace's ledger, every assumption printed above the numbers. The
// trace records what the models need (counts, synapses, weight memories, the ANN's own MACs);
// --model fills in what an older trace lacks.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "apps/commands.hpp"
#include "apps/plot_scripts.hpp"
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
        throw InputError(model + ": has " + std::to_string(net.projections().size()) + " projections, trace " + trace + " " +
                         std::to_string(in.projections.size()) + ": not the model the trace was run with");
    for (ProjectionId j = 0; j < net.projections().size(); ++j) {
        auto& p = in.projections[j];
        if (net.projection(j).name != p.name)
            throw InputError(model + ": projection '" + net.projection(j).name + "' is '" + p.name + "' in trace " + trace +
                             ": not the model the trace was run with");
        p.stored_weights = net.stored_weights(j);
        if (p.role.empty()) p.role = net.projection(j).role;
    }
    in.stored_weights_known = true;
    if (!in.ann) in.ann = net.ann();
    if (net.operators().size() != in.operators.size())
        throw InputError(model + ": has " + std::to_string(net.operators().size()) + " operators, trace " + trace + " " +
                         std::to_string(in.operators.size()) + ": not the model the trace was run with");
    for (std::size_t o = 0; o < net.operators().size(); ++o) { // populations are in the same order in both
        const auto& a = std::get<SoftmaxAttention>(net.operators()[o]);
        auto& op = in.operators[o];
        if (op.q == EnergyInputs::none)
            op.q = a.q, op.k = a.k, op.v = a.v, op.scores = a.scores, op.ann_macs = net.attention(o).ann_macs();
    }
}

} // namespace

void add_energy_command(CLI::App& app) {
    auto o = std::make_shared<EnergyOptions>();
    auto* cmd = app.add_subcommand("energy", "Energy of a run under every model (proxy measured and the papers' way, "
                                             "memory-inclusive, ANN baselines), assumptions first");
    cmd->add_option("trace", o->trace, "Trace file written by quantal run or demo (HDF5)")->required();
    cmd->add_option("--model", o->model, "The model file the trace was run with (weight memories and /ann of older traces)");
    cmd->add_option("--profile", o->profile, "Hardware profile (JSON) of the memory-inclusive model; default the built-in "
                                             "45 nm one (examples/energy-profiles/45nm.json)");
    cmd->add_flag("--json", o->json, "Machine-readable output");
    cmd->add_option("--plot", o->plot_dir, "Write energy_models.png (energy per group of layers under each model) and "
                                           "energy_models.json into this directory");
    auto* ac = cmd->add_option("--e-ac", o->costs.e_ac_pj, "Energy of one accumulate, pJ (default: the trace's)");
    auto* mac = cmd->add_option("--e-mac", o->costs.e_mac_pj, "Energy of one multiply-accumulate, pJ (default: the trace's)");
    ac->check(CLI::Range(0.0, 1e6)), mac->check(CLI::Range(0.0, 1e6));
    add_load_timeout_option(*cmd, o->load_timeout);
    cmd->callback([o, ac, mac] {
        const HardwareProfile hw = o->profile.empty() ? HardwareProfile{} : read_hardware_profile(o->profile);
        std::optional<LoadedModel> model;
        if (!o->model.empty()) model = load_model(o->model, o->load_timeout, 1.0);
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
            const int rc = run_plot_script("plot_trace.py", {o->trace, "--out", o->plot_dir, "--error-prefix", "quantal",
                                                             "--energy-models", path, "--energy-only"});
            if (rc != 0) throw std::runtime_error("plot_trace.py exit status " + std::to_string(rc));
        } catch (const std::runtime_error& e) {
            std::cerr << "quantal energy: plotting " << o->trace << " failed (" << e.what() << ")\n";
            std::exit(1);
        }
    });
}

} // namespace quantal::cli
