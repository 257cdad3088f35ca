// quantal sweep's building blocks: the grid of configurations (with repeats found, not rerun) and
// the statistics, against values computed by hand and by R's binom.test.
#include <catch2/catch.hpp>

#include "apps/study/plan.hpp"
#include "apps/study/statistics.hpp"
#include "sim/errors.hpp"
#include "support/mini_block.hpp"

using namespace quantal;
using namespace quantal::study;
using Catch::Matchers::Contains;

TEST_CASE("Clopper-Pearson intervals equal the exact values", "[study]") {
    // R: binom.test(5, 10)$conf.int, binom.test(1, 10), binom.test(0, 10), binom.test(10, 10)
    auto i = clopper_pearson(5, 10);
    CHECK(i.low == Approx(0.1870860).epsilon(1e-6));
    CHECK(i.high == Approx(0.8129140).epsilon(1e-6));
    i = clopper_pearson(1, 10);
    CHECK(i.low == Approx(0.002528579).epsilon(1e-6));
    CHECK(i.high == Approx(0.4450161).epsilon(1e-6));
    // closed forms at the edges: 1 - (alpha/2)^(1/n) and its mirror
    i = clopper_pearson(0, 10);
    CHECK(i.low == 0.0);
    CHECK(i.high == Approx(1 - std::pow(0.025, 0.1)).epsilon(1e-12));
    i = clopper_pearson(10, 10);
    CHECK(i.low == Approx(std::pow(0.025, 0.1)).epsilon(1e-12));
    CHECK(i.high == 1.0);
    CHECK_THROWS(clopper_pearson(11, 10));
}

TEST_CASE("the paired change: exact McNemar test and its conditional interval", "[study]") {
    // 100 images; 1 gained, 9 lost: difference -8 %; p = 2 P(X <= 1), X ~ Bin(10, 1/2) = 2 * 11 / 1024.
    const auto c = paired_change(1, 9, 100);
    CHECK(c.difference == Approx(-0.08));
    CHECK(c.p_value == Approx(22.0 / 1024.0).epsilon(1e-12));
    // gained / disagreeing in binom.test(1, 10)'s interval, mapped by d / n (2 pi - 1), d / n = 0.1
    CHECK(c.interval.low == Approx(0.1 * (2 * 0.002528579 - 1)).epsilon(1e-6));
    CHECK(c.interval.high == Approx(0.1 * (2 * 0.4450161 - 1)).epsilon(1e-6));
    const auto none = paired_change(0, 0, 50);
    CHECK(none.difference == 0.0);
    CHECK(none.p_value == 1.0);
    CHECK(none.interval.low == 0.0);
    CHECK(none.interval.high == 0.0);
    CHECK(paired_change(5, 5, 20).p_value == 1.0); // balanced: 2 P(X <= 5) > 1, capped
}

TEST_CASE("a study's grid runs each distinct configuration once", "[study]") {
    const Network net = testing::mini_block(true);
    const Network* models[] = {&net};
    Grid g;
    g.ratios = {0.0, 0.5};
    g.releases = {ReleaseMode::spike, ReleaseMode::synapse};
    g.targets = {"attention", "linear", "attn,qkv_in,proj_in,fc1_in,fc2_in"};
    g.seeds = {1, 2};
    const auto p = plan(g, models);
    REQUIRE(p.size() == 2 * (1 + 2 * 2 * 3)); // per seed: baseline + ratios x releases x targets
    // Per seed: baseline; r = 0.5: spike/attention, spike/linear, synapse/linear run; synapse/attention
    // repeats spike/attention (operators mask spikes); the spelled-out linear repeats linear.
    CHECK(distinct(p) == 2 * 4);
    for (std::size_t i = 0; i < p.size(); ++i) {
        INFO(i << " " << p[i].ratio << " " << mode_name(p[i].release) << " " << p[i].targets);
        CHECK(p[p[i].baseline].ratio == 0.0);
        CHECK(p[p[i].baseline].seed == p[i].seed);
        if (p[i].ratio == 0.0) CHECK(p[i].same_as == (i == p[i].baseline ? std::nullopt : std::optional{p[i].baseline}));
        if (p[i].same_as) CHECK(*p[i].same_as < i);
    }
    const auto& synapse_attention = p[1 + 6 + 3]; // seed 1, r 0.5, synapse, attention
    REQUIRE(synapse_attention.targets == "attention");
    REQUIRE(synapse_attention.release == ReleaseMode::synapse);
    CHECK(synapse_attention.same_as == std::optional<std::size_t>{1 + 6});
    CHECK(p[1 + 6 + 2].same_as == std::optional<std::size_t>{1 + 6 + 1}); // spelled-out linear
    CHECK(!p[1 + 6 + 4].same_as);                                        // synapse, linear

    g.compensate = true; // every masked configuration compensated, the baselines not: the same repeats
    const auto compensated = plan(g, models);
    CHECK(distinct(compensated) == 2 * 4);
    for (std::size_t i = 0; i < compensated.size(); ++i) {
        CHECK(compensated[i].compensated == (compensated[i].ratio > 0));
        CHECK(compensated[i].same_as == p[i].same_as);
    }
    g.ratios = {0.5, 1.0}; // r = 1 has no surviving transmission to scale
    CHECK_THROWS_WITH(plan(g, models), Contains("--compensate: ratio 1"));
}

TEST_CASE("a bad grid is refused with one line naming the value", "[study]") {
    const Network net = testing::mini_block(true);
    const Network* models[] = {&net};
    auto refused = [&](Grid g, const char* words) {
        CHECK_THROWS_AS(plan(g, models), InputError);
        CHECK_THROWS_WITH(plan(g, models), Contains(words));
    };
    Grid ok;
    ok.ratios = {0.5};
    ok.releases = {ReleaseMode::spike};
    ok.targets = {"attention"};
    ok.seeds = {1};
    CHECK(plan(ok, models).size() == 2);
    Grid g = ok;
    g.ratios = {0.5, 1.5};
    refused(g, "--ratios: 1.5 is outside [0, 1]");
    g = ok;
    g.ratios = {};
    refused(g, "--ratios: the list is empty");
    g = ok;
    g.targets = {"attention", "attention"};
    refused(g, "--targets: 'attention' is given twice");
    g = ok;
    g.releases = {ReleaseMode::none};
    refused(g, "--release: none");
    g = ok;
    g.targets = {"head"};
    refused(g, "'head'");
}
