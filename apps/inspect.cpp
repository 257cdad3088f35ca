// `quantal inspect TRACE.h5`: what a spike trace holds (spikes and rates per population, energy
// per layer, samples), as text or JSON, and raster/rate plots drawn by traces/plot_trace.py.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <vector>

#include "apps/commands.hpp"
#include "apps/json.hpp"
#include "apps/plot_scripts.hpp"
#include "apps/values.hpp"
#include "io/contained.hpp"
#include "io/spike_trace.hpp"
#include "sim/errors.hpp"

namespace quantal::cli {

namespace {

struct InspectOptions {
    std::string trace;
    bool json = false;
    std::string plot_dir;
    std::size_t max_samples = 20; // rows of the sample table shown as text
    std::optional<double> load_timeout;
};

void print_json(std::ostream& out, const TraceSummary& s) {
    out << "{\n  \"trace\": " << json_string(s.path) << ",\n  \"run\": {";
    for (std::size_t i = 0; i < s.run.size(); ++i)
        out << (i ? ", " : "") << json_string(s.run[i].first) << ": " << json_string(s.run[i].second);
    out << "},\n  \"dt_ms\": " << json_number(s.dt_ms) << ",\n  \"ticks_per_sample\": " << s.ticks_per_sample
        << ",\n  \"recorded_ms\": " << json_number(s.recorded_ms) << ",\n  \"total_spikes\": " << s.total_spikes()
        << ",\n  \"populations\": [";
    for (std::size_t i = 0; i < s.populations.size(); ++i) {
        const auto& p = s.populations[i];
        out << (i ? "," : "") << "\n    {\"name\": " << json_string(p.name) << ", \"neurons\": " << p.neurons
            << ", \"spikes\": " << p.spikes << ", \"rate_hz\": " << json_number(p.rate_hz)
            << ", \"first_ms\": " << json_number(p.first_ms) << ", \"last_ms\": " << json_number(p.last_ms)
            << ", \"sorting\": " << json_string(p.sorting) << "}";
    }
    out << "\n  ],\n  \"samples\": [";
    for (std::size_t i = 0; i < s.samples.size(); ++i) {
        const auto& k = s.samples[i];
        out << (i ? "," : "") << "\n    {\"index\": " << k.index << ", \"start_ms\": " << json_number(k.start_ms)
            << ", \"label\": " << k.label << ", \"prediction\": " << k.prediction
            << ", \"recorded\": " << (k.recorded ? "true" : "false") << ", \"spikes\": " << k.spikes
            << ", \"snn_pj\": " << json_number(k.snn_pj) << "}";
    }
    out << "\n  ]";
    if (s.has_energy) {
        out << ",\n  \"energy\": {\"samples\": " << s.energy_samples << ", \"e_ac_pj\": " << json_number(s.e_ac_pj)
            << ", \"e_mac_pj\": " << json_number(s.e_mac_pj) << ", \"snn_pj\": " << json_number(s.snn_pj)
            << ", \"ann_pj\": " << json_number(s.ann_pj) << ",\n    \"populations\": [";
        for (std::size_t i = 0; i < s.population_energy.size(); ++i) {
            const auto& p = s.population_energy[i];
            out << (i ? "," : "") << "\n      {\"name\": " << json_string(p.name)
                << ", \"model\": " << json_string(p.model) << ", \"size\": " << p.size << ", \"spikes\": " << p.spikes
                << ", \"updates\": " << p.updates << ", \"macs\": " << p.macs
                << ", \"energy_pj\": " << json_number(p.energy_pj) << "}";
        }
        out << "\n    ],\n    \"projections\": [";
        for (std::size_t i = 0; i < s.projection_energy.size(); ++i) {
            const auto& p = s.projection_energy[i];
            out << (i ? "," : "") << "\n      {\"name\": " << json_string(p.name)
                << ", \"source\": " << json_string(p.source) << ", \"target\": " << json_string(p.target)
                << ", \"role\": " << json_string(p.role)
                << ", \"release\": " << json_string(p.release) << ", \"mask_ratio\": " << json_number(p.mask_ratio)
                << ", \"synapses\": " << p.synapses << ", \"spikes_in\": " << p.spikes_in
                << ", \"masked_spikes\": " << p.masked_spikes << ", \"attempted\": " << p.attempted
                << ", \"transmitted\": " << p.transmitted << ", \"energy_pj\": " << json_number(p.energy_pj) << "}";
        }
        out << "\n    ],\n    \"operators\": [";
        for (std::size_t i = 0; i < s.operator_energy.size(); ++i) {
            const auto& p = s.operator_energy[i];
            out << (i ? "," : "") << "\n      {\"name\": " << json_string(p.name)
                << ", \"kind\": " << json_string(p.kind) << ", \"output\": " << json_string(p.output)
                << ", \"coincidences\": " << p.coincidences << ", \"deliveries\": " << p.deliveries
                << ", \"macs\": " << p.macs << ", \"masked_spikes\": " << p.masked_spikes
                << ", \"energy_pj\": " << json_number(p.energy_pj) << "}";
        }
        out << "\n    ]}";
        // The energy models (docs/energy.md), as `quantal energy --json` gives them.
        std::ostringstream models;
        print_energy_json(models, energy_inputs(s), EnergyCosts{s.e_ac_pj, s.e_mac_pj}, HardwareProfile{});
        std::string text = models.str();
        while (!text.empty() && text.back() == '\n') text.pop_back();
        out << ",\n  \"energy_models\": " << text;
    }
    out << "\n}\n";
}

void print_text(std::ostream& out, const TraceSummary& s, std::size_t max_samples) {
    char line[320];
    out << "trace " << s.path << '\n';
    for (const auto& [key, value] : s.run) out << "  " << key << ": " << value << '\n';
    std::uint64_t recorded = 0, labelled = 0, correct = 0;
    for (const auto& k : s.samples) {
        recorded += k.recorded;
        if (k.label >= 0) ++labelled, correct += k.label == k.prediction;
    }
    if (!s.samples.empty()) { // a plain SONATA file (bmtk, libsonata) has no /samples
        std::snprintf(line, sizeof line, "samples: %zu (%llu with spikes recorded), %lld ticks x %g ms each\n",
                      s.samples.size(), (unsigned long long)recorded, (long long)s.ticks_per_sample, s.dt_ms);
        out << line;
    }
    if (labelled) {
        std::snprintf(line, sizeof line, "accuracy: %llu / %llu = %.4f\n", (unsigned long long)correct,
                      (unsigned long long)labelled, double(correct) / double(labelled));
        out << line;
    }
    std::snprintf(line, sizeof line, "spikes: %llu over %g ms\n", (unsigned long long)s.total_spikes(), s.recorded_ms);
    out << line;
    std::snprintf(line, sizeof line, "  %-28s %10s %12s %12s %12s %12s %8s\n", "population", "neurons", "spikes",
                  "rate Hz", "first ms", "last ms", "sorting");
    out << line;
    for (const auto& p : s.populations) {
        std::snprintf(line, sizeof line, "  %-28s %10llu %12llu %12.3f %12g %12g %8s\n", p.name.c_str(),
                      (unsigned long long)p.neurons, (unsigned long long)p.spikes, p.rate_hz, p.first_ms, p.last_ms,
                      p.sorting.c_str());
        out << line;
    }
    if (s.has_energy && s.energy_samples) {
        const double n = double(s.energy_samples);
        out << "energy per layer (per sample, E_AC " << s.e_ac_pj << " pJ, E_MAC " << s.e_mac_pj << " pJ):\n";
        std::snprintf(line, sizeof line, "  %-28s %-8s %-16s %6s %14s %14s %14s %12s\n", "projection", "role", "release",
                      "mask", "attempted", "transmitted", "failed", "energy pJ");
        out << line;
        for (const auto& p : s.projection_energy) {
            std::snprintf(line, sizeof line, "  %-28s %-8s %-16s %6.3f %14.1f %14.1f %14.1f %12.1f\n", p.name.c_str(),
                          p.role.empty() ? "-" : p.role.c_str(), p.release.c_str(), p.mask_ratio, double(p.attempted) / n, double(p.transmitted) / n,
                          double(p.attempted - p.transmitted) / n, p.energy_pj / n);
            out << line;
        }
        std::snprintf(line, sizeof line, "  %-28s %-16s %14s %14s %14s %12s\n", "population", "model", "spikes",
                      "updates", "MACs", "energy pJ");
        out << line;
        for (const auto& p : s.population_energy) {
            std::snprintf(line, sizeof line, "  %-28s %-16s %14.1f %14.1f %14.1f %12.1f\n", p.name.c_str(),
                          p.model.c_str(), double(p.spikes) / n, double(p.updates) / n, double(p.macs) / n,
                          p.energy_pj / n);
            out << line;
        }
        if (!s.operator_energy.empty()) {
            std::snprintf(line, sizeof line, "  %-28s %-16s %14s %14s %14s %12s\n", "operator", "kind", "coincidences",
                          "deliveries", "MACs", "energy pJ");
            out << line;
            for (const auto& p : s.operator_energy) {
                std::snprintf(line, sizeof line, "  %-28s %-16s %14.1f %14.1f %14.1f %12.1f\n", p.name.c_str(),
                              p.kind.c_str(), double(p.coincidences) / n, double(p.deliveries) / n, double(p.macs) / n,
                              p.energy_pj / n);
                out << line;
            }
        }
        std::snprintf(line, sizeof line, "energy per sample: SNN %.4g pJ, %s %.4g pJ, ratio %.3f\n", s.snn_pj / n,
                      ann_baseline_name(s.ann.has_value()).c_str(), s.ann_pj / n, s.ann_pj > 0 ? s.snn_pj / s.ann_pj : 0.0);
        out << line;
        print_energy_models(out, energy_inputs(s), EnergyCosts{s.e_ac_pj, s.e_mac_pj}, HardwareProfile{});
    }
    if (!s.samples.empty()) {
        std::snprintf(line, sizeof line, "  %8s %12s %6s %10s %9s %10s %14s\n", "sample", "start ms", "label",
                      "prediction", "recorded", "spikes", "energy pJ");
        out << line;
        for (std::size_t i = 0; i < s.samples.size() && i < max_samples; ++i) {
            const auto& k = s.samples[i];
            std::snprintf(line, sizeof line, "  %8llu %12g %6lld %10lld %9s %10llu %14.1f\n",
                          (unsigned long long)k.index, k.start_ms, (long long)k.label, (long long)k.prediction,
                          k.recorded ? "yes" : "no", (unsigned long long)k.spikes, k.snn_pj);
            out << line;
        }
        if (s.samples.size() > max_samples)
            out << "  ... " << s.samples.size() - max_samples << " more (--json lists all)\n";
    }
}

void run_inspect(const InspectOptions& o) {
    // Read and formatted in a child process (io/contained.hpp): libhdf5 may crash or hang on a
    // damaged trace. The formatted text is the result that comes back (InputError: exit code 2).
    const double seconds = o.load_timeout.value_or(default_read_seconds(o.trace));
    std::cout << run_contained(o.trace, seconds, [&] {
        const TraceSummary summary = read_trace_summary(o.trace);
        std::ostringstream out;
        if (o.json)
            print_json(out, summary);
        else
            print_text(out, summary, o.max_samples);
        return out.str();
    });
    if (!o.plot_dir.empty()) {
        std::cout.flush();
        std::error_code ec;
        std::filesystem::create_directories(o.plot_dir, ec);
        if (ec) throw InputError(o.plot_dir + ": cannot create the plot directory (" + ec.message() + ")");
        // The energy models for energy_models.png (traces with a ledger only).
        const std::string models = run_contained(o.trace, seconds, [&] {
            const TraceSummary summary = read_trace_summary(o.trace);
            std::ostringstream out;
            if (summary.has_energy)
                print_energy_json(out, energy_inputs(summary), EnergyCosts{summary.e_ac_pj, summary.e_mac_pj}, HardwareProfile{});
            return out.str();
        });
        std::vector<std::string> args{o.trace, "--out", o.plot_dir, "--error-prefix", "quantal"};
        if (!models.empty()) {
            const auto path = (std::filesystem::path(o.plot_dir) / "energy_models.json").string();
            std::ofstream(path) << models;
            args.insert(args.end(), {"--energy-models", path});
        }
        // Plotting that fails (no interpreter, script error) is not the trace's fault: exit status 1.
        try {
            const int rc = run_plot_script("plot_trace.py", args);
            if (rc != 0)
                throw std::runtime_error("plotting " + o.trace + " failed (plot_trace.py exit status " +
                                         std::to_string(rc) + ")");
        } catch (const std::runtime_error& e) {
            std::cerr << "quantal inspect: " << e.what() << '\n';
            std::exit(1);
        }
    }
}

} // namespace

void add_inspect_command(CLI::App& app) {
    auto o = std::make_shared<InspectOptions>();
    auto* cmd =
        app.add_subcommand("inspect", "Summarise a spike trace (spikes, rates, energy per layer, samples); plot it");
    cmd->add_option("trace", o->trace, "Trace file (HDF5, SONATA spike layout)")->required();
    cmd->add_flag("--json", o->json, "Machine-readable output");
    cmd->add_option("--plot", o->plot_dir, "Write raster and rate plots (PNG) into this directory");
    cmd->add_option("--max-samples", o->max_samples, "Sample rows shown as text")
        ->transform(whole_number(0, std::numeric_limits<std::size_t>::max()));
    add_load_timeout_option(*cmd, o->load_timeout);
    cmd->callback([o] { run_inspect(*o); }); // a bad trace: InputError, exit code 2 (main())
}

} // namespace quantal::cli
