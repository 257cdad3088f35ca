#pragma once
// Exact equality of two connectivities: kind, geometry and every per-synapse array.
#include <variant>

#include "sim/overloaded.hpp"
#include "synapses/connectivity.hpp"

namespace quantal::testing {

// Equal per-synapse arrays (and geometry), whatever the kind.
inline bool same_connectivity(const Connectivity& a, const Connectivity& b) {
    if (a.index() != b.index()) return false;
    return std::visit(overloaded{[&](const Dense& x) { return x.weight == std::get<Dense>(b).weight; },
                                 [&](const Conv2d& x) {
                                     const auto& y = std::get<Conv2d>(b);
                                     return x.weight == y.weight && x.kernel == y.kernel && x.stride == y.stride &&
                                            x.padding == y.padding && x.dilation == y.dilation && x.groups == y.groups;
                                 },
                                 [&](const Pool2d& x) {
                                     const auto& y = std::get<Pool2d>(b);
                                     return x.kind == y.kind && x.kernel == y.kernel && x.stride == y.stride &&
                                            x.padding == y.padding;
                                 },
                                 [&](const OneToOne& x) { return x.weight == std::get<OneToOne>(b).weight; },
                                 [&](const Sparse& x) {
                                     const auto& y = std::get<Sparse>(b);
                                     return x.row_begin == y.row_begin && x.target == y.target && x.weight == y.weight &&
                                            x.delay == y.delay && x.probability == y.probability;
                                 }},
                      a);
}

} // namespace quantal::testing
