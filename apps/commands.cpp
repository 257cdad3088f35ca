// The `quantal` command line as one CLI11 app, shared by main() (apps/quantal.cpp) and the Python
// module, so that both accept the same options with the same checks and messages.
#include "apps/commands.hpp"

#include <string>

#include "quantal_build_version.hpp" // generated: version and git describe (apps/CMakeLists.txt)

namespace quantal::cli {

void add_commands(CLI::App& app, std::function<bool()> stop) {
    // One line for a bad command line too (CLI11 adds "Run with --help ..." on a second one).
    app.failure_message(
        [](const CLI::App*, const CLI::Error& e) { return std::string("quantal: ") + e.what() + " (see --help)\n"; });
    app.set_version_flag("--version", "quantal " QUANTAL_BUILD_VERSION);
    app.require_subcommand(1);
    add_demo_command(app);
    add_run_command(app);
    add_inspect_command(app);
    add_sweep_command(app, std::move(stop));
    add_plot_command(app);
    add_energy_command(app);
}

} // namespace quantal::cli
