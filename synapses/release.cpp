#include "synapses/release.hpp"

#include "synapses/transmit.hpp"

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
ReleasePlan::Draw choose_draw(const Release& r, double p) {
    using Draw = ReleasePlan::Draw;
    if (p >= 1.0) return Draw::all;
    if (p <= 0.0) return Draw::nothing;
    switch (r.sampling) {
    case SynapseSampling::geometric: return Draw::geometric;
    case SynapseSampling::bernoulli: return Draw::bernoulli;
    case SynapseSampling::automatic: break;
    }
    return p < ReleasePlan::geometric_below ? Draw::geometric : Draw::bernoulli;
}
} // namespace

ReleasePlan::ReleasePlan(const Release& r)
    : release_(r), p_(r.probability()), draw_(choose_draw(r, p_)),
      gaps_(p_ > 0.0 && p_ < 1.0 ? p_ : 0.5), keep_(p_), spike_keep_(p_) {}

} // namespace quantal
