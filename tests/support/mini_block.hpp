#pragma once
// A miniature transformer block for tests of target sets and studies.
#include "network/network.hpp"

namespace quantal::testing {

// in -> act (stream) -> q, k, v (qkv_in) -> attention operator 'attn' -> av -> proj (proj_in) ->
// fc1 (fc1_in) -> fc2 (fc2_in), plus an unlabelled delayed projection 'side'. Without roles when
// `with_roles` is false.
Network mini_block(bool with_roles);

} // namespace quantal::testing
