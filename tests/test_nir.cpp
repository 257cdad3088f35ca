// NIR import: each neuron node type against its closed form under docs/nir.md's discretisation,
// delays on the tick grid, recurrence, nested names. Files are written with the HDF5 C API in
// the layout of nir.write (vlen strings, gzip arrays).
#include <hdf5.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/nir.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"

using namespace quantal;
using Catch::Matchers::Contains;

namespace {

// A NIR node: type and float arrays (1-D unless a shape is given).
struct Node {
    std::string type;
    std::map<std::string, std::pair<std::vector<double>, std::vector<hsize_t>>> arrays;
    Node& set(const std::string& name, std::vector<double> v, std::vector<hsize_t> shape = {}) {
        if (shape.empty()) shape = {v.size()};
        arrays[name] = {std::move(v), std::move(shape)};
        return *this;
    }
};
struct Graph {
    std::map<std::string, Node> nodes;
    std::map<std::string, Graph> graphs; // nested
    std::vector<std::pair<std::string, std::string>> edges;
};

void write_string(hid_t loc, const char* name, const std::string& value) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char* p = value.c_str();
    H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p);
    H5Dclose(ds);
    H5Sclose(space);
    H5Tclose(type);
}

void write_graph(hid_t g, const Graph& graph) {
    write_string(g, "type", "NIRGraph");
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hsize_t dims[2] = {graph.edges.size(), 2};
    hid_t space = H5Screate_simple(2, dims, nullptr);
    hid_t ds = H5Dcreate2(g, "edges", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<const char*> ends;
    for (const auto& [a, b] : graph.edges) ends.push_back(a.c_str()), ends.push_back(b.c_str());
    if (!ends.empty()) H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ends.data());
    H5Dclose(ds);
    H5Sclose(space);
    H5Tclose(type);
    hid_t nodes = H5Gcreate2(g, "nodes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (const auto& [name, node] : graph.nodes) {
        hid_t n = H5Gcreate2(nodes, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        write_string(n, "type", node.type);
        for (const auto& [field, array] : node.arrays) {
            const auto& [values, shape] = array;
            hid_t s = H5Screate_simple(int(shape.size()), shape.data(), nullptr);
            hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
            H5Pset_chunk(plist, int(shape.size()), shape.data());
            H5Pset_deflate(plist, 4); // gzip, as nir.write does
            hid_t d = H5Dcreate2(n, field.c_str(), H5T_IEEE_F32LE, s, H5P_DEFAULT, plist, H5P_DEFAULT);
            H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
            H5Dclose(d);
            H5Pclose(plist);
            H5Sclose(s);
        }
        H5Gclose(n);
    }
    for (const auto& [name, inner] : graph.graphs) {
        hid_t n = H5Gcreate2(nodes, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        write_graph(n, inner);
        H5Gclose(n);
    }
    H5Gclose(nodes);
}

std::string write_nir(const Graph& graph, const std::string& name) {
    const auto path = (std::filesystem::temp_directory_path() / ("quantal_test_nir_" + name + ".nir")).string();
    hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    write_string(f, "version", "1.0.6");
    hid_t g = H5Gcreate2(f, "node", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    write_graph(g, graph);
    H5Gclose(g);
    H5Fclose(f);
    return path;
}

Node input(double n) { return Node{"Input", {}}.set("shape", {n}); }
Node bias_source(std::vector<double> bias) { // Affine with zero weights from a 1-neuron input
    return Node{"Affine", {}}.set("weight", std::vector<double>(bias.size(), 0.0), {bias.size(), 1}).set("bias", bias);
}
Node if_node(std::size_t n, double threshold, double r = 1.0, double v_reset = 0.0) {
    return Node{"IF", {}}
        .set("r", std::vector<double>(n, r))
        .set("v_threshold", std::vector<double>(n, threshold))
        .set("v_reset", std::vector<double>(n, v_reset));
}

// Spike ticks per population name for one run of `ticks`.
std::map<std::string, std::vector<Tick>> spike_ticks(const LoadedModel& m, Tick ticks) {
    RunOptions o;
    o.ticks = ticks;
    o.record_spikes = true;
    const auto r = Engine(m.network).run(Stimulus::for_network(m.network), o, 0);
    std::map<std::string, std::vector<Tick>> out;
    for (const auto& s : r.spikes) out[m.network.population(s.population).name].push_back(s.tick);
    return out;
}

} // namespace

TEST_CASE("NIR IF: v += dt R I, spike when v > threshold, reset to v_reset", "[nir]") {
    Graph g;
    g.nodes = {{"in", input(1)}, {"drive", bias_source({0.25})}, {"if", if_node(1, 1.0)}};
    g.edges = {{"in", "drive"}, {"drive", "if"}};
    const auto path = write_nir(g, "if");
    // dt = 1, R = 1: v = 0.25 k; v > 1 first at k = 5 (tick 4), reset to 0: period 5.
    auto ticks = spike_ticks(read_nir(path), 20)["if"];
    CHECK(ticks == std::vector<Tick>{4, 9, 14, 19});
    // dt = 0.5 ms halves each tick's charge: v = 0.125 k, > 1 at k = 9: period 9 ticks.
    ticks = spike_ticks(read_nir(path, NirOptions{0.5}), 20)["if"];
    CHECK(ticks == std::vector<Tick>{8, 17});
    // v_reset = 0.5: after the first spike, v > 1 again after 3 ticks.
    g.nodes["if"] = if_node(1, 1.0, 1.0, 0.5);
    ticks = spike_ticks(read_nir(write_nir(g, "if_reset")), 15)["if"];
    CHECK(ticks == std::vector<Tick>{4, 7, 10, 13});
    std::filesystem::remove(path);
}

TEST_CASE("NIR LIF: forward Euler, first crossing at the closed-form tick", "[nir]") {
    // v[t] = v_inf (1 - alpha^(t+1)), alpha = 1 - dt/tau, v_inf = v_leak + R b.
    for (double dt : {1.0, 0.25}) {
        const double tau = 10.0, r = 2.0, b = 0.75, v_leak = 0.125, theta = 1.0;
        Graph g;
        g.nodes = {{"in", input(1)},
                   {"drive", bias_source({b})},
                   {"lif", Node{"LIF", {}}.set("tau", {tau}).set("r", {r}).set("v_leak", {v_leak}).set("v_threshold", {theta}).set("v_reset", {0.0})}};
        g.edges = {{"in", "drive"}, {"drive", "lif"}};
        const auto model = read_nir(write_nir(g, "lif"), NirOptions{dt});
        const double alpha = 1.0 - dt / tau, v_inf = v_leak + r * b;
        // v starts at 0 (not at v_leak): v[t] = v_inf + (0 - v_inf) alpha^(t+1)
        Tick expected = 0;
        while (!(v_inf * (1.0 - std::pow(alpha, double(expected + 1))) > theta)) ++expected;
        const auto ticks = spike_ticks(model, expected + 2)["lif"];
        INFO("dt " << dt);
        REQUIRE(!ticks.empty());
        CHECK(ticks.front() == expected);
    }
}

TEST_CASE("NIR LI never spikes; I is the readout; Threshold is memoryless", "[nir]") {
    Graph g;
    g.nodes = {{"in", input(2)},
               {"drive", Node{"Affine", {}}.set("weight", {0, 0, 0, 0}, {2, 2}).set("bias", {0.5, -0.5})},
               {"li", Node{"LI", {}}.set("tau", {4.0, 4.0}).set("r", {1.0, 1.0}).set("v_leak", {0.0, 0.0})},
               {"thr", Node{"Threshold", {}}.set("threshold", {0.25, 0.25})},
               {"integ", Node{"I", {}}.set("r", {1.0, 1.0})},
               {"out", Node{"Output", {}}.set("shape", {2})}};
    g.edges = {{"in", "drive"}, {"drive", "li"}, {"drive", "thr"}, {"drive", "integ"}, {"integ", "out"}};
    const auto model = read_nir(write_nir(g, "li"));
    CHECK(model.readout == "integ");
    const auto ticks = spike_ticks(model, 10);
    CHECK(ticks.count("li") == 0);
    CHECK(ticks.at("thr").size() == 10); // neuron 0: 0.5 > 0.25 every tick; neuron 1 never

    // The integrator's value after T ticks is T dt R b (here dt = 0.5 ms, R = 1).
    const auto half = read_nir(write_nir(g, "li"), NirOptions{0.5});
    RunOptions o;
    o.ticks = 12;
    const auto r = Engine(half.network).run(Stimulus::for_network(half.network), o, 0);
    const auto integ = *half.network.find_population("integ");
    bool found = false;
    for (const auto& ro : r.readouts)
        if (ro.population == integ) {
            found = true;
            REQUIRE(ro.values.size() == 2);
            CHECK(ro.values[0] == Approx(12 * 0.5 * 0.5));
            CHECK(ro.values[1] == Approx(-12 * 0.5 * 0.5));
        }
    CHECK(found);
}

TEST_CASE("NIR Delay shifts spikes by delay/dt ticks; off-grid delays are rejected", "[nir]") {
    Graph g;
    g.nodes = {{"in", input(1)},
               {"clock", Node{"Threshold", {}}.set("threshold", {-1.0})}, // fires every tick from tick 0
               {"d", Node{"Delay", {}}.set("delay", {3.0})},
               {"w", Node{"Linear", {}}.set("weight", {1.0}, {1, 1})},
               {"late", if_node(1, 0.5)}};
    g.edges = {{"in", "clock"}, {"clock", "d"}, {"d", "w"}, {"w", "late"}};
    const auto path = write_nir(g, "delay");
    CHECK(spike_ticks(read_nir(path), 8)["late"].front() == 3);
    // dt = 0.5: 6 ticks of delay, and each arrival charges dt R = 0.5, not > 0.5: the second one fires.
    CHECK(spike_ticks(read_nir(path, NirOptions{0.5}), 10)["late"].front() == 7);
    REQUIRE_THROWS_WITH(read_nir(path, NirOptions{2.0}), Contains("node 'd'") && Contains("whole number of ticks"));
    std::filesystem::remove(path);
}

TEST_CASE("NIR recurrence: a chain closing a zero-delay cycle sees the previous tick", "[nir]") {
    Graph g;
    g.nodes = {{"in", input(1)}, {"drive", bias_source({0.625})}, {"rnn", if_node(1, 1.0)},
               {"back", Node{"Linear", {}}.set("weight", {1.0}, {1, 1})}};
    g.edges = {{"in", "drive"}, {"drive", "rnn"}, {"rnn", "back"}, {"back", "rnn"}};
    const auto model = read_nir(write_nir(g, "rnn"));
    const auto back = model.network.find_projection("back");
    REQUIRE(back);
    CHECK(model.network.projection(*back).delay == 1);
    // v: 0.625, 1.25 -> spike at 1; then 0.625 + 1 (the spike of the tick before) every tick.
    CHECK(spike_ticks(model, 6)["rnn"] == std::vector<Tick>{1, 2, 3, 4, 5});
}

TEST_CASE("NIR nested graphs are flattened as outer.inner", "[nir]") {
    Graph inner;
    inner.nodes = {{"input", input(1)}, {"fc", bias_source({0.5})}, {"lif", if_node(1, 0.75)},
                   {"output", Node{"Output", {}}.set("shape", {1})}};
    inner.edges = {{"input", "fc"}, {"fc", "lif"}, {"lif", "output"}};
    Graph g;
    g.nodes = {{"in", input(1)}, {"fc2", Node{"Linear", {}}.set("weight", {2.0}, {1, 1})}, {"if2", if_node(1, 2.5)}};
    g.graphs = {{"block", inner}};
    g.edges = {{"in", "block"}, {"block", "fc2"}, {"fc2", "if2"}};
    const auto model = read_nir(write_nir(g, "nested"));
    CHECK(model.network.find_population("block.lif"));
    CHECK(model.network.find_projection("block.fc"));
    const auto ticks = spike_ticks(model, 8);
    CHECK(ticks.at("block.lif") == std::vector<Tick>{1, 3, 5, 7}); // 0.5, 1.0 > 0.75 ...
    CHECK(ticks.at("if2") == std::vector<Tick>{3, 7});              // 2 per spike, > 2.5 on every second

    // An edge naming a node inside the nested graph directly.
    g.edges = {{"in", "block"}, {"block.lif", "fc2"}, {"fc2", "if2"}};
    CHECK(spike_ticks(read_nir(write_nir(g, "nested_dotted")), 8).at("if2") == std::vector<Tick>{3, 7});
    g.edges = {{"in", "block"}, {"block.nope", "fc2"}};
    REQUIRE_THROWS_WITH(read_nir(write_nir(g, "nested_bad")), Contains("'block.nope' does not exist"));
}

TEST_CASE("NIR CubaLIF: synaptic current then membrane, forward Euler, hand-computed trace", "[nir]") {
    // dt 1, tau_syn 2, tau_mem 4, R 1, w_in 1, input 4 every tick (the Affine bias):
    // I: 2, 3, 3.5, ...; v: 0.5, 1.125, 1.71875 > 1.5 -> spike at tick 2, reset to 0; then every 2 ticks.
    Graph g;
    g.nodes = {{"in", input(1)},
               {"drive", bias_source({4.0})},
               {"c", Node{"CubaLIF", {}}.set("tau_syn", {2}).set("tau_mem", {4}).set("r", {1}).set("v_leak", {0})
                         .set("v_threshold", {1.5}).set("v_reset", {0}).set("w_in", {1})}};
    g.edges = {{"in", "drive"}, {"drive", "c"}};
    const auto model = read_nir(write_nir(g, "cuba"));
    CHECK(std::holds_alternative<CubaLifNeuron>(model.network.population(*model.network.find_population("c")).model));
    CHECK(spike_ticks(model, 12)["c"] == std::vector<Tick>{2, 4, 6, 8, 10});
    // Without v_reset (old files) the reset is to 0 as well.
    g.nodes["c"].arrays.erase("v_reset");
    CHECK(spike_ticks(read_nir(write_nir(g, "cuba_old")), 12)["c"] == std::vector<Tick>{2, 4, 6, 8, 10});
}

TEST_CASE("CubaLIF driven by input spikes only wakes when its filtered current crosses", "[nir]") {
    // One input spike at tick 0 through weight 8: I jumps to 4 (dt/tau_syn w x) then halves each
    // tick; v (tau_mem 4, R 1): 1.0, 1.25, 1.1875, ... never > 1.5 with one spike, > 1.5 with two.
    Graph g;
    g.nodes = {{"in", input(1)},
               {"w", Node{"Linear", {}}.set("weight", {8.0}, {1, 1})},
               {"c", Node{"CubaLIF", {}}.set("tau_syn", {2}).set("tau_mem", {4}).set("r", {1}).set("v_leak", {0})
                         .set("v_threshold", {1.5}).set("v_reset", {0}).set("w_in", {1})}};
    g.edges = {{"in", "w"}, {"w", "c"}};
    const auto model = read_nir(write_nir(g, "cuba_spikes"));
    RunOptions o;
    o.ticks = 30;
    o.record_spikes = true;
    Stimulus one = Stimulus::for_network(model.network), two = one;
    const auto in = *model.network.find_population("in");
    one.spikes[in] = {{0, 0}};
    two.spikes[in] = {{0, 0}, {1, 0}};
    CHECK(Engine(model.network).run(one, o, 0).spikes.size() == 1);  // the input spike only
    const auto r = Engine(model.network).run(two, o, 0);
    std::vector<Tick> c_ticks;
    for (const auto& s : r.spikes)
        if (s.population != in) c_ticks.push_back(s.tick);
    // I: 4, 2+4 = 6, 3, 1.5, ...; v: 1, 0.75 + 1.5 = 2.25 > 1.5 at tick 1.
    CHECK(c_ticks == std::vector<Tick>{1});
}

TEST_CASE("NIR parallel chains between the same populations sum, each its own projection", "[nir]") {
    // Two delays of the same spikes into one neuron: arrivals at ticks 1 and 2 from a spike at 0.
    Graph g;
    g.nodes = {{"in", input(1)},
               {"d1", Node{"Delay", {}}.set("delay", {1.0})},
               {"d2", Node{"Delay", {}}.set("delay", {2.0})},
               {"w", Node{"Linear", {}}.set("weight", {0.75}, {1, 1})},
               {"out", if_node(1, 1.0)}};
    g.edges = {{"in", "d1"}, {"in", "d2"}, {"d1", "w"}, {"d2", "w"}, {"w", "out"}};
    const auto model = read_nir(write_nir(g, "parallel"));
    REQUIRE(model.network.projections().size() == 2);
    CHECK(model.network.projection(0).name != model.network.projection(1).name);
    RunOptions o;
    o.ticks = 6;
    o.record_spikes = true;
    Stimulus s = Stimulus::for_network(model.network);
    const auto in = *model.network.find_population("in");
    s.spikes[in] = {{0, 0}};
    std::vector<Tick> out_ticks;
    for (const auto& sp : Engine(model.network).run(s, o, 0).spikes)
        if (sp.population != in) out_ticks.push_back(sp.tick);
    CHECK(out_ticks == std::vector<Tick>{2}); // 0.75 at tick 1, 1.5 > 1 at tick 2
}
