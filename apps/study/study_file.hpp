#pragma once
// The results of a study (docs/sweep.md): one HDF5 file, and the same table as CSV. Written from
// the plan and the completed state only, so a resumed or distributed study writes exactly what an
// uninterrupted one-process study writes.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "apps/study/plan.hpp"
#include "apps/study/work.hpp"
#include "network/network.hpp"
#include "sim/energy_ledger.hpp"

namespace quantal::study {

// 3: /results/layers/population_updates and population_clocked_updates (docs/sweep.md).
inline constexpr std::int64_t study_format_version = 3;

// What the study was: the file's root attributes.
struct StudyDescription {
    std::string command_line, version;
    std::vector<std::string> models, model_sha256;
    std::string input, input_sha256, labels, labels_sha256;
    std::uint64_t offset = 0, samples = 0, ticks = 0, block = 0;
    std::vector<std::uint64_t> observe; // ticks at which accuracy is read
    double release_spread = 0;          // Beta concentration of release probabilities; 0 = homogeneous
    EnergyCosts costs;
};

// Writes `path` (truncating it). `nets` are the study's models (names of layers, the ANN baseline).
void write_study_file(const std::string& path, const StudyDescription& d, std::span<const Configuration> plan,
                      const StudyState& state, std::span<const Network> nets);

// One row per configuration and observed tick, every row carrying the model's SHA-256, the seed,
// quantal's version and the command line (docs/sweep.md "CSV").
void write_study_csv(const std::string& path, const StudyDescription& d, std::span<const Configuration> plan,
                     const StudyState& state, std::span<const Network> nets);

// A study file read back for the energy models (`quantal energy STUDY.h5`): per configuration
// the per-layer counts per image of /results/layers, totals of /results, accuracy at the last
// observed tick. InputError naming the file and the item for anything missing or misshapen.
struct StudyCounts {
    std::vector<std::string> models;
    std::int64_t format_version = 0;
    bool has_visits = false; // format version 3: neuron updates (event-driven visits) per layer
    std::uint64_t samples = 0, ticks = 0;
    EnergyCosts costs;
    struct Layers {
        std::vector<std::string> populations, projections, operators;
    };
    std::vector<Layers> model_layers; // /models/<m>
    struct Row {
        std::uint32_t model = 0;
        double ratio = 0, accuracy = 0, macs = 0; // macs: per image, analog input and softmax
        std::uint64_t baseline = 0;
        std::string release, targets;
        std::vector<double> population_spikes, projection_attempted, projection_transmitted, projection_masked;
        std::vector<double> operator_coincidences, operator_deliveries, operator_macs, operator_masked;
        std::vector<double> population_updates; // empty without visits (format version 2)
    };
    std::vector<Row> rows;
};
StudyCounts read_study_counts(const std::string& path);
bool is_study_file(const std::string& path);

} // namespace quantal::study
