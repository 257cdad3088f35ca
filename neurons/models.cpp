#include "neurons/models.hpp"
#include "sim/overloaded.hpp"

namespace quantal {

double spike_value(const NeuronModel& m) {
    return std::visit(overloaded{[](const ReadoutNeuron&) { return 0.0; },
                                 [](const auto& p) { return p.spike_value; }},
                      m);
}

double initial_potential(const NeuronModel& m) {
    return std::visit(overloaded{[](const SpikeSource&) { return 0.0; },
                                 [](const BernoulliSource&) { return 0.0; },
                                 [](const auto& p) { return p.v0; }},
                      m);
}

const char* model_name(const NeuronModel& m) {
    return std::visit(overloaded{[](const IfNeuron&) { return "IF"; },
                                 [](const LifNeuron&) { return "LIF"; },
                                 [](const ReadoutNeuron&) { return "readout"; },
                                 [](const SpikeSource&) { return "spike_source"; },
                                 [](const BernoulliSource&) { return "bernoulli_source"; },
                                 [](const CubaLifNeuron&) { return "CubaLIF"; }},
                      m);
}

} // namespace quantal
