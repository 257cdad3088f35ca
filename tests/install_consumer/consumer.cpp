// Builds a two-population network through the installed headers and checks one spike arrives.
#include <quantal/sim/engine.hpp>

int main() {
    using namespace quantal;
    NetworkBuilder b;
    auto in = b.add_population("in", {1}, SpikeSource{});
    auto out = b.add_population("out", {1}, IfNeuron{});
    b.connect(in, out, Dense{{1.0f}});
    const Network net = b.build();
    Stimulus s = Stimulus::for_network(net);
    s.spikes[in] = {{0, 0}};
    RunOptions o;
    o.ticks = 2;
    o.record_spikes = true;
    const auto r = Engine(net).run(s, o, 0);
    return r.spikes.size() == 2 ? 0 : 1;
}
