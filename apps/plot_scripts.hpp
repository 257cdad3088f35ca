#pragma once
// The Python plotting scripts (traces/plot_trace.py for `quantal inspect --plot`,
// traces/plot_study.py for `quantal plot`, both importing traces/plot_common.py): where they are
// and how they are run. quantal draws nothing itself; the scripts use Debian's h5py and matplotlib.
#include <filesystem>
#include <string>
#include <vector>

namespace quantal::cli {

// The script `name` (e.g. "plot_study.py"): in $QUANTAL_PLOT_DIR when that is set; else in
// <prefix>/share/quantal beside an installed executable (<prefix>/bin/quantal); else in the
// source tree this binary was built from (traces/). The scripts of one directory import each other.
std::filesystem::path plot_script(const std::string& name);

// Runs $QUANTAL_PYTHON (default /usr/bin/python3) on the script with these arguments, without a
// shell (no quoting issues with file names), and returns its exit status (128 + signal when it was
// killed). std::runtime_error when the script is missing or the interpreter cannot be started.
int run_plot_script(const std::string& name, const std::vector<std::string>& args);

} // namespace quantal::cli
