// `quantal plot STUDY.h5 --out DIR`: figures of a failure-probability study (docs/sweep.md, "Plots"),
// drawn by traces/plot_study.py with the helpers it shares with `quantal inspect --plot`.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

#include "apps/commands.hpp"
#include "apps/plot_scripts.hpp"
#include "apps/study/study_file.hpp"
#include "apps/values.hpp"
#include "io/contained.hpp"
#include "sim/errors.hpp"

namespace quantal::cli {

namespace {

struct PlotOptions {
    std::string study;
    std::string out;
    std::vector<double> ratios; // panels of accuracy_vs_ticks.png; empty: every nonzero ratio
};

// The study under every energy model (`quantal energy STUDY.h5 --json`, the built-in profile) in a
// temporary file for energy_per_layer.png; empty, with a line saying why, when it cannot be priced
// (a study without per-layer counts, or whose model files are gone): the other figures need neither.
// A damaged study is refused here (InputError, exit 2), read contained: libhdf5 can loop forever
// on one (io/contained.hpp), and the script's h5py would too.
std::string price_study(const std::string& study) {
    if (!std::filesystem::exists(study)) return {}; // the script says why
    const bool is_study = run_contained(study, default_read_seconds(study), [&] {
        return study::is_study_file(study) ? std::string("yes") : std::string();
    }) == "yes";
    if (!is_study) return {}; // the script says why
    std::ostringstream json;
    try {
        print_study_energy(json, study, "", HardwareProfile{}, std::nullopt, true);
    } catch (const DamagedFile&) {
        throw; // the study's own fault, unlike a missing model
    } catch (const InputError& e) {
        std::cout << "energy_per_layer.png not drawn: " << e.what() << '\n';
        return {};
    }
    const auto path = (std::filesystem::temp_directory_path() /
                       ("quantal-plot-energy-" + std::to_string(::getpid()) + ".json")).string();
    std::ofstream(path) << json.str();
    return path;
}

void run_plot(const PlotOptions& o) {
    // The script checks the study, then creates DIR and checks that it can write there: a bad study
    // leaves no directory behind.
    std::vector<std::string> args{o.study, "--out", o.out, "--error-prefix", "quantal"};
    const std::string energy = price_study(o.study);
    if (!energy.empty()) args.insert(args.end(), {"--energy-models", energy});
    if (!o.ratios.empty()) {
        std::string list;
        for (const double r : o.ratios) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.17g", r);
            list += (list.empty() ? "" : ",") + std::string(buf);
        }
        args.insert(args.end(), {"--ratios", list});
    }
    int rc = 0;
    try {
        rc = run_plot_script("plot_study.py", args);
    } catch (const std::runtime_error& e) { // no interpreter, no script: not the study's fault
        if (!energy.empty()) std::filesystem::remove(energy);
        std::cerr << "quantal plot: " << e.what() << '\n';
        std::exit(1);
    }
    if (!energy.empty()) std::filesystem::remove(energy);
    std::cout.flush();
    // 2: the script has printed one line naming the file or object (not a study, a missing
    // dataset, an unwritable DIR, a ratio the study lacks); its status is ours.
    if (rc == 2) std::exit(2);
    if (rc != 0) {
        std::cerr << "quantal plot: plotting " << o.study << " failed (plot_study.py exit status " << rc << ")\n";
        std::exit(1);
    }
}

} // namespace

void add_plot_command(CLI::App& app) {
    auto o = std::make_shared<PlotOptions>();
    auto* cmd = app.add_subcommand("plot", "Figures of a failure-probability study (accuracy and energy vs failure "
                                           "probability, front, accuracy vs T, per-group sensitivity)");
    cmd->add_option("study", o->study, "Study file written by quantal sweep (HDF5)")->required();
    cmd->add_option("--out", o->out, "Directory for the PNG figures, summary.txt and sensitivity.csv")->required();
    cmd->add_option("--ratios", o->ratios,
                    "Failure probabilities shown in accuracy_vs_ticks.png (default: every nonzero ratio)")
        ->delimiter(',')
        ->check(real_number(0.0, 1.0));
    cmd->callback([o] { run_plot(*o); });
}

} // namespace quantal::cli
