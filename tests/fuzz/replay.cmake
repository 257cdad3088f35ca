# ctest `fuzz_replay`: builds the libFuzzer targets with clang-14 in their own build directory
# (BUILD, configured on first use; later runs rebuild only what changed), then runs each target on
# its seed corpus and its regression inputs plus a short mutation run with a fixed seed, so the
# test is deterministic and takes seconds per target. A missing clang-14, libFuzzer runtime
# (libclang-rt-14-dev) or OpenMP for clang (libomp-14-dev) fails the test: scripts/install-deps.sh
# installs them.
#   cmake -DSOURCE=<source dir> -DBUILD=<fuzz build dir> -P replay.cmake
find_program(CLANG_C clang-14)
find_program(CLANG_CXX clang++-14)
if(NOT CLANG_C OR NOT CLANG_CXX)
  message(FATAL_ERROR "fuzz_replay: clang-14 is not installed (scripts/install-deps.sh installs it)")
endif()
if(NOT EXISTS ${BUILD}/CMakeCache.txt)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${BUILD} -DCMAKE_C_COMPILER=${CLANG_C}
    -DCMAKE_CXX_COMPILER=${CLANG_CXX} -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUANTAL_FUZZ=ON
    -DQUANTAL_BUILD_TESTS=OFF -DQUANTAL_BUILD_BENCH=OFF RESULT_VARIABLE rc)
  if(rc)
    file(REMOVE ${BUILD}/CMakeCache.txt)
    message(FATAL_ERROR "fuzz_replay: configuring the clang-14 fuzz build in ${BUILD} failed")
  endif()
endif()
execute_process(COMMAND nice ${CMAKE_COMMAND} --build ${BUILD} -j2 --target fuzz_idx fuzz_network fuzz_contained
  RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "fuzz_replay: building the fuzz targets failed")
endif()

# Mutation runs per target after the corpus: the contained target forks three readers per input.
set(targets idx network contained)
set(runs 3000 3000 20)
foreach(target runs IN ZIP_LISTS targets runs)
  set(scratch ${BUILD}/replay/${target}) # libFuzzer adds new inputs to its first directory: not the source tree
  file(REMOVE_RECURSE ${scratch})
  file(MAKE_DIRECTORY ${scratch})
  set(inputs ${SOURCE}/tests/fuzz/corpus/${target})
  if(EXISTS ${SOURCE}/tests/fuzz/regressions/${target})
    list(APPEND inputs ${SOURCE}/tests/fuzz/regressions/${target})
  endif()
  execute_process(COMMAND ${BUILD}/tests/fuzz/fuzz_${target} -runs=${runs} -seed=1 -timeout=30 -rss_limit_mb=4096 -max_len=131072
    ${scratch} ${inputs} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "fuzz_replay: fuzz_${target} failed (exit ${rc}): a finding, see above")
  endif()
  message(STATUS "fuzz_replay: fuzz_${target}: corpus and ${runs} mutations with seed 1, no finding")
endforeach()
