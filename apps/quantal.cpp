// quantal: event-driven spiking neural network simulator. Every failure ends with one line on
// stderr and an exit code (docs/run.md, "Exit codes"): 2 for unusable input (a file, an object in
// it, a command-line value), 3 when memory runs out, 4 for an internal error (a bug in quantal);
// never an abort.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>
#include <new>

#include "apps/commands.hpp"
#include "sim/errors.hpp"

namespace {

// What was running, for a message about an exception that carries no context of its own.
std::string running(const CLI::App& app) {
    const auto commands = app.get_subcommands();
    return commands.empty() ? "quantal" : "quantal " + commands.front()->get_name();
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"quantal: event-driven spiking neural network simulator (ANN-to-SNN, RSM as synaptic failure)"};
    quantal::cli::add_commands(app);
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
    } catch (const quantal::cli::OutOfMemory& e) {
        std::cerr << "quantal: " << e.what() << '\n';
        return 3;
    } catch (const std::bad_alloc&) {
        std::cerr << "quantal: out of memory while running '" << running(app) << "'\n";
        return 3;
    } catch (const std::exception& e) {
        std::cerr << "quantal: internal error in '" << running(app) << "': " << e.what()
                  << " (a bug in quantal; please report it with the command line)\n";
        return 4;
    } catch (...) {
        std::cerr << "quantal: internal error in '" << running(app) << "': unknown exception\n";
        return 4;
    }
    return 0;
}
