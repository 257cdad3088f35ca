// The energy models side by side (sim/energy_models.hpp), as text or JSON: one report for
// `quantal run`, `quantal inspect` and `quantal energy`, every assumption printed above the numbers.
#include <cmath>
#include <cstdio>
#include <string>

#include "apps/commands.hpp"
#include "apps/json.hpp"

namespace quantal::cli {

namespace {

std::string break_even_text(double t, std::uint64_t ticks) {
    char b[160];
    if (t < 1.0)
        std::snprintf(b, sizeof b, "never (at T = 1 it still costs more)");
    else
        std::snprintf(b, sizeof b, "T <= %.1f (run: T = %llu)", t, (unsigned long long)ticks);
    return b;
}

struct Report {
    ClassCounts counts;
    ModelEnergy measured, papers;
    MemoryEnergy memory;
    AnnEnergy ann;
    double papers_sops = 0;
    std::vector<LayerEnergy> layers;
};

Report compute(const EnergyInputs& in, const EnergyCosts& c, const HardwareProfile& hw) {
    Report r;
    r.counts = class_counts(in);
    r.measured = measured_proxy(in, c);
    r.papers = papers_proxy(in, c);
    r.papers_sops = papers_sops(in);
    r.memory = memory_model(in, hw);
    r.ann = ann_energy(in, c);
    r.layers = layer_energy(in, c, hw);
    return r;
}

} // namespace

std::string ann_baseline_name(bool own) {
    return own ? "ANN (own MACs, from the model file)"
               : "ANN estimated from synapses (no /ann record of the ANN's own MACs)";
}

void print_energy_models(std::ostream& out, const EnergyInputs& in, const EnergyCosts& c, const HardwareProfile& hw) {
    const Report r = compute(in, c, hw);
    char line[400];
    const auto& k = r.counts;
    out << "energy models (per sample; " << in.samples << " samples x T = " << in.ticks << " ticks); assumptions:\n";
    std::snprintf(
        line, sizeof line,
        "  proxy: E_AC %.3g pJ per accumulate, E_MAC %.3g pJ per MAC (45 nm, Horowitz 2014, the spiking-transformer "
        "papers' constants); q.k^T coincidences and softmax.v deliveries are accumulates, softmax evaluations MACs\n",
        c.e_ac_pj, c.e_mac_pj);
    out << line
        << "  the analog first layer: charged every tick (a clocked converted network recomputes it) and once per "
           "sample "
           "(a design that keeps its result), both printed\n"
        << "  papers' way: per projection, the firing rate of its input spikes after per-spike masks (measured in this "
           "run) x T "
           "x the layer's FLOPs (its synapses); q.k^T at q's rate and softmax.v at v's rate (before masks) x their ANN "
           "MACs; "
           "per-synapse failures not subtracted\n";
    std::snprintf(
        line, sizeof line,
        "  memory-inclusive (Lemaire et al. 2022): profile '%s': add %.3g, mult %.3g, MAC %.3g pJ; an access to a "
        "memory of S bits costs %.4g pJ/bit x S + %.4g pJ; %u-bit weights, %u-bit potentials; %s; %s\n",
        hw.name.c_str(), hw.e_add_pj, hw.e_mult_pj, hw.e_mac_pj, hw.ram_pj_per_bit, hw.ram_pj_offset, hw.weight_bits,
        hw.potential_bits,
        hw.global_memory
            ? "ONE GLOBAL MEMORY (every access priced at the size of all memories)"
            : "LOCAL MEMORIES (each projection's weights and each population's potentials in a memory of its own size)",
        hw.clocked_updates ? "neurons updated every tick (T x N)" : "event-driven neuron updates (visits counted)");
    out << line;
    if (!in.stored_weights_known)
        out << "  (this trace does not record weight-memory sizes: weight reads priced as the smallest memory; give "
               "--model)\n";
    std::snprintf(
        line, sizeof line, "  baseline: %s; quantised ANN: %s\n", ann_baseline_name(r.ann.own).c_str(),
        r.ann.activation_bits
            ? ("activations ceil(log2(L+1)) = " + std::to_string(r.ann.activation_bits) +
               " bits (L = " + std::to_string(in.ann->levels) +
               "), 8-bit weights, 8-bit pixels into the first layer; a MAC = 0.2 pJ x "
               "(a bits x w bits)/64 (Horowitz's 8-bit multiply, scaled by the operand widths) + 0.1 pJ (32-bit add)")
                  .c_str()
            : "not available (needs the QCFS levels L from the model's /ann record)");
    out << line;
    out << "counts per sample by class:\n";
    auto row = [&](const char* what, double v, const char* note = "") {
        std::snprintf(line, sizeof line, "  %-44s %14.4g %s\n", what, v, note);
        out << line;
    };
    row("analog-input MACs (every tick)", k.analog_macs);
    row("analog-input MACs (once per sample)", in.ticks ? k.analog_macs / double(in.ticks) : 0.0);
    for (int g = 0; g < role_groups; ++g) {
        const std::string what = std::string("synaptic ACs, ") + role_group_name(RoleGroup(g));
        row(what.c_str(), k.synaptic_acs[g]);
    }
    row("failed synaptic events", k.failed);
    row("masked spikes (whole spikes dropped)", k.masked_spikes);
    row("q.k^T coincidences (ACs)", k.coincidences);
    row("softmax evaluations (MACs)", k.softmax);
    row("softmax.v deliveries (ACs)", k.deliveries);
    row("neuron updates, event-driven visits", k.updates);
    row("neuron updates, clocked T x N", k.clocked_updates);
    row("spikes", k.spikes);
    row("accumulates (SOPs), measured", k.acs());
    row("accumulates (SOPs), the papers' estimate", r.papers_sops);
    row("spikes per synapse per inference",
        k.synapses > 0 ? (k.acs() - k.coincidences - k.deliveries) / k.synapses : 0.0,
        "(synaptic ACs / synapses; Dampfhoffer et al. 2023)");
    out << "models (SNN pJ per sample with the analog input charged every tick | once per sample; x the model's ANN; "
           "the T at which the SNN breaks even):\n";
    auto model = [&](const ModelEnergy& m, double ann_pj, double once_cost) {
        const double t1 = break_even_ticks(m.per_tick_input_pj, 0.0, in.ticks, ann_pj);
        const double t2 = break_even_ticks(m.once_input_pj, once_cost, in.ticks, ann_pj);
        out << "  " << m.name << ":\n";
        if (ann_pj <= 0) { // no ANN on this model's terms (the memory model without /ann)
            std::snprintf(line, sizeof line, "    %.4g | %.4g pJ (no ANN to compare with)\n", m.per_tick_input_pj,
                          m.once_input_pj);
            out << line;
            return;
        }
        std::snprintf(line, sizeof line, "    %.4g | %.4g pJ, x%.3f | x%.3f, break-even %s | %s\n", m.per_tick_input_pj,
                      m.once_input_pj, ann_pj > 0 ? m.per_tick_input_pj / ann_pj : 0.0,
                      ann_pj > 0 ? m.once_input_pj / ann_pj : 0.0,
                      ann_pj > 0 ? break_even_text(t1, in.ticks).c_str() : "-",
                      ann_pj > 0 ? break_even_text(t2, in.ticks).c_str() : "-");
        out << line;
    };
    const double once_mac = in.ticks ? c.e_mac_pj * k.analog_macs / double(in.ticks) : 0.0;
    model(r.measured, r.ann.float_pj, once_mac);
    model(r.papers, r.ann.float_pj, once_mac);
    const double memory_once =
        r.memory.total.per_tick_input_pj > r.memory.total.once_input_pj && in.ticks > 1
            ? (r.memory.total.per_tick_input_pj - r.memory.total.once_input_pj) / double(in.ticks - 1)
            : 0.0;
    model(r.memory.total, r.memory.ann.per_tick_input_pj, memory_once);
    std::snprintf(
        line, sizeof line, "    memory-inclusive split: operations %.4g pJ, memory accesses %.4g pJ (%.0f%%)\n",
        r.memory.ops_pj, r.memory.access_pj,
        r.memory.total.per_tick_input_pj > 0 ? 100.0 * r.memory.access_pj / r.memory.total.per_tick_input_pj : 0.0);
    out << line;
    std::snprintf(line, sizeof line, "  baselines: %s %.4g MACs x %.3g pJ = %.4g pJ",
                  ann_baseline_name(r.ann.own).c_str(), r.ann.macs, c.e_mac_pj, r.ann.float_pj);
    out << line;
    if (r.ann.activation_bits) {
        std::snprintf(line, sizeof line,
                      "; quantised ANN (%u-bit activations, 8-bit weights) %.4g pJ (SNN proxy, input once: x%.2f)",
                      r.ann.activation_bits, r.ann.quantised_pj,
                      r.ann.quantised_pj > 0 ? r.measured.once_input_pj / r.ann.quantised_pj : 0.0);
        out << line;
    }
    if (in.ann) {
        std::snprintf(line, sizeof line, "; ANN on the memory model's hardware %.4g pJ",
                      r.memory.ann.per_tick_input_pj);
        out << line;
    } else {
        out << "; the memory model's ANN needs the model's /ann record";
    }
    out << "\n  (break-even: the SNN's energy taken as linear in T at this run's firing rates, E = a T + b)\n";
}

void print_energy_layers(std::ostream& out, const EnergyInputs& in, const EnergyCosts& c, const HardwareProfile& hw) {
    const auto layers = layer_energy(in, c, hw);
    char line[256];
    out << "energy per layer (target population; pJ per sample, the input every tick):\n";
    std::snprintf(line, sizeof line, "  %-28s %-28s %13s %13s %13s\n", "layer", "group", "proxy", "papers' way",
                  "memory-incl.");
    out << line;
    double group[role_groups][3] = {};
    for (const auto& l : layers) {
        std::snprintf(line, sizeof line, "  %-28s %-28s %13.4g %13.4g %13.4g\n", l.layer.c_str(),
                      role_group_name(l.group), l.proxy_pj, l.papers_pj, l.memory_pj);
        out << line;
        group[int(l.group)][0] += l.proxy_pj, group[int(l.group)][1] += l.papers_pj,
            group[int(l.group)][2] += l.memory_pj;
    }
    out << "energy per group of layers:\n";
    for (int g = 0; g < role_groups; ++g) {
        std::snprintf(line, sizeof line, "  %-57s %13.4g %13.4g %13.4g\n", role_group_name(RoleGroup(g)), group[g][0],
                      group[g][1], group[g][2]);
        out << line;
    }
}

void print_energy_json(std::ostream& out, const EnergyInputs& in, const EnergyCosts& c, const HardwareProfile& hw) {
    const Report r = compute(in, c, hw);
    const auto& k = r.counts;
    auto model = [&](const ModelEnergy& m, double ann_pj) {
        return "{\"name\": " + json_string(m.name) + ", \"input_every_tick_pj\": " + json_number(m.per_tick_input_pj) +
               ", \"input_once_pj\": " + json_number(m.once_input_pj) + ", \"ann_pj\": " + json_number(ann_pj) + "}";
    };
    out << "{\n  \"samples\": " << in.samples << ", \"ticks\": " << in.ticks
        << ",\n  \"assumptions\": {\"e_ac_pj\": " << json_number(c.e_ac_pj) << ", \"e_mac_pj\": " << json_number(c.e_mac_pj)
        << ", \"profile\": {\"name\": " << json_string(hw.name) << ", \"e_add_pj\": " << json_number(hw.e_add_pj)
        << ", \"e_mult_pj\": " << json_number(hw.e_mult_pj) << ", \"e_mac_pj\": " << json_number(hw.e_mac_pj)
        << ", \"ram_pj_per_bit\": " << json_number(hw.ram_pj_per_bit)
        << ", \"ram_pj_offset\": " << json_number(hw.ram_pj_offset)
        << ", \"memory\": " << json_string(hw.global_memory ? "global" : "local")
        << ", \"neuron_updates\": " << json_string(hw.clocked_updates ? "clocked" : "event_driven") << "}},\n";
    out << "  \"counts\": {\"analog_macs\": " << json_number(k.analog_macs) << ", \"synaptic_acs\": {";
    for (int g = 0; g < role_groups; ++g)
        out << (g ? ", " : "") << json_string(role_group_name(RoleGroup(g))) << ": " << json_number(k.synaptic_acs[g]);
    out << "}, \"failed\": " << json_number(k.failed) << ", \"masked_spikes\": " << json_number(k.masked_spikes)
        << ", \"coincidences\": " << json_number(k.coincidences) << ", \"softmax\": " << json_number(k.softmax)
        << ", \"deliveries\": " << json_number(k.deliveries) << ", \"updates\": " << json_number(k.updates)
        << ", \"clocked_updates\": " << json_number(k.clocked_updates) << ", \"spikes\": " << json_number(k.spikes)
        << ", \"sops\": " << json_number(k.acs()) << ", \"papers_sops\": " << json_number(r.papers_sops) << "},\n";
    out << "  \"ann\": {\"baseline\": " << json_string(ann_baseline_name(r.ann.own))
        << ", \"macs\": " << json_number(r.ann.macs) << ", \"float_pj\": " << json_number(r.ann.float_pj)
        << ", \"activation_bits\": " << r.ann.activation_bits << ", \"quantised_pj\": " << json_number(r.ann.quantised_pj)
        << ", \"memory_model_pj\": " << json_number(in.ann ? r.memory.ann.per_tick_input_pj : NAN) << "},\n";
    out << "  \"models\": [" << model(r.measured, r.ann.float_pj) << ",\n    " << model(r.papers, r.ann.float_pj)
        << ",\n    " << model(r.memory.total, in.ann ? r.memory.ann.per_tick_input_pj : NAN)
        << "],\n  \"layers\": " << energy_layers_json(r.layers, "  ") << "\n}\n";
}

std::string energy_layers_json(const std::vector<LayerEnergy>& layers, const char* indent) {
    std::string out = "[";
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const auto& l = layers[i];
        out += std::string(i ? "," : "") + "\n  " + indent + "{\"layer\": " + json_string(l.layer) +
               ", \"group\": " + json_string(role_group_name(l.group)) + ", \"proxy_pj\": " + json_number(l.proxy_pj) +
               ", \"papers_pj\": " + json_number(l.papers_pj) + ", \"memory_pj\": " + json_number(l.memory_pj) + "}";
    }
    return out + "\n" + indent + "]";
}

} // namespace quantal::cli
