// quantal: event-driven spiking network simulator. Errors in the user's input exit with code 2
// and one line naming the file and object at fault.
#include <CLI/CLI.hpp>
#include <iostream>

#include "apps/commands.hpp"
#include "sim/errors.hpp"

int main(int argc, char** argv) {
    CLI::App app{"quantal: event-driven spiking neural network simulator (ANN-to-SNN, RSM as synaptic failure)"};
    app.set_version_flag("--version", "quantal " QUANTAL_VERSION);
    app.require_subcommand(1);
    quantal::cli::add_demo_command(app);
    quantal::cli::add_run_command(app);
    quantal::cli::add_inspect_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2; // --help and --version exit 0; a bad command line is bad input

    } catch (const quantal::ModelError& e) {
        std::cerr << "quantal: " << e.what() << '\n';
        return 2;
    } catch (const quantal::InputError& e) {
        std::cerr << "quantal: " << e.what() << '\n';
        return 2;
    }
    return 0;
}
