# Run at every build (apps/CMakeLists.txt): writes OUT with quantal's version and `git describe`
# of the source tree, so two builds of different commits (or of a modified tree) say so. The
# file is rewritten only when the text changes, so an unchanged tree rebuilds nothing.
execute_process(COMMAND git -C "${SOURCE_DIR}" describe --always --dirty --tags
                OUTPUT_VARIABLE describe OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE failed)
if(failed OR describe STREQUAL "")
  set(describe "no-git") # a source tree without its history (e.g. a tarball)
endif()
set(text "#pragma once\n#define QUANTAL_BUILD_VERSION \"${PROJECT_VERSION}+${describe}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
