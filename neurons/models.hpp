#pragma once
// Neuron models as plain parameter structs. Per tick t, with constant drive b (bias plus analog
// current) and synaptic input I[t]:
//   IF:      v[t] = v[t-1] + b + I[t]
//   LIF:     v[t] = v_leak + alpha (v[t-1] - v_leak) + b + I[t],  alpha = exp(-1 / tau_ticks)
//   Readout: v[t] = v[t-1] + b + I[t]   (never spikes; its value is the network's output)
//   CubaLIF: i[t] = alpha_syn i[t-1] + b + I[t];  v[t] = v_leak + alpha (v[t-1] - v_leak) + i[t]
//            (current-based: a synaptic current filters the input; NIR's CubaLIF/CubaLI)
// then, for spiking models, one threshold check per tick. A spike carries spike_value to the
// weights of its synapses (QCFS: threshold lambda, spike value lambda). Every dynamics parameter
// (threshold, v_reset, v0, tau_ticks, tau_syn_ticks, v_leak) is one value for the population or
// one per neuron (PerNeuron); spike_value and the comparison and reset modes are per population.
#include <span>
#include <variant>
#include <vector>

#include "neurons/threshold.hpp"

namespace quantal {

struct IfNeuron {
    ThresholdRule rule;
    PerNeuron v0 = 0.0;
    double spike_value = 1.0;
};

struct LifNeuron {
    ThresholdRule rule;
    PerNeuron tau_ticks = 10.0; // membrane time constant in ticks
    PerNeuron v_leak = 0.0;
    PerNeuron v0 = 0.0;
    double spike_value = 1.0;
};

// Two states per neuron (synaptic current i, potential v); the engine steps it tick by tick
// while it is active, so its cost is that of a clocked neuron.
struct CubaLifNeuron {
    ThresholdRule rule;
    PerNeuron tau_syn_ticks = 5.0; // alpha_syn = exp(-1 / tau_syn_ticks)
    PerNeuron tau_ticks = 10.0;    // membrane: alpha = exp(-1 / tau_ticks)
    PerNeuron v_leak = 0.0;
    PerNeuron v0 = 0.0;
    double spike_value = 1.0;
};

struct ReadoutNeuron {
    PerNeuron v0 = 0.0;
};

// Emits the spikes a sample's stimulus lists for it (input layers, NIR Input nodes).
struct SpikeSource {
    double spike_value = 1.0;
};

// Each neuron spikes independently with its own probability per tick (Bernoulli; Poisson
// with rate r is probability r * dt). The draws come from the population's own stream.
struct BernoulliSource {
    std::vector<double> probability; // one per neuron, or one for all
    double spike_value = 1.0;
};

// The same process given in Hz, as NEST's poisson_generator and Brian2's PoissonGroup are: the
// network's dt turns each rate into the probability rate * dt / 1000 per tick of a
// BernoulliSource, which the engine runs (Network::spike_process).
struct PoissonSource {
    std::vector<double> rate_hz; // one per neuron, or one for all
    double spike_value = 1.0;
};

using NeuronModel =
    std::variant<IfNeuron, LifNeuron, ReadoutNeuron, SpikeSource, BernoulliSource, CubaLifNeuron, PoissonSource>;

inline bool is_source(const NeuronModel& m) {
    return std::holds_alternative<SpikeSource>(m) || std::holds_alternative<BernoulliSource>(m) ||
           std::holds_alternative<PoissonSource>(m);
}
inline bool is_readout(const NeuronModel& m) { return std::holds_alternative<ReadoutNeuron>(m); }

double spike_value(const NeuronModel& m);
// Each neuron's initial potential (v0; 0 for sources) into v, which has the population's size.
void initial_potentials(const NeuronModel& m, std::span<double> v);
const char* model_name(const NeuronModel& m);

} // namespace quantal
