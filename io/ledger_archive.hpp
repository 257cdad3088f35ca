#pragma once
// Cereal serialisation of the energy ledger, shared by run checkpoints and sweep states. Kept in
// io/, so sim/ does not depend on Cereal; found by argument-dependent lookup.
#include "sim/energy_ledger.hpp"

namespace quantal {

template <class A> void serialize(A& a, PopulationCounts& c) {
    a(c.spikes, c.updates, c.drift_ticks, c.wakeups, c.macs);
}
template <class A> void serialize(A& a, ProjectionCounts& c) {
    a(c.spikes_in, c.masked_spikes, c.attempted, c.transmitted);
}
template <class A> void serialize(A& a, OperatorCounts& c) { a(c.coincidences, c.deliveries, c.macs, c.masked_spikes); }
template <class A> void serialize(A& a, EnergyLedger& l) {
    a(l.populations, l.projections, l.operators, l.samples, l.ticks);
}

} // namespace quantal
