#include "synapses/release.hpp"

#include "synapses/transmit.hpp"

#include <stdexcept>

namespace quantal {

const char* mode_name(ReleaseMode m) {
    switch (m) {
    case ReleaseMode::none: return "none";
    case ReleaseMode::spike: return "spike";
    case ReleaseMode::synapse: return "synapse";
    }
    return "?";
}

namespace {
ReleasePlan::Draw choose_draw(const Release& r, double p, const Fanout& fanout) {
    using Draw = ReleasePlan::Draw;
    if (p >= 1.0) return Draw::all;
    if (p <= 0.0) return Draw::nothing;
    if (r.heterogeneous()) return Draw::heterogeneous;
    switch (r.sampling) {
    case SynapseSampling::geometric: return Draw::geometric;
    case SynapseSampling::bernoulli: return Draw::bernoulli;
    case SynapseSampling::automatic: break;
    }
    const bool windows = std::holds_alternative<ConvFanout>(fanout) || std::holds_alternative<PoolFanout>(fanout);
    const double crossover = windows ? ReleasePlan::geometric_below_windows : ReleasePlan::geometric_below_contiguous;
    return p < crossover ? Draw::geometric : Draw::bernoulli;
}
} // namespace

ReleasePlan::ReleasePlan(const Release& r, const Fanout& fanout, const ReleaseSpread* spread)
    : release_(r), p_(r.probability()), scale_(r.scale()), spread_(r.heterogeneous() ? spread : nullptr),
      draw_(choose_draw(r, p_, fanout)),
      gaps_(p_ > 0.0 && p_ < 1.0 ? p_ : 0.5), keep_(p_), masks_(p_), spike_keep_(p_) {
    if (r.heterogeneous() && !spread)
        throw std::logic_error("ReleasePlan: a release spread without its table (Network::spread)");
}

} // namespace quantal
