#pragma once
// A study's work: every configuration that is run, cut into blocks of samples (work units), and
// what has been measured so far (a tally per configuration). The cut depends only on the plan,
// the sample count and the block size, never on threads or processes, and tallies are integer
// sums and per-sample bits, so a study gives the same numbers however its units were shared out,
// in whatever order they came back, and across any number of stops and resumes.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "apps/study/plan.hpp"
#include "sim/energy_ledger.hpp"

namespace quantal::study {

struct WorkUnit {
    std::size_t configuration = 0;
    std::uint64_t first = 0, count = 0; // samples [first, first + count) of the study's N
};

// Units of at most `block` samples for every configuration that is run (same_as empty), in plan order.
std::vector<WorkUnit> work_units(std::span<const Configuration> plan, std::uint64_t samples, std::uint64_t block);

// What one unit measured.
struct UnitResult {
    std::uint64_t unit = 0;
    std::vector<std::uint8_t> correct; // (observed ticks) x count: 1 where the prediction was right
    EnergyLedger ledger;               // summed over the unit's samples
};

// Everything measured for one configuration.
struct Tally {
    std::vector<std::uint8_t> correct; // (observed ticks) x N
    EnergyLedger ledger;
    bool any = false;                  // a unit has been added (the ledger is sized)
};

// The progress of a study: which units are done and what they measured. Serialised (Cereal) as
// the sweep's state file, with `identity`: the (name, value) list of everything that decides the
// results (model and data SHA-256, grid, block size, quantal's version). A state is resumed only
// by a sweep presenting exactly the same list.
struct StudyState {
    static constexpr std::uint32_t format_version = 1;
    std::vector<std::pair<std::string, std::string>> identity;
    std::uint64_t observed = 0, samples = 0; // each tally's correct is observed x samples
    std::vector<std::uint8_t> done;    // per unit
    std::vector<Tally> tallies;        // per configuration (empty for the ones that repeat another)

    StudyState() = default;
    StudyState(std::vector<std::pair<std::string, std::string>> identity, std::size_t units, std::size_t configurations,
               std::uint64_t observed, std::uint64_t samples);
    // Adds a unit's result (once: a unit already done is a logic error). Order does not matter.
    void add(const WorkUnit& unit, const UnitResult& result);
    std::size_t units_done() const;
};

// The state file beside a study's output (OUT.state): written atomically after every unit; read
// back only when intact (io/sealed_file.hpp). InputError naming the file otherwise.
void write_state(const std::string& path, const StudyState& state);
StudyState read_state(const std::string& path);

// Cereal bytes of a unit result, for sending between processes.
std::string encode(const UnitResult& result);
UnitResult decode_unit_result(const std::string& bytes);

} // namespace quantal::study
