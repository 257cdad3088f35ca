// libFuzzer target: the IDX reader (io/idx.*) on arbitrary bytes, plain or gzip. The first byte
// picks images or labels, the next two an offset and a limit; the rest is the file. Only
// InputError may come out (a bad file); anything else, a crash or a sanitizer report is a finding.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/idx.hpp"
#include "sim/errors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    const bool images = data[0] & 1;
    const std::uint64_t offset = data[1] % 8, limit = data[2] % 8;
    // An anonymous in-memory file: no disk traffic, nothing left behind.
    const int fd = memfd_create("idx", MFD_CLOEXEC);
    if (fd < 0) return 0;
    std::size_t done = 3;
    while (done < size) {
        const ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) break;
        done += std::size_t(w);
    }
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    try {
        if (images) {
            const auto read = quantal::read_idx_images(path, offset, limit);
            // Every image the reader hands out must lie inside its pixels.
            for (std::size_t i = 0; i < read.count; ++i) {
                const auto image = read.image(i);
                if (image.data() + image.size() > read.pixels.data() + read.pixels.size()) __builtin_trap();
            }
        } else {
            (void)quantal::read_idx_labels(path, offset, limit);
        }
    } catch (const quantal::InputError&) {
    }
    close(fd);
    return 0;
}
