#include "io/contained.hpp"

#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

#include "sim/errors.hpp"

namespace quantal {

namespace {

// The child's report is one header line, then the body:
//   "ok" + result | "input" / "model" / "error" + message | "memory" |
//   "crash hdf5|own SIGNUM" + location | "late hdf5|own" + location (the time limit ran out).

// The report pipe, for the child's signal handlers (they can reach nothing else). Set only in
// the child, between fork() and _exit().
int child_report_fd = -1;

void write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w;
        n -= std::size_t(w);
    }
}

const char* base_name(const char* path) {
    if (!path) return "?";
    const char* slash = std::strrchr(path, '/');
    return slash ? slash + 1 : path;
}

bool starts_with(const char* s, const char* prefix) { return s && std::strncmp(s, prefix, std::strlen(prefix)) == 0; }

// Libraries libhdf5 calls into (memcpy, inflate, ...), and sanitizer interceptors linked into
// the executable: a fault inside them belongs to whoever called them.
bool is_leaf(const Dl_info& info) {
    const char* object = base_name(info.dli_fname);
    for (const char* leaf : {"libc.so", "libz.so", "libsz.so", "libaec.so", "libm.so", "ld-linux", "libgcc_s.so",
                             "linux-vdso", "libpthread.so"})
        if (starts_with(object, leaf)) return true;
    for (const char* runtime : {"__asan", "__interceptor", "__sanitizer", "__ubsan", "__msan"})
        if (starts_with(info.dli_sname, runtime)) return true;
    return false;
}

void* interrupted_pc(void* context) {
    const auto* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
    return reinterpret_cast<void*>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
    return reinterpret_cast<void*>(uc->uc_mcontext.pc);
#else
    (void)uc;
    return nullptr;
#endif
}

// Where the interrupted code was: the first frame outside the leaf libraries decides whether it
// was libhdf5. backtrace() and dladdr() are not on POSIX's async-signal-safe list; they are used
// in a child that is about to end anyway, with backtrace warmed up before the work starts (its
// first call loads libgcc_s), and the parent's hard deadline covers a handler that never returns.
void locate(void* context, bool& in_hdf5, char* where, std::size_t capacity) {
    void* frames[128];
    const int n = backtrace(frames, 128);
    void* pc = interrupted_pc(context);
    int first = 2; // the handler and the signal trampoline
    for (int i = 0; i < n; ++i)
        if (frames[i] == pc) first = i + 1;
    in_hdf5 = false;
    std::snprintf(where, capacity, "an unknown place");
    for (int i = first - 1; i < n; ++i) {
        void* address = i == first - 1 ? pc : frames[i];
        if (!address) continue;
        Dl_info info{};
        if (dladdr(address, &info) == 0) return; // no object: not libhdf5
        if (is_leaf(info)) continue;
        in_hdf5 = starts_with(base_name(info.dli_fname), "libhdf5");
        if (info.dli_sname)
            std::snprintf(where, capacity, "%s in %s", info.dli_sname, base_name(info.dli_fname));
        else
            std::snprintf(where, capacity, "%s+0x%lx", base_name(info.dli_fname),
                          (unsigned long)(static_cast<char*>(address) - static_cast<char*>(info.dli_fbase)));
        return;
    }
}

extern "C" void on_child_signal(int sig, siginfo_t*, void* context) {
    bool in_hdf5 = false;
    char where[400];
    locate(context, in_hdf5, where, sizeof where);
    char report[512];
    const int n = sig == SIGALRM
                      ? std::snprintf(report, sizeof report, "late %s\n%s", in_hdf5 ? "hdf5" : "own", where)
                      : std::snprintf(report, sizeof report, "crash %s %d\n%s", in_hdf5 ? "hdf5" : "own", sig, where);
    write_all(child_report_fd, report, n > 0 ? std::min<std::size_t>(std::size_t(n), sizeof report - 1) : 0);
    _exit(0);
}

[[noreturn]] void run_child(int fd, pid_t parent, double seconds, const std::function<std::string()>& work) {
    child_report_fd = fd;
    // The child ends with its parent (a killed `quantal run` must not leave a reader spinning).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    // Nothing the child (or libhdf5) prints may reach the user: the report says it all.
    if (const int null = open("/dev/null", O_WRONLY); null >= 0) dup2(null, STDOUT_FILENO), dup2(null, STDERR_FILENO);

    // A crash may be a stack overflow: the handler runs on its own stack.
    static std::vector<char> alternate(std::size_t(256) << 10);
    stack_t stack{};
    stack.ss_sp = alternate.data();
    stack.ss_size = alternate.size();
    sigaltstack(&stack, nullptr);
    struct sigaction action {};
    action.sa_sigaction = on_child_signal;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM}) sigaction(sig, &action, nullptr);
    void* warm[4];
    (void)backtrace(warm, 4);

    itimerval limit{};
    limit.it_value.tv_sec = time_t(seconds);
    limit.it_value.tv_usec = suseconds_t((seconds - std::floor(seconds)) * 1e6);
    setitimer(ITIMER_REAL, &limit, nullptr);

    std::string head, body;
    try {
        body = work();
        head = "ok";
    } catch (const InputError& e) {
        head = "input", body = e.what();
    } catch (const ModelError& e) {
        head = "model", body = e.what();
    } catch (const std::bad_alloc&) {
        head = "memory";
    } catch (const std::exception& e) {
        head = "error", body = e.what();
    } catch (...) {
        head = "error", body = "an exception that is not a std::exception";
    }
    const itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr); // done: the report is written in full
    const std::string report = head + "\n" + body;
    write_all(fd, report.data(), report.size());
    _exit(0);
}

std::string seconds_text(double seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", seconds);
    return text;
}

std::string signal_text(int sig) {
    const char* abbrev = sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

} // namespace

double default_read_seconds(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return 10.0; // the read itself says what is wrong with the path
    return 10.0 + double(st.st_size) / 10e6;
}

FileIdentity file_identity(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return {};
    return {std::uint64_t(st.st_dev), std::uint64_t(st.st_ino), std::uint64_t(st.st_size),
            std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

void file_changed(const std::string& path) {
    throw InputError(path + ": changed while it was being read (read it again when nothing writes to it)");
}

std::string run_contained(const std::string& path, double seconds, const std::function<std::string()>& work) {
    if (!(seconds > 0) || !std::isfinite(seconds)) throw std::invalid_argument("run_contained: time limit must be > 0");
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("cannot create a pipe to read " + path);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        throw std::runtime_error("cannot fork a process to read " + path + " (" + std::strerror(errno) + ")");
    }
    if (pid == 0) {
        close(fds[0]);
        run_child(fds[1], parent, seconds, work);
    }
    close(fds[1]);

    // The child's own timer reports first; this deadline only catches a child that cannot.
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::duration<double>(seconds + 5.0);
    std::string report;
    bool timed_out = false;
    char buffer[1 << 16];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        const int ready = poll(&p, 1, int(std::min<long long>(left, 1 << 30)));
        if (ready < 0 && errno != EINTR) break;
        if (ready <= 0) continue;
        const ssize_t got = read(fds[0], buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        report.append(buffer, std::size_t(got));
    }
    close(fds[0]);
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out)
        throw DamagedFile(path + ": reading it did not finish within " + seconds_text(seconds) +
                         " s (the reader gave no report; a damaged HDF5 file?)");

    const auto newline = report.find('\n');
    const std::string head = report.substr(0, newline);
    std::string body = newline == std::string::npos ? std::string() : report.substr(newline + 1);
    if (head == "ok") return body;
    if (head == "input") throw InputError(body);
    if (head == "model") throw ModelError(body);
    if (head == "memory") throw std::bad_alloc();
    if (head == "error") throw std::runtime_error(body);
    if (head == "late hdf5")
        throw DamagedFile(path + ": reading it did not finish within " + seconds_text(seconds) +
                         " s (libhdf5 was still in " + body + "; the file is damaged)");
    if (head == "late own")
        throw DamagedFile(path + ": reading it did not finish within " + seconds_text(seconds) +
                         " s (quantal's own code was running, in " + body + "; is the file that large?)");
    int sig = 0;
    if (std::sscanf(head.c_str(), "crash hdf5 %d", &sig) == 1)
        throw DamagedFile(path + ": libhdf5 crashed reading it (" + signal_text(sig) + " in " + body +
                         "); the file is damaged");
    if (std::sscanf(head.c_str(), "crash own %d", &sig) == 1)
        throw ContainedBug("reading " + path + " crashed with " + signal_text(sig) + " in " + body +
                           ", outside libhdf5");
    if (WIFSIGNALED(status))
        throw ContainedBug("the process reading " + path + " ended by " + signal_text(WTERMSIG(status)) +
                           " without a report (killed from outside, or quantal crashed)");
    throw ContainedBug("the process reading " + path + " ended (status " + std::to_string(WEXITSTATUS(status)) +
                       ") without a report");
}

} // namespace quantal
