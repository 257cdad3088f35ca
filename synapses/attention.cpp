#include "synapses/attention.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "sim/errors.hpp"

namespace quantal {

namespace {
std::string shape_text(const Shape& s) {
    std::string t = "(";
    for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + ")";
}
} // namespace

WindowAttention::WindowAttention(const SoftmaxAttention& op, const Shape& map, const Shape& scores,
                                 const std::string& where) {
    auto fail = [&](const std::string& what) { throw ModelError(where + ": " + what); };
    if (map.size() != 3) fail("q/k/v shape " + shape_text(map) + " is not (C, H, W)");
    const std::int64_t C = map[0], H = map[1], W = map[2], win = op.window;
    if (op.heads < 1 || C % op.heads) fail("heads " + std::to_string(op.heads) + " does not divide " + std::to_string(C) + " channels");
    if (win < 1 || H % win || W % win) fail("window " + std::to_string(win) + " does not tile " + shape_text(map));
    if (op.shift < 0 || op.shift >= win) fail("shift " + std::to_string(op.shift) + " is outside [0, window)");
    if (!std::isfinite(op.scale)) fail("scale is not finite");
    heads_ = std::uint32_t(op.heads), head_dim_ = std::uint32_t(C / op.heads);
    tokens_ = std::uint32_t(win * win), windows_ = std::uint32_t((H / win) * (W / win)), plane_ = std::uint32_t(H * W);
    const Shape expected{windows_, heads_, tokens_, tokens_};
    if (scores != expected) fail("scores shape " + shape_text(scores) + ", expected " + shape_text(expected));
    if (op.bias.size() != std::size_t(heads_) * tokens_ * tokens_)
        fail("bias has " + std::to_string(op.bias.size()) + " values, expected " + shape_text({heads_, tokens_, tokens_}));
    if (!op.mask.empty() && op.mask.size() != std::size_t(windows_) * tokens_ * tokens_)
        fail("mask has " + std::to_string(op.mask.size()) + " values, expected " + shape_text({windows_, tokens_, tokens_}));
    for (float x : op.bias) if (!std::isfinite(x)) fail("bias is not finite");
    for (float x : op.mask) if (!std::isfinite(x)) fail("mask is not finite");
    bias_ = op.bias, mask_ = op.mask;

    // Roll by (-shift, -shift): the token at (y, x) sits at ((y - shift) mod H, (x - shift) mod W).
    window_of_.resize(plane_), token_of_.resize(plane_), position_of_.resize(plane_);
    for (std::int64_t y = 0; y < H; ++y)
        for (std::int64_t x = 0; x < W; ++x) {
            const std::int64_t ys = (y - op.shift + H) % H, xs = (x - op.shift + W) % W;
            const auto pos = std::uint32_t(y * W + x);
            window_of_[pos] = std::uint32_t((ys / win) * (W / win) + xs / win);
            token_of_[pos] = std::uint32_t((ys % win) * win + xs % win);
            position_of_[window_of_[pos] * tokens_ + token_of_[pos]] = pos;
        }
    key_of_.resize(std::size_t(C) * plane_);
    for (std::uint32_t n = 0; n < key_of_.size(); ++n) {
        const std::uint32_t channel = n / plane_, pos = n % plane_;
        const std::uint32_t head = channel / head_dim_, d = channel % head_dim_;
        key_of_[n] = ((window_of_[pos] * heads_ + head) * head_dim_ + d) * tokens_ + token_of_[pos];
    }
}

// Spikes sorted by (group, token): the key group * tokens + token is a bijection of the neurons,
// so a bitmap over keys sorts them in one pass over its words.
void WindowAttention::keyed(std::span<const std::uint32_t> spikes, std::vector<Key>& out,
                            std::vector<std::uint64_t>& present) const {
    present.assign((key_of_.size() + 63) / 64, 0);
    for (std::uint32_t n : spikes) present[key_of_[n] / 64] |= std::uint64_t{1} << (key_of_[n] % 64);
    out.clear();
    for (std::size_t w = 0; w < present.size(); ++w)
        for (std::uint64_t bits = present[w]; bits != 0; bits &= bits - 1) {
            const auto key = std::uint32_t(w * 64 + std::size_t(std::countr_zero(bits)));
            out.push_back({key / tokens_, key % tokens_});
        }
}

void WindowAttention::softmax_rows(std::uint32_t window, std::uint32_t head, std::span<const std::uint32_t> score_spikes,
                                   double score_value, std::vector<double>& a) const {
    const std::size_t T = tokens_, block = T * T;
    a.resize(block);
    const float* bias = bias_.data() + head * block;
    for (std::size_t e = 0; e < block; ++e) a[e] = bias[e];
    if (!mask_.empty()) {
        const float* mask = mask_.data() + window * block;
        for (std::size_t e = 0; e < block; ++e) a[e] += mask[e];
    }
    const std::uint32_t first = (window * heads_ + head) * std::uint32_t(block);
    for (auto it = std::lower_bound(score_spikes.begin(), score_spikes.end(), first);
         it != score_spikes.end() && *it < first + block; ++it)
        a[*it - first] += score_value;
    for (std::size_t i = 0; i < T; ++i) {
        double* row = a.data() + i * T;
        const double top = *std::max_element(row, row + T);
        double sum = 0;
        for (std::size_t j = 0; j < T; ++j) sum += row[j] = std::exp(row[j] - top);
        for (std::size_t j = 0; j < T; ++j) row[j] /= sum;
    }
}

} // namespace quantal
