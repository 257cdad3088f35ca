// A study's work units and saved progress (apps/study/work.hpp): the cut covers every sample of
// every configuration that is run exactly once, and tallies do not depend on the order results
// arrive in or on a save and reload in between.
#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "apps/study/work.hpp"
#include "sim/errors.hpp"

using namespace quantal;
using namespace quantal::study;

namespace {

std::vector<Configuration> three_configurations() {
    std::vector<Configuration> plan(3);
    plan[1].ratio = 0.5;
    plan[2].same_as = 0; // repeats the baseline: not run
    return plan;
}

// A unit's result that depends only on what the unit is: sample k's bit and counts are functions of k.
UnitResult result_of(const WorkUnit& w, std::uint64_t u, std::uint64_t observed) {
    UnitResult r;
    r.unit = u;
    r.ledger.populations.resize(2);
    r.ledger.projections.resize(1);
    for (std::uint64_t t = 0; t < observed; ++t)
        for (std::uint64_t k = w.first; k < w.first + w.count; ++k) r.correct.push_back(std::uint8_t((k * 7 + t + w.configuration) % 3 == 0));
    for (std::uint64_t k = w.first; k < w.first + w.count; ++k) {
        r.ledger.populations[k % 2].spikes += k * 11 + w.configuration;
        r.ledger.projections[0].attempted += k * k;
    }
    r.ledger.samples = w.count;
    return r;
}

} // namespace

TEST_CASE("work units cover every sample of every run configuration once", "[study]") {
    const auto plan = three_configurations();
    const auto units = work_units(plan, 10, 4);
    REQUIRE(units.size() == 2 * 3); // two configurations run, blocks 0-3, 4-7, 8-9
    for (std::size_t c : {0, 1}) {
        std::vector<int> seen(10);
        for (const auto& w : units)
            if (w.configuration == c)
                for (auto k = w.first; k < w.first + w.count; ++k) ++seen[k];
        CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
    }
    CHECK(std::none_of(units.begin(), units.end(), [](const WorkUnit& w) { return w.configuration == 2; }));
    CHECK(units.back().count == 2);
}

TEST_CASE("tallies do not depend on the order of results or on saving and reloading", "[study]") {
    const auto plan = three_configurations();
    const std::uint64_t samples = 11, observed = 2;
    const auto units = work_units(plan, samples, 3);
    auto fresh = [&] { return StudyState({{"model", "abc"}}, units.size(), plan.size(), observed, samples); };

    StudyState in_order = fresh();
    for (std::uint64_t u = 0; u < units.size(); ++u) in_order.add(units[u], result_of(units[u], u, observed));

    std::vector<std::uint64_t> order(units.size());
    for (std::uint64_t u = 0; u < order.size(); ++u) order[u] = u;
    std::shuffle(order.begin(), order.end(), std::mt19937(5));
    const auto path = (std::filesystem::temp_directory_path() / "quantal-test-study.state").string();
    StudyState shuffled = fresh();
    for (std::size_t i = 0; i < order.size(); ++i) {
        shuffled.add(units[order[i]], result_of(units[order[i]], order[i], observed));
        if (i % 3 == 1) { // a stop and a resume
            write_state(path, shuffled);
            shuffled = read_state(path);
        }
    }
    CHECK(shuffled.units_done() == units.size());
    for (std::size_t c = 0; c < 2; ++c) {
        CHECK(shuffled.tallies[c].correct == in_order.tallies[c].correct);
        CHECK(shuffled.tallies[c].ledger.populations[0].spikes == in_order.tallies[c].ledger.populations[0].spikes);
        CHECK(shuffled.tallies[c].ledger.projections[0].attempted == in_order.tallies[c].ledger.projections[0].attempted);
        CHECK(shuffled.tallies[c].ledger.samples == samples);
    }
    // the per-sample bits land where the sample is: oracle straight from result_of's rule
    for (std::uint64_t t = 0; t < observed; ++t)
        for (std::uint64_t k = 0; k < samples; ++k)
            CHECK(in_order.tallies[1].correct[t * samples + k] == std::uint8_t((k * 7 + t + 1) % 3 == 0));
    CHECK_THROWS_AS(in_order.add(units[0], result_of(units[0], 0, observed)), std::logic_error);

    // a damaged state is refused, naming the file
    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    bytes[bytes.size() / 2] ^= 1;
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << bytes;
    }
    CHECK_THROWS_WITH(read_state(path), Catch::Matchers::Contains(path) && Catch::Matchers::Contains("damaged"));
    std::filesystem::remove(path);
}
