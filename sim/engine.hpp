#pragma once
// The event-driven engine: simulates one sample of a Network at a time (DESIGN.md, "One tick,
// precisely"). Cost follows activity: neurons are visited only when they receive input or reach
// a predicted threshold crossing; their drift is integrated lazily in between.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "network/network.hpp"
#include "sim/energy_ledger.hpp"
#include "sim/time.hpp"

namespace quantal {

struct TimedSpike {
    Tick tick;
    std::uint32_t neuron;
};

// One sample's input. Vectors are indexed by population; empty entries mean "nothing".
struct Stimulus {
    std::vector<std::vector<double>> current;       // constant analog current per neuron, every tick
    std::vector<std::uint64_t> current_macs;        // MACs per tick that produced that current
    std::vector<std::vector<TimedSpike>> spikes;    // scheduled spikes of SpikeSource populations

    static Stimulus for_network(const Network& net);
};

// How a population's neurons are visited at a tick (docs/engine.md, "Two update paths"). The
// result is the same either way; `automatic` picks the cheaper one by a fixed rule on counts.
// Forcing a path is for tests and measurements.
enum class UpdatePath { automatic, lazy, sweep };

// Neurons of one population whose membrane potential is reported at every tick of a sample
// (docs/traces.md, "Membrane reports"): the value each holds at the end of the tick, after the
// tick's input, the threshold check and the reset. Only these neurons are brought up to date
// every tick; the rest of the network stays event-driven, and its spikes are the same.
struct PotentialProbe {
    PopulationId population = 0;
    std::vector<std::uint32_t> neurons; // ascending, distinct, within the population
};

// Below this much work (neurons stepped, predicted or visited in a population's update; synapses
// of one conv projection in one tick) a step of a sample runs on one thread even when it has more:
// about 0.1 ms of work, where a parallel region's cost (microseconds, more on a loaded machine)
// stops mattering. docs/engine.md, "Threads within a sample".
inline constexpr std::uint64_t default_parallel_min_work = std::uint64_t{1} << 17;

struct RunOptions {
    Tick ticks = 100;              // the sample occupies ticks [0, ticks)
    std::uint64_t seed = 0;        // run seed; streams are keyed by (seed, sample, stream)
    std::vector<Tick> observe;     // ticks at which readouts are recorded (empty: the last tick)
    bool record_spikes = false;    // keep the spikes (and probed potentials) in SampleResult
    // With record_spikes: the populations whose spikes are kept, one flag per population (empty:
    // all). A Swin-T sample fires 10^8 spikes: keeping all of them for a batch held gigabytes.
    std::vector<bool> record_populations;
    std::vector<PotentialProbe> potentials; // at most one per population; not spike sources
    UpdatePath update_path = UpdatePath::automatic;
    // OpenMP threads inside one sample, 1 to max_batch_threads (more is refused); the result is
    // the same whatever the count. Steps with less work than parallel_min_work stay on one thread
    // (lowering it makes small networks take the parallel code: tests).
    int threads_per_sample = 1;
    std::uint64_t parallel_min_work = default_parallel_min_work;
};

struct SpikeRecord {
    Tick tick;
    std::uint32_t population;
    std::uint32_t neuron;
    bool operator==(const SpikeRecord&) const = default;
};

struct Readout {
    PopulationId population;
    std::vector<Tick> ticks;
    std::vector<double> values; // ticks.size() x population size, row-major
};

struct SampleResult {
    std::uint64_t sample = 0;
    EnergyLedger ledger;
    std::vector<Readout> readouts; // one per readout population
    std::vector<SpikeRecord> spikes; // in simulation order (by tick, then stage)
    // With record_spikes, per RunOptions::potentials entry: ticks x neurons, row-major.
    std::vector<std::vector<double>> potentials;
};

// Receives each population's spikes of one tick as they happen (trace writers, monitors), and
// the probed membrane potentials of each tick (one call per RunOptions::potentials entry).
class SpikeSink {
public:
    virtual ~SpikeSink() = default;
    virtual void on_spikes(PopulationId population, Tick tick, std::span<const std::uint32_t> neurons) = 0;
    virtual void on_potentials(std::size_t /*probe*/, Tick /*tick*/, std::span<const double> /*values*/) {}
};

// Everything that changes while a sample runs, at a tick boundary: every tick before `next` has
// been simulated (or had no work) and none after it. Pending work is a canonical list (by tick, then in the order
// it was scheduled), independent of how the engine queues it. What the network, the stimulus and
// the options determine (release plans, drives' inputs, observation ticks) is checked, not
// trusted: restore() refuses a state that does not fit them. Serialised by io/checkpoint.cpp.
struct EngineState {
    using Stream = std::array<std::uint64_t, 4>; // a random stream's raw state
    struct Population {
        std::vector<double> v, input, syn; // drive is not state: bias + stimulus
        std::vector<Tick> state_at, last_visit, wake_at;
        std::vector<std::uint8_t> mark;
        std::vector<std::uint32_t> to_visit, unresolved, fired;
        bool sweeping = false;
        Tick fired_tick = -1, held_input_at = -1;
        Stream rng{};
    };
    struct Wake {
        Tick tick;
        std::uint32_t population, neuron;
    };
    struct Delivery {
        Tick tick;
        std::uint32_t projection, source;
        std::uint64_t group;
    };

    std::uint64_t sample = 0;
    Tick ticks = 0; // the sample's length (RunOptions::ticks)
    std::uint64_t seed = 0;
    std::uint8_t update_path = 0; // UpdatePath
    Tick now = 0;                 // the last simulated tick (the calendars' present)
    Tick next = 0;                // the next tick with work
    std::vector<Population> populations;
    std::vector<Stream> projection_rng, operator_rng;
    std::vector<Wake> wakes; // by tick, then push order
    std::vector<Delivery> deliveries;
    std::vector<Tick> observe_at;
    SampleResult result; // the ledger, readouts and recorded spikes so far
};

class Engine {
public:
    explicit Engine(const Network& net);
    ~Engine();
    Engine(Engine&&) noexcept;
    Engine& operator=(Engine&&) = delete;

    // Resets all state, then simulates one sample. Throws InputError for a stimulus that does
    // not fit the network.
    SampleResult run(const Stimulus& stimulus, const RunOptions& options, std::uint64_t sample,
                     SpikeSink* sink = nullptr);

    // The same, a piece at a time: start() resets and begins a sample; advance() simulates
    // until tick `until` (every tick before it done) or until stop() returns true after a tick;
    // finish() returns the result once done(). run() is start, advance to the end, finish.
    void start(const Stimulus& stimulus, const RunOptions& options, std::uint64_t sample, SpikeSink* sink = nullptr);
    // Returns true when the sample is complete.
    bool advance(Tick until = never, const std::function<bool()>& stop = {});
    bool done() const;
    Tick next_tick() const; // the tick boundary reached: ticks before it are simulated
    // How many steps of the sample under way (or the last one) were split over threads
    // (RunOptions::threads_per_sample): a diagnostic, not part of the result or of a checkpoint.
    std::uint64_t parallel_steps() const;
    SampleResult finish();

    // A started, unfinished sample's state at its tick boundary, and back: restore() continues
    // that sample exactly as if it had never stopped. Throws InputError if the state does not fit
    // this network, the stimulus or the options.
    EngineState save() const;
    void restore(const EngineState& state, const Stimulus& stimulus, const RunOptions& options,
                 SpikeSink* sink = nullptr);

private:
    struct State;
    std::unique_ptr<State> state_;
};

// The same network on many independent samples, spread over OpenMP threads; results are in
// sample order and identical whatever the thread count (threads = 0: OpenMP's default; more
// than max_batch_threads is refused: libgomp fails on absurd counts). Each sample may use
// options.threads_per_sample threads of its own (nested OpenMP): threads x threads_per_sample in
// all, which may not exceed max_batch_threads either. `stop`, if given, is asked
// before each sample starts (from any of the threads); once it returns true no further sample
// starts, the started ones finish, and the results are those of the samples before the first one
// that did not run (a prefix of `stimuli`, so that an interrupted batch is a shorter batch).
inline constexpr int max_batch_threads = 1024;
std::vector<SampleResult> run_batch(const Network& net, std::span<const Stimulus> stimuli, const RunOptions& options,
                                    std::uint64_t first_sample = 0, int threads = 0,
                                    const std::function<bool()>& stop = {});

// run_batch for a run of many batches: each thread's engine is built once, by the thread that
// uses it, and kept for the next batch (a Swin-T-scale engine holds 1.5 GB: rebuilding it per
// batch cost page faults).
class SampleBatches {
public:
    SampleBatches(const Network& net, int threads); // threads as run_batch's, checked here
    std::vector<SampleResult> run(std::span<const Stimulus> stimuli, const RunOptions& options,
                                  std::uint64_t first_sample = 0, const std::function<bool()>& stop = {});
    // Thread 0's engine, for a sample run on its own (streamed, checkpointed inside) between batches.
    Engine& first_engine();
    int threads() const { return int(engines_.size()); }

private:
    const Network& net_;
    std::vector<std::unique_ptr<Engine>> engines_; // one per thread, built on first use
};

} // namespace quantal
