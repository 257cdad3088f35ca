#pragma once
// The compiled window attention of a SoftmaxAttention operator (synapses/operators.hpp): the
// shifted-window partition of a (C, H, W) token map, the coincidence of q and k spikes, and the
// softmax-weighted delivery of v spikes. Pure functions of spike lists; the network holds one per
// operator, shared read-only by the engines of all threads, so each engine brings its own Scratch.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "synapses/operators.hpp"
#include "sim/energy_ledger.hpp"
#include "synapses/fanout.hpp"

namespace quantal {

class WindowAttention {
    struct Key { std::uint32_t group; std::uint32_t token; }; // group = (window, head, d)

public:
    // Working memory of one caller (one engine, one thread).
    class Scratch {
        friend class WindowAttention;
        std::vector<Key> a_, b_;
        std::vector<double> rows_;
        std::vector<std::uint64_t> present_; // keyed(): one bit per neuron, in key order
    };

    // Validates the operator against its populations' shapes; throws ModelError naming it.
    WindowAttention(const SoftmaxAttention& op, const Shape& token_map, const Shape& scores, const std::string& where);

    // add(score neuron, amount) for every coincident pair of (already masked) q and k spikes.
    template <class Add>
    void coincide(std::span<const std::uint32_t> q, std::span<const std::uint32_t> k, double amount, Add&& add,
                  OperatorCounts& counts, Scratch& scratch) const;

    // add(output neuron, amount) for the v spikes, weighted by the softmax rows of their windows.
    // score_spikes: the (already masked) spiking scores of this tick, ascending.
    template <class Add>
    void attend(std::span<const std::uint32_t> score_spikes, double score_value, std::span<const std::uint32_t> v,
                double v_value, Add&& add, OperatorCounts& counts, Scratch& scratch) const;

    // MACs of the same attention in the ANN (q k^T and A v), per tick.
    std::uint64_t ann_macs() const { return 2 * std::uint64_t(windows_ * heads_) * tokens_ * tokens_ * head_dim_; }

private:
    void keyed(std::span<const std::uint32_t> spikes, std::vector<Key>& out, std::vector<std::uint64_t>& present) const;
    void softmax_rows(std::uint32_t window, std::uint32_t head, std::span<const std::uint32_t> score_spikes,
                      double score_value, std::vector<double>& a) const;

    std::uint32_t heads_, head_dim_, tokens_, windows_, plane_;
    std::vector<std::uint32_t> window_of_, token_of_; // position -> window, token
    std::vector<std::uint32_t> position_of_;          // window * tokens + token -> position
    std::vector<std::uint32_t> key_of_;               // neuron -> group * tokens + token (a bijection)
    std::vector<float> bias_, mask_;
};

template <class Add>
void WindowAttention::coincide(std::span<const std::uint32_t> q, std::span<const std::uint32_t> k, double amount,
                               Add&& add, OperatorCounts& counts, Scratch& scratch) const {
    auto& qk = scratch.a_;
    auto& kk = scratch.b_;
    keyed(q, qk, scratch.present_);
    keyed(k, kk, scratch.present_);
    std::size_t a = 0, b = 0;
    while (a < qk.size() && b < kk.size()) {
        if (qk[a].group < kk[b].group) { ++a; continue; }
        if (kk[b].group < qk[a].group) { ++b; continue; }
        const std::uint32_t g = qk[a].group;
        std::size_t a1 = a, b1 = b;
        while (a1 < qk.size() && qk[a1].group == g) ++a1;
        while (b1 < kk.size() && kk[b1].group == g) ++b1;
        const std::uint32_t window_head = g / head_dim_;
        const std::uint32_t base = window_head * tokens_ * tokens_;
        for (std::size_t i = a; i < a1; ++i)
            for (std::size_t j = b; j < b1; ++j) add(base + qk[i].token * tokens_ + kk[j].token, amount);
        counts.coincidences += (a1 - a) * (b1 - b);
        a = a1, b = b1;
    }
}

template <class Add>
void WindowAttention::attend(std::span<const std::uint32_t> score_spikes, double score_value,
                             std::span<const std::uint32_t> v, double v_value, Add&& add, OperatorCounts& counts,
                             Scratch& scratch) const {
    auto& vk = scratch.a_;
    auto& rows = scratch.rows_;
    keyed(v, vk, scratch.present_); // sorted by (window, head, d), then token
    std::uint32_t current = ~0u;
    for (const Key& key : vk) {
        const std::uint32_t window_head = key.group / head_dim_;
        if (window_head != current) {
            current = window_head;
            softmax_rows(window_head / heads_, window_head % heads_, score_spikes, score_value, rows);
            counts.macs += std::uint64_t(tokens_) * tokens_;
        }
        const std::uint32_t window = window_head / heads_, head = window_head % heads_;
        const std::uint32_t channel = head * head_dim_ + key.group % head_dim_;
        for (std::uint32_t i = 0; i < tokens_; ++i)
            add(channel * plane_ + position_of_[window * tokens_ + i], rows[i * tokens_ + key.token] * v_value);
        counts.deliveries += tokens_;
    }
}

} // namespace quantal
