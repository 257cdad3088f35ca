#pragma once
// A network description: populations of neurons and the projections between them, validated
// once by NetworkBuilder::build(); a Network is immutable and shared read-only by all engines.
#include <boost/graph/adjacency_list.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "neurons/dynamics.hpp"
#include "neurons/models.hpp"
#include "sim/time.hpp"
#include "synapses/attention.hpp"
#include "synapses/connectivity.hpp"
#include "synapses/fanout.hpp"
#include "synapses/operators.hpp"
#include "synapses/release.hpp"
#include "synapses/release_spread.hpp"

namespace quantal {

using PopulationId = std::uint32_t;
using ProjectionId = std::uint32_t;

struct Population {
    std::string name;
    Shape shape;                // e.g. {n} or {C, H, W}; the size is the product
    NeuronModel model;
    std::vector<double> bias;   // drive added every tick: one per neuron, one for all, or none
    std::uint32_t size() const;
};

// A projection as the user describes it, input to NetworkBuilder::connect.
struct Projection {
    std::string name;           // defaults to "source->target"
    PopulationId source = 0;
    PopulationId target = 0;
    Connectivity connectivity;
    std::uint32_t delay = 0;    // ticks; a sparse projection may carry per-synapse delays instead
    Release release;
    std::string role = {};      // what it is in the model (network/targets.hpp), or empty
};

// A projection inside a built Network: what it connects, its delay and release. Its weights are
// held once, compiled (Network::fanout); Network::connectivity gives them back in the user's form.
struct ProjectionInfo {
    std::string name;
    PopulationId source = 0;
    PopulationId target = 0;
    std::uint32_t delay = 0;
    Release release;
    std::string role;
};

// The ANN a network was converted from, as its exporter counted it (docs/model-format.md, "/ann"):
// the baseline that energy reports compare with. The SNN's own synapse list is no substitute: it
// repeats the residual stream once per reader (export.py), so it overstates the ANN.
struct AnnLayer {
    std::string name;
    std::string kind;                      // "analog_input", "linear" or "attention" (q k^T and A v)
    std::uint64_t macs = 0;                // multiply-accumulates per sample
    std::uint64_t weights = 0;             // parameters the layer reads (its weight memory)
    std::uint64_t inputs = 0, outputs = 0; // activations read and written per sample
};
struct AnnBaseline {
    std::vector<AnnLayer> layers;
    std::uint32_t levels = 0; // QCFS quantisation levels L of the activations; 0: not given
    std::uint64_t macs() const;
};
// The kinds an AnnLayer may have (validated by NetworkBuilder::build).
bool is_ann_layer_kind(std::string_view kind);

// An edge of the population graph: its projection. A struct with a default, not a bare
// ProjectionId: copying a graph, Boost default-initialises an edge property before assigning it,
// which for a scalar is an indeterminate value that GCC reports (-Wmaybe-uninitialized) in every
// file that copies a Network.
struct ProjectionEdge {
    ProjectionId projection = 0;
};

// The population graph: vertices are populations, edges are projections (Boost Graph).
using PopulationGraph =
    boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, boost::no_property, ProjectionEdge>;

// The time resolution a network is built with when none is given: ms per tick.
inline constexpr double default_dt_ms = 1.0;

class Network {
public:
    // ms per tick: what converts ticks to times (traces, rates in Hz) and Poisson rates to
    // per-tick probabilities. The dynamics themselves are in ticks.
    double dt_ms() const { return dt_ms_; }
    std::span<const Population> populations() const { return populations_; }
    std::span<const ProjectionInfo> projections() const { return projections_; }
    const Population& population(PopulationId p) const { return populations_.at(p); }
    const ProjectionInfo& projection(ProjectionId p) const { return projections_.at(p); }
    // The per-neuron dynamics of population p when its parameters differ between neurons, else
    // std::monostate (one object from the model serves every neuron).
    const NeuronTable& neuron_table(PopulationId p) const { return neuron_tables_[p]; }
    // The random spike process of a Bernoulli or Poisson source (a Poisson source's rates as
    // probabilities per tick at dt_ms()); null for other populations.
    const BernoulliSource* spike_process(PopulationId p) const;
    // The projection's connectivity in the user's form, rebuilt from the compiled fan-out.
    Connectivity connectivity(ProjectionId p) const;
    const char* kind(ProjectionId p) const { return kind_name(geometry_.at(p)); }
    std::optional<PopulationId> find_population(std::string_view name) const;
    std::optional<ProjectionId> find_projection(std::string_view name) const;

    // Stage = rank in a topological order of the zero-delay sub-graph; events run by (tick, stage).
    std::uint32_t stage(PopulationId p) const { return stage_[p]; }
    PopulationId population_at_stage(std::uint32_t s) const { return by_stage_[s]; }
    std::span<const ProjectionId> outgoing(PopulationId p) const { return outgoing_[p]; }
    const Fanout& fanout(ProjectionId p) const { return fanouts_[p]; }
    std::uint32_t min_delay(ProjectionId p) const { return min_delay_[p]; }
    std::uint64_t synapses(ProjectionId p) const { return synapses_[p]; }
    // Weights the projection stores (a convolution shares its kernel): the size of its weight memory.
    std::uint64_t stored_weights(ProjectionId p) const { return stored_weights_[p]; }
    // The per-synapse probability table of a heterogeneous release (Release::heterogeneous), or
    // null: of projection p, and of operator op's input 0 (q), 1 (k) or 2 (scores).
    const ReleaseSpread* spread(ProjectionId p) const { return spreads_[p].get(); }
    const ReleaseSpread* operator_spread(std::size_t op, int input) const { return operator_spreads_[3 * op + input].get(); }
    const PopulationGraph& graph() const { return graph_; }

    std::span<const Operator> operators() const { return operators_; }
    const WindowAttention& attention(std::size_t op) const { return attention_[op]; }
    // Operators whose result is input to population p (computed just before p is updated).
    std::span<const std::uint32_t> operators_into(PopulationId p) const { return operators_into_[p]; }
    // Populations fed through an operator by p's spikes (updated in the same tick when p fires).
    std::span<const PopulationId> operator_targets(PopulationId p) const { return operator_targets_[p]; }
    // LayerNorm heads (synapses/operators.hpp), and those whose result is input to population p.
    std::span<const LayerNormHead> heads() const { return heads_; }
    std::span<const std::uint32_t> heads_into(PopulationId p) const { return heads_into_[p]; }
    // Head h's input to its output on a tick when none of its sources fired (the stream is its
    // offset alone): a constant, which the engine adds as drive so idle ticks cost nothing.
    std::span<const double> head_idle(std::size_t h) const { return head_idle_[h]; }
    // Multiply-accumulates of head h per tick (stream sum, normalisation, pooling, weight).
    std::uint64_t head_macs(std::size_t h) const;
    // Multiply-accumulates of the SNN's graph run once as an ANN: one per synapse, plus attention.
    // An estimate: prefer ann() when the model file carries the ANN's own count.
    std::uint64_t ann_macs() const;
    // The ANN the model was converted from, when its file records it.
    const std::optional<AnnBaseline>& ann() const { return ann_; }

private:
    friend class NetworkBuilder;
    friend Network with_release(Network, std::span<const Release>, std::span<const Release>);
    friend Network with_dt(Network, double);
    double dt_ms_ = default_dt_ms;
    std::vector<Population> populations_;
    std::vector<NeuronTable> neuron_tables_;
    std::vector<std::optional<BernoulliSource>> poisson_processes_; // per population: set for Poisson sources
    std::vector<ProjectionInfo> projections_;
    std::vector<Connectivity> geometry_; // the user's form without its weight arrays
    std::vector<Fanout> fanouts_;
    std::vector<std::uint32_t> min_delay_;
    std::vector<std::uint64_t> synapses_;
    std::vector<std::uint64_t> stored_weights_;
    std::vector<std::vector<ProjectionId>> outgoing_;
    std::vector<std::uint32_t> stage_;
    std::vector<PopulationId> by_stage_;
    PopulationGraph graph_;
    std::vector<Operator> operators_;
    std::vector<WindowAttention> attention_;
    std::vector<std::vector<std::uint32_t>> operators_into_;
    std::vector<std::vector<PopulationId>> operator_targets_;
    std::vector<std::shared_ptr<const ReleaseSpread>> spreads_, operator_spreads_; // shared: one per (mean, κ)
    std::vector<LayerNormHead> heads_;
    std::vector<std::vector<std::uint32_t>> heads_into_;
    std::vector<std::vector<double>> head_idle_;
    std::optional<AnnBaseline> ann_;
};

// Head h's input to its output for a stream z (C x P, channel-major): adds it into out (n_out).
// The engine and head_idle share it, so idle and busy ticks compute alike.
void layer_norm_head(const LayerNormHead& h, std::span<const double> z, std::uint32_t positions, std::span<double> out);

// Collects a description; build() validates it all in one place (shapes, finite parameters,
// release ratios, sources without inputs, no zero-delay cycle) and throws ModelError naming the
// population or projection at fault.
class NetworkBuilder {
public:
    PopulationId add_population(Population p);
    PopulationId add_population(std::string name, Shape shape, NeuronModel model, std::vector<double> bias = {}) {
        return add_population(Population{std::move(name), std::move(shape), std::move(model), std::move(bias)});
    }
    ProjectionId connect(Projection p);
    ProjectionId connect(PopulationId source, PopulationId target, Connectivity c, std::uint32_t delay = 0,
                         Release release = {}) {
        return connect(Projection{"", source, target, std::move(c), delay, release});
    }
    std::uint32_t add_operator(Operator op);
    std::uint32_t add_layer_norm_head(LayerNormHead h);
    void set_ann(AnnBaseline ann) { ann_ = std::move(ann); }
    void set_dt(double ms_per_tick) { dt_ms_ = ms_per_tick; } // default_dt_ms unless set
    std::size_t population_count() const { return populations_.size(); }
    const Population& population(PopulationId p) const { return populations_.at(p); }

    Network build() const;

private:
    std::vector<Population> populations_;
    std::vector<Projection> projections_;
    std::vector<Operator> operators_;
    std::vector<LayerNormHead> heads_;
    std::optional<AnnBaseline> ann_;
    double dt_ms_ = default_dt_ms;
};

// The largest release spread κ accepted: beyond it the Beta's standard deviation is below
// 0.0005 (homogeneous release, to within the draws' noise), and its quantiles slow to compute.
inline constexpr double max_release_spread = 1e6;

// The same network with other release settings: one per projection and one per operator (for its
// q, k and score inputs), validated as build() validates. Takes the network by value so that a
// caller who moves it in never holds two copies of the weights.
Network with_release(Network net, std::span<const Release> projections, std::span<const Release> operators);

// The same network at another time resolution (ms per tick): validated as build() validates it
// (a finite dt > 0; every Poisson source's probability rate * dt / 1000 at most 1).
Network with_dt(Network net, double dt_ms);

} // namespace quantal
