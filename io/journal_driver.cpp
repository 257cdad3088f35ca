#include "io/journal_driver.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

namespace quantal::h5 {

namespace {

// What libhdf5 keeps per open file: its public part first, as the driver interface requires.
struct JournalFile {
    H5FD_t pub;
    int fd = -1;
    haddr_t eoa = 0, eof = 0;
    dev_t device = 0;
    ino_t inode = 0;
    Journal* journal = nullptr;
};

struct DriverInfo {
    Journal* journal;
};

JournalFile* cast(H5FD_t* f) { return reinterpret_cast<JournalFile*>(f); }
const JournalFile* cast(const H5FD_t* f) { return reinterpret_cast<const JournalFile*>(f); }

bool pread_all(int fd, char* p, std::size_t n, std::uint64_t at) {
    while (n > 0) {
        const ssize_t got = ::pread(fd, p, n, off_t(at));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return false;
        if (got == 0) { // past the end of the file: zeros, as sec2 reads them
            std::memset(p, 0, n);
            return true;
        }
        p += got, n -= std::size_t(got), at += std::uint64_t(got);
    }
    return true;
}

bool pwrite_all(int fd, const char* p, std::size_t n, std::uint64_t at) {
    while (n > 0) {
        const ssize_t put = ::pwrite(fd, p, n, off_t(at));
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) {
            if (put == 0) errno = EIO;
            return false;
        }
        p += put, n -= std::size_t(put), at += std::uint64_t(put);
    }
    return true;
}

} // namespace

// The driver's callbacks, a friend of Journal.
struct JournalDriver {
    static H5FD_t* open(const char* name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
        const auto* info = static_cast<const DriverInfo*>(H5Pget_driver_info(fapl));
        if (!info || !info->journal || maxaddr == 0 || maxaddr == HADDR_UNDEF) return nullptr;
        int o = (flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY;
        if (flags & H5F_ACC_TRUNC) o |= O_TRUNC;
        if (flags & H5F_ACC_CREAT) o |= O_CREAT;
        if (flags & H5F_ACC_EXCL) o |= O_EXCL;
        const int fd = ::open(name, o | O_CLOEXEC, 0666);
        if (fd < 0) {
            info->journal->error_ = errno;
            return nullptr;
        }
        struct stat st {};
        if (fstat(fd, &st) != 0) {
            info->journal->error_ = errno;
            ::close(fd);
            return nullptr;
        }
        auto* file = new (std::nothrow) JournalFile{};
        if (!file) {
            ::close(fd);
            return nullptr;
        }
        file->fd = fd;
        file->eof = haddr_t(st.st_size);
        file->device = st.st_dev;
        file->inode = st.st_ino;
        file->journal = info->journal;
        Journal& j = *info->journal;
        j.fd_ = fd, j.failed_ = false, j.error_ = 0, j.saved_.clear();
        j.committed_eof_ = std::uint64_t(st.st_size); // an opened file is kept as it is until written
        return &file->pub;
    }

    static herr_t close(H5FD_t* f) {
        JournalFile* file = cast(f);
        Journal& j = *file->journal;
        if (j.failed_) j.restore();
        j.fd_ = -1;
        const int rc = ::close(file->fd);
        delete file;
        return rc == 0 ? 0 : -1;
    }

    static int cmp(const H5FD_t* a, const H5FD_t* b) {
        const auto *x = cast(a), *y = cast(b);
        if (x->device != y->device) return x->device < y->device ? -1 : 1;
        if (x->inode != y->inode) return x->inode < y->inode ? -1 : 1;
        return 0;
    }

    static herr_t query(const H5FD_t*, unsigned long* flags) {
        *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
                 H5FD_FEAT_AGGREGATE_SMALLDATA;
        return 0;
    }

    static haddr_t get_eoa(const H5FD_t* f, H5FD_mem_t) { return cast(f)->eoa; }
    static herr_t set_eoa(H5FD_t* f, H5FD_mem_t, haddr_t addr) {
        cast(f)->eoa = addr;
        return 0;
    }
    static haddr_t get_eof(const H5FD_t* f, H5FD_mem_t) { return cast(f)->eof; }
    static herr_t get_handle(H5FD_t* f, hid_t, void** handle) {
        *handle = &cast(f)->fd;
        return 0;
    }

    static herr_t read(H5FD_t* f, H5FD_mem_t, hid_t, haddr_t addr, size_t size, void* buffer) {
        if (addr == HADDR_UNDEF || addr + size < addr) return -1;
        return pread_all(cast(f)->fd, static_cast<char*>(buffer), size, addr) ? 0 : -1;
    }

    static herr_t write(H5FD_t* f, H5FD_mem_t, hid_t, haddr_t addr, size_t size, const void* buffer) {
        JournalFile* file = cast(f);
        Journal& j = *file->journal;
        if (j.failed_) return 0; // dropped: close() puts the committed state back
        if (addr == HADDR_UNDEF || addr + size < addr) return -1;
        if (!j.save(addr, addr + size) || !pwrite_all(file->fd, static_cast<const char*>(buffer), size, addr)) {
            j.fail(errno);
            return -1;
        }
        file->eof = std::max<haddr_t>(file->eof, addr + size);
        return 0;
    }

    static herr_t truncate(H5FD_t* f, hid_t, hbool_t) {
        JournalFile* file = cast(f);
        Journal& j = *file->journal;
        if (j.failed_ || file->eoa == file->eof) return 0;
        // Bytes cut off below the committed end are saved first, like any other change.
        if (!j.save(file->eoa, j.committed_eof_) || ::ftruncate(file->fd, off_t(file->eoa)) != 0) {
            j.fail(errno);
            return -1;
        }
        file->eof = file->eoa;
        return 0;
    }

    static herr_t lock(H5FD_t*, hbool_t) { return 0; }
    static herr_t unlock(H5FD_t*) { return 0; }

    // Registered once: libhdf5's driver registry is process-wide.
    static hid_t id() {
        static const H5FD_class_t driver = [] {
            H5FD_class_t c{};
            c.name = "quantal-journal";
            c.maxaddr = haddr_t(std::numeric_limits<off_t>::max());
            c.fc_degree = H5F_CLOSE_WEAK;
            c.fapl_size = sizeof(DriverInfo);
            c.open = open;
            c.close = close;
            c.cmp = cmp;
            c.query = query;
            c.get_eoa = get_eoa;
            c.set_eoa = set_eoa;
            c.get_eof = get_eof;
            c.get_handle = get_handle;
            c.read = read;
            c.write = write;
            c.truncate = truncate;
            c.lock = lock;
            c.unlock = unlock;
            const H5FD_mem_t map[H5FD_MEM_NTYPES] = H5FD_FLMAP_DICHOTOMY;
            std::copy(std::begin(map), std::end(map), c.fl_map);
            return c;
        }();
        static const hid_t registered = H5FDregister(&driver);
        return registered;
    }
};

void Journal::commit() {
    if (failed_ || fd_ < 0) return;
    struct stat st {};
    if (fstat(fd_, &st) != 0) return fail(errno);
    committed_eof_ = std::uint64_t(st.st_size);
    saved_.clear();
}

bool Journal::save(std::uint64_t from, std::uint64_t to) {
    to = std::min(to, committed_eof_);
    for (std::uint64_t p = from / page; from < to && p * page < to; ++p) {
        if (saved_.count(p)) continue;
        const std::uint64_t begin = p * page, end = std::min(begin + page, committed_eof_);
        std::vector<char> bytes(end - begin);
        if (!pread_all(fd_, bytes.data(), bytes.size(), begin)) return false;
        saved_.emplace(p, std::move(bytes));
    }
    return true;
}

void Journal::fail(int error) {
    if (failed_) return;
    failed_ = true;
    error_ = error ? error : EIO;
}

void Journal::restore() {
    for (const auto& [p, bytes] : saved_)
        if (!pwrite_all(fd_, bytes.data(), bytes.size(), p * page)) return; // nothing more can be done
    if (::ftruncate(fd_, off_t(committed_eof_)) == 0) saved_.clear();
}

Handle Journal::access_plist() {
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    const DriverInfo info{this};
    if (!fapl.valid() || JournalDriver::id() < 0 || H5Pset_driver(fapl, JournalDriver::id(), &info) < 0)
        throw std::runtime_error("cannot set up the trace file driver");
    return fapl;
}

} // namespace quantal::h5
