#pragma once
// Release models: RSM as quantal synaptic failure. p = 1 - mask_ratio is the release probability.
//   none:    every spike is transmitted by every synapse.
//   spike:   each presynaptic spike is dropped for the whole projection with probability
//            mask_ratio (MST's RSM: masking the layer's input spike tensor element-wise per tick).
//   synapse: each synaptic transmission fails independently with probability mask_ratio.
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

    double probability() const { return mode == ReleaseMode::none ? 1.0 : 1.0 - mask_ratio; }
};

const char* mode_name(ReleaseMode m);

} // namespace quantal
