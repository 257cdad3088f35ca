#include "network/targets.hpp"

#include <algorithm>
#include <array>
#include <optional>

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

std::string_view layer_of(std::string_view name) {
    const auto dot = name.rfind('.');
    return dot == std::string_view::npos ? name : name.substr(0, dot);
}

namespace {

const std::string& operator_name(const Operator& o) { return std::get<SoftmaxAttention>(o).name; }

// One item of a --targets list: a set, a role, a projection or an operator, optionally `@LAYER`.
void add_target(const Network& net, std::string_view item, Targets& t) {
    const auto at = item.find('@');
    const std::string_view token = item.substr(0, at);
    const std::optional<std::string_view> layer =
        at == std::string_view::npos ? std::nullopt : std::optional{item.substr(at + 1)};
    if (token.empty() || (layer && layer->empty())) refuse(item, "an empty name");
    auto in_layer = [&](std::string_view name) { return !layer || layer_of(name) == *layer; };
    auto projection_in_layer = [&](ProjectionId p) {
        return in_layer(net.population(net.projection(p).target).name);
    };
    auto with_role = [&](auto&& keep) {
        bool any = false;
        for (ProjectionId p = 0; p < net.projections().size(); ++p)
            if (keep(net.projection(p).role) && projection_in_layer(p)) any = t.projection[p] = true;
        return any;
    };
    const auto ops = net.operators();
    auto all_operators = [&] {
        bool any = false;
        for (std::size_t o = 0; o < ops.size(); ++o)
            if (in_layer(operator_name(ops[o]))) any = t.op[o] = true;
        return any;
    };
    const std::string where = layer ? " in layer '" + std::string(*layer) + "'" : std::string();
    const bool attention = token == "attention" || token == "linear";
    if (attention && !all_operators()) {
        if (ops.empty()) refuse(item, "the model has no attention operator");
        if (token == "attention") refuse(item, "no attention operator" + where);
    }
    if (token == "linear") {
        if (!with_role([](const std::string& r) {
                return std::find(linear_inputs.begin(), linear_inputs.end(), r) != linear_inputs.end();
            }))
            refuse(item, "no projection" + where + " has role qkv_in, proj_in, fc1_in or fc2_in (export the model with roles)");
    } else if (token == "all") {
        const bool any_operator = all_operators();
        if (!with_role([](const std::string&) { return true; }) && !any_operator) refuse(item, "nothing" + where);
    } else if (is_projection_role(token)) {
        if (!with_role([&](const std::string& r) { return r == token; }))
            refuse(item, "no projection of the model" + where + " has this role");
    } else if (token == "attention") {
        // operators only: marked above
    } else if (layer) {
        refuse(item, "'@LAYER' restricts a set or a role, not a projection or operator name");
    } else if (const auto p = net.find_projection(token)) {
        t.projection[*p] = true;
    } else {
        const auto op = std::find_if(ops.begin(), ops.end(), [&](const Operator& o) { return operator_name(o) == token; });
        if (op == ops.end())
            refuse(item, "not a target set (attention, linear, all), a role, a projection or an operator of the model");
        t.op[std::size_t(op - ops.begin())] = true;
    }
}

} // namespace

Targets resolve_targets(const Network& net, std::string_view spec) {
    Targets t;
    t.projection.assign(net.projections().size(), false);
    t.op.assign(net.operators().size(), false);
    for (const auto item : split(spec)) {
        if (item.empty()) refuse(spec, "an empty name in the list");
        add_target(net, item, t);
    }
    return t;
}

std::vector<std::string> layer_groups(const Network& net) {
    std::vector<std::string> out;
    auto add = [&](std::string group) {
        if (std::find(out.begin(), out.end(), group) == out.end()) out.push_back(std::move(group));
    };
    for (const auto& p : net.projections())
        add(p.role.empty() ? p.name : p.role + "@" + std::string(layer_of(net.population(p.target).name)));
    for (const auto& o : net.operators()) add("attention@" + std::string(layer_of(operator_name(o))));
    return out;
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
