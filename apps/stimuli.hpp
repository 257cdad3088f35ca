#pragma once
// What the commands feed a model: one stimulus per sample (silent input nodes, an image from an
// IDX file or a .npy array through the model's analog /inputs, spikes from a SONATA spike file
// into its spike_source populations), the samples' labels, and the prediction read from a result.
// The rules: docs/run.md, "Inputs".
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/idx.hpp"
#include "io/model_file.hpp"
#include "io/npy.hpp"
#include "io/spike_trace.hpp"
#include "sim/engine.hpp"

namespace quantal::cli {

struct StimulusFiles {
    std::string images; // IDX images, or a .npy array (N, H, W) / (N, C, H, W); empty: no analog input
    std::string labels; // IDX labels or a .npy 1-d integer array matching the images, or empty
    std::string spikes; // SONATA spike file driving the spike_source populations, or empty
    std::uint64_t offset = 0; // the first image, the first sample of the spike file
    // Images: at most this many (none: all from offset). Spike file: exactly this many of its
    // samples (none: all from offset). Neither file: this many silent samples.
    std::optional<std::uint64_t> samples;
    Tick ticks = 0;     // with spikes: ticks per sample (T)
    double dt_ms = 1.0; // with spikes: ms per tick
};

// A spike file's spikes as the stimuli of `net`'s spike_source populations: per sample, per
// population, (tick, neuron) in time order. Sample k of the result is the file's sample offset + k.
struct FileSpikes {
    std::uint64_t samples = 0;
    std::vector<std::vector<std::vector<TimedSpike>>> per_sample; // [sample][population]
};
FileSpikes spikes_from_file(const SpikeFile& file, const std::string& model_path, const Network& net, Tick ticks,
                            double dt_ms, std::uint64_t offset, std::optional<std::uint64_t> samples);


class Stimuli {
public:
    // Reads and checks the files against the model (image size, labels within the readout's
    // classes); throws InputError naming the file. `model_path` names the model in messages.
    Stimuli(const std::string& model_path, const LoadedModel& model, const Network& net, const StimulusFiles& files);
    std::uint64_t count() const { return count_; }
    std::int64_t label(std::uint64_t k) const { return k < labels_.size() ? labels_[k] : -1; }
    Stimulus make(std::uint64_t k) const;

private:
    std::vector<double> raw(std::uint64_t k) const; // sample k's image values, as read

    const LoadedModel& model_;
    const Network& net_;
    std::optional<IdxImages> idx_;
    std::optional<NpySamples> npy_;
    std::optional<FileSpikes> spikes_;
    std::vector<std::uint64_t> labels_;
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
