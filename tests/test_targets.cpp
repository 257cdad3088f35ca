// --targets: which projections and operator inputs a release setting reaches, by set, role and name.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>

#include "io/model_file.hpp"
#include "network/targets.hpp"
#include "support/mini_block.hpp"
#include "sim/errors.hpp"

using namespace quantal;
using Catch::Matchers::Contains;

namespace {

std::vector<std::string> targeted(const Network& net, const char* spec) { return describe(net, resolve_targets(net, spec)); }

} // namespace

TEST_CASE("target sets reach exactly the documented projections and operator inputs", "[targets]") {
    const Network net = testing::mini_block(true);
    using V = std::vector<std::string>;
    const std::string op = "operator 'attn' (q, k, score)";
    CHECK(targeted(net, "attention") == V{op});
    CHECK(targeted(net, "linear") == V{"projection 'act->q' (qkv_in)", "projection 'act->k' (qkv_in)",
                                       "projection 'act->v' (qkv_in)", "projection 'av->proj' (proj_in)",
                                       "projection 'proj->fc1' (fc1_in)", "projection 'fc1->fc2' (fc2_in)", op});
    CHECK(targeted(net, "all").size() == net.projections().size() + 1);
    CHECK(targeted(net, "stream,side") == V{"projection 'in->act' (stream)", "projection 'side'"});
    CHECK(targeted(net, "attn,fc1_in") == V{"projection 'proj->fc1' (fc1_in)", op});
    CHECK(summary(net, resolve_targets(net, "linear")) == "3 qkv_in, 1 proj_in, 1 fc1_in, 1 fc2_in, 1 operators (q, k, score)");
}

TEST_CASE("a target that reaches nothing is refused, naming it", "[targets]") {
    const Network net = testing::mini_block(true);
    CHECK_THROWS_AS(resolve_targets(net, "atention"), InputError); // a user's value: exit 2 like any bad input
    CHECK_THROWS_WITH(resolve_targets(net, "atention"), Contains("'atention'"));
    CHECK_THROWS_WITH(resolve_targets(net, "head"), Contains("no projection of the model has this role"));
    CHECK_THROWS_WITH(resolve_targets(net, "linear,"), Contains("empty name"));
    CHECK_THROWS_WITH(resolve_targets(testing::mini_block(false), "linear"), Contains("export the model with roles"));
    NetworkBuilder b;
    const auto a = b.add_population("a", {2}, SpikeSource{});
    const auto c = b.add_population("c", {2}, IfNeuron{});
    b.connect(a, c, OneToOne{{1.0f}});
    CHECK_THROWS_WITH(resolve_targets(b.build(), "attention"), Contains("no attention operator"));
}

TEST_CASE("a role outside the vocabulary is a model error", "[targets]") {
    NetworkBuilder b;
    const auto a = b.add_population("a", {2}, SpikeSource{});
    const auto c = b.add_population("c", {2}, IfNeuron{});
    b.connect(Projection{"x", a, c, OneToOne{{1.0f}}, 0, {}, "qkv"});
    CHECK_THROWS_AS(b.build(), ModelError);
    CHECK_THROWS_WITH(b.build(), Contains("projection 'x': role 'qkv' is not one of embed, qkv_in"));
}

TEST_CASE("targeted release masks the targets and nothing else", "[targets]") {
    const Release r{ReleaseMode::synapse, 0.75};
    const Network net = with_targeted_release(testing::mini_block(true), resolve_targets(testing::mini_block(true), "fc1_in,attn"), r);
    for (ProjectionId p = 0; p < net.projections().size(); ++p) {
        INFO(net.projection(p).name);
        const auto& got = net.projection(p).release;
        const bool hit = net.projection(p).name == "proj->fc1";
        CHECK(got.mode == (hit ? ReleaseMode::synapse : ReleaseMode::none));
        CHECK(got.mask_ratio == (hit ? 0.75 : 0.0));
    }
    // An operator masks spikes, not synapses: synapse release becomes per-spike on its inputs.
    const auto& a = std::get<SoftmaxAttention>(net.operators()[0]);
    for (const Release* x : {&a.q_release, &a.k_release, &a.score_release}) {
        CHECK(x->mode == ReleaseMode::spike);
        CHECK(x->mask_ratio == 0.75);
    }
}

TEST_CASE("@LAYER restricts a set or role to one layer; each layer group is a disjoint part of all", "[targets]") {
    // The shipped MST-Tiny: layers are the population names' prefixes (s0.b1.q -> s0.b1).
    const Network net = read_model_file(QUANTAL_SOURCE_DIR "/examples/mst/models/mst_r0.h5").network;
    using V = std::vector<std::string>;
    CHECK(targeted(net, "qkv_in@s0.b1") == V{"projection 's0.b1.act1->s0.b1.q' (qkv_in)",
                                             "projection 's0.b1.act1->s0.b1.k' (qkv_in)",
                                             "projection 's0.b1.act1->s0.b1.v' (qkv_in)"});
    CHECK(targeted(net, "attention@s1.b0") == V{"operator 's1.b0.attention' (q, k, score)"});
    CHECK(targeted(net, "stream@final").size() == 5);
    CHECK(targeted(net, "linear@s0.b0").size() == 3 + 1 + 1 + 1 + 1);
    CHECK_THROWS_WITH(resolve_targets(net, "qkv_in@s9"), Contains("no projection of the model in layer 's9'"));
    CHECK_THROWS_WITH(resolve_targets(net, "s0.b0.attention@s0.b0"), Contains("not a projection or operator name"));
    CHECK_THROWS_WITH(resolve_targets(net, "fc1_in@"), Contains("empty name"));

    const auto groups = layer_groups(net);
    // 2 stages x 2 blocks x (qkv_in, proj_in, fc1_in, fc2_in, attention, two stream groups) + embed,
    // merge, the stream into merge0 and final, head: every projection and operator exactly once.
    std::vector<int> projection_hits(net.projections().size()), operator_hits(net.operators().size());
    for (const auto& g : groups) {
        const Targets t = resolve_targets(net, g);
        REQUIRE(t.projections() + t.operators() > 0);
        for (std::size_t p = 0; p < t.projection.size(); ++p) projection_hits[p] += t.projection[p];
        for (std::size_t o = 0; o < t.op.size(); ++o) operator_hits[o] += t.op[o];
    }
    CHECK(std::all_of(projection_hits.begin(), projection_hits.end(), [](int n) { return n == 1; }));
    CHECK(std::all_of(operator_hits.begin(), operator_hits.end(), [](int n) { return n == 1; }));
    CHECK(std::find(groups.begin(), groups.end(), "fc2_in@s1.b1") != groups.end());
    CHECK(std::find(groups.begin(), groups.end(), "attention@s0.b0") != groups.end());
}
