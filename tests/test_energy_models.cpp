// Energy models (sim/energy_models.hpp) on a network small enough to count by hand: every count
// and energy below is worked out in the comments from the spikes the stimulus forces, not taken
// from a run of the code; the trace read back must give the same inputs as the run's ledger.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "io/energy_profile.hpp"
#include "io/spike_trace.hpp"
#include "sim/energy_models.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"

using namespace quantal;
using Catch::Matchers::Contains;

namespace {

// src (2 spike sources) -> hid (3 IF, threshold 1, v0 0, subtract) -> out (1 IF, same rule).
//   src->hid, sparse, role fc1_in: src0 -> hid0; src1 -> hid0, hid1, hid2; weights 1 (4 synapses).
//   hid->out, dense 1 x 3, weights 0.25, role stream (3 synapses).
// Stimulus over T = 4 ticks: src0 fires at ticks 0, 1, 2, 3; src1 at tick 0 (5 spikes).
//   hid0: input 2, 1, 1, 1 -> v 2 (spike, 1), 2 (spike, 1), 2 (spike), 2 (spike): 4 spikes.
//   hid1, hid2: input 1 at tick 0 -> spike; nothing after: 1 spike each. hid: 6 spikes.
//   out: input 0.75, 0.25, 0.25, 0.25 -> v 0.75, 1.0 (spike, 0), 0.25, 0.5: 1 spike.
// out is also charged 10 analog MACs per tick (no current): 40 per sample.
struct Small {
    Network net;
    Stimulus stimulus;
};

Small small_network(bool with_ann, Release input_release = {}) {
    NetworkBuilder b;
    const auto src = b.add_population("src", {2}, SpikeSource{});
    const IfNeuron neuron{ThresholdRule{1.0, Comparison::greater_equal, ResetMode::subtract, 0.0}, 0.0, 1.0};
    const auto hid = b.add_population("hid", {3}, neuron);
    const auto out = b.add_population("out", {1}, neuron);
    Sparse s;
    s.row_begin = {0, 1, 4};
    s.target = {0, 0, 1, 2};
    s.weight = {1.0f, 1.0f, 1.0f, 1.0f};
    b.connect(Projection{"src->hid", src, hid, s, 0, input_release, "fc1_in"});
    b.connect(Projection{"hid->out", hid, out, Dense{{0.25f, 0.25f, 0.25f}}, 0, {}, "stream"});
    if (with_ann) // the ANN: an input map of 10 MACs, then 6 and 3 MACs; L = 3 -> 2-bit activations
        b.set_ann(AnnBaseline{
            {{"input", "analog_input", 10, 10, 10, 1}, {"fc", "linear", 6, 6, 2, 3}, {"fc2", "linear", 3, 3, 3, 1}},
            3});
    Small n{b.build(), {}};
    n.stimulus = Stimulus::for_network(n.net);
    n.stimulus.spikes[src] = {{0, 0}, {0, 1}, {1, 0}, {2, 0}, {3, 0}};
    n.stimulus.current_macs[out] = 10;
    return n;
}

EnergyLedger run(const Small& n) {
    RunOptions o;
    o.ticks = 4;
    auto ledger = Engine(n.net).run(n.stimulus, o, 0).ledger;
    ledger.samples = 1;
    return ledger;
}

double ram(double bits) { return 1.035e-5 * bits + 13.26; } // the default profile's access cost

} // namespace

TEST_CASE("counts by class on a network counted by hand", "[energy]") {
    const Small n = small_network(false);
    const auto in = energy_inputs(run(n), n.net);
    const auto k = class_counts(in);
    CHECK(k.analog_macs == 40);
    CHECK(k.synaptic_acs[int(RoleGroup::mlp)] == 7);    // src0: 4 spikes x 1 target, src1: 1 x 3
    CHECK(k.synaptic_acs[int(RoleGroup::stream)] == 6); // 6 hid spikes x 1 target
    CHECK(k.synaptic_acs[int(RoleGroup::attention)] == 0);
    CHECK(k.failed == 0);
    CHECK(k.spikes == 5 + 6 + 1);
    CHECK(k.updates == 6 + 4);         // hid: 3 at tick 0, hid0 at ticks 1-3; out: every tick
    CHECK(k.clocked_updates == 4 * 4); // T x (3 + 1) neurons with a membrane
    CHECK(k.synapses == 7);
}

TEST_CASE("the proxy measured and the papers' way, input every tick and once", "[energy]") {
    const Small n = small_network(false);
    const auto in = energy_inputs(run(n), n.net);
    const EnergyCosts c; // 0.9, 4.6 pJ
    const auto m = measured_proxy(in, c);
    CHECK(m.per_tick_input_pj == Approx(0.9 * 13 + 4.6 * 40)); // 195.7
    CHECK(m.once_input_pj == Approx(0.9 * 13 + 4.6 * 10));     // the input's 10 MACs once: 57.7
    // Papers: rate x T x FLOPs = spikes per source neuron x synapses: src 5/2 x 4, hid 6/3 x 3.
    CHECK(papers_sops(in) == Approx(2.5 * 4 + 2.0 * 3)); // 16, not the measured 13
    const auto p = papers_proxy(in, c);
    CHECK(p.per_tick_input_pj == Approx(0.9 * 16 + 4.6 * 40));
    CHECK(p.once_input_pj == Approx(0.9 * 16 + 4.6 * 10));
}

TEST_CASE("masked spikes: counted, and left out of the papers' input rate", "[energy]") {
    // RSM at ratio 1 drops every spike of src: nothing reaches hid, so nothing fires after src.
    const Small n = small_network(false, Release{ReleaseMode::spike, 1.0, SynapseSampling::automatic});
    const auto in = energy_inputs(run(n), n.net);
    const auto k = class_counts(in);
    CHECK(k.masked_spikes == 5);
    CHECK(k.acs() == 0);
    CHECK(k.spikes == 5);
    CHECK(papers_sops(in) == 0); // the masked input tensor has rate 0
    CHECK(measured_proxy(in, EnergyCosts{}).per_tick_input_pj == Approx(4.6 * 40));
}

TEST_CASE("the ANN baselines: own MACs when recorded, else estimated from synapses", "[energy]") {
    const EnergyCosts c;
    const Small estimated = small_network(false);
    const auto a = ann_energy(energy_inputs(run(estimated), estimated.net), c);
    CHECK_FALSE(a.own);
    CHECK(a.macs == 7 + 10); // one MAC per synapse + the input map once
    CHECK(a.float_pj == Approx(4.6 * 17));
    CHECK(a.activation_bits == 0);

    const Small own = small_network(true);
    const auto in = energy_inputs(run(own), own.net);
    const auto b = ann_energy(in, c);
    CHECK(b.own);
    CHECK(b.macs == 19);
    CHECK(b.float_pj == Approx(4.6 * 19));
    CHECK(b.activation_bits == 2); // ceil(log2(3 + 1))
    // 8-bit pixels: 0.2 x 64/64 + 0.1 = 0.3 pJ x 10; 2-bit activations: 0.2 x 16/64 + 0.1 = 0.15 pJ x 9.
    CHECK(b.quantised_pj == Approx(3.0 + 1.35));
    CHECK(summarize(run(own), own.net, c).ann_own);
    CHECK(summarize(run(own), own.net, c).ann_pj == Approx(4.6 * 19));

    // Break-even: 195.7 pJ over 4 ticks is 48.925 pJ a tick against 87.4 pJ; with the input once,
    // E = 46 + (57.7 - 46) / 4 x T.
    const auto m = measured_proxy(in, c);
    CHECK(break_even_ticks(m.per_tick_input_pj, 0, 4, b.float_pj) == Approx(87.4 / 48.925));
    CHECK(break_even_ticks(m.once_input_pj, 46.0, 4, b.float_pj) == Approx((87.4 - 46.0) / 2.925));
}

TEST_CASE("the memory-inclusive model, local and global memories, clocked and event-driven", "[energy]") {
    const Small n = small_network(true);
    const auto in = energy_inputs(run(n), n.net);
    HardwareProfile hw; // 45 nm defaults: add 0.1, mult 3.1, MAC 3.2 pJ; 32-bit words
    // Memories (bits): weights 4 x 32 = 128 and 3 x 32 = 96; potentials and biases hid 96, out 32;
    // spike queues src 2 x 1, hid 3 x 2, out 1 x 1; the input map's weights 10 x 32 = 320.
    // hid (clocked, U = 4 x 3 = 12; 6 spikes): ops 0.1 x (12 + 6) + its input's 0.1 x 2 x 7.
    const double hid_ops = 0.1 * 18 + 0.1 * 14;
    const double hid_access = 2 * 12 * ram(96) + 12 * ram(96) + 6 * ram(6) + 7 * (ram(128) + 2 * ram(96)) + 5 * ram(2);
    // out (U = 4; 1 spike; 40 input MACs): ops 0.1 x 5 + 3.2 x 40 + 0.1 x 2 x 6.
    const double out_ops = 0.1 * 5 + 3.2 * 40 + 0.1 * 12;
    const double out_access = 2 * 4 * ram(32) + 4 * ram(32) + 1 * ram(1) + 40 * (ram(320) + 2 * ram(32)) +
                              6 * (ram(96) + 2 * ram(32)) + 6 * ram(6);
    const auto e = memory_model(in, hw);
    CHECK(e.ops_pj == Approx(hid_ops + out_ops));
    CHECK(e.access_pj == Approx(hid_access + out_access));
    CHECK(e.total.per_tick_input_pj == Approx(hid_ops + out_ops + hid_access + out_access));
    // Once: the input's 40 MACs (and their accesses) become 10.
    const double input = 3.2 + ram(320) + 2 * ram(32);
    CHECK(e.total.once_input_pj == Approx(e.total.per_tick_input_pj - 30 * input));
    // The ANN on the same hardware: per layer MACs x (MAC + weight read) + inputs read + outputs written
    // + biases read (attention would read activations instead of weights).
    auto layer = [](double macs, double weights, double ins, double outs) {
        return macs * (3.2 + ram(weights * 32)) + ins * ram(ins * 32) + outs * (ram(outs * 32) + ram(outs * 32));
    };
    CHECK(e.ann.per_tick_input_pj == Approx(layer(10, 10, 10, 1) + layer(6, 6, 2, 3) + layer(3, 3, 3, 1)));

    // One global memory of every memory's bits: 128 + 96 + (96 + 96 + 6) + (32 + 32 + 1) + 2 + 320.
    hw.global_memory = true;
    const double global = 128 + 96 + 96 + 96 + 6 + 32 + 32 + 1 + 2 + 320;
    const auto g = memory_model(in, hw);
    CHECK(g.global_bits == global);
    const double accesses = (2 * 12 + 12 + 6 + 7 * 3 + 5) + (2 * 4 + 4 + 1 + 40 * 3 + 6 * 3 + 6);
    CHECK(g.access_pj == Approx(accesses * ram(global)));

    // Event-driven: the 10 counted visits instead of 16 (hid 6: ops 0.1 x (6 + 6) ...).
    hw.global_memory = false;
    hw.clocked_updates = false;
    const auto v = memory_model(in, hw);
    CHECK(v.ops_pj == Approx(0.1 * (6 + 6) + 0.1 * 14 + 0.1 * (4 + 1) + 3.2 * 40 + 0.1 * 12));
}

TEST_CASE("a trace read back gives the energy models the run's inputs", "[energy]") {
    const Small n = small_network(true);
    const auto path = (std::filesystem::temp_directory_path() / "quantal_test_energy_trace.h5").string();
    const auto ledger = run(n);
    {
        TraceOptions options;
        options.ticks_per_sample = 4;
        SpikeTraceWriter writer(path, n.net, options, RunMetadata{"small", 0, "none", 0.0, "test", "test", {}});
        writer.begin_sample(0);
        RunOptions o;
        o.ticks = 4;
        const auto r = Engine(n.net).run(n.stimulus, o, 0, &writer);
        writer.end_sample(-1, r.ledger);
        writer.finish();
    }
    const auto from_trace = energy_inputs(read_trace_summary(path));
    const auto from_run = energy_inputs(ledger, n.net);
    const EnergyCosts c;
    const HardwareProfile hw;
    CHECK(from_trace.stored_weights_known);
    REQUIRE(from_trace.ann);
    CHECK(from_trace.ann->macs() == 19);
    CHECK(from_trace.ann->levels == 3);
    CHECK(from_trace.projections[0].stored_weights == 4);
    CHECK(from_trace.projections[0].role == "fc1_in");
    CHECK(measured_proxy(from_trace, c).per_tick_input_pj == Approx(measured_proxy(from_run, c).per_tick_input_pj));
    CHECK(papers_sops(from_trace) == Approx(papers_sops(from_run)));
    CHECK(memory_model(from_trace, hw).total.per_tick_input_pj ==
          Approx(memory_model(from_run, hw).total.per_tick_input_pj));
    CHECK(ann_energy(from_trace, c).quantised_pj == Approx(4.35));
    std::filesystem::remove(path);
}

TEST_CASE("hardware profiles: the shipped 45 nm file is the built-in default; bad keys are refused", "[energy]") {
    const auto file = read_hardware_profile(std::string(QUANTAL_SOURCE_DIR) + "/examples/energy-profiles/45nm.json");
    const HardwareProfile builtin;
    CHECK(file.name == builtin.name);
    CHECK(file.e_add_pj == builtin.e_add_pj);
    CHECK(file.e_mult_pj == builtin.e_mult_pj);
    CHECK(file.e_mac_pj == builtin.e_mac_pj);
    CHECK(file.ram_pj_per_bit == builtin.ram_pj_per_bit);
    CHECK(file.ram_pj_offset == builtin.ram_pj_offset);
    CHECK(file.weight_bits == builtin.weight_bits);
    CHECK(file.potential_bits == builtin.potential_bits);
    CHECK(file.activation_bits == builtin.activation_bits);
    CHECK(file.global_memory == builtin.global_memory);
    CHECK(file.clocked_updates == builtin.clocked_updates);
    CHECK(read_hardware_profile(std::string(QUANTAL_SOURCE_DIR) + "/examples/energy-profiles/45nm-global.json")
              .global_memory);
    CHECK_THROWS_WITH(parse_hardware_profile("{\"e_ad_pj\": 1}", "p.json"),
                      Contains("p.json") && Contains("'e_ad_pj'"));
    CHECK_THROWS_WITH(parse_hardware_profile("{\"e_add_pj\": -1}", "p.json"), Contains("'e_add_pj'"));
    CHECK_THROWS_WITH(parse_hardware_profile("{\"memory\": \"shared\"}", "p.json"),
                      Contains("\"global\" or \"local\""));
    CHECK_THROWS_WITH(parse_hardware_profile("{\"weight_bits\": 4.5}", "p.json"), Contains("'weight_bits'"));
    CHECK_THROWS_WITH(parse_hardware_profile("[1, 2]", "p.json"), Contains("JSON object"));
    CHECK_THROWS_WITH(parse_hardware_profile("{", "p.json"), Contains("not JSON"));
    CHECK(parse_hardware_profile("{\"_note\": \"x\", \"e_add_pj\": 0.03}", "p.json").e_add_pj == 0.03);
}

TEST_CASE("per-layer energies add up to each model's total and fall in their role's group", "[energy]") {
    const Small n = small_network(true);
    const auto in = energy_inputs(run(n), n.net);
    const EnergyCosts c;
    const HardwareProfile hw;
    const auto layers = layer_energy(in, c, hw);
    REQUIRE(layers.size() == 3);
    double proxy = 0, papers = 0, memory = 0;
    for (const auto& l : layers) proxy += l.proxy_pj, papers += l.papers_pj, memory += l.memory_pj;
    CHECK(proxy == Approx(measured_proxy(in, c).per_tick_input_pj));
    CHECK(papers == Approx(papers_proxy(in, c).per_tick_input_pj));
    CHECK(memory == Approx(memory_model(in, hw).total.per_tick_input_pj));
    CHECK(layers[0].proxy_pj == 0);                          // src: a spike source, no layer of its own
    CHECK(layers[1].proxy_pj == Approx(0.9 * 7));            // hid: its 7 accumulates
    CHECK(layers[1].group == RoleGroup::mlp);                // fed by fc1_in
    CHECK(layers[2].proxy_pj == Approx(0.9 * 6 + 4.6 * 40)); // out: 6 accumulates and the input's MACs
    CHECK(layers[2].group == RoleGroup::embedding_head);     // the analog input's layer
}
