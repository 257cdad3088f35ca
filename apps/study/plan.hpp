#pragma once
// The configurations of a failure-probability study: models x ratios x release modes x target
// sets x seeds, each run once. A configuration that would repeat another exactly
// (every ratio-0 one repeats its baseline; `synapse` release on operators only repeats `spike`;
// two spellings of one target set) is kept in the table, marked with what it repeats, not run again.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "network/network.hpp"
#include "network/targets.hpp"

namespace quantal::study {

struct Grid {
    std::vector<double> ratios;             // failure probabilities in [0, 1]
    std::vector<ReleaseMode> releases;      // spike and/or synapse
    std::vector<std::string> targets;       // --targets specs (network/targets.hpp); `each`: one
                                            // configuration per layer group (layer_groups())
    std::vector<std::uint64_t> seeds;
    bool compensate = false;                // every r > 0 with surviving transmissions x 1/(1-r) (r = 1 refused)
};

struct Configuration {
    std::uint32_t model = 0;                // index into the study's models
    std::uint64_t seed = 0;
    double ratio = 0;
    ReleaseMode release = ReleaseMode::none;
    std::string targets;                    // as given; "none" for a baseline
    bool compensated = false;
    bool each = false;                      // one layer group of `--targets each`
    std::size_t baseline = 0;               // the ratio-0 configuration of the same model and seed
    std::optional<std::size_t> same_as;     // an earlier configuration whose results these are
};

// Checks the grid (one line naming the value: ratios outside [0, 1], an empty list, a repeated
// value, a target set that matches nothing on a model) and lists its configurations: per model
// and seed, the baseline first, then the grid in the order ratios, releases, targets.
std::vector<Configuration> plan(const Grid& grid, std::span<const Network* const> models);

// The configurations that are run (those that repeat nothing).
std::size_t distinct(std::span<const Configuration> plan);

} // namespace quantal::study
