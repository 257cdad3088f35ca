#pragma once
// Sharing a study's work units among processes: one process, or every rank of `mpirun -n K`
// (Open MPI; docs/distributed.md). Rank 0 hands out units one at a time, first come first served,
// to the other ranks and to a worker thread of its own, and collects every result; the others
// compute what they are sent. Results do not depend on who computed them (apps/study/work.hpp).
#include <cstdint>
#include <functional>
#include <span>

#include "apps/study/work.hpp"

namespace quantal::study {

class Processes {
public:
    // Joins the MPI job when started by mpirun (or srun), else a single process. InputError when
    // started by mpirun with more than one rank and this quantal was built without MPI.
    Processes();
    ~Processes();
    Processes(const Processes&) = delete;
    Processes& operator=(const Processes&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool coordinator() const { return rank_ == 0; }
    // With several ranks, an error on one must end all of them (the others would wait for it):
    // prints "quantal: <message>" and aborts the job with `exit_code`. One process: returns.
    void abort_job(const char* message, int exit_code) const;

private:
    int rank_ = 0, size_ = 1;
    bool mpi_ = false;
};

using ComputeUnit = std::function<UnitResult(std::uint64_t unit)>;
using CollectUnit = std::function<void(UnitResult&&)>;

// Computes the units in `todo`. On rank 0 `collect` is called for each result as it arrives, on the
// calling thread; on the other ranks `todo` is ignored (they compute what rank 0 sends) and
// `collect` is never called. Returns when every unit is collected (rank 0) or when rank 0 says
// there is no more work. An exception in `compute` on rank 0's worker is rethrown here.
void distribute(const Processes& processes, std::span<const std::uint64_t> todo, const ComputeUnit& compute,
                const CollectUnit& collect);

} // namespace quantal::study
