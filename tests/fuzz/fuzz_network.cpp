// libFuzzer target, structure-aware: quantal's own validation and network building from a mutated
// in-memory description — what the model and NIR readers hand over once the HDF5 bytes are read
// (shapes, attributes, indices, kinds, weights, delays, release settings, attention operators),
// through NetworkBuilder::build() and, when it accepts the network, a few ticks of the engine on
// both update paths. ModelError and InputError are the only allowed failures; a crash, a sanitizer
// report, another exception or an engine that reads outside what build() validated is a finding.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "network/network.hpp"
#include "sim/engine.hpp"
#include "sim/errors.hpp"

using namespace quantal;

namespace {

// Mostly small values; sometimes the hostile ones a damaged or malicious file carries.
std::int64_t extent(FuzzedDataProvider& in) {
    static constexpr std::int64_t hostile[] = {0, -1, -7, 1 << 16, std::int64_t(1) << 31, std::int64_t(1) << 32,
                                               std::int64_t(1) << 62, std::numeric_limits<std::int64_t>::max(),
                                               std::numeric_limits<std::int64_t>::min()};
    if (in.ConsumeIntegralInRange<int>(0, 15) == 0) return hostile[in.ConsumeIntegralInRange<std::size_t>(0, std::size(hostile) - 1)];
    return in.ConsumeIntegralInRange<std::int64_t>(1, 6);
}

double real(FuzzedDataProvider& in) {
    static constexpr double hostile[] = {0.0, -0.0, -1.0, 1e308, -1e308, 1e-310, std::numeric_limits<double>::infinity(),
                                         std::numeric_limits<double>::quiet_NaN(), 0.5, 2.0};
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) return hostile[in.ConsumeIntegralInRange<std::size_t>(0, std::size(hostile) - 1)];
    return in.ConsumeFloatingPointInRange(-4.0, 4.0);
}

template <class T> std::vector<T> values(FuzzedDataProvider& in, std::size_t max) {
    std::vector<T> v(in.ConsumeIntegralInRange<std::size_t>(0, max));
    for (auto& x : v) x = T(real(in));
    return v;
}

Shape shape(FuzzedDataProvider& in) {
    Shape s(in.ConsumeIntegralInRange<std::size_t>(0, 4));
    for (auto& d : s) d = extent(in);
    return s;
}

std::size_t elements(const Shape& s) {
    double n = 1;
    for (auto d : s) n *= double(d);
    return n > 0 && n < 1e6 ? std::size_t(n) : 0;
}

ThresholdRule rule(FuzzedDataProvider& in) {
    ThresholdRule r;
    r.threshold = real(in);
    r.comparison = in.ConsumeBool() ? Comparison::greater : Comparison::greater_equal;
    r.reset = in.ConsumeBool() ? ResetMode::to_value : ResetMode::subtract;
    r.v_reset = real(in);
    return r;
}

NeuronModel model(FuzzedDataProvider& in, std::size_t size) {
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0: return IfNeuron{rule(in), real(in), real(in)};
    case 1: return LifNeuron{rule(in), real(in), real(in), real(in), real(in)};
    case 2: return CubaLifNeuron{rule(in), real(in), real(in), real(in), real(in), real(in)};
    case 3: return ReadoutNeuron{real(in)};
    case 4: return SpikeSource{real(in)};
    default: {
        BernoulliSource b{values<double>(in, 3), real(in)};
        if (in.ConsumeBool() && size > 0 && size < 4096) b.probability.assign(size, in.ConsumeProbability<double>());
        return b;
    }
    }
}

// An extent moved down by `by` (strides, paddings and shifts may be 0 or negative), without
// wrapping below INT64_MIN.
std::int64_t lowered(FuzzedDataProvider& in, std::int64_t by) {
    const std::int64_t e = extent(in);
    return e < std::numeric_limits<std::int64_t>::min() + by ? e : e - by;
}

std::array<std::int64_t, 2> pair(FuzzedDataProvider& in) { return {lowered(in, 1), lowered(in, 1)}; }

// Weights that often fit exactly (so build() gets past the count checks), sometimes not.
std::vector<float> weights(FuzzedDataProvider& in, std::size_t fitting) {
    if (in.ConsumeBool() && fitting > 0 && fitting <= (1u << 16)) {
        std::vector<float> w(fitting);
        for (auto& x : w) x = float(in.ConsumeFloatingPointInRange(-2.0, 2.0));
        return w;
    }
    return values<float>(in, 12);
}

// Delays: small ones, and ones build() must refuse. Accepted large delays (up to 2^24) are left out:
// the engine's tick calendar then allocates a window of that many buckets per sample (hundreds of
// MB, seconds: a known finding, docs/reliability.md), which would stall the campaign.
std::uint32_t delay(FuzzedDataProvider& in) {
    static constexpr std::uint32_t refused[] = {(1u << 24) + 1, 1u << 31, std::numeric_limits<std::uint32_t>::max()};
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0) return refused[in.ConsumeIntegralInRange<std::size_t>(0, 2)];
    return in.ConsumeIntegralInRange<std::uint32_t>(0, 4);
}

Connectivity connectivity(FuzzedDataProvider& in, std::size_t n_src, std::size_t n_dst) {
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: return Dense{weights(in, n_src * n_dst)};
    case 1: {
        Conv2d c;
        c.kernel = {extent(in), extent(in)};
        c.stride = pair(in), c.padding = pair(in), c.dilation = pair(in);
        c.groups = extent(in);
        c.weight = weights(in, std::size_t(in.ConsumeIntegralInRange<int>(1, 64)));
        return c;
    }
    case 2: {
        Pool2d p;
        p.kind = in.ConsumeBool() ? PoolKind::sum : PoolKind::average;
        p.kernel = {extent(in), extent(in)};
        p.stride = pair(in), p.padding = pair(in);
        return p;
    }
    case 3: return OneToOne{weights(in, in.ConsumeBool() ? 1 : n_src)};
    default: {
        Sparse s;
        const std::size_t rows = in.ConsumeBool() ? n_src + 1 : in.ConsumeIntegralInRange<std::size_t>(0, 6);
        std::uint64_t at = 0;
        for (std::size_t r = 0; r < rows && r < 4097; ++r) {
            s.row_begin.push_back(at);
            at += in.ConsumeIntegralInRange<std::uint64_t>(0, 3);
        }
        const std::size_t synapses = s.row_begin.empty() ? 0 : std::size_t(s.row_begin.back());
        for (std::size_t i = 0; i < synapses + in.ConsumeIntegralInRange<std::size_t>(0, 1); ++i)
            s.target.push_back(in.ConsumeIntegralInRange<std::uint32_t>(0, std::uint32_t(std::min<std::size_t>(n_dst + 1, 1u << 30))));
        s.weight = weights(in, s.target.size());
        if (in.ConsumeBool())
            for (std::size_t i = 0; i < s.target.size(); ++i)
                s.delay.push_back(delay(in));
        if (in.ConsumeBool()) s.probability = values<float>(in, s.target.size() + 1);
        return s;
    }
    }
}

Release release(FuzzedDataProvider& in) {
    Release r;
    r.mode = static_cast<ReleaseMode>(in.ConsumeIntegralInRange<int>(0, 2));
    r.mask_ratio = in.ConsumeBool() ? in.ConsumeProbability<double>() : real(in);
    r.sampling = static_cast<SynapseSampling>(in.ConsumeIntegralInRange<int>(0, 2));
    return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    NetworkBuilder b;
    std::vector<std::size_t> sizes;
    const int populations = in.ConsumeIntegralInRange<int>(1, 6);
    for (int i = 0; i < populations; ++i) {
        Population p;
        p.name = in.ConsumeBool() ? "p" + std::to_string(i) : in.ConsumeRandomLengthString(6);
        p.shape = shape(in);
        sizes.push_back(elements(p.shape));
        p.model = model(in, sizes.back());
        if (in.ConsumeBool()) p.bias = in.ConsumeBool() && sizes.back() < 4096 ? std::vector<double>(sizes.back(), real(in))
                                                                              : values<double>(in, 3);
        b.add_population(std::move(p));
    }
    const int projections = in.ConsumeIntegralInRange<int>(0, 8);
    for (int j = 0; j < projections; ++j) {
        Projection pr;
        pr.source = in.ConsumeIntegralInRange<PopulationId>(0, PopulationId(populations));
        pr.target = in.ConsumeIntegralInRange<PopulationId>(0, PopulationId(populations));
        if (in.ConsumeIntegralInRange<int>(0, 9) == 0) pr.name = in.ConsumeRandomLengthString(4);
        const std::size_t n_src = pr.source < sizes.size() ? sizes[pr.source] : 0;
        const std::size_t n_dst = pr.target < sizes.size() ? sizes[pr.target] : 0;
        pr.connectivity = connectivity(in, n_src, n_dst);
        pr.delay = delay(in);
        pr.release = release(in);
        b.connect(std::move(pr));
    }
    if (in.ConsumeIntegralInRange<int>(0, 3) == 0) {
        SoftmaxAttention a;
        a.name = in.ConsumeBool() ? "attn" : in.ConsumeRandomLengthString(3);
        for (auto* id : {&a.q, &a.k, &a.v, &a.scores, &a.output})
            *id = in.ConsumeIntegralInRange<std::uint32_t>(0, std::uint32_t(populations));
        a.heads = extent(in), a.window = extent(in), a.shift = lowered(in, 2);
        a.scale = real(in);
        a.bias = values<float>(in, 16);
        a.mask = values<float>(in, 16);
        a.q_release = release(in), a.k_release = release(in), a.score_release = release(in);
        b.add_operator(std::move(a));
    }

    Network net;
    try {
        net = b.build();
    } catch (const ModelError&) {
        return 0;
    } catch (const InputError&) {
        return 0;
    }
    // Accepted: the engine must run it. Networks too large to simulate here are only built.
    std::uint64_t neurons = 0;
    for (const auto& p : net.populations()) neurons += p.size();
    if (neurons > (1u << 16)) return 0;
    RunOptions run;
    run.ticks = in.ConsumeIntegralInRange<Tick>(1, 6);
    run.seed = in.ConsumeIntegral<std::uint64_t>();
    run.record_spikes = true;
    Stimulus stimulus = Stimulus::for_network(net);
    for (PopulationId p = 0; p < net.populations().size(); ++p)
        if (std::holds_alternative<SpikeSource>(net.population(p).model) && net.population(p).size() > 0)
            for (int s = in.ConsumeIntegralInRange<int>(0, 4); s > 0; --s)
                stimulus.spikes[p].push_back({in.ConsumeIntegralInRange<Tick>(0, run.ticks - 1),
                                              in.ConsumeIntegralInRange<std::uint32_t>(0, net.population(p).size() - 1)});
    Engine engine(net);
    for (const auto path : {UpdatePath::lazy, UpdatePath::sweep}) {
        run.update_path = path;
        (void)engine.run(stimulus, run, 0);
    }
    return 0;
}
