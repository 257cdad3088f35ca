#include "apps/study/statistics.hpp"

#include <algorithm>
#include <boost/math/distributions/beta.hpp>
#include <boost/math/distributions/binomial.hpp>
#include <stdexcept>

namespace quantal::study {

Interval clopper_pearson(std::uint64_t successes, std::uint64_t trials, double confidence) {
    if (trials == 0 || successes > trials || !(confidence > 0 && confidence < 1))
        throw std::invalid_argument("clopper_pearson: needs 0 <= successes <= trials, trials > 0, confidence in (0, 1)");
    const double alpha = 1 - confidence, k = double(successes), n = double(trials);
    using boost::math::beta_distribution;
    using boost::math::quantile;
    Interval i;
    i.low = successes == 0 ? 0.0 : quantile(beta_distribution<double>(k, n - k + 1), alpha / 2);
    i.high = successes == trials ? 1.0 : quantile(beta_distribution<double>(k + 1, n - k), 1 - alpha / 2);
    return i;
}

PairedChange paired_change(std::uint64_t gained, std::uint64_t lost, std::uint64_t samples, double confidence) {
    if (gained + lost > samples) throw std::invalid_argument("paired_change: more disagreeing pairs than samples");
    PairedChange c;
    if (samples == 0) return c;
    const std::uint64_t d = gained + lost;
    const double n = double(samples);
    c.difference = (double(gained) - double(lost)) / n;
    if (d == 0) return c; // no disagreement: difference 0, interval [0, 0], p = 1
    const Interval pi = clopper_pearson(gained, d, confidence);
    c.interval = {double(d) / n * (2 * pi.low - 1), double(d) / n * (2 * pi.high - 1)};
    const boost::math::binomial_distribution<double> fair(double(d), 0.5);
    c.p_value = std::min(1.0, 2 * boost::math::cdf(fair, double(std::min(gained, lost))));
    return c;
}

} // namespace quantal::study
