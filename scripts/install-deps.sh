#!/usr/bin/env bash
# Installs quantal's Debian dependencies; idempotent (skips the apt round-trip when all are present).
# Usage: scripts/install-deps.sh [--python] [--bench]
#   default: the C++ build and test toolchain plus the Python test stack
#   --bench: also Brian2 and NEURON (peer comparisons in bench/)
set -euo pipefail

packages=(
  build-essential cmake
  libboost-graph-dev libboost-random-dev
  libhdf5-dev libcereal-dev catch2 libcli11-dev
  nlohmann-json3-dev  # hardware profiles of the energy models (io/energy_profile.cpp)
  libssl-dev  # libcrypto: SHA-256 of model files and checkpoints
  libopenmpi-dev openmpi-bin  # mpirun -n K quantal sweep (docs/distributed.md)
  clang-14 libclang-rt-14-dev libomp-14-dev  # libFuzzer targets (ctest fuzz_replay)
  pybind11-dev python3-dev  # the quantal Python module (python/, docs/python.md)
  python3-numpy python3-h5py python3-matplotlib python3-pytest python3-torch
  libopenblas0-pthread  # an optimised BLAS for PyTorch: the reference BLAS is ~18x slower
  dataset-fashion-mnist
)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(python3-brian python3-neuron) ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
