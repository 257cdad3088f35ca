#include "sim/energy_ledger.hpp"

#include "network/network.hpp"

namespace quantal {

PopulationCounts& PopulationCounts::operator+=(const PopulationCounts& o) {
    spikes += o.spikes, updates += o.updates, drift_ticks += o.drift_ticks, wakeups += o.wakeups, macs += o.macs;
    return *this;
}

ProjectionCounts& ProjectionCounts::operator+=(const ProjectionCounts& o) {
    spikes_in += o.spikes_in, masked_spikes += o.masked_spikes, attempted += o.attempted, transmitted += o.transmitted;
    return *this;
}

OperatorCounts& OperatorCounts::operator+=(const OperatorCounts& o) {
    coincidences += o.coincidences, deliveries += o.deliveries, macs += o.macs, masked_spikes += o.masked_spikes;
    return *this;
}

EnergyLedger EnergyLedger::for_network(const Network& net, std::uint64_t ticks) {
    EnergyLedger l;
    l.populations.resize(net.populations().size());
    l.projections.resize(net.projections().size());
    l.operators.resize(net.operators().size());
    l.ticks = ticks;
    return l;
}

EnergyLedger& EnergyLedger::operator+=(const EnergyLedger& o) {
    if (populations.empty() && projections.empty()) {
        populations.resize(o.populations.size());
        projections.resize(o.projections.size());
        operators.resize(o.operators.size());
        ticks = o.ticks;
    }
    for (std::size_t i = 0; i < o.operators.size(); ++i) operators[i] += o.operators[i];
    for (std::size_t i = 0; i < o.populations.size(); ++i) populations[i] += o.populations[i];
    for (std::size_t i = 0; i < o.projections.size(); ++i) projections[i] += o.projections[i];
    samples += o.samples;
    return *this;
}

std::uint64_t EnergyLedger::total_transmitted() const {
    std::uint64_t n = 0;
    for (const auto& p : projections) n += p.transmitted;
    for (const auto& o : operators) n += o.coincidences + o.deliveries;
    return n;
}

std::uint64_t EnergyLedger::total_macs() const {
    std::uint64_t n = 0;
    for (const auto& p : populations) n += p.macs;
    for (const auto& o : operators) n += o.macs;
    return n;
}

std::uint64_t EnergyLedger::total_spikes() const {
    std::uint64_t n = 0;
    for (const auto& p : populations) n += p.spikes;
    return n;
}

EnergySummary summarize(const EnergyLedger& ledger, const Network& net, const EnergyCosts& costs) {
    EnergySummary s;
    const double samples = ledger.samples ? double(ledger.samples) : 1.0;
    std::uint64_t synapses = 0;
    for (ProjectionId p = 0; p < net.projections().size(); ++p) synapses += net.synapses(p);
    std::uint64_t input_macs = 0; // the analog input's map is MAC work in both the SNN and the ANN
    for (const auto& p : ledger.populations) input_macs += p.macs;
    s.sops = double(ledger.total_transmitted()) / samples;
    s.snn_pj = (costs.e_ac_pj * double(ledger.total_transmitted()) + costs.e_mac_pj * double(ledger.total_macs())) / samples;
    s.ann_own = net.ann().has_value();
    s.ann_pj = s.ann_own ? costs.e_mac_pj * double(net.ann()->macs())
                         : costs.e_mac_pj * (double(net.ann_macs()) + (ledger.ticks ? double(input_macs) / samples / double(ledger.ticks) : 0.0));
    s.spikes_per_synapse = synapses ? s.sops / double(synapses) : 0.0;
    return s;
}

} // namespace quantal
