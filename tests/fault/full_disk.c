/* A full disk for one file, without a mount: preloaded (LD_PRELOAD) into a process, it lets the file
 * named by QUANTAL_FULL_DISK_FILE grow to QUANTAL_FULL_DISK_BYTES bytes and no further. A write that
 * would end beyond that writes what fits and then fails with ENOSPC, as a real full disk does;
 * rewriting bytes below the limit still works (their blocks exist). Other files are untouched. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int is_target(int fd, off_t* limit) {
    const char* target = getenv("QUANTAL_FULL_DISK_FILE");
    const char* bytes = getenv("QUANTAL_FULL_DISK_BYTES");
    if (!target || !bytes || fd < 0) return 0;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    if (strcmp(path, target) != 0) return 0;
    *limit = (off_t)strtoll(bytes, NULL, 10);
    return 1;
}

/* How many of `n` bytes at `offset` fit; -1 with errno ENOSPC when none does. */
static ssize_t room(int fd, size_t n, off_t offset) {
    off_t limit = 0;
    if (!is_target(fd, &limit) || n == 0) return (ssize_t)n;
    if (offset >= limit) {
        errno = ENOSPC;
        return -1;
    }
    return (ssize_t)((off_t)n < limit - offset ? (off_t)n : limit - offset);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
    static ssize_t (*real)(int, const void*, size_t, off_t);
    if (!real) real = (ssize_t(*)(int, const void*, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    const ssize_t fits = room(fd, n, offset);
    return fits < 0 ? -1 : real(fd, buf, (size_t)fits, offset);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t offset) { return pwrite(fd, buf, n, offset); }

ssize_t write(int fd, const void* buf, size_t n) {
    static ssize_t (*real)(int, const void*, size_t);
    if (!real) real = (ssize_t(*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
    off_t limit = 0;
    if (!is_target(fd, &limit)) return real(fd, buf, n);
    const ssize_t fits = room(fd, n, lseek(fd, 0, SEEK_CUR));
    return fits < 0 ? -1 : real(fd, buf, (size_t)fits);
}
