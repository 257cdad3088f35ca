#include "sim/energy_models.hpp"

#include <algorithm>
#include <cmath>

namespace quantal {

namespace {

double per_sample(const EnergyInputs& in) { return in.samples ? double(in.samples) : 1.0; }

// The accumulates of one projection estimated the papers' way: the firing rate of the layer's
// input x T x the layer's FLOPs, i.e. (input spikes per source neuron per sample) x synapses. The
// input is the spike tensor after RSM's per-spike mask, as a paper measures its masked network.
double papers_projection_sops(const EnergyInputs& in, const EnergyInputs::Projection& p) {
    const auto& src = in.populations[p.source];
    const double delivered = double(p.counts.spikes_in - p.counts.masked_spikes);
    return src.size ? delivered / per_sample(in) / double(src.size) * double(p.synapses) : 0.0;
}

double rate_times_ticks(const EnergyInputs& in, std::uint32_t pop) { // spikes per neuron per sample
    if (pop == EnergyInputs::none) return 0.0;
    const auto& p = in.populations[pop];
    return p.size ? double(p.counts.spikes) / per_sample(in) / double(p.size) : 0.0;
}

// Papers' q k^T and A v accumulates of one operator (its ANN MACs are half each); the measured
// ones if the trace does not say which populations are q and v (written before they were recorded).
double papers_qk(const EnergyInputs& in, const EnergyInputs::Operator& o) {
    if (o.q == EnergyInputs::none) return double(o.counts.coincidences) / per_sample(in);
    return rate_times_ticks(in, o.q) * double(o.ann_macs) / 2.0;
}
double papers_av(const EnergyInputs& in, const EnergyInputs::Operator& o) {
    if (o.v == EnergyInputs::none) return double(o.counts.deliveries) / per_sample(in);
    return rate_times_ticks(in, o.v) * double(o.ann_macs) / 2.0;
}

double analog_macs(const EnergyInputs& in) {
    double n = 0;
    for (const auto& p : in.populations) n += double(p.counts.macs);
    return n / per_sample(in);
}

double softmax_macs(const EnergyInputs& in) {
    double n = 0;
    for (const auto& o : in.operators) n += double(o.counts.macs);
    return n / per_sample(in);
}

// What keeping the analog input's result saves: all its ticks but the first.
double once_saving(const EnergyInputs& in, double per_mac_pj) {
    return in.ticks ? per_mac_pj * analog_macs(in) * (1.0 - 1.0 / double(in.ticks)) : 0.0;
}

} // namespace

EnergyInputs energy_inputs(const EnergyLedger& ledger, const Network& net) {
    EnergyInputs in;
    in.samples = ledger.samples;
    in.ticks = ledger.ticks;
    in.ann = net.ann();
    for (PopulationId p = 0; p < net.populations().size(); ++p) {
        const auto& pop = net.population(p);
        const bool leaky =
            std::holds_alternative<LifNeuron>(pop.model) || std::holds_alternative<CubaLifNeuron>(pop.model);
        in.populations.push_back({pop.name, pop.size(), !is_source(pop.model), leaky, ledger.populations.at(p)});
    }
    for (ProjectionId j = 0; j < net.projections().size(); ++j) {
        const auto& pr = net.projection(j);
        in.projections.push_back(
            {pr.name, pr.role, pr.source, pr.target, net.synapses(j), net.stored_weights(j), ledger.projections.at(j)});
    }
    for (std::size_t o = 0; o < net.operators().size(); ++o) {
        const auto& a = std::get<SoftmaxAttention>(net.operators()[o]);
        in.operators.push_back(
            {a.name, a.q, a.k, a.v, a.scores, a.output, net.attention(o).ann_macs(), ledger.operators.at(o)});
    }
    return in;
}

RoleGroup role_group(const std::string& role) {
    if (role == "qkv_in" || role == "proj_in") return RoleGroup::attention;
    if (role == "fc1_in" || role == "fc2_in") return RoleGroup::mlp;
    if (role == "stream") return RoleGroup::stream;
    if (role == "merge") return RoleGroup::merge;
    if (role == "embed" || role == "head") return RoleGroup::embedding_head;
    return RoleGroup::other;
}

const char* role_group_name(RoleGroup g) {
    switch (g) {
    case RoleGroup::attention:
        return "attention (qkv_in, proj_in)";
    case RoleGroup::mlp:
        return "MLP (fc1_in, fc2_in)";
    case RoleGroup::stream:
        return "stream";
    case RoleGroup::merge:
        return "patch merging (merge)";
    case RoleGroup::embedding_head:
        return "embedding, head";
    default:
        return "without role";
    }
}

double ClassCounts::acs() const {
    double n = coincidences + deliveries;
    for (double a : synaptic_acs) n += a;
    return n;
}

ClassCounts class_counts(const EnergyInputs& in) {
    ClassCounts c;
    const double n = per_sample(in);
    c.analog_macs = analog_macs(in);
    for (const auto& p : in.projections) {
        c.synaptic_acs[int(role_group(p.role))] += double(p.counts.transmitted) / n;
        c.failed += double(p.counts.failed()) / n;
        c.masked_spikes += double(p.counts.masked_spikes) / n;
        c.synapses += double(p.synapses);
    }
    for (const auto& o : in.operators) {
        c.coincidences += double(o.counts.coincidences) / n;
        c.deliveries += double(o.counts.deliveries) / n;
        c.softmax += double(o.counts.macs) / n;
        c.masked_spikes += double(o.counts.masked_spikes) / n;
    }
    for (const auto& p : in.populations) {
        c.spikes += double(p.counts.spikes) / n;
        if (!p.neuron) continue;
        c.updates += double(p.counts.updates) / n;
        c.clocked_updates += double(in.ticks) * double(p.size);
    }
    return c;
}

ModelEnergy measured_proxy(const EnergyInputs& in, const EnergyCosts& c) {
    const auto k = class_counts(in);
    ModelEnergy e{"proxy, measured (E_AC x accumulates + E_MAC x MACs)", 0, 0};
    e.per_tick_input_pj = c.e_ac_pj * k.acs() + c.e_mac_pj * (k.analog_macs + k.softmax);
    e.once_input_pj = e.per_tick_input_pj - once_saving(in, c.e_mac_pj);
    return e;
}

double papers_sops(const EnergyInputs& in) {
    double n = 0;
    for (const auto& p : in.projections) n += papers_projection_sops(in, p);
    for (const auto& o : in.operators) n += papers_qk(in, o) + papers_av(in, o);
    return n;
}

ModelEnergy papers_proxy(const EnergyInputs& in, const EnergyCosts& c) {
    ModelEnergy e{"proxy, the papers' way (rate x T x FLOPs per layer)", 0, 0};
    e.per_tick_input_pj = c.e_ac_pj * papers_sops(in) + c.e_mac_pj * (analog_macs(in) + softmax_macs(in));
    e.once_input_pj = e.per_tick_input_pj - once_saving(in, c.e_mac_pj);
    return e;
}

double quantised_mac_pj(unsigned activation_bits, unsigned weight_bits) {
    return 0.2 * double(activation_bits) * double(weight_bits) / 64.0 + 0.1;
}

AnnEnergy ann_energy(const EnergyInputs& in, const EnergyCosts& c) {
    AnnEnergy a;
    if (in.ann) {
        a.own = true;
        a.macs = double(in.ann->macs());
        if (in.ann->levels) a.activation_bits = unsigned(std::ceil(std::log2(double(in.ann->levels) + 1.0)));
        if (a.activation_bits)
            for (const auto& l : in.ann->layers) // the image enters as 8-bit pixels
                a.quantised_pj +=
                    double(l.macs) * quantised_mac_pj(l.kind == "analog_input" ? 8 : a.activation_bits, 8);
    } else { // one MAC per synapse and per attention product, plus the analog input's map once
        for (const auto& p : in.projections) a.macs += double(p.synapses);
        for (const auto& o : in.operators) a.macs += double(o.ann_macs);
        if (in.ticks) a.macs += analog_macs(in) / double(in.ticks);
    }
    a.float_pj = c.e_mac_pj * a.macs;
    return a;
}

double break_even_ticks(double snn_pj, double once_pj, std::uint64_t ticks, double ann_pj) {
    const double per_tick = ticks ? (snn_pj - once_pj) / double(ticks) : 0.0;
    return per_tick > 0 ? (ann_pj - once_pj) / per_tick : 0.0;
}

namespace {

// Memory sizes in bits, and what one access to each costs under the profile.
struct Memories {
    const EnergyInputs& in;
    const HardwareProfile& hw;
    double analog_weight_bits = 0, global_bits = 0;

    Memories(const EnergyInputs& i, const HardwareProfile& h) : in(i), hw(h) {
        if (in.ann)
            for (const auto& l : in.ann->layers)
                if (l.kind == "analog_input") analog_weight_bits += double(l.weights) * hw.weight_bits;
        global_bits = analog_weight_bits;
        for (const auto& p : in.projections) global_bits += weights(p);
        for (std::uint32_t p = 0; p < in.populations.size(); ++p)
            global_bits += potentials(p) + biases(p) + spike_queue(p);
        for (const auto& o : in.operators) global_bits += attention_weights(o);
    }
    double weights(const EnergyInputs::Projection& p) const { return double(p.stored_weights) * hw.weight_bits; }
    double potentials(std::uint32_t p) const {
        return in.populations[p].neuron ? double(in.populations[p].size) * hw.potential_bits : 0.0;
    }
    double biases(std::uint32_t p) const {
        return in.populations[p].neuron ? double(in.populations[p].size) * hw.weight_bits : 0.0;
    }
    // A queue of spike addresses, one per neuron at most: size x ceil(log2 size) bits.
    double spike_queue(std::uint32_t p) const {
        const double n = double(in.populations[p].size);
        return n * std::max(1.0, std::ceil(std::log2(std::max(n, 2.0))));
    }
    double attention_weights(const EnergyInputs::Operator& o) const {
        return o.scores == EnergyInputs::none ? 0.0 : double(in.populations[o.scores].size) * hw.activation_bits;
    }
    double access(double bits) const { return hw.ram_pj(hw.global_memory ? global_bits : bits); }
    double potential_access(std::uint32_t p) const {
        return p == EnergyInputs::none ? hw.ram_pj(0) : access(potentials(p));
    }
};

struct Split {
    double ops = 0, access = 0;
};

// Per-sample energy of every layer (indexed by target population) under the memory model.
std::vector<Split> memory_layers(const EnergyInputs& in, const HardwareProfile& hw, const Memories& m) {
    const double n = per_sample(in);
    std::vector<Split> layer(in.populations.size());
    for (std::uint32_t p = 0; p < in.populations.size(); ++p) {
        const auto& pop = in.populations[p];
        if (!pop.neuron) continue;
        const double u = hw.clocked_updates ? double(in.ticks) * double(pop.size) : double(pop.counts.updates) / n;
        const double spikes = double(pop.counts.spikes) / n, macs = double(pop.counts.macs) / n;
        auto& l = layer[p];
        l.ops += hw.e_add_pj * (u + spikes) + (pop.leaky ? hw.e_mult_pj * u : 0.0) + hw.e_mac_pj * macs;
        l.access += 2.0 * u * m.access(m.potentials(p)) + u * m.access(m.biases(p)) +
                    spikes * m.access(m.spike_queue(p)) +
                    macs * (m.access(m.analog_weight_bits) + 2.0 * m.access(m.potentials(p)));
    }
    for (const auto& pr : in.projections) {
        const double t = double(pr.counts.transmitted) / n, s = double(pr.counts.spikes_in) / n;
        auto& l = layer[pr.target];
        l.ops += hw.e_add_pj * 2.0 * t; // the accumulate and its address
        l.access += t * (m.access(m.weights(pr)) + 2.0 * m.access(m.potentials(pr.target))) +
                    s * m.access(m.spike_queue(pr.source));
    }
    for (const auto& o : in.operators) {
        const double co = double(o.counts.coincidences) / n, d = double(o.counts.deliveries) / n,
                     sm = double(o.counts.macs) / n;
        const double a = m.access(m.attention_weights(o));
        auto& scores = layer[o.scores == EnergyInputs::none ? o.output : o.scores];
        auto& out = layer[o.output];
        scores.ops += hw.e_add_pj * co;
        scores.access += 2.0 * co * m.potential_access(o.scores);
        out.ops += hw.e_add_pj * d + hw.e_mac_pj * sm;
        out.access +=
            d * (a + 2.0 * m.potential_access(o.output)) + 2.0 * sm * a; // softmax reads a score, writes a weight
    }
    return layer;
}

} // namespace

MemoryEnergy memory_model(const EnergyInputs& in, const HardwareProfile& hw) {
    const Memories m(in, hw);
    MemoryEnergy e;
    e.global_bits = m.global_bits;
    e.total.name = std::string("memory-inclusive (") + hw.name + ", " +
                   (hw.global_memory ? "one global memory" : "a memory per projection and population") + ", " +
                   (hw.clocked_updates ? "clocked updates T x N" : "event-driven updates") + ")";
    for (const auto& l : memory_layers(in, hw, m)) e.ops_pj += l.ops, e.access_pj += l.access;
    e.total.per_tick_input_pj = e.ops_pj + e.access_pj;
    const double per_mac = hw.e_mac_pj + m.access(m.analog_weight_bits); // + the potential write below
    double analog_access = 0;
    for (std::uint32_t p = 0; p < in.populations.size(); ++p)
        analog_access += double(in.populations[p].counts.macs) / per_sample(in) * 2.0 * m.access(m.potentials(p));
    const double analog_total = per_mac * analog_macs(in) + analog_access;
    e.total.once_input_pj =
        e.total.per_tick_input_pj - (in.ticks ? analog_total * (1.0 - 1.0 / double(in.ticks)) : 0.0);
    if (in.ann) { // Lemaire's ANN layer: a MAC and a weight read per MAC, inputs read, outputs and biases
        double ann_bits = 0;
        for (const auto& l : in.ann->layers)
            ann_bits += double(l.weights) * hw.weight_bits + double(l.outputs) * hw.activation_bits;
        auto access = [&](double bits) { return hw.ram_pj(hw.global_memory ? ann_bits : bits); };
        for (const auto& l : in.ann->layers) {
            const double weights_bits =
                l.kind == "attention" ? double(l.inputs) * hw.activation_bits : double(l.weights) * hw.weight_bits;
            const double pj = double(l.macs) * (hw.e_mac_pj + access(weights_bits)) +
                              double(l.inputs) * access(double(l.inputs) * hw.activation_bits) +
                              double(l.outputs) * (access(double(l.outputs) * hw.activation_bits) +
                                                   access(double(l.outputs) * hw.weight_bits));
            e.ann.per_tick_input_pj += pj;
        }
        e.ann.once_input_pj = e.ann.per_tick_input_pj;
        e.ann.name = "ANN on the same hardware";
    }
    return e;
}

std::vector<LayerEnergy> layer_energy(const EnergyInputs& in, const EnergyCosts& c, const HardwareProfile& hw) {
    const double n = per_sample(in);
    const Memories m(in, hw);
    const auto memory = memory_layers(in, hw, m);
    std::vector<LayerEnergy> out(in.populations.size());
    std::vector<double> group_events(in.populations.size() * role_groups, 0.0);
    for (std::uint32_t p = 0; p < in.populations.size(); ++p) {
        out[p].layer = in.populations[p].name;
        const double macs = c.e_mac_pj * double(in.populations[p].counts.macs) / n;
        out[p].proxy_pj = out[p].papers_pj = macs;
        out[p].memory_ops_pj = memory[p].ops, out[p].memory_access_pj = memory[p].access;
        out[p].memory_pj = memory[p].ops + memory[p].access;
        if (macs > 0) out[p].group = RoleGroup::embedding_head; // the analog input's layer
    }
    for (const auto& pr : in.projections) {
        out[pr.target].proxy_pj += c.e_ac_pj * double(pr.counts.transmitted) / n;
        out[pr.target].papers_pj += c.e_ac_pj * papers_projection_sops(in, pr);
        // + 1: a layer whose inputs never fired still belongs to their role's group
        group_events[pr.target * role_groups + int(role_group(pr.role))] += double(pr.counts.attempted) + 1.0;
    }
    for (const auto& o : in.operators) {
        const std::uint32_t scores = o.scores == EnergyInputs::none ? o.output : o.scores;
        out[scores].proxy_pj += c.e_ac_pj * double(o.counts.coincidences) / n;
        out[o.output].proxy_pj += (c.e_ac_pj * double(o.counts.deliveries) + c.e_mac_pj * double(o.counts.macs)) / n;
        out[scores].papers_pj += c.e_ac_pj * papers_qk(in, o);
        out[o.output].papers_pj += c.e_ac_pj * papers_av(in, o) + c.e_mac_pj * double(o.counts.macs) / n;
        out[scores].group = out[o.output].group = RoleGroup::attention;
    }
    // A layer belongs to the group of the role that brings it the most synaptic events.
    for (std::uint32_t p = 0; p < in.populations.size(); ++p) {
        if (out[p].group != RoleGroup::other) continue;
        const auto* row = &group_events[p * role_groups];
        const auto best = std::max_element(row, row + role_groups);
        if (*best > 0) out[p].group = RoleGroup(best - row);
    }
    return out;
}

} // namespace quantal
