#pragma once
// Release models: RSM as quantal synaptic failure. p = 1 - mask_ratio is the release probability.
//   none:    every spike is transmitted by every synapse.
//   spike:   each presynaptic spike is dropped for the whole projection with probability
//            mask_ratio (MST's RSM: masking the layer's input spike tensor element-wise per tick).
//   synapse: each synaptic transmission fails independently with probability mask_ratio.
// Two variants of spike and synapse release (issue 9, docs/sweep.md "Release variants"):
//   compensate: a surviving transmission delivers weight / (1 - mask_ratio), so the mean drive is
//               that of no failures and only the noise remains ("noisier" rather than "less" input).
//   spread κ:   release probabilities differ between synapses (spike release: between source
//               neurons), drawn once per run seed from Beta(μκ, (1-μ)κ), μ = probability()
//               (synapses/release_spread.hpp); each transmission is then Bernoulli(its own p).
namespace quantal {

enum class ReleaseMode { none, spike, synapse };

// How independent per-synapse failures are drawn; both give the same statistics (up to bernoulli's
// rounding of p to a multiple of 2^-16, bias <= 2^-17).
//   geometric: skip ahead by geometric gaps, one draw per successful transmission.
//   bernoulli: bit-sliced keep masks, 64 synapses per word from a few random words (p rounded to
//              16 bits, see BernoulliMasks; exact for per-synapse probabilities of sparse projections).
//   automatic: whichever bench/ measured faster at this release probability.
enum class SynapseSampling { automatic, geometric, bernoulli };

struct Release {
    ReleaseMode mode = ReleaseMode::none;
    double mask_ratio = 0.0;
    SynapseSampling sampling = SynapseSampling::automatic;
    bool compensate = false; // surviving transmissions x 1 / (1 - mask_ratio); needs mask_ratio < 1
    double spread = 0.0;     // Beta concentration κ > 0 of heterogeneous release; 0: homogeneous

    double probability() const { return mode == ReleaseMode::none ? 1.0 : 1.0 - mask_ratio; }
    // What a surviving transmission's weight is multiplied by: 1 / probability() when compensating.
    double scale() const { return compensate && mode != ReleaseMode::none && mask_ratio > 0.0 ? 1.0 / probability() : 1.0; }
    // Per-synapse (per-neuron) probabilities differ: a spread over a release that can fail and succeed.
    bool heterogeneous() const {
        return spread > 0.0 && mode != ReleaseMode::none && mask_ratio > 0.0 && mask_ratio < 1.0;
    }
};

const char* mode_name(ReleaseMode m);

} // namespace quantal
