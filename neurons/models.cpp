#include "neurons/models.hpp"

#include <algorithm>

#include "sim/overloaded.hpp"

namespace quantal {

double spike_value(const NeuronModel& m) {
    return std::visit(overloaded{[](const ReadoutNeuron&) { return 0.0; },
                                 [](const auto& p) { return p.spike_value; }},
                      m);
}

void initial_potentials(const NeuronModel& m, std::span<double> v) {
    std::visit(overloaded{[&](const SpikeSource&) { std::fill(v.begin(), v.end(), 0.0); },
                          [&](const BernoulliSource&) { std::fill(v.begin(), v.end(), 0.0); },
                          [&](const PoissonSource&) { std::fill(v.begin(), v.end(), 0.0); },
                          [&](const auto& p) {
                              if (p.v0.uniform()) std::fill(v.begin(), v.end(), p.v0[0]);
                              else std::copy(p.v0.values().begin(), p.v0.values().end(), v.begin());
                          }},
               m);
}

const char* model_name(const NeuronModel& m) {
    return std::visit(overloaded{[](const IfNeuron&) { return "IF"; },
                                 [](const LifNeuron&) { return "LIF"; },
                                 [](const ReadoutNeuron&) { return "readout"; },
                                 [](const SpikeSource&) { return "spike_source"; },
                                 [](const BernoulliSource&) { return "bernoulli_source"; },
                                 [](const PoissonSource&) { return "poisson_source"; },
                                 [](const CubaLifNeuron&) { return "CubaLIF"; }},
                      m);
}

} // namespace quantal
