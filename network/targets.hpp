#pragma once
// Which projections and operator inputs a release setting applies to (`--targets`). Sets are
// defined here, once, over the roles exporters give projections (docs/model-format.md "Roles"):
//   attention  the attention operators' q, k and score inputs (what the MST code masks)
//   linear     attention + the inputs of the token-wise maps (roles qkv_in, proj_in, fc1_in,
//              fc2_in): MST's paper text and its Fig. 2(e)
//   all        every projection and every operator input
// and a comma-separated list may also name roles, projections and operators one by one. Any set or
// role may be restricted to one layer with `@`: `qkv_in@s0.b1`, `attention@s1.b0`. A projection's
// layer is its target population's name up to the last '.' (`s0.b1.q` -> `s0.b1`; `merge0` is its
// own layer); an operator's is its own name's (`s0.b1.attention` -> `s0.b1`).
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "network/network.hpp"

namespace quantal {

// The roles a projection may have. A projection without one is reached only by `all` or its name.
std::span<const std::string_view> projection_roles();
bool is_projection_role(std::string_view role);

struct Targets {
    std::vector<bool> projection; // per ProjectionId
    std::vector<bool> op;         // per operator: its q, k and score inputs
    std::size_t projections() const;
    std::size_t operators() const;
};

// Resolves a --targets value on `net`. Throws InputError naming a token that matches nothing, or a
// set that is empty on this network (e.g. `linear` on a model exported without roles).
Targets resolve_targets(const Network& net, std::string_view spec);

// The layer of a population or operator name (see above).
std::string_view layer_of(std::string_view name);

// Per-layer sensitivity (`quantal sweep --targets each`): the network cut into disjoint groups that
// together are `all`, each a --targets value: ROLE@LAYER for the projections of one role into one
// layer, `attention@LAYER` for an attention operator's inputs, and a projection's own name when it
// has no role. In order of first appearance (projections, then operators).
std::vector<std::string> layer_groups(const Network& net);

// One line per target: "projection 's0.b0.act1->s0.b0.q' (qkv_in)", "operator 's0.b0.attention' (q, k, score)".
std::vector<std::string> describe(const Network& net, const Targets& t);
// The targets counted by role, for a run's report: "12 qkv_in, 4 proj_in, 2 without role, 4 operators (q, k, score)".
std::string summary(const Network& net, const Targets& t);

// The network with `release` on the targets and no release elsewhere; operators' inputs take the
// per-spike form of `release` (an operator masks spikes, not synapses), with its compensation and
// its spread (per source neuron). Throws ModelError for a release that cannot be (compensation at
// ratio 1, a spread outside [0, 1e6]). Moves the network.
Network with_targeted_release(Network net, const Targets& t, const Release& release);

} // namespace quantal
