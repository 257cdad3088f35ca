#include "io/checkpoint.hpp"

#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>
#include <sstream>

#include "io/ledger_archive.hpp"
#include "io/sealed_file.hpp"
#include "sim/errors.hpp"

namespace quantal {

// Cereal serialisation of the engine's and the run's plain structs. Kept here, so sim/ does not
// depend on Cereal; found by argument-dependent lookup.
template <class A> void serialize(A& a, Readout& r) { a(r.population, r.ticks, r.values); }
template <class A> void serialize(A& a, SpikeRecord& s) { a(s.tick, s.population, s.neuron); }
template <class A> void serialize(A& a, SampleResult& r) { a(r.sample, r.ledger, r.readouts, r.spikes); }
template <class A> void serialize(A& a, EngineState::Population& p) {
    a(p.v, p.input, p.syn, p.state_at, p.last_visit, p.wake_at, p.mark, p.to_visit, p.unresolved, p.fired, p.sweeping,
      p.fired_tick, p.held_input_at, p.rng);
}
template <class A> void serialize(A& a, EngineState::Wake& w) { a(w.tick, w.population, w.neuron); }
template <class A> void serialize(A& a, EngineState::Delivery& d) { a(d.tick, d.projection, d.source, d.group); }
template <class A> void serialize(A& a, EngineState& e) {
    a(e.sample, e.ticks, e.seed, e.update_path, e.now, e.next, e.populations, e.projection_rng, e.operator_rng, e.wakes,
      e.deliveries, e.observe_at, e.result);
}
template <class A> void serialize(A& a, TracePosition& t) {
    a(t.samples, t.any_sample, t.last_sample, t.spikes, t.total, t.snn_pj, t.ann_pj, t.open, t.open_label, t.carried,
      t.open_in_file, t.open_timestamps, t.open_node_ids);
}
template <class A> void serialize(A& a, RunCheckpoint& c) {
    a(c.run, c.run_command_line, c.completed, c.total, c.correct, c.labelled, c.has_trace, c.trace, c.in_sample,
      c.engine);
}

namespace {

constexpr SealedKind checkpoint_kind{{'Q', 'N', 'T', 'L', 'C', 'K', 'P', 'T'}, RunCheckpoint::format_version, "checkpoint"};

} // namespace

void write_checkpoint(const std::string& path, const RunCheckpoint& checkpoint) {
    std::ostringstream payload(std::ios::binary);
    {
        cereal::PortableBinaryOutputArchive archive(payload);
        archive(const_cast<RunCheckpoint&>(checkpoint)); // serialize() is one function for both directions
    }
    write_sealed(path, checkpoint_kind, std::move(payload).str());
}

RunCheckpoint read_checkpoint(const std::string& path) {
    const std::string bytes = read_sealed(path, checkpoint_kind);
    RunCheckpoint c;
    try {
        std::istringstream payload(bytes, std::ios::binary);
        cereal::PortableBinaryInputArchive archive(payload);
        archive(c);
        if (payload.tellg() != std::streampos(std::streamoff(bytes.size())))
            throw InputError("checkpoint " + path + ": has bytes after its contents");
    } catch (const cereal::Exception& e) {
        throw InputError("checkpoint " + path + ": cannot be decoded (" + e.what() + ")");
    }
    return c;
}

} // namespace quantal
