#pragma once
// The statistics a failure-probability study reports (docs/sweep.md "Statistics"): exact intervals
// for an accuracy and for the paired change of accuracy against the ratio-0 baseline, which saw
// the same images with the same seed.
#include <cstdint>

namespace quantal::study {

struct Interval {
    double low = 0, high = 0;
};

// Clopper-Pearson exact two-sided interval for `successes` out of `trials` (95 % by default).
Interval clopper_pearson(std::uint64_t successes, std::uint64_t trials, double confidence = 0.95);

// One configuration against its baseline on the same samples: of the pairs that disagree,
// `gained` were right only under the configuration and `lost` right only under the baseline.
struct PairedChange {
    double difference = 0; // accuracy(configuration) - accuracy(baseline) = (gained - lost) / samples
    Interval interval;     // exact conditional interval of the difference (see below)
    double p_value = 1;    // exact McNemar test: two-sided binomial test of gained vs lost at 1/2
};

// The interval is conditional on the number of disagreeing pairs d = gained + lost: gained / d has
// a Clopper-Pearson interval [l, u], and the difference d / n (2 pi - 1) maps it to
// [d / n (2 l - 1), d / n (2 u - 1)]. Exact given d; it is degenerate ([0, 0]) when d = 0.
PairedChange paired_change(std::uint64_t gained, std::uint64_t lost, std::uint64_t samples, double confidence = 0.95);

} // namespace quantal::study
