#pragma once
// What happened, counted per population and per projection for one sample (or summed over
// many). Energy models are pure functions of these counts (docs/energy.md).
#include <cstdint>
#include <vector>

namespace quantal {

class Network;

struct PopulationCounts {
    std::uint64_t spikes = 0;
    std::uint64_t updates = 0;      // neuron visits: one membrane read-modify-write + threshold check
    std::uint64_t drift_ticks = 0;  // ticks of bias/leak folded into those visits (the T*N of a clocked chip)
    std::uint64_t wakeups = 0;      // visits caused by a predicted drift crossing alone
    std::uint64_t macs = 0;         // non-spiking multiply-accumulates (analog input, operators)
    PopulationCounts& operator+=(const PopulationCounts& o);
};

struct ProjectionCounts {
    std::uint64_t spikes_in = 0;      // presynaptic spikes presented to the projection
    std::uint64_t masked_spikes = 0;  // dropped whole by per-spike release (RSM)
    std::uint64_t attempted = 0;      // synaptic events: spikes x fan-out
    std::uint64_t transmitted = 0;    // accumulates (AC): one weight read + one target update each
    std::uint64_t failed() const { return attempted - transmitted; }
    ProjectionCounts& operator+=(const ProjectionCounts& o);
};

// Operator nodes (attention): spike-driven accumulates and non-spiking work.
struct OperatorCounts {
    std::uint64_t coincidences = 0;  // q-k spike pairs accumulated into attention scores (AC)
    std::uint64_t deliveries = 0;    // softmax weight x value-spike accumulations (AC)
    std::uint64_t macs = 0;          // softmax elements evaluated (MAC-class, not spike-driven)
    std::uint64_t masked_spikes = 0; // q, k and score spikes dropped by RSM
    OperatorCounts& operator+=(const OperatorCounts& o);
};

struct EnergyLedger {
    std::vector<PopulationCounts> populations;
    std::vector<ProjectionCounts> projections;
    std::vector<OperatorCounts> operators;
    std::uint64_t samples = 0;
    std::uint64_t ticks = 0; // per sample

    static EnergyLedger for_network(const Network& net, std::uint64_t ticks);
    EnergyLedger& operator+=(const EnergyLedger& o);
    std::uint64_t total_transmitted() const; // synaptic accumulates, operators' included
    std::uint64_t total_macs() const;        // non-spiking work, operators' included
    std::uint64_t total_spikes() const;
};

// The spiking-transformer literature's proxy: E = E_MAC * MACs + E_AC * SOPs (45 nm, Horowitz 2014).
struct EnergyCosts {
    double e_ac_pj = 0.9;
    double e_mac_pj = 4.6;
};

struct EnergySummary {
    double snn_pj = 0;        // per sample: E_AC * transmitted + E_MAC * MACs
    double ann_pj = 0;        // per sample: E_MAC x the ANN's own MACs (Network::ann), else estimated from synapses
    bool ann_own = false;     // the ANN's own MACs were used
    double sops = 0;          // accumulates per sample: transmitted synaptic events and operator ACs
    double spikes_per_synapse = 0;
};

EnergySummary summarize(const EnergyLedger& ledger, const Network& net, const EnergyCosts& costs);

} // namespace quantal
