// Contained reading (io/contained.hpp): the child's result and exceptions travel to the parent; a
// crash is charged to libhdf5 only when it happened inside libhdf5; quantal's own crashes are bugs.
#include <hdf5.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "io/contained.hpp"
#include "sim/errors.hpp"

using namespace quantal;
using Catch::Matchers::Contains;

TEST_CASE("a contained read returns the child's result", "[contained]") {
    CHECK(run_contained("f.h5", 5, [] { return std::string("result\nwith lines\0and a NUL", 27); }) ==
          std::string("result\nwith lines\0and a NUL", 27));
    const std::string big(1 << 20, 'x'); // more than a pipe holds: the parent reads while it waits
    CHECK(run_contained("f.h5", 5, [&] { return big; }) == big);
}

TEST_CASE("a contained read rethrows the child's exception as the same kind", "[contained]") {
    CHECK_THROWS_MATCHES(run_contained("f.h5", 5, []() -> std::string { throw InputError("f.h5: bad 'x'"); }),
                         InputError, Catch::Matchers::Message("f.h5: bad 'x'"));
    CHECK_THROWS_MATCHES(run_contained("f.h5", 5, []() -> std::string { throw ModelError("cycle a -> b"); }),
                         ModelError, Catch::Matchers::Message("cycle a -> b"));
    CHECK_THROWS_AS(run_contained("f.h5", 5, []() -> std::string { throw std::bad_alloc(); }), std::bad_alloc);
    try {
        run_contained("f.h5", 5, []() -> std::string { throw std::logic_error("a bug"); });
        FAIL("no exception");
    } catch (const InputError&) {
        FAIL("an internal error must not become an input error");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "a bug");
    }
}

TEST_CASE("a crash inside libhdf5 is a damaged file", "[contained]") {
    try {
        run_contained("damaged.h5", 5, []() -> std::string {
            const hsize_t dims[1] = {4};
            const hid_t space = H5Screate_simple(1, dims, nullptr);
            // libhdf5 itself writes through the bad pointer (as it does on a damaged heap)
            H5Sget_simple_extent_dims(space, reinterpret_cast<hsize_t*>(std::uintptr_t(8)), nullptr);
            return "survived";
        });
        FAIL("no exception");
    } catch (const InputError& e) {
        CHECK_THAT(e.what(), Contains("damaged.h5: libhdf5 crashed reading it (SIGSEGV in ") && Contains("libhdf5"));
    }
}

namespace {
// Not inlined nor specialised for its argument (noipa: GCC would otherwise see the constant bad
// address and warn), so the crash happens in a frame of the test executable.
[[gnu::noipa]] int dereference(volatile int* p) { return *p; }
} // namespace

TEST_CASE("a crash in quantal's own code is a bug, never a damaged file", "[contained]") {
    try {
        // Not null: UBSan's null check would stop the child first (exit 1) in the sanitizer build.
        run_contained("m.h5", 5, []() -> std::string {
            return std::to_string(dereference(reinterpret_cast<volatile int*>(std::uintptr_t{64})));
        });
        FAIL("no exception");
    } catch (const InputError& e) {
        FAIL("reported as a damaged file: " << e.what());
    } catch (const ContainedBug& e) {
        CHECK_THAT(e.what(), Contains("reading m.h5 crashed with SIGSEGV") && Contains("outside libhdf5"));
    }
    CHECK_THROWS_AS(run_contained("m.h5", 5, []() -> std::string { std::abort(); }), ContainedBug);
    CHECK_THROWS_MATCHES(run_contained("m.h5", 5, []() -> std::string { _exit(3); }), ContainedBug,
                         Catch::Matchers::Message("the process reading m.h5 ended (status 3) without a report"));
}

TEST_CASE("a contained read that overruns its limit is stopped and located", "[contained]") {
    try {
        run_contained("slow.h5", 0.3, []() -> std::string {
            for (volatile unsigned long i = 0;;)
                i = i + 1; // a statement: C++20 deprecates using the value of a volatile assignment
        });
        FAIL("no exception");
    } catch (const InputError& e) {
        CHECK_THAT(e.what(), Contains("slow.h5: reading it did not finish within 0.3 s (quantal's own code was running"));
    }
    CHECK_THROWS_AS(run_contained("f.h5", 0, [] { return std::string(); }), std::invalid_argument);
}

TEST_CASE("a file that changes between the contained parse and the second parse is refused", "[contained]") {
    const std::string path = "/tmp/quantal_test_contained_" + std::to_string(getpid()) + ".h5";
    if (std::FILE* f = std::fopen(path.c_str(), "wb")) std::fputs("first", f), std::fclose(f);
    const pid_t self = getpid();
    auto read = [&] {
        if (getpid() == self) // the second parse, in this process: someone rewrites the file meanwhile
            if (std::FILE* f = std::fopen(path.c_str(), "ab")) std::fputs(" and more", f), std::fclose(f);
        return 7;
    };
    CHECK_THROWS_WITH(read_contained(path, 5, read), Contains(path + ": changed while it was being read"));
    CHECK(read_contained(path, 5, [] { return 8; }) == 8);
    std::remove(path.c_str());
}
