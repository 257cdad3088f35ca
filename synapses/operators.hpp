#pragma once
// Operator nodes: non-spiking, tick-synchronous functions between populations. They are the
// parts of a converted transformer that are not a fixed weight matrix: the spike x spike product
// of attention scores and the softmax-weighted sum over values.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "synapses/release.hpp"

namespace quantal {

// Window attention of one Swin block on (C, H, W) token maps, C = heads x head_dim
// (channel = head * head_dim + d). The map is rolled by (-shift, -shift) and cut into
// window x window windows (row-major), tokens row-major within a window. Per tick t:
//   scores input  S[w,h,i,j] += scale * sum_d (lq q_t m_q)[i, h, d] (lk k_t m_k)[j, h, d]
//                 (a coincidence: cost = pairs of coincident q and k spikes)
//   weights       A[w,h,i,:] = softmax(ls s_t m_s [w,h,i,:] + bias[h,i,:] + mask[w,i,:])
//   output input  out[i, h, d] += sum_j A[w,h,i,j] * lv v_t[j, h, d]
//                 (a dynamic projection: weights written by the operator, delivered by v's spikes)
// where l are the populations' spike values and m the per-spike release masks (MST's RSM).
struct SoftmaxAttention {
    std::string name;
    // Population ids (NetworkBuilder::add_population).
    std::uint32_t q = 0, k = 0, v = 0;
    std::uint32_t scores = 0; // spiking population of shape (windows, heads, tokens, tokens)
    std::uint32_t output = 0;
    std::int64_t heads = 1, window = 1, shift = 0;
    double scale = 1.0;
    std::vector<float> bias; // (heads, tokens, tokens): relative position bias
    std::vector<float> mask; // (windows, tokens, tokens): shifted-window mask; empty: none
    Release q_release, k_release, score_release; // modes none or spike
};

using Operator = std::variant<SoftmaxAttention>;

// The ending of the MST authors' network: per tick, the residual stream of (C, H, W) token maps
//   z[c, p] = offset[c] + sum_i source_weight[i][c] * l_i s_i,t[c, p]   (s: spikes, l: spike value)
// is normalised over the channels of each position p (LayerNorm: mean, biased variance, eps),
//   y[c, p] = gamma[c] (z[c, p] - mean_p) / sqrt(var_p + eps) + beta[c],
// averaged over positions and mapped by weight (n_out, C) into `output` (a readout):
//   output input[o] += sum_c weight[o][c] (1/P) sum_p y[c, p].
// Not a linear map of spikes (the normalisation divides by the stream's own spread), so it is
// computed every tick. It is kept apart from Operator: it has no maskable inputs and none of the
// attention's counters.
struct LayerNormHead {
    std::string name;
    std::vector<std::uint32_t> sources; // population ids, all of one shape (C, H, W)
    std::uint32_t output = 0;           // a readout of n_out neurons
    double eps = 1e-5;
    std::vector<float> source_weight;   // (sources, C)
    std::vector<float> offset, gamma, beta; // (C)
    std::vector<float> weight;          // (n_out, C)
};

} // namespace quantal
