#pragma once
// quantal's own HDF5 model files (docs/model-format.md, format version 2): read into a Network
// plus the analog inputs and readout that say how a sample enters and what it answers; write a
// Network back. Errors in a file throw InputError/ModelError naming the file and the object.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "network/network.hpp"

namespace quantal {

// `/inputs/<name>`: a linear map applied once per sample to its data (e.g. an image); the result
// is a constant current into `target` at every tick.
struct AnalogInput {
    std::string name;
    std::string target;
    Shape shape;                        // one sample's data, e.g. (1, 28, 28)
    Connectivity map;                   // Dense or Conv2d
    std::vector<double> bias;           // per output element, per output channel, or empty
    double scale = 1.0, offset = 0.0;   // x = raw * scale + offset
    std::optional<std::array<std::int64_t, 2>> pad_to; // centred zero padding of (H, W)
};

// Float64 values of a file's float datasets (weights, biases, probabilities) that float32, which
// quantal holds them in, cannot represent exactly: rounded to the nearest float32, counted here.
struct FloatRounding {
    std::uint64_t values = 0;
    double max_relative = 0; // largest |rounded - stored| / |stored|
    std::string first;       // the first dataset with a rounded value
    void add(const std::string& dataset, std::uint64_t rounded, double largest_relative) {
        if (values == 0) first = dataset;
        values += rounded;
        if (largest_relative > max_relative) max_relative = largest_relative;
    }
    std::string text() const; // one line for a warning; empty when nothing was rounded
};

struct LoadedModel {
    Network network;
    std::vector<AnalogInput> inputs;
    std::string readout; // population whose values are the logits; empty: none
    std::string name, producer, provenance;
    // The file's own dt (ms per tick), if it gives one; the network then has it (else
    // default_dt_ms). A NIR graph has none: it is discretised with NirOptions::dt_ms.
    std::optional<double> file_dt_ms;
    FloatRounding rounded_to_float;
};

struct ModelFileInfo {
    std::string name = "model";
    std::string producer = "quantal";
    std::string provenance;
};

// `dt_ms`, when given, is the run's dt and replaces the file's (kept in file_dt_ms): Poisson
// sources are lowered at the dt the run uses, so a file refused at its own dt may run at a finer one.
LoadedModel read_model_file(const std::string& path, std::optional<double> dt_ms = std::nullopt);
void write_model_file(const std::string& path, const Network& net, const ModelFileInfo& info,
                      std::span<const AnalogInput> inputs = {}, const std::string& readout = {});

// The constant current one sample's raw data drives into the input's target (one value per
// target neuron) and the MACs that computed it. Throws InputError if the data has the wrong size.
struct AnalogDrive {
    std::vector<double> current;
    std::uint64_t macs = 0;
};
AnalogDrive analog_drive(const AnalogInput& input, const Network& net, std::span<const double> raw);

} // namespace quantal
