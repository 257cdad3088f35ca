#include "apps/stimuli.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>
#include <variant>

#include "apps/values.hpp"
#include "sim/errors.hpp"

namespace quantal::cli {

namespace {

bool is_npy(const std::string& path) { return path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0; }

std::string shape_text(std::vector<std::uint64_t> shape) {
    std::string s;
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? " x " : "") + std::to_string(shape[i]);
    return s;
}

// A shape without its leading 1s: (1, 28, 28) and (28, 28) hold the same image.
std::vector<std::uint64_t> squeezed(std::vector<std::uint64_t> shape) {
    while (shape.size() > 1 && shape.front() == 1) shape.erase(shape.begin());
    return shape;
}

std::string ms_text(double ms) {
    char text[40];
    std::snprintf(text, sizeof text, "%.17g ms", ms);
    return text;
}

// grid_tick, or an InputError naming `where()`, built only then: files hold millions of spikes.
template <class Where>
std::uint64_t tick_at(double ms, double dt_ms, Where&& where) {
    if (const auto g = grid_tick(ms, dt_ms)) return *g;
    throw InputError(where() + ": time " + ms_text(ms) +
                     (std::isnan(ms) ? " is not a number"
                      : ms < 0       ? " is negative"
                                     : " is beyond tick 2^53 at dt " + ms_text(dt_ms)));
}

// The model population of each of the file's: a spike_source, and every spike_source has one (an
// empty group says "silent").
std::vector<PopulationId> source_of_each(const SpikeFile& file, const std::string& model_path, const Network& net) {
    const auto& path = file.path;
    std::vector<PopulationId> target(file.populations.size());
    for (std::size_t i = 0; i < file.populations.size(); ++i) {
        const auto& name = file.populations[i].name;
        const auto p = net.find_population(name);
        if (!p)
            throw InputError(path + ": /spikes/" + name + ": " + model_path + " has no population '" + name + "'");
        if (!std::holds_alternative<SpikeSource>(net.population(*p).model))
            throw InputError(path + ": /spikes/" + name + ": population '" + name + "' of " + model_path + " is " +
                             model_name(net.population(*p).model) +
                             ", not a spike_source (only spike_source populations take input spikes)");
        target[i] = *p;
    }
    for (PopulationId p = 0; p < net.populations().size(); ++p)
        if (std::holds_alternative<SpikeSource>(net.population(p).model) &&
            std::find(target.begin(), target.end(), p) == target.end())
            throw InputError(model_path + ": spike_source population '" + net.population(p).name + "' has no /spikes/" +
                             net.population(p).name + " in " + path + " (an empty group there makes it silent)");
    return target;
}

// The samples /samples lists (sample k holds ticks [k*T, (k+1)*T)), sorted; none without the table.
std::optional<std::vector<std::uint64_t>> listed_samples(const SpikeFile& file, std::uint64_t T, double dt_ms) {
    const auto& path = file.path;
    std::optional<std::vector<std::uint64_t>> held;
    if (file.sample_start_ms) {
        held.emplace();
        const auto& ms = *file.sample_start_ms;
        for (std::size_t i = 0; i < ms.size(); ++i) {
            const std::string where = path + ": /samples/start_ms[" + std::to_string(i) + "]";
            const auto g = tick_at(ms[i], dt_ms, [&] { return where; });
            if (double(g) * dt_ms != ms[i] || g % T != 0)
                throw InputError(where + ": " + ms_text(ms[i]) + " is not where a sample of --ticks " + std::to_string(T) +
                                 " at dt " + ms_text(dt_ms) + " starts (a multiple of " + ms_text(double(T) * dt_ms) +
                                 "); is --ticks the file's?");
            held->push_back(g / T);
        }
        std::sort(held->begin(), held->end());
        held->erase(std::unique(held->begin(), held->end()), held->end());
    }
    return held;
}

} // namespace

FileSpikes spikes_from_file(const SpikeFile& file, const std::string& model_path, const Network& net, Tick ticks,
                            double dt_ms, std::uint64_t offset, std::optional<std::uint64_t> samples) {
    const auto T = std::uint64_t(ticks);
    const auto& path = file.path;
    const auto target = source_of_each(file, model_path, net);
    // Sample k of the file holds ticks [k*T, (k+1)*T); /samples, when present, lists those it holds.
    const auto held = listed_samples(file, T, dt_ms);
    struct Located {
        std::uint64_t sample, tick;
    };
    std::vector<std::vector<Located>> located(file.populations.size());
    std::uint64_t file_end = held && !held->empty() ? held->back() + 1 : 0; // one past the file's last sample
    for (std::size_t i = 0; i < file.populations.size(); ++i) {
        const auto& pop = file.populations[i];
        const std::string where = path + ": /spikes/" + pop.name;
        const auto size = net.population(target[i]).size();
        for (std::size_t k = 0; k < pop.ms.size(); ++k) {
            auto element = [&] { return where + "/timestamps[" + std::to_string(k) + "]"; };
            if (pop.node_ids[k] >= size)
                throw InputError(where + "/node_ids[" + std::to_string(k) + "]: node id " + std::to_string(pop.node_ids[k]) +
                                 " is outside the population of " + std::to_string(size) + " neurons");
            const auto g = tick_at(pop.ms[k], dt_ms, element);
            if (held && !std::binary_search(held->begin(), held->end(), g / T))
                throw InputError(element() + ": " + ms_text(pop.ms[k]) + " (tick " + std::to_string(g) + ") lies in sample " +
                                 std::to_string(g / T) + " of --ticks " + std::to_string(T) +
                                 ", which /samples does not list; is --ticks the file's?");
            located[i].push_back({g / T, g % T});
            file_end = std::max(file_end, g / T + 1);
        }
    }

    // The samples run: [offset, offset + samples), each one the file's sample of that index.
    if (offset > 0 && offset >= file_end)
        throw InputError(path + ": --offset " + std::to_string(offset) + " is past its last sample (" +
                         (file_end ? std::to_string(file_end - 1) : std::string("it has none")) + ")");
    FileSpikes out;
    out.samples = samples.value_or(file_end - offset);
    if (out.samples == 0)
        throw InputError(path + ": has no spikes and no /samples table: give --samples (how many silent samples)");
    // Without /samples the file cannot say that trailing samples are silent: more may be asked.
    if (held) {
        const auto first = std::lower_bound(held->begin(), held->end(), offset);
        for (std::uint64_t k = 0; k < out.samples; ++k)
            if (std::uint64_t(held->end() - first) <= k || *(first + std::ptrdiff_t(k)) != offset + k)
                throw InputError(path + ": sample " + std::to_string(offset + k) + " (--offset " + std::to_string(offset) +
                                 ", --samples " + std::to_string(out.samples) + ") is not in its /samples, which lists " +
                                 std::to_string(held->size()) + " samples of --ticks " + std::to_string(T) +
                                 (held->empty() ? std::string()
                                                : " from " + std::to_string(held->front()) + " to " +
                                                      std::to_string(held->back())));
    }
    out.per_sample.assign(out.samples, std::vector<std::vector<TimedSpike>>(net.populations().size()));
    for (std::size_t i = 0; i < file.populations.size(); ++i)
        for (std::size_t k = 0; k < located[i].size(); ++k) {
            const auto [sample, tick] = located[i][k];
            if (sample < offset || sample >= offset + out.samples) continue; // a sample not run
            out.per_sample[sample - offset][target[i]].push_back({Tick(tick), std::uint32_t(file.populations[i].node_ids[k])});
        }
    for (std::uint64_t k = 0; k < out.samples; ++k)
        for (PopulationId p = 0; p < net.populations().size(); ++p) {
            auto& list = out.per_sample[k][p];
            std::sort(list.begin(), list.end(),
                      [](const TimedSpike& a, const TimedSpike& b) { return std::tie(a.tick, a.neuron) < std::tie(b.tick, b.neuron); });
            const auto twice = std::adjacent_find(list.begin(), list.end(), [](const TimedSpike& a, const TimedSpike& b) {
                return a.tick == b.tick && a.neuron == b.neuron;
            });
            if (twice != list.end())
                throw InputError(path + ": /spikes/" + net.population(p).name + ": node " + std::to_string(twice->neuron) +
                                 " spikes twice in tick " + std::to_string(twice->tick) + " of sample " +
                                 std::to_string(offset + k) + " (dt " + ms_text(dt_ms) +
                                 "); a spike source spikes at most once per tick: use a smaller --dt");
        }
    return out;
}

Stimuli::Stimuli(const std::string& model_path, const LoadedModel& model, const Network& net, const StimulusFiles& o)
    : model_(model), net_(net) {
    if (!o.spikes.empty()) {
        spikes_ = spikes_from_file(read_spike_file(o.spikes), model_path, net, o.ticks, o.dt_ms, o.offset, o.samples);
        count_ = spikes_->samples;
    }
    if (o.images.empty()) {
        if (!spikes_) count_ = o.samples.value_or(1);
        return;
    }
    if (model.inputs.empty())
        throw InputError(model_path + ": has no /inputs, so it cannot take --input " + o.images);
    std::vector<std::uint64_t> shape; // one sample's
    std::uint64_t images = 0;
    if (is_npy(o.images)) {
        npy_ = read_npy_samples(o.images, o.offset, o.samples.value_or(0), 3, 4);
        images = npy_->count, shape = npy_->shape;
    } else {
        idx_ = read_idx_images(o.images, o.offset, o.samples.value_or(0));
        images = idx_->count, shape = {idx_->rows, idx_->cols};
        if (idx_->channels > 1) shape.insert(shape.begin(), idx_->channels);
    }
    if (spikes_ && images != count_)
        throw InputError(o.images + ": " + std::to_string(images) + " images from offset " + std::to_string(o.offset) +
                         ", but --input-spikes " + o.spikes + " gives " + std::to_string(count_) + " samples");
    count_ = images;
    std::uint64_t pixels = 1;
    for (auto d : shape) pixels *= d;
    for (const auto& in : model.inputs) {
        std::vector<std::uint64_t> takes(in.shape.begin(), in.shape.end());
        std::uint64_t values = 1;
        for (auto d : takes) values *= d;
        // IDX images are checked by size (a 28 x 28 file feeds a (1, 28, 28) input); an array
        // also by shape, so that (N, H, W, C) cannot pass for (N, C, H, W).
        if (values != pixels || (npy_ && squeezed(shape) != squeezed(takes)))
            throw InputError(o.images + ": images of " + shape_text(shape) + " = " + std::to_string(pixels) +
                             " values do not fit " + model_path + ": input '" + in.name + "', which takes " +
                             shape_text(takes) + " = " + std::to_string(values) + " values per sample");
    }
    if (!o.labels.empty()) {
        if (is_npy(o.labels)) {
            labels_ = read_npy_labels(o.labels, o.offset, o.samples.value_or(0));
        } else {
            const auto bytes = read_idx_labels(o.labels, o.offset, o.samples.value_or(0));
            labels_.assign(bytes.begin(), bytes.end());
        }
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

std::vector<double> Stimuli::raw(std::uint64_t k) const {
    if (npy_) {
        const auto n = npy_->sample_size();
        const auto first = npy_->values.begin() + std::ptrdiff_t(k * n);
        return std::vector<double>(first, first + std::ptrdiff_t(n));
    }
    const auto pixels = idx_->image(k);
    return std::vector<double>(pixels.begin(), pixels.end());
}

Stimulus Stimuli::make(std::uint64_t k) const {
    Stimulus s = Stimulus::for_network(net_);
    if (spikes_) s.spikes = spikes_->per_sample[k];
    if (idx_ || npy_) add_analog_drives(s, model_, net_, raw(k));
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
