#pragma once
// Membrane potentials of chosen neurons at every tick (RunOptions::potentials), read from the
// engine's lazy state without changing it: a neuron not visited at tick u holds the drift of its
// last state, computed here with the same one-tick step the engine's drift applies (so the value
// is the one a clocked simulation holds, bit for bit). Each probe keeps the previous tick's values,
// so a frame costs one step per probed neuron, whatever the gap since the neuron's last visit.
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "network/network.hpp"
#include "neurons/dynamics.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"
#include "sim/population_update.hpp"
#include "sim/time.hpp"

namespace quantal {

class PotentialRecorder {
public:
    // Refuses probes that cannot be recorded: InputError naming the population.
    static void validate(const Network& net, const std::vector<PotentialProbe>& probes) {
        std::vector<bool> seen(net.populations().size(), false);
        for (const auto& probe : probes) {
            if (probe.population >= net.populations().size())
                throw InputError("record_v: population index " + std::to_string(probe.population) + " is not in the network");
            const auto& pop = net.population(probe.population);
            if (is_source(pop.model))
                throw InputError("record_v: population '" + pop.name + "' is a spike source and has no membrane potential");
            if (seen[probe.population])
                throw InputError("record_v: population '" + pop.name + "' is probed twice (give one range per population)");
            seen[probe.population] = true;
            if (probe.neurons.empty()) throw InputError("record_v: no neurons of population '" + pop.name + "' given");
            for (std::size_t i = 0; i < probe.neurons.size(); ++i) {
                if (probe.neurons[i] >= pop.size())
                    throw InputError("record_v: neuron " + std::to_string(probe.neurons[i]) + " is outside population '" +
                                     pop.name + "' (" + std::to_string(pop.size()) + " neurons)");
                if (i > 0 && probe.neurons[i] <= probe.neurons[i - 1])
                    throw InputError("record_v: neurons of population '" + pop.name +
                                     "' must be ascending and distinct");
            }
        }
    }

    // A new sample: every population's state refers to tick -1 (its initial potential).
    void reset(const Network& net, const std::vector<PotentialProbe>& probes, const std::vector<PopulationState>& pops) {
        net_ = &net;
        probes_ = probes;
        cache_.resize(probes.size());
        frame_.clear();
        for (std::size_t i = 0; i < probes.size(); ++i) {
            auto& c = cache_[i];
            const auto& ps = pops[probes[i].population];
            c.v.clear(), c.syn.clear();
            for (std::uint32_t j : probes[i].neurons) {
                c.v.push_back(ps.v[j]);
                c.syn.push_back(ps.syn.empty() ? 0.0 : ps.syn[j]);
            }
            c.at = -1;
        }
        next_ = 0;
    }
    std::size_t probes() const { return probes_.size(); }

    // Frames for every tick before `until` not reported yet; `pops` must hold the state at the
    // end of tick until - 1 (every tick in between had no work).
    template <class Emit>
    void record_until(Tick until, const std::vector<PopulationState>& pops, Emit&& emit) {
        if (probes_.empty()) return;
        for (; next_ < until; ++next_)
            for (std::size_t i = 0; i < probes_.size(); ++i) {
                frame(i, pops[probes_[i].population]);
                emit(i, next_, std::span<const double>(frame_));
            }
    }

private:
    struct Cache {
        std::vector<double> v, syn; // the probed neurons' state at tick `at`
        Tick at = never;
    };

    // Probe i's values at tick next_, into frame_ and the cache.
    void frame(std::size_t i, const PopulationState& ps) {
        const auto& probe = probes_[i];
        auto& c = cache_[i];
        const Tick u = next_;
        std::visit(
            [&](const auto& model) {
                using M = std::decay_t<decltype(model)>;
                if constexpr (std::is_same_v<M, IfNeuron>) fill_as<IfDynamics>(c, ps, probe, u, model);
                else if constexpr (std::is_same_v<M, LifNeuron>) fill_as<LifDynamics>(c, ps, probe, u, model);
                else if constexpr (std::is_same_v<M, CubaLifNeuron>) fill_as<CubaLifDynamics>(c, ps, probe, u, model);
                else if constexpr (std::is_same_v<M, ReadoutNeuron>)
                    fill(c, ps, probe, u, Uniform<IfDynamics>{IfDynamics(SpikeRule{})}); // v + drive; never spikes
            },
            net_->population(probe.population).model);
        c.at = u;
        frame_.assign(c.v.begin(), c.v.end());
    }

    // The population's dynamics as the engine steps it: one object, or the per-neuron table.
    template <class Dynamics, class Model>
    void fill_as(Cache& c, const PopulationState& ps, const PotentialProbe& probe, Tick u, const Model& model) const {
        if (const auto* table = std::get_if<std::vector<Dynamics>>(&net_->neuron_table(probe.population)))
            fill(c, ps, probe, u, PerNeuronTable<Dynamics>{table->data()});
        else
            fill(c, ps, probe, u, Uniform<Dynamics>{Dynamics(model)});
    }

    // A neuron visited at u (or every neuron of a sweeping population) holds its value at u;
    // another drifts one step from u - 1 (the cache), or from its own state if the cache is older.
    template <class Table>
    static void fill(Cache& c, const PopulationState& ps, const PotentialProbe& probe, Tick u, const Table& table) {
        for (std::size_t n = 0; n < probe.neurons.size(); ++n) {
            const std::uint32_t j = probe.neurons[n];
            const auto& dyn = table[j];
            const bool current = ps.sweeping || ps.state_at[j] == u;
            double v = current || c.at != u - 1 ? ps.v[j] : c.v[n];
            double syn = ps.syn.empty() ? 0.0 : (current || c.at != u - 1 ? ps.syn[j] : c.syn[n]);
            const Tick steps = current ? 0 : c.at == u - 1 ? 1 : u - ps.state_at[j];
            for (Tick k = 0; k < steps; ++k) {
                if constexpr (std::is_same_v<std::decay_t<decltype(dyn)>, CubaLifDynamics>) dyn.step(syn, v, ps.drive[j], 0.0);
                else v = dyn.step(v, ps.drive[j]);
            }
            c.v[n] = v, c.syn[n] = syn;
        }
    }

    const Network* net_ = nullptr;
    std::vector<PotentialProbe> probes_;
    std::vector<Cache> cache_;
    std::vector<double> frame_;
    Tick next_ = 0; // the first tick not reported
};

} // namespace quantal
