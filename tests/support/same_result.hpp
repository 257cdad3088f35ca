#pragma once
// Two samples' results compared whole: spikes in order, every ledger count, every readout value.
// For tests whose oracle is "the same run another way" (threads, checkpoints).
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "sim/engine.hpp"

namespace quantal::testing {

inline std::vector<std::uint64_t> ledger_counts(const EnergyLedger& l) {
    std::vector<std::uint64_t> c;
    for (const auto& p : l.populations) c.insert(c.end(), {p.spikes, p.updates, p.drift_ticks, p.wakeups, p.macs});
    for (const auto& p : l.projections) c.insert(c.end(), {p.spikes_in, p.masked_spikes, p.attempted, p.transmitted});
    for (const auto& p : l.operators) c.insert(c.end(), {p.coincidences, p.deliveries, p.macs, p.masked_spikes});
    return c;
}

inline void require_same(const SampleResult& a, const SampleResult& b) {
    REQUIRE(a.spikes == b.spikes); // same spikes in the same order
    REQUIRE(ledger_counts(a.ledger) == ledger_counts(b.ledger));
    REQUIRE(a.readouts.size() == b.readouts.size());
    for (std::size_t r = 0; r < a.readouts.size(); ++r) {
        REQUIRE(a.readouts[r].ticks == b.readouts[r].ticks);
        REQUIRE(a.readouts[r].values == b.readouts[r].values);
    }
}

} // namespace quantal::testing
