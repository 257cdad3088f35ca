// Neuron models against closed forms, driven by bias alone (the lazy path: no input events).
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>

#include "neurons/dynamics.hpp"
#include "sim/engine.hpp"

using namespace quantal;

namespace {

SampleResult run_single(NeuronModel model, double bias, Tick ticks, std::uint32_t n = 1) {
    NetworkBuilder b;
    b.add_population("n", {n}, std::move(model), {bias});
    const Network net = b.build();
    RunOptions o;
    o.ticks = ticks;
    o.record_spikes = true;
    return Engine(net).run(Stimulus::for_network(net), o, 0);
}

} // namespace

TEST_CASE("IF with soft reset and constant bias spikes at the closed-form ticks", "[neurons]") {
    // v(t) = v0 + (t+1) b before resets; with subtraction the spike count by tick t is
    // floor((v0 + (t+1) b) / theta). All values dyadic, so the comparison is exact.
    for (double b : {0.375, 0.0625, 1.25, 3.0}) {
        const double v0 = 0.5, theta = 1.0;
        IfNeuron m{ThresholdRule{theta, Comparison::greater_equal, ResetMode::subtract, 0.0}, v0, 1.0};
        const Tick T = 500;
        const auto r = run_single(m, b, T);
        std::vector<Tick> expected;
        for (Tick t = 0; t < T; ++t)
            if (std::floor((v0 + double(t + 1) * b) / theta) > std::floor((v0 + double(t) * b) / theta)) expected.push_back(t);
        std::vector<Tick> got;
        for (const auto& s : r.spikes) got.push_back(s.tick);
        INFO("bias " << b);
        // b > theta: v stays above threshold, and at most one spike per tick is allowed.
        if (b <= theta) CHECK(got == expected);
        else CHECK(got.size() == std::size_t(T));
        // Lazy: with drift alone the neuron is visited only when it crosses.
        CHECK(r.ledger.populations[0].updates == got.size());
    }
}

TEST_CASE("IF comparison > differs from >= exactly at equality", "[neurons]") {
    const double b = 0.25;
    IfNeuron ge{ThresholdRule{1.0, Comparison::greater_equal, ResetMode::to_value, 0.0}, 0.0, 1.0};
    IfNeuron gt{ThresholdRule{1.0, Comparison::greater, ResetMode::to_value, 0.0}, 0.0, 1.0};
    const auto a = run_single(ge, b, 20), c = run_single(gt, b, 20);
    // >=: v reaches 1.0 at tick 3 and resets to 0: spikes at 3, 7, 11, ...; >: needs 1.25, tick 4, 9, ...
    REQUIRE(a.spikes.size() >= 2);
    CHECK(a.spikes[0].tick == 3);
    CHECK(a.spikes[1].tick == 7);
    CHECK(c.spikes[0].tick == 4);
    CHECK(c.spikes[1].tick == 9);
}

TEST_CASE("IF with negative bias never spikes and is never visited", "[neurons]") {
    const auto r = run_single(IfNeuron{ThresholdRule{}, 0.5, 1.0}, -0.125, 1000, 100000);
    CHECK(r.spikes.empty());
    CHECK(r.ledger.populations[0].updates == 0); // cost follows activity, not size
}

TEST_CASE("LIF with bias: first crossing and period match the closed form", "[neurons]") {
    // v(t) = v_inf (1 - alpha^(t+1)) from v0 = 0, v_inf = b / (1 - alpha); reset to 0 makes it periodic.
    const double tau = 10.0, b = 0.15, theta = 1.0;
    const double alpha = std::exp(-1.0 / tau), v_inf = b / (1 - alpha);
    LifNeuron m{ThresholdRule{theta, Comparison::greater_equal, ResetMode::to_value, 0.0}, tau, 0.0, 0.0, 1.0};
    const auto r = run_single(m, b, 300);
    const Tick k = Tick(std::ceil(std::log(1 - theta / v_inf) / std::log(alpha))); // ticks to reach theta
    REQUIRE(r.spikes.size() >= 3);
    CHECK(r.spikes[0].tick == k - 1);
    CHECK(r.spikes[1].tick - r.spikes[0].tick == k);
    CHECK(r.spikes[2].tick - r.spikes[1].tick == k);
    CHECK(r.ledger.populations[0].updates == r.spikes.size());
}

TEST_CASE("LIF below its fixed point never spikes", "[neurons]") {
    LifNeuron m{ThresholdRule{}, 5.0, 0.0, 0.0, 1.0};
    const double b = 0.9 * (1 - std::exp(-1.0 / 5.0)); // v_inf = 0.9 < theta
    CHECK(run_single(m, b, 1000).spikes.empty());
}

TEST_CASE("IF and LIF predictions are the first tick a clocked loop crosses", "[neurons]") {
    // The oracle steps the per-tick form itself (v + b; v_leak + alpha (v - v_leak) + b) on random
    // non-dyadic states: a prediction must name exactly its first crossing, or never.
    auto first_crossing = [](double v, auto step, double theta, Tick limit) {
        for (Tick n = 1; n <= limit; ++n)
            if ((v = step(v)) > theta) return n;
        return never;
    };
    IfDynamics d(IfNeuron{ThresholdRule{0.7, Comparison::greater, ResetMode::subtract, 0}, 0, 1});
    for (int i = 1; i < 200; ++i) {
        const double v = -1.0 + 0.013 * i, b = 0.001 + 0.0037 * i;
        const Tick k = d.ticks_to_crossing(v, b, 100000);
        REQUIRE(k != never);
        CHECK(k == first_crossing(v, [&](double x) { return x + b; }, 0.7, 100000));
        CHECK(d.ticks_to_crossing(v, b, k - 1) == never); // the limit is honoured
    }
    const double tau = 7.3, v_leak = -0.05, alpha = std::exp(-1.0 / tau);
    LifDynamics l(LifNeuron{ThresholdRule{0.7, Comparison::greater, ResetMode::subtract, 0}, tau, v_leak, 0, 1});
    int crossing = 0;
    for (int i = 1; i < 200; ++i) {
        const double v = -0.5 + 0.006 * i, b = 0.001 * i; // v_inf from below to well above theta
        const Tick k = l.ticks_to_crossing(v, b, 5000);
        CHECK(k == first_crossing(v, [&](double x) { return v_leak + alpha * (x - v_leak) + b; }, 0.7, 5000));
        crossing += k != never;
    }
    CHECK(crossing > 50);
    CHECK(crossing < 199);
}

TEST_CASE("spike value lambda scales what a spike delivers", "[neurons]") {
    NetworkBuilder b;
    auto src = b.add_population("src", {1}, SpikeSource{0.75});
    auto out = b.add_population("out", {1}, ReadoutNeuron{});
    b.connect(src, out, Dense{{2.0f}});
    const Network net = b.build();
    Stimulus s = Stimulus::for_network(net);
    s.spikes[src] = {{0, 0}, {4, 0}};
    RunOptions o;
    o.ticks = 10;
    CHECK(Engine(net).run(s, o, 0).readouts[0].values[0] == 3.0);
}

TEST_CASE("Bernoulli sources spike at their probability per tick (binomial, 4 sigma)", "[neurons][release]") {
    // Groups of 100 neurons per probability over 2000 ticks: 2 x 10^5 trials per group, so 4 sigma
    // is at most 1.1 % of the mean for p >= 0.05 (3.9 % at p = 0.01): a rate off by 5 % fails.
    const std::vector<double> groups{0.01, 0.05, 0.2, 0.5, 0.9};
    const std::uint32_t per_group = 100;
    const Tick T = 2000;
    std::vector<double> p;
    for (double q : groups) p.insert(p.end(), per_group, q);
    p.push_back(1.0), p.push_back(0.0); // the limits: every tick, never
    const auto n = std::uint32_t(p.size());
    NetworkBuilder b;
    b.add_population("src", {n}, BernoulliSource{p, 1.0});
    const Network net = b.build();
    RunOptions o;
    o.ticks = T;
    o.record_spikes = true;
    o.seed = 5;
    const auto r = Engine(net).run(Stimulus::for_network(net), o, 0);
    std::vector<std::uint64_t> count(n, 0), repeat(n, 0), with_next(n, 0);
    std::vector<Tick> last(n, -2);
    for (const auto& s : r.spikes) {
        ++count[s.neuron];
        with_next[s.neuron] += s.tick + 1 < T;
        repeat[s.neuron] += last[s.neuron] == s.tick - 1; // a gap of one tick: probability p
        last[s.neuron] = s.tick;
    }
    for (std::size_t g = 0; g < groups.size(); ++g) {
        const double q = groups[g], trials = double(per_group) * double(T);
        std::uint64_t spikes = 0, repeats = 0, followed = 0;
        int outside = 0;
        const double sd1 = std::sqrt(double(T) * q * (1 - q));
        for (std::uint32_t j = 0; j < per_group; ++j) {
            spikes += count[g * per_group + j], repeats += repeat[g * per_group + j], followed += with_next[g * per_group + j];
            outside += std::abs(double(count[g * per_group + j]) - double(T) * q) > 4.5 * sd1;
        }
        const double sd = std::sqrt(trials * q * (1 - q));
        INFO("p " << q << ": " << spikes << " spikes in " << trials << " trials, expected " << trials * q << " +- 4 x " << sd);
        CHECK(std::abs(double(spikes) - trials * q) <= 4 * sd);
        CHECK(outside == 0); // each neuron on its own (4.5 sigma)
        // Given a spike, the next tick spikes with probability p (no gap is skipped or doubled).
        const double after = double(followed);
        CHECK(std::abs(double(repeats) - after * q) <= 4 * std::sqrt(after * q * (1 - q)));
    }
    CHECK(count[n - 2] == std::uint64_t(T));
    CHECK(count[n - 1] == 0);
    CHECK(r.ledger.populations[0].spikes == r.spikes.size());
}

TEST_CASE("a single Bernoulli probability applies to every neuron; samples draw anew", "[neurons][release]") {
    const double q = 0.3;
    NetworkBuilder b;
    b.add_population("src", {400}, BernoulliSource{{q}, 1.0});
    const Network net = b.build();
    RunOptions o;
    o.ticks = 500;
    o.record_spikes = true;
    const auto a = Engine(net).run(Stimulus::for_network(net), o, 0);
    const auto c = Engine(net).run(Stimulus::for_network(net), o, 1);
    const double trials = 400.0 * 500.0, sd = std::sqrt(trials * q * (1 - q));
    for (const auto* r : {&a, &c}) CHECK(std::abs(double(r->spikes.size()) - trials * q) <= 4 * sd);
    CHECK(a.spikes != c.spikes);
    std::vector<std::uint64_t> count(400, 0);
    for (const auto& s : a.spikes) ++count[s.neuron];
    CHECK(*std::min_element(count.begin(), count.end()) > 0); // no neuron left out
}

TEST_CASE("Poisson sources spike at their rate in Hz at the network's dt (binomial, 4 sigma)", "[neurons][release][poisson]") {
    // Rates in Hz per neuron group; the empirical rate over many ticks, in Hz at the network's dt,
    // must lie within 4 binomial standard deviations of the requested rate, at two dt values.
    const std::vector<double> rates{5.0, 40.0, 150.0};
    const std::uint32_t per_group = 100;
    std::vector<double> rate;
    for (double r : rates) rate.insert(rate.end(), per_group, r);
    for (const double dt : {0.1, 1.0}) {
        NetworkBuilder b;
        b.set_dt(dt);
        b.add_population("drive", {std::uint32_t(rate.size())}, PoissonSource{rate, 1.0});
        const Network net = b.build();
        REQUIRE(net.spike_process(0) != nullptr);
        const Tick T = Tick(std::llround(20000.0 / dt)) / 10; // 2 s of simulated time
        RunOptions o;
        o.ticks = T;
        o.record_spikes = true;
        o.seed = 11;
        const auto r = Engine(net).run(Stimulus::for_network(net), o, 0);
        std::vector<std::uint64_t> spikes(rates.size(), 0);
        for (const auto& s : r.spikes) ++spikes[s.neuron / per_group];
        const double seconds = double(T) * dt / 1000.0;
        for (std::size_t g = 0; g < rates.size(); ++g) {
            const double p = rates[g] * dt / 1000.0, trials = double(per_group) * double(T);
            const double sd = std::sqrt(trials * p * (1 - p));
            const double hz = double(spikes[g]) / double(per_group) / seconds;
            INFO("dt " << dt << " ms, " << rates[g] << " Hz requested: " << hz << " Hz measured (" << spikes[g]
                       << " spikes, expected " << trials * p << " +- 4 x " << sd << ")");
            CHECK(std::abs(double(spikes[g]) - trials * p) <= 4 * sd);
        }
    }
}

TEST_CASE("a Poisson source is the Bernoulli source of probability rate * dt / 1000", "[neurons][release][poisson]") {
    // The same stream and process: equal spikes, whatever the dt that gives the probability.
    auto spikes_of = [](NeuronModel model, double dt) {
        NetworkBuilder b;
        b.set_dt(dt);
        b.add_population("drive", {50}, std::move(model));
        const Network net = b.build();
        RunOptions o;
        o.ticks = 400;
        o.record_spikes = true;
        o.seed = 3;
        return Engine(net).run(Stimulus::for_network(net), o, 2).spikes;
    };
    const auto poisson = spikes_of(PoissonSource{{250.0}, 1.0}, 0.5);
    CHECK(poisson.size() > 2000);
    CHECK(poisson == spikes_of(BernoulliSource{{250.0 * 0.5 / 1000.0}, 1.0}, 1.0));
    CHECK(poisson != spikes_of(PoissonSource{{250.0}, 1.0}, 0.25));
}

TEST_CASE("Poisson rates that are negative, not finite or above one spike per tick are refused", "[neurons][poisson]") {
    using Catch::Matchers::Contains;
    auto build = [](std::vector<double> rate, double dt) {
        NetworkBuilder b;
        b.set_dt(dt);
        b.add_population("drive", {3}, PoissonSource{std::move(rate), 1.0});
        return b.build();
    };
    CHECK_NOTHROW(build({1000.0}, 1.0)); // p = 1: every tick
    CHECK_THROWS_WITH(build({1000.5}, 1.0), Contains("population 'drive'") && Contains("rate 1000.5 Hz") &&
                                                Contains("above 1"));
    CHECK_THROWS_WITH(build({10.0, -1.0, 5.0}, 1.0), Contains("population 'drive'") && Contains("rate[1] is -1 Hz"));
    CHECK_THROWS_WITH(build({std::nan("")}, 1.0), Contains("population 'drive'") && Contains("rate is nan Hz"));
    CHECK_THROWS_WITH(build({1.0, 2.0}, 1.0), Contains("population 'drive'") && Contains("rate has 2 values, expected 1 or 3"));
    // A network valid at one dt may not be at another: with_dt checks again.
    const Network net = build({600.0}, 1.0);
    CHECK_THROWS_WITH(with_dt(net, 2.0), Contains("population 'drive'") && Contains("rate 600 Hz at dt 2 ms"));
    CHECK(with_dt(net, 0.5).spike_process(0)->probability == std::vector<double>{0.3});
    for (double dt : {0.0, -1.0, std::nan(""), double(INFINITY)})
        CHECK_THROWS_WITH(with_dt(net, dt), Contains("dt") && Contains("must be finite and > 0"));
}
