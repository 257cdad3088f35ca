#pragma once
// Each subcommand of the `quantal` executable registers itself on the CLI11 app.
#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "io/model_file.hpp"
#include "network/network.hpp"
#include "sim/energy_ledger.hpp"
#include "sim/energy_models.hpp"

namespace quantal::cli {

// Memory ran out (std::bad_alloc) while doing what the message says: exit code 3.
struct OutOfMemory : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A command that stopped because `stop` (given to add_commands) asked it to, after saving what it
// completed; the message says how to continue. Only the sweep asks, after each work unit.
struct Stopped : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Every subcommand below on `app`, with the --version flag and one-line failure messages: the
// executable's main() and the Python module (quantal.sweep) parse with the same app. `stop`: the
// Python module's Ctrl-C (the executable's commands handle their signals themselves).
void add_commands(CLI::App& app, std::function<bool()> stop = {});

void add_demo_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_sweep_command(CLI::App& app, std::function<bool()> stop = {});
void add_plot_command(CLI::App& app);
void add_energy_command(CLI::App& app);

// --e-ac / --e-mac: the energy per accumulate and per multiply-accumulate, in pJ.
void add_energy_options(CLI::App& command, EnergyCosts& costs);

// --load-timeout SECONDS: the limit for reading an HDF5 input in a contained child process
// (io/contained.hpp); unset: default_read_seconds() of the file.
void add_load_timeout_option(CLI::App& command, std::optional<double>& seconds);

// The model at `path`: a NIR graph (.nir, ticks of `dt_ms`) or a quantal model file, read first in a
// contained child process within `load_timeout` seconds (default: default_read_seconds()).
// `dt_ms`: the run's dt if given (--dt), else the file's (a NIR graph: default_dt_ms).
LoadedModel load_model(const std::string& path, std::optional<double> load_timeout, std::optional<double> dt_ms);

// Where the run's dt (model.network.dt_ms(), read with load_model's dt_ms = `option`) came from:
// --dt if given, else the model file's, else the documented default_dt_ms.
// `warning` is one line when --dt overrides a different dt of the file (the caller prints it);
// `source` says where the value came from (a trace's /run dt_source).
struct ResolvedDt {
    double ms = default_dt_ms;
    std::string source, warning;
};
ResolvedDt resolve_dt(const LoadedModel& model, std::optional<double> option, const std::string& path);

// An input file and the option that named it, e.g. {"--model", "m.h5"}.
using NamedFile = std::pair<std::string, std::string>;
// Before an output file is written: InputError if it is one of the inputs (same device and inode,
// whatever the path's spelling or links; --force does not change this), or if it exists and
// `force` is false. Nothing is created.
void check_output_file(const std::string& output, const std::vector<NamedFile>& inputs, bool force);

// Per-layer table of the ledger (spikes, rates per tick and in Hz at dt_ms, events, energy), the
// totals against the ANN, and the energy models side by side (print_energy_models, with the
// built-in hardware profile).
void print_energy_report(std::ostream& out, const Network& net, const EnergyLedger& ledger, const EnergyCosts& costs,
                         double dt_ms);

// The energy models side by side (apps/energy_report.cpp): assumptions, counts per sample by
// class, each model's total against the ANN baselines and the break-even T; per layer; as JSON.
void print_energy_models(std::ostream& out, const EnergyInputs& in, const EnergyCosts& costs, const HardwareProfile& hw);
void print_energy_layers(std::ostream& out, const EnergyInputs& in, const EnergyCosts& costs, const HardwareProfile& hw);
void print_energy_json(std::ostream& out, const EnergyInputs& in, const EnergyCosts& costs, const HardwareProfile& hw);
// "ANN (own MACs, from the model file)" or "ANN estimated from synapses (...)".
std::string ann_baseline_name(bool own);
// The per-layer list of `quantal energy --json` ("layers"), shared by traces and studies.
std::string energy_layers_json(const std::vector<LayerEnergy>& layers, const char* indent);
// `quantal energy STUDY.h5` (apps/energy.cpp): every configuration under every model; `quantal
// plot` draws the JSON's per-layer energies.
void print_study_energy(std::ostream& out, const std::string& path, const std::string& model_override,
                        const HardwareProfile& hw, std::optional<double> load_timeout, bool json);

} // namespace quantal::cli
