#pragma once
// Pending work keyed by tick: a calendar queue (Brown 1988) with one bucket per tick over a
// window of `window` ticks ahead of the present, and an overflow list beyond it. Entries of one
// tick come out in the order they were pushed, so the order of work never depends on a heap's
// tie-breaking. Push and take are O(1); finding the next busy tick scans the window.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

#include "sim/time.hpp"

namespace quantal {

template <class Entry>
class TickCalendar {
public:
    // Empties the calendar and sets the present to tick `now`; the window is rounded up to a power of two.
    void reset(Tick window, Tick now = 0) {
        const auto w = std::bit_ceil(std::uint64_t(std::max<Tick>(window, 1)));
        if (buckets_.size() != w) buckets_.assign(w, {});
        for (auto& b : buckets_) b.clear();
        spare_.clear();
        far_.clear();
        far_min_ = never;
        now_ = now;
        size_ = 0;
    }

    // Work for tick `at` (>= the present).
    void push(Tick at, const Entry& e) {
        ++size_;
        if (at - now_ < Tick(buckets_.size())) {
            put(at, e);
        } else {
            far_.push_back({at, e}), far_min_ = std::min(far_min_, at);
        }
    }

    // The entries of tick t, in push order; moves the present to t (t >= the present). The caller
    // consumes them and then calls done(t).
    std::vector<Entry>& at(Tick t) {
        now_ = t;
        if (far_min_ < now_ + Tick(buckets_.size())) pull_in();
        return bucket(t);
    }
    // A consumed bucket's memory is released (the larger of it and the spare buffer is kept for
    // the next bucket to fill), so memory follows the pending entries, not the busiest ticks.
    void done(Tick t) {
        auto& b = bucket(t);
        size_ -= b.size();
        b.clear();
        if (b.capacity() > spare_.capacity()) std::swap(b, spare_);
        std::vector<Entry>().swap(b);
    }

    // The first tick after `t` that has entries, or never.
    Tick next_after(Tick t) const {
        const Tick end = now_ + Tick(buckets_.size());
        for (Tick x = t + 1; x < end; ++x)
            if (!bucket(x).empty()) return x;
        return far_min_;
    }

    std::size_t size() const { return size_; }

    // Every pending entry as f(tick, entry), by tick and in push order within a tick: a canonical
    // list that does not depend on how the calendar stores them (checkpoints). Pushing the entries
    // in this order into a calendar reset to the same present gives the same order of work. Every
    // tick of the overflow list lies beyond the window, so the window's buckets come first.
    template <class F> void for_each(F&& f) const {
        for (Tick x = now_; x < now_ + Tick(buckets_.size()); ++x)
            for (const Entry& e : bucket(x)) f(x, e);
        std::vector<const Far*> far;
        for (const auto& e : far_) far.push_back(&e);
        std::stable_sort(far.begin(), far.end(), [](const Far* a, const Far* b) { return a->tick < b->tick; });
        for (const Far* e : far) f(e->tick, e->entry);
    }

    // Drops every entry for which keep(tick, entry) is false (stale predictions).
    template <class Keep> void compact(Keep&& keep) {
        size_ = 0;
        for (Tick x = now_; x < now_ + Tick(buckets_.size()); ++x) {
            auto& b = bucket(x);
            b.erase(std::remove_if(b.begin(), b.end(), [&](const Entry& e) { return !keep(x, e); }), b.end());
            size_ += b.size();
        }
        far_.erase(std::remove_if(far_.begin(), far_.end(), [&](const Far& f) { return !keep(f.tick, f.entry); }),
                   far_.end());
        size_ += far_.size();
        far_min_ = never;
        for (const auto& f : far_) far_min_ = std::min(far_min_, f.tick);
    }

private:
    struct Far {
        Tick tick;
        Entry entry;
    };
    std::vector<Entry>& bucket(Tick t) { return buckets_[std::size_t(t) & (buckets_.size() - 1)]; }
    const std::vector<Entry>& bucket(Tick t) const { return buckets_[std::size_t(t) & (buckets_.size() - 1)]; }

    // Into the bucket of tick t (inside the window); an empty bucket takes the spare buffer.
    void put(Tick t, const Entry& e) {
        auto& b = bucket(t);
        if (b.capacity() == 0) std::swap(b, spare_);
        b.push_back(e);
    }

    // Moves the overflow entries that entered the window into their buckets, keeping push order.
    void pull_in() {
        const Tick end = now_ + Tick(buckets_.size());
        std::stable_partition(far_.begin(), far_.end(), [&](const Far& f) { return f.tick >= end; });
        auto first = std::find_if(far_.begin(), far_.end(), [&](const Far& f) { return f.tick < end; });
        for (auto it = first; it != far_.end(); ++it) put(it->tick, it->entry);
        far_.erase(first, far_.end());
        far_min_ = never;
        for (const auto& f : far_) far_min_ = std::min(far_min_, f.tick);
    }

    std::vector<std::vector<Entry>> buckets_;
    std::vector<Entry> spare_; // an empty buffer with capacity, for the next empty bucket
    std::vector<Far> far_;
    Tick far_min_ = never;
    Tick now_ = 0;
    std::size_t size_ = 0;
};

} // namespace quantal
