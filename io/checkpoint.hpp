#pragma once
// Checkpoints of `quantal run` (docs/checkpoints.md): everything a run needs to continue as if it
// had never stopped, serialised with Cereal (portable binary) and sealed with a SHA-256 of the
// whole file, so a damaged or truncated checkpoint is refused before anything is decoded.
//
// File: "QNTLCKPT" | format version (u32, little-endian) | payload length (u64) | payload (Cereal
// portable binary archive of RunCheckpoint) | SHA-256 of everything before it (32 bytes).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/sealed_file.hpp"
#include "io/spike_trace.hpp"
#include "sim/energy_ledger.hpp"
#include "sim/engine.hpp"

namespace quantal {

struct RunCheckpoint {
    // Bumped whenever the payload's layout or meaning changes; older files are then refused.
    static constexpr std::uint32_t format_version = 1;

    // What the run is, as (name, value) in a fixed order: the model's SHA-256 and every option
    // that changes a result or the trace. A resume must present exactly the same list.
    std::vector<std::pair<std::string, std::string>> run;
    std::string run_command_line; // the first run's, as its trace's /run has it
    std::uint64_t completed = 0;  // samples completed (the next one is --offset + completed)
    EnergyLedger total;           // their ledger, summed (the report)
    std::uint64_t correct = 0, labelled = 0;
    bool has_trace = false;
    TracePosition trace;
    bool in_sample = false; // a sample was stopped at a tick boundary: `engine`
    EngineState engine;
};

// Writes `path` atomically: path.tmp is written, synced and renamed over path, so a crash or a
// full disk never leaves a damaged checkpoint and never loses the previous one. InputError naming
// the file and the system's reason.
void write_checkpoint(const std::string& path, const RunCheckpoint& checkpoint);
// InputError naming the file for one that is missing, not a checkpoint, of another format
// version, truncated or damaged (any byte changed).
RunCheckpoint read_checkpoint(const std::string& path);

} // namespace quantal
