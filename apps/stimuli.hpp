#pragma once
// What the commands feed a model: one stimulus per sample (silent input nodes, or an IDX image
// through the model's analog /inputs), the samples' labels, and the prediction read from a result.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/idx.hpp"
#include "io/model_file.hpp"
#include "sim/engine.hpp"

namespace quantal::cli {

struct StimulusFiles {
    std::string images;  // IDX images; empty: no input (samples run with silent inputs)
    std::string labels;  // IDX labels matching the images, or empty
    std::uint64_t offset = 0;
    std::uint64_t samples = 0; // at most this many images
};

class Stimuli {
public:
    // Reads and checks the files against the model (image size, labels within the readout's
    // classes); throws InputError naming the file. `model_path` names the model in messages.
    Stimuli(const std::string& model_path, const LoadedModel& model, const Network& net, const StimulusFiles& files);
    std::uint64_t count() const { return count_; }
    std::int64_t label(std::uint64_t k) const { return k < labels_.size() ? labels_[k] : -1; }
    Stimulus make(std::uint64_t k) const;

private:
    const LoadedModel& model_;
    const Network& net_;
    std::optional<IdxImages> images_;
    std::vector<std::uint8_t> labels_;
    std::uint64_t count_ = 0;
};

// Adds the current and MACs of the model's analog inputs for one sample's raw values to `s`
// (several inputs into one population sum). Throws InputError if the values have the wrong size.
void add_analog_drives(Stimulus& s, const LoadedModel& model, const Network& net, std::span<const double> raw);

inline constexpr PopulationId no_readout = ~PopulationId{0};

// argmax of the readout's value at its observed tick number `observed` (default: the last; a
// readout integrates, so the value is the sum over ticks up to then); -1 without a readout.
std::int64_t prediction(const SampleResult& r, PopulationId readout, std::optional<std::size_t> observed = {});

} // namespace quantal::cli
