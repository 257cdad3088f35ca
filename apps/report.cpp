#include <cstdio>
#include <iomanip>

#include "apps/commands.hpp"
#include "apps/values.hpp"

namespace quantal::cli {

void add_energy_options(CLI::App& command, EnergyCosts& costs) {
    command.add_option("--e-ac", costs.e_ac_pj, "Energy of one accumulate (synaptic event), pJ")
        ->transform(real_number(0.0, 1e6))->capture_default_str();
    command.add_option("--e-mac", costs.e_mac_pj, "Energy of one multiply-accumulate, pJ")
        ->transform(real_number(0.0, 1e6))->capture_default_str();
}

void print_energy_report(std::ostream& out, const Network& net, const EnergyLedger& ledger, const EnergyCosts& costs) {
    const double samples = ledger.samples ? double(ledger.samples) : 1.0;
    char line[320];
    out << "populations (per sample):\n";
    std::snprintf(line, sizeof line, "  %-24s %10s %12s %12s %12s %14s\n", "name", "neurons", "spikes", "rate/tick",
                  "rate Hz", "updates");
    out << line;
    for (PopulationId p = 0; p < net.populations().size(); ++p) {
        const auto& c = ledger.populations[p];
        const auto n = net.population(p).size();
        const double per_tick = ledger.ticks ? double(c.spikes) / samples / double(n) / double(ledger.ticks) : 0.0;
        std::snprintf(line, sizeof line, "  %-24s %10u %12.1f %12.5f %12.3f %14.1f\n", net.population(p).name.c_str(), n,
                      double(c.spikes) / samples, per_tick, per_tick * 1000.0 / net.dt_ms(), double(c.updates) / samples);
        out << line;
    }
    out << "projections (per sample):\n";
    std::snprintf(line, sizeof line, "  %-24s %10s %14s %14s %14s %12s\n", "name", "release", "attempted", "transmitted",
                  "failed", "energy pJ");
    out << line;
    for (ProjectionId p = 0; p < net.projections().size(); ++p) {
        const auto& c = ledger.projections[p];
        std::snprintf(line, sizeof line, "  %-24s %10s %14.1f %14.1f %14.1f %12.1f\n", net.projection(p).name.c_str(),
                      mode_name(net.projection(p).release.mode), double(c.attempted) / samples,
                      double(c.transmitted) / samples, double(c.failed()) / samples,
                      costs.e_ac_pj * double(c.transmitted) / samples);
        out << line;
    }
    if (!net.operators().empty()) {
        out << "operators (per sample):\n";
        std::snprintf(line, sizeof line, "  %-24s %14s %14s %14s %12s %12s\n", "name", "coincidences", "deliveries",
                      "softmax MACs", "masked", "energy pJ");
        out << line;
        for (std::size_t o = 0; o < net.operators().size(); ++o) {
            const auto& c = ledger.operators[o];
            const auto& name = std::visit([](const auto& op) -> const std::string& { return op.name; }, net.operators()[o]);
            std::snprintf(line, sizeof line, "  %-24s %14.1f %14.1f %14.1f %12.1f %12.1f\n", name.c_str(),
                          double(c.coincidences) / samples, double(c.deliveries) / samples, double(c.macs) / samples,
                          double(c.masked_spikes) / samples,
                          (costs.e_ac_pj * double(c.coincidences + c.deliveries) + costs.e_mac_pj * double(c.macs)) / samples);
            out << line;
        }
    }
    const auto s = summarize(ledger, net, costs);
    std::snprintf(line, sizeof line,
                  "energy per sample: SNN %.4g pJ (E_AC %.2f pJ x %.4g SOPs + E_MAC %.2f pJ x %.4g MACs), "
                  "%s %.4g pJ, ratio %.3f; %.3f spikes per synapse\n",
                  s.snn_pj, costs.e_ac_pj, s.sops, costs.e_mac_pj, double(ledger.total_macs()) / samples,
                  ann_baseline_name(s.ann_own).c_str(), s.ann_pj, s.ann_pj > 0 ? s.snn_pj / s.ann_pj : 0.0, s.spikes_per_synapse);
    out << line;
    print_energy_models(out, energy_inputs(ledger, net), costs, HardwareProfile{});
}

} // namespace quantal::cli
