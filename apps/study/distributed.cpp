#include "apps/study/distributed.hpp"

#include <chrono>
#include <cstdlib>
#include <deque>
#include <exception>
#include <future>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "sim/errors.hpp"

#ifdef QUANTAL_HAVE_MPI
#include <mpi.h>
#endif

namespace quantal::study {

namespace {

// Ranks a launcher announces: Open MPI's mpirun, and PMI/PMIx launchers (srun, MPICH's mpiexec).
int launched_ranks() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"})
        if (const char* v = std::getenv(name)) return std::max(1, std::atoi(v));
    return 1;
}

} // namespace

Processes::Processes() {
    const int launched = launched_ranks();
#ifdef QUANTAL_HAVE_MPI
    if (launched > 1 || std::getenv("OMPI_COMM_WORLD_RANK")) {
        int provided = 0;
        // Only the main thread calls MPI; rank 0's worker thread computes without it.
        MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
        if (provided < MPI_THREAD_FUNNELED) {
            MPI_Finalize();
            throw InputError("MPI: this MPI library does not allow threads (MPI_THREAD_FUNNELED)");
        }
        mpi_ = true;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &size_);
    }
#else
    if (launched > 1)
        throw InputError("started by mpirun with " + std::to_string(launched) +
                         " ranks, but this quantal was built without MPI (install libopenmpi-dev and rebuild)");
#endif
}

Processes::~Processes() {
#ifdef QUANTAL_HAVE_MPI
    if (mpi_) MPI_Finalize();
#endif
}

void Processes::abort_job(const char* message, int exit_code) const {
#ifdef QUANTAL_HAVE_MPI
    if (mpi_ && size_ > 1) {
        std::cerr << "quantal: " << (rank_ ? "rank " + std::to_string(rank_) + ": " : "") << message << std::endl;
        MPI_Abort(MPI_COMM_WORLD, exit_code);
    }
#else
    (void)message, (void)exit_code;
#endif
}

#ifdef QUANTAL_HAVE_MPI
namespace {

enum Tag : int { ready = 1, result = 2, unit = 3, stop = 4 };

void serve(const ComputeUnit& compute) {
    MPI_Send(nullptr, 0, MPI_BYTE, 0, ready, MPI_COMM_WORLD);
    while (true) {
        std::uint64_t u = 0;
        MPI_Status status;
        MPI_Recv(&u, 1, MPI_UINT64_T, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
        if (status.MPI_TAG == stop) return;
        const std::string bytes = encode(compute(u));
        MPI_Send(bytes.data(), int(bytes.size()), MPI_BYTE, 0, result, MPI_COMM_WORLD);
    }
}

} // namespace
#endif

void distribute(const Processes& processes, std::span<const std::uint64_t> todo, const ComputeUnit& compute,
                const CollectUnit& collect) {
    if (processes.size() == 1) {
        for (auto u : todo) collect(compute(u));
        return;
    }
#ifdef QUANTAL_HAVE_MPI
    if (!processes.coordinator()) return serve(compute);

    std::deque<std::uint64_t> queue(todo.begin(), todo.end());
    std::optional<std::future<UnitResult>> local; // rank 0's own worker
    auto start_local = [&] {
        if (queue.empty()) return local.reset();
        const auto u = queue.front();
        queue.pop_front();
        local = std::async(std::launch::async, [&compute, u] { return compute(u); });
    };
    start_local();
    int remote = processes.size() - 1; // ranks not yet told to stop
    while (remote > 0 || local) {
        bool busy = false;
        int flag = 0;
        MPI_Status status;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
        if (flag) {
            busy = true;
            int count = 0;
            MPI_Get_count(&status, MPI_BYTE, &count);
            std::string bytes(std::size_t(count), '\0');
            MPI_Recv(bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (status.MPI_TAG == result) collect(decode_unit_result(bytes));
            if (queue.empty()) {
                MPI_Send(nullptr, 0, MPI_UINT64_T, status.MPI_SOURCE, stop, MPI_COMM_WORLD);
                --remote;
            } else {
                const std::uint64_t u = queue.front();
                queue.pop_front();
                MPI_Send(&u, 1, MPI_UINT64_T, status.MPI_SOURCE, unit, MPI_COMM_WORLD);
            }
        }
        if (local && local->wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
            busy = true;
            collect(local->get()); // rethrows the worker's exception
            start_local();
        }
        if (!busy) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
#endif
}

} // namespace quantal::study
