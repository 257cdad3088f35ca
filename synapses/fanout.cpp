#include "synapses/fanout.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>

#include "sim/errors.hpp"
#include "sim/overloaded.hpp"

namespace quantal {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
    throw ModelError(where + ": " + what);
}

std::int64_t element_count(const Shape& s) {
    return std::accumulate(s.begin(), s.end(), std::int64_t{1}, std::multiplies<>());
}

std::string shape_text(const Shape& s) {
    std::string t = "(";
    for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + ")";
}

void require_finite(const std::vector<float>& v, const std::string& where, const char* what) {
    for (std::size_t i = 0; i < v.size(); ++i)
        if (!std::isfinite(v[i])) fail(where, std::string(what) + "[" + std::to_string(i) + "] is not finite");
}

// Window parameters are bounded before window_output() uses them: with extents < 2^32 (build())
// and each parameter <= 2^31, no term overflows (a padding near 2^63 did; fuzz_network).
constexpr std::int64_t max_window_parameter = std::int64_t{1} << 31;

std::int64_t window_output(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t p, std::int64_t d) {
    return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

void require_image(const Shape& s, const std::string& where, const char* role) {
    if (s.size() != 3) fail(where, std::string(role) + " shape " + shape_text(s) + " is not (C, H, W)");
}

DenseFanout compile(const Dense& d, const Shape& src, const Shape& dst, const std::string& where) {
    const auto n_in = element_count(src), n_out = element_count(dst);
    if (std::int64_t(d.weight.size()) != n_in * n_out)
        fail(where, "dense weight has " + std::to_string(d.weight.size()) + " values, expected " +
                        std::to_string(n_out) + " x " + std::to_string(n_in));
    require_finite(d.weight, where, "weight");
    DenseFanout f;
    f.n_target = std::uint32_t(n_out);
    f.row.resize(d.weight.size());
    for (std::int64_t j = 0; j < n_out; ++j)
        for (std::int64_t i = 0; i < n_in; ++i) f.row[i * n_out + j] = d.weight[j * n_in + i];
    return f;
}

ConvFanout compile(const Conv2d& c, const Shape& src, const Shape& dst, const std::string& where) {
    require_image(src, where, "source");
    require_image(dst, where, "target");
    const auto [kh, kw] = c.kernel;
    for (int a = 0; a < 2; ++a)
        if (c.kernel[a] < 1 || c.stride[a] < 1 || c.padding[a] < 0 || c.dilation[a] < 1)
            fail(where, "conv2d kernel/stride/dilation must be >= 1 and padding >= 0");
        else if (c.kernel[a] > max_window_parameter || c.stride[a] > max_window_parameter ||
                 c.padding[a] > max_window_parameter || c.dilation[a] > max_window_parameter)
            fail(where, "conv2d kernel/stride/padding/dilation must be at most 2^31");
    if (c.groups < 1 || src[0] % c.groups || dst[0] % c.groups)
        fail(where, "conv2d groups " + std::to_string(c.groups) + " does not divide the channels " +
                        std::to_string(src[0]) + " -> " + std::to_string(dst[0]));
    const Shape expected{dst[0], window_output(src[1], kh, c.stride[0], c.padding[0], c.dilation[0]),
                         window_output(src[2], kw, c.stride[1], c.padding[1], c.dilation[1])};
    if (expected != dst) fail(where, "conv2d maps " + shape_text(src) + " to " + shape_text(expected) +
                                         ", but the target has shape " + shape_text(dst));
    if (std::int64_t(c.weight.size()) != dst[0] * (src[0] / c.groups) * kh * kw)
        fail(where, "conv2d weight has " + std::to_string(c.weight.size()) + " values, expected " +
                        shape_text({dst[0], src[0] / c.groups, kh, kw}));
    require_finite(c.weight, where, "weight");
    ConvFanout f;
    f.c_in = src[0], f.h_in = src[1], f.w_in = src[2];
    f.c_out = dst[0], f.h_out = dst[1], f.w_out = dst[2];
    f.kh = kh, f.kw = kw, f.groups = c.groups;
    f.rows = WindowTaps::build(src[1], dst[1], kh, c.stride[0], c.padding[0], c.dilation[0]);
    f.cols = WindowTaps::build(src[2], dst[2], kw, c.stride[1], c.padding[1], c.dilation[1]);
    const std::int64_t cin_g = src[0] / c.groups, cout_g = dst[0] / c.groups;
    f.tap_major.resize(c.weight.size());
    for (std::int64_t co = 0; co < dst[0]; ++co) // (C_out, C_in/g, kh, kw) -> (C_in/g, kh, kw, C_out/g) per group
        for (std::int64_t ci = 0; ci < cin_g; ++ci)
            for (std::int64_t k = 0; k < kh * kw; ++k)
                f.tap_major[((co / cout_g) * cin_g * kh * kw + ci * kh * kw + k) * cout_g + co % cout_g] =
                    c.weight[(co * cin_g + ci) * kh * kw + k];
    return f;
}

PoolFanout compile(const Pool2d& p, const Shape& src, const Shape& dst, const std::string& where) {
    require_image(src, where, "source");
    require_image(dst, where, "target");
    std::array<std::int64_t, 2> stride = p.stride;
    for (int a = 0; a < 2; ++a) {
        if (stride[a] == 0) stride[a] = p.kernel[a];
        if (p.kernel[a] < 1 || stride[a] < 1 || p.padding[a] < 0)
            fail(where, "pool2d kernel/stride must be >= 1 and padding >= 0");
        if (p.kernel[a] > max_window_parameter || stride[a] > max_window_parameter || p.padding[a] > max_window_parameter)
            fail(where, "pool2d kernel/stride/padding must be at most 2^31");
    }
    const Shape expected{src[0], window_output(src[1], p.kernel[0], stride[0], p.padding[0], 1),
                         window_output(src[2], p.kernel[1], stride[1], p.padding[1], 1)};
    if (expected != dst) fail(where, "pool2d maps " + shape_text(src) + " to " + shape_text(expected) +
                                         ", but the target has shape " + shape_text(dst));
    PoolFanout f;
    f.h_in = src[1], f.w_in = src[2], f.h_out = dst[1], f.w_out = dst[2];
    f.weight = p.kind == PoolKind::sum ? 1.0f : float(1.0 / double(p.kernel[0] * p.kernel[1]));
    f.rows = WindowTaps::build(src[1], dst[1], p.kernel[0], stride[0], p.padding[0], 1);
    f.cols = WindowTaps::build(src[2], dst[2], p.kernel[1], stride[1], p.padding[1], 1);
    return f;
}

OneToOneFanout compile(const OneToOne& o, const Shape& src, const Shape& dst, const std::string& where) {
    const auto n = element_count(src);
    if (n != element_count(dst))
        fail(where, "one_to_one needs equal sizes, got " + shape_text(src) + " -> " + shape_text(dst));
    if (o.weight.size() != 1 && std::int64_t(o.weight.size()) != n)
        fail(where, "one_to_one weight has " + std::to_string(o.weight.size()) + " values, expected 1 or " +
                        std::to_string(n));
    require_finite(o.weight, where, "weight");
    return OneToOneFanout{o.weight};
}

SparseFanout compile(const Sparse& s, const Shape& src, const Shape& dst, std::uint32_t delay,
                     const std::string& where) {
    const auto n_src = element_count(src), n_dst = element_count(dst);
    if (std::int64_t(s.row_begin.size()) != n_src + 1)
        fail(where, "sparse row_begin has " + std::to_string(s.row_begin.size()) + " entries, expected " +
                        std::to_string(n_src + 1));
    const std::uint64_t nnz = s.target.size();
    if (s.row_begin.front() != 0 || s.row_begin.back() != nnz || !std::is_sorted(s.row_begin.begin(), s.row_begin.end()))
        fail(where, "sparse row_begin must rise from 0 to the synapse count " + std::to_string(nnz));
    if (s.weight.size() != nnz || (!s.delay.empty() && s.delay.size() != nnz) ||
        (!s.probability.empty() && s.probability.size() != nnz))
        fail(where, "sparse weight/delay/probability must each have one value per synapse (" + std::to_string(nnz) + ")");
    require_finite(s.weight, where, "weight");
    for (std::uint64_t k = 0; k < nnz; ++k) {
        if (s.target[k] >= n_dst)
            fail(where, "sparse target[" + std::to_string(k) + "] = " + std::to_string(s.target[k]) +
                            " is out of range [0, " + std::to_string(n_dst) + ")");
        if (!s.probability.empty() && !(s.probability[k] >= 0.0f && s.probability[k] <= 1.0f))
            fail(where, "sparse probability[" + std::to_string(k) + "] is outside [0, 1]");
    }
    SparseFanout f;
    f.target.resize(nnz);
    f.weight.resize(nnz);
    if (!s.probability.empty()) f.probability.resize(nnz);
    f.group_begin.push_back(0);
    std::vector<std::uint64_t> order;
    for (std::int64_t i = 0; i < n_src; ++i) {
        order.resize(s.row_begin[i + 1] - s.row_begin[i]);
        std::iota(order.begin(), order.end(), s.row_begin[i]);
        auto delay_of = [&](std::uint64_t k) { return s.delay.empty() ? delay : s.delay[k]; };
        std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return delay_of(a) < delay_of(b); });
        for (std::size_t r = 0; r < order.size(); ++r) {
            const std::uint64_t k = order[r], slot = s.row_begin[i] + r;
            f.target[slot] = s.target[k];
            f.weight[slot] = s.weight[k];
            if (!f.probability.empty()) f.probability[slot] = s.probability[k];
            if (r == 0 || delay_of(k) != f.groups.back().delay) f.groups.push_back({delay_of(k), slot, slot});
            f.groups.back().end = slot + 1;
        }
        f.group_begin.push_back(f.groups.size());
    }
    // One weight for all synapses (common in generated networks) halves what a spike streams.
    if (!f.weight.empty() && std::all_of(f.weight.begin(), f.weight.end(), [&](float w) {
            return std::bit_cast<std::uint32_t>(w) == std::bit_cast<std::uint32_t>(f.weight[0]);
        }))
        f.weight = std::vector<float>{f.weight[0]}; // a fresh vector: resize(1) would keep all nnz slots allocated
    return f;
}

} // namespace

const char* kind_name(const Connectivity& c) {
    return std::visit(overloaded{[](const Dense&) { return "dense"; }, [](const Conv2d&) { return "conv2d"; },
                                 [](const Pool2d& p) { return p.kind == PoolKind::sum ? "sum_pool2d" : "avg_pool2d"; },
                                 [](const OneToOne&) { return "one_to_one"; },
                                 [](const Sparse&) { return "sparse"; }},
                      c);
}

WindowTaps WindowTaps::build(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
                             std::int64_t padding, std::int64_t dilation) {
    WindowTaps t;
    for (std::int64_t pos = 0; pos < in; ++pos) {
        t.begin.push_back(std::uint32_t(t.taps.size()));
        for (std::int64_t k = 0; k < kernel; ++k) {
            const std::int64_t shifted = pos + padding - k * dilation; // = o * stride
            if (shifted < 0 || shifted % stride) continue;
            const std::int64_t o = shifted / stride;
            if (o < out) t.taps.push_back({std::int32_t(k), std::int32_t(o)});
        }
    }
    t.begin.push_back(std::uint32_t(t.taps.size()));
    return t;
}

Fanout compile_fanout(const Connectivity& c, const Shape& source, const Shape& target, std::uint32_t delay,
                      const std::string& where) {
    return std::visit(overloaded{[&](const Sparse& s) -> Fanout { return compile(s, source, target, delay, where); },
                                 [&](const auto& k) -> Fanout { return compile(k, source, target, where); }},
                      c);
}

std::uint32_t min_delay(const Fanout& f, std::uint32_t projection_delay) {
    if (const auto* s = std::get_if<SparseFanout>(&f)) {
        if (s->groups.empty()) return projection_delay;
        std::uint32_t d = s->groups.front().delay;
        for (const auto& g : s->groups) d = std::min(d, g.delay);
        return d;
    }
    return projection_delay;
}

Connectivity geometry_of(const Connectivity& c) {
    return std::visit(overloaded{[](const Dense&) -> Connectivity { return Dense{}; },
                                 [](const Conv2d& k) -> Connectivity {
                                     return Conv2d{{}, k.kernel, k.stride, k.padding, k.dilation, k.groups};
                                 },
                                 [](const Pool2d& k) -> Connectivity { return k; },
                                 [](const OneToOne&) -> Connectivity { return OneToOne{}; },
                                 [](const Sparse&) -> Connectivity { return Sparse{}; }},
                      c);
}

namespace {

Dense user_form(const DenseFanout& f) {
    Dense d;
    d.weight.resize(f.row.size());
    const std::size_t n_out = f.n_target, n_in = n_out ? f.row.size() / n_out : 0;
    for (std::size_t i = 0; i < n_in; ++i)
        for (std::size_t j = 0; j < n_out; ++j) d.weight[j * n_in + i] = f.row[i * n_out + j];
    return d;
}

Conv2d user_form(const ConvFanout& f, Conv2d c) {
    const std::int64_t cin_g = f.c_in / f.groups, cout_g = f.c_out / f.groups, taps = f.kh * f.kw;
    c.weight.resize(f.tap_major.size());
    for (std::int64_t co = 0; co < f.c_out; ++co) // the inverse of compile's permutation
        for (std::int64_t ci = 0; ci < cin_g; ++ci)
            for (std::int64_t k = 0; k < taps; ++k)
                c.weight[(co * cin_g + ci) * taps + k] =
                    f.tap_major[((co / cout_g) * cin_g * taps + ci * taps + k) * cout_g + co % cout_g];
    return c;
}

Sparse user_form(const SparseFanout& f, std::uint32_t delay) {
    Sparse s;
    const std::size_t n_src = f.group_begin.empty() ? 0 : f.group_begin.size() - 1;
    s.row_begin.assign(1, 0);
    for (std::size_t i = 0; i < n_src; ++i)
        s.row_begin.push_back(f.group_begin[i + 1] > f.group_begin[i] ? f.groups[f.group_begin[i + 1] - 1].end
                                                                       : s.row_begin.back());
    s.target = f.target;
    s.weight.resize(f.target.size());
    for (std::uint64_t k = 0; k < s.weight.size(); ++k) s.weight[k] = f.weight_of(k);
    s.probability = f.probability;
    if (std::any_of(f.groups.begin(), f.groups.end(), [&](const auto& g) { return g.delay != delay; })) {
        s.delay.resize(f.target.size());
        for (const auto& g : f.groups) std::fill(s.delay.begin() + g.begin, s.delay.begin() + g.end, g.delay);
    }
    return s;
}

} // namespace

Connectivity user_form(const Fanout& f, const Connectivity& geometry, std::uint32_t delay) {
    return std::visit(overloaded{[](const DenseFanout& d) -> Connectivity { return user_form(d); },
                                 [&](const ConvFanout& c) -> Connectivity { return user_form(c, std::get<Conv2d>(geometry)); },
                                 [&](const PoolFanout&) -> Connectivity { return std::get<Pool2d>(geometry); },
                                 [](const OneToOneFanout& o) -> Connectivity { return OneToOne{o.weight}; },
                                 [&](const SparseFanout& s) -> Connectivity { return user_form(s, delay); }},
                      f);
}

std::uint64_t synapse_count(const Fanout& f, std::uint64_t n_source) {
    // Closed forms: visiting every source took minutes for a pool over 2^31 neurons (fuzz_network).
    // A window's synapses are the product of its row and column taps, per channel pair.
    return std::visit(overloaded{[&](const DenseFanout& d) { return n_source * d.n_target; },
                                 [](const ConvFanout& c) {
                                     return std::uint64_t(c.c_in) * std::uint64_t(c.c_out / c.groups) *
                                            c.rows.taps.size() * c.cols.taps.size();
                                 },
                                 [&](const PoolFanout& p) {
                                     return n_source / std::uint64_t(p.h_in * p.w_in) * p.rows.taps.size() *
                                            p.cols.taps.size();
                                 },
                                 [&](const OneToOneFanout&) { return n_source; },
                                 [](const SparseFanout& s) { return std::uint64_t(s.target.size()); }},
                      f);
}

} // namespace quantal
