#include "network/targets.hpp"

#include <algorithm>
#include <array>

#include "sim/errors.hpp"

namespace quantal {

namespace {

// The model-format vocabulary (docs/model-format.md "Roles"); a new architecture adds its words here.
constexpr std::array<std::string_view, 8> roles{"embed", "qkv_in", "proj_in", "fc1_in", "fc2_in", "stream", "merge", "head"};
// The inputs of the token-wise linear maps: what `linear` masks besides attention.
constexpr std::array<std::string_view, 4> linear_inputs{"qkv_in", "proj_in", "fc1_in", "fc2_in"};

std::vector<std::string_view> split(std::string_view spec) {
    std::vector<std::string_view> out;
    while (true) {
        const auto comma = spec.find(',');
        out.push_back(spec.substr(0, comma));
        if (comma == std::string_view::npos) return out;
        spec.remove_prefix(comma + 1);
    }
}

[[noreturn]] void refuse(std::string_view token, const std::string& why) {
    throw InputError("--targets '" + std::string(token) + "': " + why);
}

} // namespace

std::span<const std::string_view> projection_roles() { return roles; }

bool is_projection_role(std::string_view role) {
    return std::find(roles.begin(), roles.end(), role) != roles.end();
}

std::size_t Targets::projections() const { return std::size_t(std::count(projection.begin(), projection.end(), true)); }
std::size_t Targets::operators() const { return std::size_t(std::count(op.begin(), op.end(), true)); }

Targets resolve_targets(const Network& net, std::string_view spec) {
    Targets t;
    t.projection.assign(net.projections().size(), false);
    t.op.assign(net.operators().size(), false);
    auto with_role = [&](auto&& keep) {
        bool any = false;
        for (ProjectionId p = 0; p < net.projections().size(); ++p)
            if (keep(net.projection(p).role)) any = t.projection[p] = true;
        return any;
    };
    for (const auto token : split(spec)) {
        if (token.empty()) refuse(spec, "an empty name in the list");
        const bool attention = token == "attention" || token == "linear";
        if (attention) {
            if (net.operators().empty()) refuse(token, "the model has no attention operator");
            t.op.assign(t.op.size(), true);
        }
        if (token == "linear") {
            if (!with_role([](const std::string& r) {
                    return std::find(linear_inputs.begin(), linear_inputs.end(), r) != linear_inputs.end();
                }))
                refuse(token, "no projection has role qkv_in, proj_in, fc1_in or fc2_in (export the model with roles)");
        } else if (token == "all") {
            t.projection.assign(t.projection.size(), true);
            t.op.assign(t.op.size(), true);
        } else if (is_projection_role(token)) {
            if (!with_role([&](const std::string& r) { return r == token; }))
                refuse(token, "no projection of the model has this role");
        } else if (const auto p = net.find_projection(token)) {
            t.projection[*p] = true;
        } else if (!attention) {
            const auto ops = net.operators();
            const auto op = std::find_if(ops.begin(), ops.end(), [&](const Operator& o) {
                return std::get<SoftmaxAttention>(o).name == token;
            });
            if (op == ops.end())
                refuse(token, "not a target set (attention, linear, all), a role, a projection or an operator of the model");
            t.op[std::size_t(op - ops.begin())] = true;
        }
    }
    return t;
}

std::vector<std::string> describe(const Network& net, const Targets& t) {
    std::vector<std::string> out;
    for (ProjectionId p = 0; p < t.projection.size(); ++p)
        if (t.projection[p]) {
            const auto& pr = net.projection(p);
            out.push_back("projection '" + pr.name + "'" + (pr.role.empty() ? "" : " (" + pr.role + ")"));
        }
    for (std::size_t o = 0; o < t.op.size(); ++o)
        if (t.op[o]) out.push_back("operator '" + std::get<SoftmaxAttention>(net.operators()[o]).name + "' (q, k, score)");
    return out;
}

std::string summary(const Network& net, const Targets& t) {
    std::vector<std::pair<std::string, std::size_t>> counts; // in order of first appearance
    for (ProjectionId p = 0; p < t.projection.size(); ++p) {
        if (!t.projection[p]) continue;
        const std::string role = net.projection(p).role.empty() ? "without role" : net.projection(p).role;
        auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == role; });
        if (it == counts.end()) counts.emplace_back(role, 1);
        else ++it->second;
    }
    std::string out;
    for (const auto& [role, n] : counts) out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + role;
    if (t.operators()) out += (out.empty() ? "" : ", ") + std::to_string(t.operators()) + " operators (q, k, score)";
    return out.empty() ? "nothing" : out;
}

Network with_targeted_release(Network net, const Targets& t, const Release& release) {
    Release per_spike = release;
    if (per_spike.mode == ReleaseMode::synapse) per_spike.mode = ReleaseMode::spike;
    std::vector<Release> projections(net.projections().size()), operators(net.operators().size());
    for (std::size_t p = 0; p < projections.size(); ++p)
        if (t.projection[p]) projections[p] = release;
    for (std::size_t o = 0; o < operators.size(); ++o)
        if (t.op[o]) operators[o] = per_spike;
    return with_release(std::move(net), projections, operators);
}

} // namespace quantal
