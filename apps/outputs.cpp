#include <sys/stat.h>

#include "apps/commands.hpp"
#include "sim/errors.hpp"

namespace quantal::cli {

void check_output_file(const std::string& output, const std::vector<NamedFile>& inputs, bool force) {
    struct stat out {};
    if (::stat(output.c_str(), &out) != 0) return; // a new file: nothing to lose
    for (const auto& [option, path] : inputs) {
        struct stat in {};
        if (path.empty() || ::stat(path.c_str(), &in) != 0) continue;
        if (in.st_dev == out.st_dev && in.st_ino == out.st_ino) // the same file, whatever the spelling or link
            throw InputError("--trace " + output + " is the same file as " + option + " " + path +
                             ": refusing to overwrite an input");
    }
    if (!force) throw InputError("--trace " + output + " already exists: refusing to overwrite it (use --force to replace it)");
}

} // namespace quantal::cli
