#pragma once
// SONATA spike traces (FORMATS.md, "SONATA spike report"; layout as written: docs/traces.md).
// A multi-sample run is one continuous recording: sample k occupies ticks [k*T, (k+1)*T), so a
// spike at tick t of sample k has the timestamp (k*T + t) * dt ms. Written streaming: each
// recorded population buffers a bounded number of spikes before appending them to chunked,
// extendible datasets, so memory stays bounded whatever the length of the run. The file is
// flushed at every end_sample(): if the process stops between samples, everything up to the
// last completed sample is readable.
//
// Use, one sample after another:
//   SpikeTraceWriter trace(path, net, options, metadata);
//   for each sample k: trace.begin_sample(k, label);
//                      auto r = engine.run(stimulus, run_options, k, &trace);
//                      trace.end_sample(prediction, r.ledger);
//   trace.finish(TraceStatus::complete);   // or ::interrupted
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "network/network.hpp"
#include "sim/energy_ledger.hpp"
#include "sim/energy_models.hpp"
#include "sim/engine.hpp"
#include "sim/time.hpp"

namespace quantal {

struct TraceOptions {
    Tick ticks_per_sample = 100;          // T: sample k starts at tick k*T
    double dt_ms = 1.0;                   // ms per tick in the timestamps
    std::vector<std::string> populations; // populations whose spikes are recorded; empty: every non-readout population
    std::vector<std::uint64_t> samples;   // sample indices whose spikes are recorded; empty: all
    // Spikes each recorded population holds before appending them to the file; 0: the most (up to
    // 65,536) that keeps every recorded population's buffer (16 bytes per spike) and chunk caches
    // (16 bytes per spike of chunk) within memory_budget_bytes, however many populations there are.
    std::uint32_t buffer_spikes = 0;
    std::size_t memory_budget_bytes = std::size_t(32) << 20;
    // HDF5 chunk length of the spike datasets. Each per-sample flush rewrites the chunk being
    // filled, so small chunks keep flushes cheap (32 KB per dataset at the default).
    std::uint32_t chunk_spikes = 4096;
    EnergyCosts costs{}; // written beside the ledger so readers can price it
    // Membrane reports (/report/<population>, docs/traces.md): the run's RunOptions::potentials,
    // whose frames arrive through on_potentials(). The recorded samples must be consecutive.
    std::vector<PotentialProbe> potentials;
    bool replace_existing = true; // false: an existing file at the path is an error and stays as it is
};

// What the run was; written to /run when the file is created.
struct RunMetadata {
    std::string model; // model file path or a description ("demo")
    std::uint64_t seed = 0;
    std::string release;     // command-level release mode ("none", "spike", "synapse")
    double mask_ratio = 0.0; // command-level mask ratio (per-projection values: /energy/projections)
    std::string version;     // quantal version
    std::string command_line;
    std::vector<std::pair<std::string, std::string>> extra; // more string attributes on /run
    bool compensate = false;     // command-level --compensate (Release::compensate)
    double release_spread = 0.0; // command-level --release-spread κ (Release::spread); 0: homogeneous
};

enum class TraceStatus { complete, interrupted };

// Where a trace stands, for a checkpoint: the completed samples (rows, spikes per recorded
// population, running totals) and a sample begun and not ended. That sample's spikes so far are
// either in the file (`open_in_file`: how many each population has; the cheap case, while the
// run goes on) or carried here (`open_timestamps`/`open_node_ids`: when the trace is about to be
// closed, which drops them from the file).
struct TracePosition {
    std::uint64_t samples = 0;         // rows of /samples
    bool any_sample = false;           // a sample was begun since the file was created
    std::uint64_t last_sample = 0;     // index of the open (or last) sample
    std::vector<std::uint64_t> spikes; // per recorded population: spikes of the completed samples
    EnergyLedger total;                // /energy/total
    double snn_pj = 0, ann_pj = 0;     // /energy/total attributes
    bool open = false;                 // a sample is open: its label and spikes so far follow
    std::int64_t open_label = -1;
    bool carried = false;                             // the open sample's spikes are carried, not in the file
    std::vector<std::uint64_t> open_in_file;          // per recorded population: spikes in the file, all samples
    std::vector<std::vector<double>> open_timestamps; // per recorded population (carried)
    std::vector<std::vector<std::uint64_t>> open_node_ids;
};

class SpikeTraceWriter : public SpikeSink {
public:
    SpikeTraceWriter(const std::string& path, const Network& net, TraceOptions options, const RunMetadata& metadata);
    // Continues a trace this writer wrote (resume from a checkpoint): cuts every dataset back to
    // `position` (a run killed after it may have written more), restores the totals, sets the
    // status to "running" and reopens the open sample with its spikes. InputError naming the file
    // if it is not that run's trace (its /run command line, ticks or dt differ) or holds less.
    SpikeTraceWriter(const std::string& path, const Network& net, TraceOptions options, const RunMetadata& metadata,
                     const TracePosition& position);
    ~SpikeTraceWriter() override; // without finish(): drops an open sample, marks the run "incomplete", closes
    SpikeTraceWriter(const SpikeTraceWriter&) = delete;
    SpikeTraceWriter& operator=(const SpikeTraceWriter&) = delete;

    void begin_sample(std::uint64_t sample, std::int64_t label = -1);
    void on_spikes(PopulationId population, Tick tick, std::span<const std::uint32_t> neurons) override;
    void on_potentials(std::size_t probe, Tick tick, std::span<const double> values) override;
    // Feeds a finished sample's kept spikes and potentials (RunOptions::record_spikes) in simulation
    // order, as the engine would have while running: samples simulated apart (threads) are written
    // the same way as streamed ones.
    void replay(const SampleResult& result);
    // Closes the open sample: appends its row to /samples and its ledger to /energy, then flushes.
    void end_sample(std::int64_t prediction, const EnergyLedger& sample_ledger);
    // Drops the spikes of a sample that was begun and not ended (datasets shrink back), writes the
    // status and closes the file. Further calls do nothing.
    void finish(TraceStatus status = TraceStatus::complete);

    // Flushes the open sample's buffered spikes and the file, and returns the position; `carry`:
    // with the open sample's spikes read back into it (before finish(), which drops them).
    TracePosition position(bool carry);

    const std::string& path() const;
    std::uint64_t samples_written() const;
    std::uint64_t spikes_written() const; // spikes in /spikes after the last completed sample

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// A trace read back (quantal inspect): counts and tables, not the spikes themselves. Reads any
// SONATA spike file; /samples, /run and /energy are optional. Throws InputError naming the file
// and the object for a file that is not a valid trace (missing dataset, lengths that differ,
// unsorted timestamps under sorting=by_time, unreadable data).
struct TraceSummary {
    struct Population {
        std::string name;
        std::uint64_t neurons = 0; // from /energy/populations/size, else the largest node id + 1
        std::uint64_t spikes = 0;
        std::string sorting; // "none", "by_id", "by_time" or "" when absent
        double first_ms = 0, last_ms = 0;
        double rate_hz = 0; // spikes per neuron per second of recorded time
    };
    struct Sample {
        std::uint64_t index = 0;
        double start_ms = 0;
        std::int64_t label = -1, prediction = -1;
        bool recorded = true;
        std::uint64_t spikes = 0;
        double snn_pj = 0;
    };
    struct PopulationEnergy {
        std::string name, model;
        std::uint64_t size = 0, spikes = 0, updates = 0, macs = 0; // totals over the samples
        double energy_pj = 0;                                      // E_MAC x MACs, total
        std::uint64_t drift_ticks = 0;
    };
    struct ProjectionEnergy {
        std::string name, source, target, release, role; // role: empty when the model gave none
        double mask_ratio = 0;
        std::uint64_t synapses = 0, spikes_in = 0, masked_spikes = 0, attempted = 0, transmitted = 0; // totals
        double energy_pj = 0; // E_AC x transmitted, total
        std::uint64_t stored_weights = 0; // the projection's weight memory (0 in traces without it)
    };

    struct OperatorEnergy {
        std::string name, kind, output;
        std::uint64_t coincidences = 0, deliveries = 0, macs = 0, masked_spikes = 0; // totals
        double energy_pj = 0; // E_AC x (coincidences + deliveries) + E_MAC x macs, total
        std::string q, k, v, scores; // empty in traces from before they were recorded
        std::uint64_t ann_macs = 0;  // the ANN's q k^T and A v MACs per tick
    };

    std::string path;
    std::vector<std::pair<std::string, std::string>> run; // /run attributes as text
    double dt_ms = 1.0;
    std::int64_t ticks_per_sample = 0;
    double recorded_ms = 0; // time the rates are averaged over
    std::vector<Population> populations;
    std::vector<Sample> samples;
    bool has_energy = false;
    double e_ac_pj = 0, e_mac_pj = 0, snn_pj = 0, ann_pj = 0; // energies: totals over energy_samples
    std::uint64_t energy_samples = 0;
    std::vector<PopulationEnergy> population_energy;
    std::vector<ProjectionEnergy> projection_energy;
    std::vector<OperatorEnergy> operator_energy;
    bool stored_weights_known = false;
    std::optional<AnnBaseline> ann; // /energy/ann: the model's ANN record, when it had one

    std::uint64_t total_spikes() const;
};

TraceSummary read_trace_summary(const std::string& path);

// Every spike of a SONATA spike file, whoever wrote it (quantal, bmtk, NEST), in file order, with
// the same checks as read_trace_summary; times in ms. `sample_start_ms`: /samples/start_ms, when
// the file has the per-sample table quantal's traces write.
struct SpikeFile {
    struct Population {
        std::string name;
        std::vector<double> ms;
        std::vector<std::uint64_t> node_ids;
    };
    std::string path;
    std::vector<Population> populations;
    std::optional<std::vector<double>> sample_start_ms;
};

SpikeFile read_spike_file(const std::string& path);

// The tick of a time in ms on the grid of `dt_ms`: the last tick g with g * dt_ms (in double, as
// the writer computes timestamps) at or before `ms`, so a trace's timestamps map back to their
// ticks exactly. None if `ms` is negative, NaN or beyond tick 2^53.
std::optional<std::uint64_t> grid_tick(double ms, double dt_ms);

// What the energy models need (sim/energy_models.hpp), from a trace's /energy. InputError naming
// the trace if it has no ledger.
EnergyInputs energy_inputs(const TraceSummary& s);

} // namespace quantal
