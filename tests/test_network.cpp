// Network building: staging, validation, zero-delay cycles.
#include <catch2/catch.hpp>

#include "network/network.hpp"
#include "support/same_connectivity.hpp"
#include "sim/errors.hpp"

using namespace quantal;
using Catch::Matchers::Contains;

namespace {
IfNeuron if_neuron() { return IfNeuron{}; }
} // namespace

TEST_CASE("a zero-delay cycle is rejected naming its populations", "[network]") {
    NetworkBuilder b;
    auto a = b.add_population("alpha", {2}, if_neuron());
    auto c = b.add_population("beta", {2}, if_neuron());
    auto d = b.add_population("gamma", {2}, if_neuron());
    b.connect(a, c, OneToOne{{1.0f}});
    b.connect(c, d, OneToOne{{1.0f}});
    b.connect(d, a, OneToOne{{1.0f}});
    REQUIRE_THROWS_WITH(b.build(), Contains("zero-delay cycle") && Contains("'alpha'") && Contains("'beta'") &&
                                       Contains("'gamma'"));
}

TEST_CASE("a zero-delay self-loop is a cycle; a delayed one is not", "[network]") {
    NetworkBuilder b;
    auto a = b.add_population("self", {3}, if_neuron());
    b.connect(a, a, Dense{std::vector<float>(9, 0.1f)});
    REQUIRE_THROWS_WITH(b.build(), Contains("'self'"));
    NetworkBuilder ok;
    auto x = ok.add_population("self", {3}, if_neuron());
    ok.connect(x, x, Dense{std::vector<float>(9, 0.1f)}, 1);
    CHECK_NOTHROW(ok.build());
}

TEST_CASE("a sparse projection with one zero-delay synapse closes a zero-delay cycle", "[network]") {
    NetworkBuilder b;
    auto a = b.add_population("a", {1}, if_neuron());
    auto c = b.add_population("c", {1}, if_neuron());
    b.connect(a, c, OneToOne{{1.0f}});
    b.connect(c, a, Sparse{{0, 2}, {0, 0}, {1.0f, 1.0f}, {3, 0}, {}}, 1);
    REQUIRE_THROWS_WITH(b.build(), Contains("zero-delay cycle"));
}

TEST_CASE("stages follow a topological order of zero-delay projections", "[network]") {
    NetworkBuilder b;
    auto out = b.add_population("out", {1}, ReadoutNeuron{});
    auto mid = b.add_population("mid", {1}, if_neuron());
    auto in = b.add_population("in", {1}, SpikeSource{});
    b.connect(mid, out, Dense{{1.0f}});
    b.connect(in, mid, Dense{{1.0f}});
    b.connect(mid, mid, Dense{{1.0f}}, 2);
    const Network net = b.build();
    CHECK(net.stage(in) < net.stage(mid));
    CHECK(net.stage(mid) < net.stage(out));
    CHECK(boost::num_edges(net.graph()) == 3);
}

TEST_CASE("invalid descriptions are rejected naming the object and value", "[network]") {
    auto two = [] {
        NetworkBuilder b;
        b.add_population("src", {2, 2}, SpikeSource{});
        b.add_population("dst", {3}, IfNeuron{});
        return b;
    };
    {
        auto b = two();
        b.connect(0, 1, Dense{std::vector<float>(5, 1.0f)});
        REQUIRE_THROWS_WITH(b.build(), Contains("projection 'src->dst'") && Contains("5 values") && Contains("3 x 4"));
    }
    {
        auto b = two();
        b.connect(0, 1, Dense{std::vector<float>(12, std::nanf(""))});
        REQUIRE_THROWS_WITH(b.build(), Contains("weight[0] is not finite"));
    }
    {
        auto b = two();
        Release r{ReleaseMode::synapse, 1.5};
        b.connect(Projection{"fc", 0, 1, Dense{std::vector<float>(12, 1.0f)}, 0, r});
        REQUIRE_THROWS_WITH(b.build(), Contains("projection 'fc'") && Contains("mask ratio 1.5"));
    }
    {
        auto b = two();
        b.connect(1, 0, Dense{std::vector<float>(12, 1.0f)});
        REQUIRE_THROWS_WITH(b.build(), Contains("spike source 'src'"));
    }
    {
        NetworkBuilder b;
        b.add_population("x", {4}, IfNeuron{}, {0.0, std::nan("")});
        REQUIRE_THROWS_WITH(b.build(), Contains("population 'x'") && Contains("bias has 2 values"));
    }
    {
        NetworkBuilder b;
        b.add_population("lif", {4}, LifNeuron{ThresholdRule{}, -3.0, 0, 0, 1});
        REQUIRE_THROWS_WITH(b.build(), Contains("population 'lif'") && Contains("tau_ticks is -3, expected > 0"));
    }
    {
        NetworkBuilder b;
        b.add_population("img", {1, 4, 4}, SpikeSource{});
        b.add_population("c", {2, 3, 3}, IfNeuron{});
        Conv2d conv;
        conv.kernel = {2, 2};
        conv.weight.assign(8, 1.0f);
        conv.stride = {2, 2};
        b.connect(0, 1, conv);
        REQUIRE_THROWS_WITH(b.build(), Contains("conv2d maps (1, 4, 4) to (2, 2, 2)"));
    }
    {
        NetworkBuilder b;
        b.add_population("a", {2}, SpikeSource{});
        b.add_population("a", {2}, IfNeuron{});
        REQUIRE_THROWS_WITH(b.build(), Contains("population 'a': name is used twice"));
    }
}

TEST_CASE("a network holds its weights once and gives the user's form back exactly", "[network]") {
    // Every per-synapse value distinct, so a wrong permutation cannot go unnoticed.
    auto values = [](std::size_t n, float scale) {
        std::vector<float> v(n);
        for (std::size_t i = 0; i < n; ++i) v[i] = scale * float(i + 1);
        return v;
    };
    NetworkBuilder b;
    const auto image = b.add_population("image", {4, 5, 6}, IfNeuron{});
    const auto maps = b.add_population("maps", {6, 2, 2}, IfNeuron{});
    const auto pooled = b.add_population("pooled", {4, 3, 3}, IfNeuron{});
    const auto flat = b.add_population("flat", {7}, IfNeuron{});
    const auto copy = b.add_population("copy", {7}, IfNeuron{});
    Conv2d conv; // grouped, non-square, strided, padded and dilated
    conv.kernel = {3, 2};
    conv.stride = {2, 3};
    conv.padding = {1, 0};
    conv.dilation = {2, 1};
    conv.groups = 2;
    conv.weight = values(6 * 2 * 3 * 2, 0.5f);
    const std::vector<Projection> described{
        {"conv", image, maps, conv, 0, {}},
        {"pool", image, pooled, Pool2d{PoolKind::average, {2, 3}, {2, 2}, {1, 1}}, 1, {}},
        {"dense", maps, flat, Dense{values(7 * 24, -0.25f)}, 2, {}},
        {"one_to_one", flat, copy, OneToOne{values(7, 2.0f)}, 1, {}},
        {"sparse", copy, flat, Sparse{{0, 2, 2, 5, 5, 5, 6, 7}, {1, 6, 0, 3, 5, 2, 4}, values(7, 1.5f),
                                      {4, 4, 4, 4, 4, 4, 4}, {0.5f, 1.0f, 0.25f, 0.75f, 1.0f, 0.0f, 1.0f}},
         4, {}},
    };
    for (const auto& p : described) b.connect(p);
    const Network net = b.build();
    for (ProjectionId id = 0; id < described.size(); ++id) {
        INFO(described[id].name);
        CHECK(std::string(net.kind(id)) == kind_name(described[id].connectivity));
        Connectivity expected = described[id].connectivity;
        // A per-synapse delay equal to the projection's everywhere comes back as "the projection's".
        if (auto* s = std::get_if<Sparse>(&expected)) s->delay.clear();
        CHECK(testing::same_connectivity(net.connectivity(id), expected));
        // The synapse count's closed form equals the fan-outs summed source by source.
        const auto n_source = net.population(described[id].source).size();
        std::uint64_t summed = 0;
        std::visit([&](const auto& f) { for (std::uint32_t i = 0; i < n_source; ++i) summed += f.size(i); },
                   net.fanout(id));
        CHECK(net.synapses(id) == summed);
    }
}
