// `quantal plot STUDY.h5 --out DIR`: figures of a failure-probability study (docs/sweep.md, "Plots"),
// drawn by traces/plot_study.py with the helpers it shares with `quantal inspect --plot`.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>

#include "apps/commands.hpp"
#include "apps/plot_scripts.hpp"
#include "apps/values.hpp"

namespace quantal::cli {

namespace {

struct PlotOptions {
    std::string study;
    std::string out;
    std::vector<double> ratios; // panels of accuracy_vs_ticks.png; empty: every nonzero ratio
};

void run_plot(const PlotOptions& o) {
    // The script checks the study, then creates DIR and checks that it can write there: a bad study
    // leaves no directory behind.
    std::vector<std::string> args{o.study, "--out", o.out, "--error-prefix", "quantal"};
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
        std::cerr << "quantal plot: " << e.what() << '\n';
        std::exit(1);
    }
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
