#pragma once
// NIR import (FORMATS.md, "NIR"): a .nir HDF5 graph becomes a quantal Network discretised on the
// tick grid. Neuron nodes become populations, Input nodes spike sources, chains of weight nodes
// (Affine, Linear, Scale, Conv, Pool, Flatten, Delay) projections between the spiking populations
// around them; the exact discretisation per node type is in docs/nir.md. Errors in the file throw
// InputError with one line naming the file and the node (or edge) at fault.
#include <string>

#include "io/model_file.hpp"

namespace quantal {

struct NirOptions {
    double dt_ms = 1.0; // one tick, in the ms of NIR's time constants and delays
};

LoadedModel read_nir(const std::string& path, const NirOptions& options = {});

} // namespace quantal
