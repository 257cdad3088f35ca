#pragma once
// One spike through one projection's synapses, with independent per-synapse release.
// Per-spike masking (ReleaseMode::spike) is decided by the caller before this is reached.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <utility>

#include "sim/random.hpp"
#include "synapses/fanout.hpp"
#include "synapses/release.hpp"
#include "synapses/release_spread.hpp"

namespace quantal {

// A projection's release model resolved into what the synapse loop needs.
class ReleasePlan {
public:
    // heterogeneous: every synapse with its own probability (Release::spread), one draw each.
    enum class Draw { all, nothing, geometric, bernoulli, heterogeneous };

    // `spread`: the network's table for a heterogeneous release (Network::spread), else null.
    ReleasePlan(const Release& r, const Fanout& fanout, const ReleaseSpread* spread = nullptr);
    ReleaseMode mode() const { return release_.mode; }
    double probability() const { return p_; }
    // What surviving transmissions carry: weight x scale() (Release::scale; 1 without compensation).
    double scale() const { return scale_; }
    // ReleaseMode::spike: whether the spike of source neuron j is dropped.
    bool drop_spike(RandomEngine& rng, std::uint32_t j) const {
        if (spread_) [[unlikely]]
            return !spread_->keep(rng, key_, j);
        return !spike_keep_(rng);
    }
    // The run seed's key of the per-synapse probabilities (ReleaseSpread::key), set per run.
    void set_spread_key(std::uint64_t key) { key_ = key; }
    const ReleaseSpread* spread() const { return spread_; }
    std::uint64_t spread_key() const { return key_; }
    Draw draw() const { return draw_; }
    const GeometricGaps& gaps() const { return gaps_; }
    const BernoulliThreshold& keep() const { return keep_; }   // one exact compare (one_to_one)
    const BernoulliMasks& masks() const { return masks_; }     // 64 synapses per mask word

    // Below these release probabilities geometric skipping (a log() per success) beats bit-sliced
    // keep masks (a few random words per 64 synapses), as measured with xoshiro256++
    // (docs/performance.md, "Geometric vs Bernoulli"; bench/bench_propagate --only crossover):
    // ~0.03-0.04 for dense and sparse fan-outs, ~0.02 for windows (conv, pool).
    static constexpr double geometric_below_contiguous = 0.03;
    static constexpr double geometric_below_windows = 0.02;

private:
    Release release_;
    double p_, scale_;
    const ReleaseSpread* spread_; // null: homogeneous
    std::uint64_t key_ = 0;
    Draw draw_;
    GeometricGaps gaps_;
    BernoulliThreshold keep_;
    BernoulliMasks masks_;
    BernoulliThreshold spike_keep_;
};

// Heterogeneous release: each synapse of `src` (of [begin, end) for a sparse fan-out) transmits
// with its own probability, one draw per synapse in the fan-out's order. The caller chooses it
// (Draw::heterogeneous under synapse release): reached from inside transmit(), it changed how
// transmit()'s homogeneous paths compiled, +5-12 % instructions (callgrind, MST).
template <class Add>
std::uint64_t transmit_each(const Fanout& fanout, std::uint32_t src, std::uint64_t begin, std::uint64_t end, double value,
                            const ReleasePlan& plan, RandomEngine& rng, Add&& add) {
    const ReleaseSpread& spread = *plan.spread();
    const std::uint64_t key = plan.spread_key();
    HalfDraws u(rng);
    std::uint64_t sent = 0;
    // Keep bits of up to 64 synapses at a time, built without branches (a failure costs no
    // mispredicted jump), then delivered by count-trailing-zeros, as the bit-sliced masks are.
    // id(i): synapse i's identity; deliver_at(i): its transmission.
    auto runs = [&](std::uint64_t n, auto&& id, auto&& deliver_at) {
        for (std::uint64_t base = 0; base < n; base += 64) {
            const std::uint64_t m = std::min<std::uint64_t>(n - base, 64);
            std::uint64_t keep = 0;
            for (std::uint64_t i = 0; i < m; ++i)
                keep |= std::uint64_t(u.next() < spread.threshold32(ReleaseSpread::level(key, id(base + i)))) << i;
            for (; keep != 0; keep &= keep - 1, ++sent) deliver_at(base + std::uint64_t(std::countr_zero(keep)));
        }
    };
    const std::uint64_t row = ReleaseSpread::synapse(src, 0);
    switch (fanout.index()) {
    case 0: {
        const auto& f = std::get<DenseFanout>(fanout);
        const float* w = f.weights(src);
        runs(f.n_target, [&](std::uint64_t k) { return row | k; },
             [&](std::uint64_t k) { add(std::uint32_t(k), double(w[k]) * value); });
        return sent;
    }
    case 1:
    case 2:
        std::visit(
            [&](const auto& f) {
                using F = std::decay_t<decltype(f)>;
                if constexpr (std::is_same_v<F, ConvFanout> || std::is_same_v<F, PoolFanout>)
                    f.for_each_run(src, [&](std::uint64_t n, auto&& at) {
                        runs(n, [&](std::uint64_t i) { return row | at(i).first; }, [&](std::uint64_t i) {
                            const auto s = at(i);
                            add(s.first, double(s.second) * value);
                        });
                    });
            },
            fanout);
        return sent;
    case 3:
        runs(1, [&](std::uint64_t) { return row | src; },
             [&](std::uint64_t) { std::get<OneToOneFanout>(fanout).for_each(src, [&](std::uint32_t j, float w) { add(j, double(w) * value); }); });
        return sent;
    default: {
        const auto& f = std::get<SparseFanout>(fanout);
        if (!f.probability.empty()) { // own probabilities: one exact compare with own x p_k each
            for (std::uint64_t k = begin; k < end; ++k)
                if (uniform_open0(rng) <= double(f.probability[k]) * spread.probability(ReleaseSpread::level(key, k)))
                    add(f.target[k], double(f.weight_of(k)) * value), ++sent;
            return sent;
        }
        runs(end - begin, [&](std::uint64_t i) { return begin + i; },
             [&](std::uint64_t i) { add(f.target[begin + i], double(f.weight_of(begin + i)) * value); });
        return sent;
    }
    }
}

// Delivers `value` x weight through the synapses of `src` (a sparse fan-out: the synapses of one
// delay group [begin, end)) to add(target, amount). Returns the number of transmissions.
// Homogeneous release only: a heterogeneous plan goes through transmit_each().
template <class Add>
std::uint64_t transmit(const Fanout& fanout, std::uint32_t src, std::uint64_t begin, std::uint64_t end, double value,
                       const ReleasePlan& plan, RandomEngine& rng, Add&& add) {
    using Draw = ReleasePlan::Draw;
    const Draw draw = plan.mode() == ReleaseMode::synapse ? plan.draw() : Draw::all;
    if (draw == Draw::nothing) return 0;

    // Contiguous fan-outs: targets and weights indexed 0..n-1, so geometric gaps jump ahead and
    // keep masks cover 64 synapses per word.
    auto contiguous = [&](std::uint64_t n, auto&& deliver_at) -> std::uint64_t {
        std::uint64_t sent = 0;
        switch (draw) {
        case Draw::all:
            for (std::uint64_t k = 0; k < n; ++k) deliver_at(k);
            return n;
        case Draw::geometric:
            for (std::uint64_t k = plan.gaps().next(rng, n); k < n; k += 1 + plan.gaps().next(rng, n), ++sent)
                deliver_at(k);
            return sent;
        case Draw::bernoulli: {
            const BernoulliMasks& masks = plan.masks();
            for (std::uint64_t base = 0; base < n; base += 64)
                for (std::uint64_t m = masks.word(rng, BernoulliMasks::first_lanes(n - base)); m != 0; m &= m - 1, ++sent)
                    deliver_at(base + std::uint64_t(std::countr_zero(m)));
            return sent;
        }
        case Draw::nothing:
        case Draw::heterogeneous: break;
        }
        return sent;
    };
    // Window fan-outs (conv, pool), enumerated in runs (one kernel tap's output channels, one
    // pool row): geometric gaps skip whole runs, keep masks are cut from one bit stream per spike.
    auto windows = [&](const auto& f) -> std::uint64_t {
        std::uint64_t sent = 0;
        auto deliver = [&](const std::pair<std::uint32_t, float>& s) { add(s.first, double(s.second) * value); };
        switch (draw) {
        case Draw::all:
            f.for_each(src, [&](std::uint32_t j, float w) { add(j, double(w) * value); });
            return f.size(src);
        case Draw::geometric: {
            const std::uint64_t cap = f.size(src);
            std::uint64_t skip = plan.gaps().next(rng, cap); // failures before the next success
            f.for_each_run(src, [&](std::uint64_t n, auto&& at) {
                std::uint64_t i = skip;
                for (; i < n; i += 1 + plan.gaps().next(rng, cap), ++sent) deliver(at(i));
                skip = i - n;
            });
            return sent;
        }
        case Draw::bernoulli: {
            MaskStream stream(plan.masks());
            f.for_each_run(src, [&](std::uint64_t n, auto&& at) {
                for (std::uint64_t base = 0; base < n; base += 64)
                    for (std::uint64_t m = stream.take(rng, unsigned(std::min<std::uint64_t>(n - base, 64))); m != 0;
                         m &= m - 1, ++sent)
                        deliver(at(base + std::uint64_t(std::countr_zero(m))));
            });
            return sent;
        }
        case Draw::nothing:
        case Draw::heterogeneous: break;
        }
        return sent;
    };

    switch (fanout.index()) {
    case 0: {
        const auto& f = std::get<DenseFanout>(fanout);
        const float* w = f.weights(src);
        return contiguous(f.n_target, [&](std::uint64_t k) { add(std::uint32_t(k), double(w[k]) * value); });
    }
    case 1: return windows(std::get<ConvFanout>(fanout));
    case 2: return windows(std::get<PoolFanout>(fanout));
    case 3: {
        const auto& f = std::get<OneToOneFanout>(fanout);
        if (draw != Draw::all && !plan.keep()(rng)) return 0;
        f.for_each(src, [&](std::uint32_t j, float w) { add(j, double(w) * value); });
        return 1;
    }
    default: {
        const auto& f = std::get<SparseFanout>(fanout);
        if (!f.probability.empty()) { // each synapse has its own release probability
            const double p = draw == Draw::all ? 1.0 : plan.probability();
            std::uint64_t sent = 0;
            for (std::uint64_t k = begin; k < end; ++k)
                if (uniform_open0(rng) <= double(f.probability[k]) * p)
                    add(f.target[k], double(f.weight_of(k)) * value), ++sent;
            return sent;
        }
        const std::uint32_t* target = f.target.data() + begin;
        if (f.weight.size() == 1) {
            const double x = double(f.weight[0]) * value;
            return contiguous(end - begin, [&](std::uint64_t k) { add(target[k], x); });
        }
        const float* w = f.weight.data() + begin;
        return contiguous(end - begin, [&](std::uint64_t k) { add(target[k], double(w[k]) * value); });
    }
    }
}

} // namespace quantal
