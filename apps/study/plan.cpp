#include "apps/study/plan.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "sim/errors.hpp"

namespace quantal::study {

namespace {

template <class T, class Show> void require_distinct(const std::vector<T>& values, const char* option, Show show) {
    if (values.empty()) throw InputError(std::string(option) + ": the list is empty");
    for (std::size_t i = 0; i < values.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (values[i] == values[j]) throw InputError(std::string(option) + ": " + show(values[i]) + " is given twice");
}

// What decides a configuration's results: two configurations with equal keys are the same run.
using Key = std::tuple<std::uint32_t, std::uint64_t, double, int, std::vector<bool>, std::vector<bool>, bool>;

} // namespace

std::vector<Configuration> plan(const Grid& grid, std::span<const Network* const> models) {
    auto number = [](double r) {
        char text[32];
        std::snprintf(text, sizeof text, "%g", r);
        return std::string(text);
    };
    require_distinct(grid.ratios, "--ratios", number);
    for (double r : grid.ratios)
        if (!(r >= 0 && r <= 1)) throw InputError("--ratios: " + number(r) + " is outside [0, 1]");
    require_distinct(grid.releases, "--release", [](ReleaseMode m) { return std::string(mode_name(m)); });
    for (auto m : grid.releases)
        if (m == ReleaseMode::none) throw InputError("--release: none is not a failure model (use ratio 0)");
    require_distinct(grid.targets, "--targets", [](const std::string& t) { return "'" + t + "'"; });
    require_distinct(grid.seeds, "--seeds", [](std::uint64_t s) { return std::to_string(s); });
    if (models.empty()) throw InputError("--model: no model given");
    if (grid.compensate && std::find(grid.ratios.begin(), grid.ratios.end(), 1.0) != grid.ratios.end())
        throw InputError("--compensate: ratio 1 leaves no transmission to scale by 1/(1 - ratio); remove it from --ratios");

    std::vector<Configuration> out;
    std::map<Key, std::size_t> seen;
    for (std::uint32_t m = 0; m < models.size(); ++m) {
        const Network& net = *models[m];
        std::vector<std::string> specs;
        std::vector<bool> each;
        for (const auto& spec : grid.targets) {
            const auto groups = spec == "each" ? layer_groups(net) : std::vector<std::string>{spec};
            specs.insert(specs.end(), groups.begin(), groups.end());
            each.insert(each.end(), groups.size(), spec == "each");
        }
        std::vector<Targets> resolved;
        for (const auto& spec : specs) resolved.push_back(resolve_targets(net, spec));
        const std::vector<bool> no_projection(net.projections().size()), no_operator(net.operators().size());
        for (auto seed : grid.seeds) {
            const std::size_t baseline = out.size();
            out.push_back({m, seed, 0.0, ReleaseMode::none, "none", false, false, baseline, std::nullopt});
            seen[Key{m, seed, 0.0, 0, no_projection, no_operator, false}] = baseline;
            for (double r : grid.ratios)
                for (auto mode : grid.releases)
                    for (std::size_t t = 0; t < specs.size(); ++t) {
                        // Compensation by 1/(1-r) is the identity at r = 0 (the baseline).
                        const bool compensated = grid.compensate && r > 0;
                        Configuration c{m, seed, r, mode, specs[t], compensated, each[t], baseline, std::nullopt};
                        const Targets& tg = resolved[t];
                        // Nothing fails: the baseline. Operators mask spikes whatever the mode, so
                        // without a targeted projection `synapse` is `spike`.
                        const bool nothing = r == 0;
                        const int effective_mode = nothing ? 0 : tg.projections() ? int(mode) : int(ReleaseMode::spike);
                        const Key key = nothing ? Key{m, seed, 0.0, 0, no_projection, no_operator, false}
                                                : Key{m, seed, r, effective_mode, tg.projection, tg.op, compensated};
                        if (auto it = seen.find(key); it != seen.end()) c.same_as = it->second;
                        else seen[key] = out.size();
                        out.push_back(std::move(c));
                    }
        }
    }
    return out;
}

std::size_t distinct(std::span<const Configuration> plan) {
    return std::size_t(std::count_if(plan.begin(), plan.end(), [](const auto& c) { return !c.same_as; }));
}

} // namespace quantal::study
