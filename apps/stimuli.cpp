#include "apps/stimuli.hpp"

#include <algorithm>

#include "sim/errors.hpp"

namespace quantal::cli {

Stimuli::Stimuli(const std::string& model_path, const LoadedModel& model, const Network& net, const StimulusFiles& o)
    : model_(model), net_(net) {
    if (o.images.empty()) {
        count_ = o.samples;
        return;
    }
    if (model.inputs.empty())
        throw InputError(model_path + ": has no /inputs, so it cannot take --input " + o.images);
    images_ = read_idx_images(o.images, o.offset, o.samples);
    count_ = images_->count;
    const std::uint64_t pixels = images_->image_size();
    for (const auto& in : model.inputs) {
        std::uint64_t values = 1;
        for (auto d : in.shape) values *= std::uint64_t(d);
        if (values != pixels)
            throw InputError(o.images + ": images of " +
                             (images_->channels > 1 ? std::to_string(images_->channels) + " x " : std::string()) +
                             std::to_string(images_->rows) + " x " + std::to_string(images_->cols) + " = " +
                             std::to_string(pixels) +
                             " values do not fit " + model_path + ": input '" + in.name + "', which takes " +
                             std::to_string(values) + " values per sample");
    }
    if (!o.labels.empty()) {
        labels_ = read_idx_labels(o.labels, o.offset, o.samples);
        if (labels_.size() < count_)
            throw InputError(o.labels + ": has " + std::to_string(labels_.size()) + " labels from offset " +
                             std::to_string(o.offset) + ", fewer than the " + std::to_string(count_) + " images");
        // A label the readout cannot predict would count as a wrong answer, silently.
        if (const auto readout = net.find_population(model.readout)) {
            const std::uint64_t classes = net.population(*readout).size();
            for (std::uint64_t k = 0; k < count_; ++k)
                if (labels_[k] >= classes)
                    throw InputError(o.labels + ": label " + std::to_string(labels_[k]) + " at index " +
                                     std::to_string(o.offset + k) + " is not one of the " + std::to_string(classes) +
                                     " classes of " + model_path + "'s readout '" + model.readout + "'");
        }
    }
}

Stimulus Stimuli::make(std::uint64_t k) const {
    Stimulus s = Stimulus::for_network(net_);
    if (!images_) return s;
    const auto pixels = images_->image(k);
    const std::vector<double> raw(pixels.begin(), pixels.end());
    add_analog_drives(s, model_, net_, raw);
    return s;
}

void add_analog_drives(Stimulus& s, const LoadedModel& model, const Network& net, std::span<const double> raw) {
    for (const auto& in : model.inputs) {
        const auto target = *net.find_population(in.target);
        const auto drive = analog_drive(in, net, raw);
        auto& current = s.current[target];
        current.resize(drive.current.size(), 0.0);
        for (std::size_t j = 0; j < current.size(); ++j) current[j] += drive.current[j];
        s.current_macs[target] += drive.macs;
    }
}

std::int64_t prediction(const SampleResult& r, PopulationId readout, std::optional<std::size_t> observed) {
    for (const auto& ro : r.readouts) {
        if (ro.population != readout || ro.ticks.empty()) continue;
        const std::size_t n = ro.values.size() / ro.ticks.size(), row = observed.value_or(ro.ticks.size() - 1);
        const auto first = ro.values.begin() + std::ptrdiff_t(row * n);
        return std::int64_t(std::max_element(first, first + std::ptrdiff_t(n)) - first);
    }
    return -1;
}

} // namespace quantal::cli
