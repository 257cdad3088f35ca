#pragma once
// A neuron parameter given once for a whole population or once per neuron, as a population's
// bias is. It converts from a number, so a uniform population is written as before
// (`IfNeuron{ThresholdRule{1.0}, 0.5}`); NetworkBuilder::build checks that it holds one value or
// one per neuron, all finite.
#include <cstddef>
#include <vector>

namespace quantal {

class PerNeuron {
public:
    PerNeuron(double value = 0.0) : values_{value} {}
    PerNeuron(std::vector<double> values) : values_(std::move(values)) {}

    bool uniform() const { return values_.size() == 1; }
    std::size_t size() const { return values_.size(); }
    // Neuron j's value (the one value when uniform).
    double operator[](std::size_t j) const { return values_[values_.size() == 1 ? 0 : j]; }
    const std::vector<double>& values() const { return values_; }
    bool operator==(const PerNeuron&) const = default;

private:
    std::vector<double> values_;
};

} // namespace quantal
