#pragma once
// Threads within one sample (docs/engine.md, "Threads within a sample"). Work is split into
// contiguous parts whose results are combined in part order, so what a part computes never depends
// on how many threads ran it: results are bit for bit those of one thread.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <utility>

namespace quantal {

struct SampleParallelism {
    int threads = 1;
    // A step with less work than this (neurons stepped, predicted or visited; synapses one
    // projection delivers in a tick) runs on one thread: a parallel region costs microseconds.
    std::uint64_t min_work = 1;

    bool worth(std::uint64_t work) const { return threads > 1 && work >= min_work; }
    // Parts to split `work` items into: 1 below the threshold, else one per thread (at most one
    // per item).
    int parts(std::uint64_t work) const {
        return worth(work) ? int(std::min<std::uint64_t>(std::uint64_t(threads), work)) : 1;
    }
};

// Part k of `parts` contiguous ranges that cover [0, n); inner boundaries are multiples of `align`
// (a cache line of doubles by default, so that parts do not write into one line).
inline std::pair<std::uint64_t, std::uint64_t> part_range(int k, int parts, std::uint64_t n, std::uint64_t align = 8) {
    const std::uint64_t units = (n + align - 1) / align;
    auto boundary = [&](int i) { return std::min(n, units * std::uint64_t(i) / std::uint64_t(parts) * align); };
    return {boundary(k), k + 1 == parts ? n : boundary(k + 1)};
}

// fn(k) for every part k < parts, on up to `parts` OpenMP threads (inline when parts is 1). An
// exception thrown by a part is rethrown here after all parts ended (the first part's that threw).
template <class Fn>
void for_each_part(int parts, Fn&& fn) {
    if (parts <= 1) {
        fn(0);
        return;
    }
    std::exception_ptr error;
    int failed = parts;
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int k = 0; k < parts; ++k) {
        try {
            fn(k);
        } catch (...) {
#pragma omp critical(quantal_for_each_part)
            if (k < failed) failed = k, error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

// fn(i) for every i < n, handed out one at a time to up to `threads` OpenMP threads (items of
// uneven size: whole populations). Each item must write only its own data. Exceptions as above.
template <class Fn>
void for_each_index(int threads, std::size_t n, Fn&& fn) {
    if (threads <= 1 || n <= 1) {
        for (std::size_t i = 0; i < n; ++i) fn(i);
        return;
    }
    std::exception_ptr error;
    long failed = long(n);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (long i = 0; i < long(n); ++i) {
        try {
            fn(std::size_t(i));
        } catch (...) {
#pragma omp critical(quantal_for_each_index)
            if (i < failed) failed = i, error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

} // namespace quantal
