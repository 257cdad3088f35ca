#include "apps/plot_scripts.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>

extern char** environ;

namespace quantal::cli {

std::filesystem::path plot_script(const std::string& name) {
    namespace fs = std::filesystem;
    if (const char* dir = std::getenv("QUANTAL_PLOT_DIR")) return fs::path(dir) / name;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path installed = exe.parent_path().parent_path() / "share" / "quantal" / name;
        if (fs::exists(installed, ec)) return installed;
    }
    return fs::path(QUANTAL_SOURCE_DIR) / "traces" / name;
}

int run_plot_script(const std::string& name, const std::vector<std::string>& args) {
    const std::filesystem::path script = plot_script(name);
    if (std::error_code ec; !std::filesystem::exists(script, ec))
        throw std::runtime_error("plot script " + script.string() + " not found");
    const char* python_env = std::getenv("QUANTAL_PYTHON");
    const std::string python = python_env ? python_env : "/usr/bin/python3"; // Debian's, with h5py and matplotlib
    const std::string script_s = script.string();
    std::vector<char*> argv{const_cast<char*>(python.c_str()), const_cast<char*>(script_s.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
        throw std::runtime_error("cannot start " + python);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw std::runtime_error("waiting for " + python + " failed");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

} // namespace quantal::cli
