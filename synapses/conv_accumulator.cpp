#include "synapses/conv_accumulator.hpp"

namespace quantal {

__attribute__((target_clones("avx512f", "avx2", "default")))
void accumulate_row(double* row, const float* w, double value, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) row[i] += double(w[i]) * value;
}

} // namespace quantal
