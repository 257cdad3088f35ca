#include "support/mini_block.hpp"

namespace quantal::testing {

Network mini_block(bool with_roles) {
    const std::int64_t C = 4, H = 4, W = 4, T = 4, windows = 4;
    NetworkBuilder b;
    const auto in = b.add_population("in", {C, H, W}, SpikeSource{});
    auto spiking = [&](const char* name, Shape shape) {
        return b.add_population(name, std::move(shape), IfNeuron{ThresholdRule{1.0}, 0.5, 1.0});
    };
    const auto act = spiking("act", {C, H, W});
    const auto q = spiking("q", {C, H, W}), k = spiking("k", {C, H, W}), v = spiking("v", {C, H, W});
    const auto scores = spiking("scores", {windows, 2, T, T}), av = spiking("av", {C, H, W});
    const auto proj = spiking("proj", {C, H, W}), fc1 = spiking("fc1", {C, H, W}), fc2 = spiking("fc2", {C, H, W});
    auto role = [&](const char* r) { return with_roles ? std::string(r) : std::string(); };
    b.connect(Projection{"", in, act, OneToOne{{1.0f}}, 0, {}, role("stream")});
    for (auto target : {q, k, v}) b.connect(Projection{"", act, target, OneToOne{{1.0f}}, 0, {}, role("qkv_in")});
    b.connect(Projection{"", av, proj, OneToOne{{1.0f}}, 0, {}, role("proj_in")});
    b.connect(Projection{"", proj, fc1, OneToOne{{1.0f}}, 0, {}, role("fc1_in")});
    b.connect(Projection{"", fc1, fc2, OneToOne{{1.0f}}, 0, {}, role("fc2_in")});
    b.connect(Projection{"side", in, fc2, OneToOne{{1.0f}}, 1, {}, ""});
    SoftmaxAttention a;
    a.name = "attn";
    a.q = q, a.k = k, a.v = v, a.scores = scores, a.output = av;
    a.heads = 2, a.window = 2, a.scale = 0.5;
    a.bias.assign(2 * T * T, 0.0f);
    b.add_operator(a);
    return b.build();
}

} // namespace quantal::testing
