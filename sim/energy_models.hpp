#pragma once
// Energy models: pure functions of what a run counted (docs/energy.md). Their input is one flat
// description, built from a run's ledger and network (here) or from a trace read back
// (io/spike_trace.hpp), so `quantal run`, `inspect` and `energy` compute the same numbers.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "network/network.hpp"
#include "sim/energy_ledger.hpp"

namespace quantal {

struct EnergyInputs {
    struct Population {
        std::string name;
        std::uint64_t size = 0;
        bool neuron = true;      // has a membrane (not a spike source)
        bool leaky = false;      // LIF/CubaLIF: a multiply per update
        PopulationCounts counts; // totals over the samples
    };
    struct Projection {
        std::string name, role;
        std::uint32_t source = 0, target = 0;
        std::uint64_t synapses = 0, stored_weights = 0;
        ProjectionCounts counts;
    };
    static constexpr std::uint32_t none = UINT32_MAX;
    struct Operator {
        std::string name;
        std::uint32_t q = none, k = none, v = none, scores = none, output = none; // none: not recorded (old trace)
        std::uint64_t ann_macs = 0;                                               // q k^T and A v of the ANN, per tick
        OperatorCounts counts;
    };
    std::vector<Population> populations;
    std::vector<Projection> projections;
    std::vector<Operator> operators;
    std::uint64_t samples = 0, ticks = 0; // ticks per sample
    std::optional<AnnBaseline> ann;       // the ANN's own record, if the model gave it
    bool stored_weights_known = true;     // false for traces written before they were recorded
};

EnergyInputs energy_inputs(const EnergyLedger& ledger, const Network& net);

// Role groups of the report (docs/model-format.md "Roles").
enum class RoleGroup { attention, mlp, stream, merge, embedding_head, other };
constexpr int role_groups = 6;
RoleGroup role_group(const std::string& role);
const char* role_group_name(RoleGroup g);

// Counts per sample, by class.
struct ClassCounts {
    double analog_macs = 0;                // the analog input's map, as charged: every tick
    double synaptic_acs[role_groups] = {}; // transmitted synaptic events by role group
    double failed = 0, masked_spikes = 0;  // failed synaptic events; spikes dropped whole (projections and operators)
    double coincidences = 0, softmax = 0, deliveries = 0; // q k^T, softmax evaluations, softmax x v
    double updates = 0, clocked_updates = 0;              // event-driven visits; T x N of a clocked design
    double spikes = 0;
    double synapses = 0; // of the network (per-synapse rate's denominator)
    double acs() const;  // every accumulate: synaptic, coincidences, deliveries
};
ClassCounts class_counts(const EnergyInputs& in);

// Energy of one sample under one model, the analog first layer charged every tick (as counted)
// and once per sample (a design that keeps its result).
struct ModelEnergy {
    std::string name;
    double per_tick_input_pj = 0, once_input_pj = 0;
};

// The literature's proxy: E_AC x accumulates + E_MAC x non-spiking MACs.
ModelEnergy measured_proxy(const EnergyInputs& in, const EnergyCosts& c);
// The same, the accumulates estimated the papers' way: per projection the source's firing rate x T
// x the layer's FLOPs (its synapses); q k^T at q's rate and A v at v's rate x their ANN MACs.
ModelEnergy papers_proxy(const EnergyInputs& in, const EnergyCosts& c);
double papers_sops(const EnergyInputs& in); // the estimate's accumulates per sample

// The ANN baselines, per sample.
struct AnnEnergy {
    bool own = false; // from the model's /ann record; else estimated from the SNN's synapses
    double macs = 0;
    double float_pj = 0;          // E_MAC per MAC
    unsigned activation_bits = 0; // ceil(log2(L + 1)); 0: L unknown, no quantised baseline
    double quantised_pj = 0;
};
// E of one w_bits x a_bits multiply plus a 32-bit integer add (Horowitz 2014: 8-bit mult 0.2 pJ,
// 32-bit add 0.1 pJ; multiplier energy scaled by the product of the operand widths).
double quantised_mac_pj(unsigned activation_bits, unsigned weight_bits);
AnnEnergy ann_energy(const EnergyInputs& in, const EnergyCosts& c);

// T at which the SNN's energy, linear in T at the run's firing rates (E = a T + b), equals the
// ANN's; below 1 means it never breaks even.
double break_even_ticks(double snn_pj, double once_pj, std::uint64_t ticks, double ann_pj);

// A memory-inclusive model (Lemaire et al. 2022): operations plus every memory access, an access
// costing ram_pj_per_bit x (memory size in bits) + ram_pj_offset.
struct HardwareProfile {
    std::string name = "45nm-horowitz-lemaire";              // = examples/energy-profiles/45nm.json
    double e_add_pj = 0.1;                                   // 32-bit integer add (Horowitz 2014)
    double e_mult_pj = 3.1;                                  // 32-bit integer multiply
    double e_mac_pj = 3.2;                                   // 32-bit integer multiply-accumulate
    double ram_pj_per_bit = 1.035e-5, ram_pj_offset = 13.26; // Lemaire's fit of Horowitz's cache reads
    unsigned weight_bits = 32, potential_bits = 32, activation_bits = 32;
    bool global_memory = false;  // true: one memory holds everything (every access costs its size)
    bool clocked_updates = true; // true: every neuron updated every tick (T x N); false: event-driven visits
    double ram_pj(double bits) const { return ram_pj_per_bit * bits + ram_pj_offset; }
};

struct LayerEnergy {
    std::string layer; // target population
    RoleGroup group = RoleGroup::other;
    double proxy_pj = 0, papers_pj = 0, memory_pj = 0; // per sample, the input charged every tick
    double memory_ops_pj = 0, memory_access_pj = 0;
};
struct MemoryEnergy {
    ModelEnergy total;
    ModelEnergy ann;                  // the ANN on the same hardware (needs the /ann record; zero otherwise)
    double ops_pj = 0, access_pj = 0; // per sample, input every tick
    double global_bits = 0;
};
MemoryEnergy memory_model(const EnergyInputs& in, const HardwareProfile& hw);
// Per layer (target population) under the three models, input every tick.
std::vector<LayerEnergy> layer_energy(const EnergyInputs& in, const EnergyCosts& c, const HardwareProfile& hw);

} // namespace quantal
