// uvkit::file and uvkit::fs: files and path operations (uv_fs_*), in the three spellings.
#include <uvkit/co/fs.hpp>
#include <uvkit/fs.hpp>

#include <uvkit/uvkit.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#ifndef _WIN32
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

#include "alloc_counter.hpp"
#include "co_util.hpp"
#include "fixture.hpp"
#include "platform.hpp"
#include "pool_gate.hpp"

using namespace std::chrono_literals;
using uvkit_test::loop_fixture;
using uvkit_test::pool_gate;
namespace stdfs = std::filesystem;

namespace {

// Requests come from the loop's block pool, except under AddressSanitizer (which must see every
// block freed): there each request is one allocation.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool requests_pooled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool requests_pooled = false;
#else
constexpr bool requests_pooled = true;
#endif
#else
constexpr bool requests_pooled = true;
#endif

/// A fresh directory for one test, removed with everything in it.
struct temp_dir {
    stdfs::path path;
    temp_dir() {
        static int n = 0;
        path = stdfs::temp_directory_path() /
               ("uvkit-fs-" + std::to_string(uv_os_getpid()) + "-" + std::to_string(++n));
        stdfs::remove_all(path);
        stdfs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        stdfs::permissions(path, stdfs::perms::owner_all, stdfs::perm_options::add, ec);
        stdfs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void put(const std::string& p, const std::string& text) {
    std::ofstream o(p, std::ios::binary);
    o << text;
}

std::string slurp(const std::string& p) {
    std::ifstream i(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(i), {});
}

[[maybe_unused]] bool running_as_root() {
#ifdef _WIN32
    return false;
#else
    return ::geteuid() == 0;
#endif
}

uvkit::task<uvkit::file> open_task(uvkit::loop& l, std::string p, int flags, int mode = 0644) {
    co_return co_await uvkit::fs::async_open(l, p, flags, mode);
}

uvkit::file open_now(uvkit::loop& l, const std::string& p, int flags, int mode = 0644) {
    return uvkit::run(l, open_task(l, p, flags, mode));
}

}  // namespace

TEST_SUITE("fs") {

TEST_CASE_FIXTURE(loop_fixture,
                  "fs: open, write, read and stat with callbacks; each handler runs exactly once") {
    temp_dir d;
    const std::string p = d / "a.txt";
    uvkit::file f;
    int opened = 0, wrote = 0, read = 0, statted = 0;
    char buf[64];
    std::string got;
    uvkit::file::open(loop, p, UV_FS_O_RDWR | UV_FS_O_CREAT | UV_FS_O_TRUNC, 0644,
                      [&](std::error_code ec, uvkit::file nf) {
                          ++opened;
                          REQUIRE_FALSE(ec);
                          f = std::move(nf);
                          f.write(std::string("hello, file"), 0, [&](std::error_code wec, std::size_t n) {
                              ++wrote;
                              REQUIRE_FALSE(wec);
                              CHECK(n == 11);
                              f.read(std::span<char>(buf), 7, [&](std::error_code rec, std::size_t m) {
                                  ++read;
                                  REQUIRE_FALSE(rec);
                                  got.assign(buf, m);
                                  f.stat([&](std::error_code sec, uvkit::file_stat st) {
                                      ++statted;
                                      REQUIRE_FALSE(sec);
                                      CHECK(st.size == 11);
                                      CHECK(st.is_regular());
                                      CHECK_FALSE(st.is_directory());
                                  });
                              });
                          });
                      });
    run_until([&] { return statted == 1; });
    CHECK(opened == 1);
    CHECK(wrote == 1);
    CHECK(read == 1);
    CHECK(got == "file");
    CHECK(f.is_open());
    CHECK(f.fd() >= 0);
    CHECK(&f.get_loop() == &loop);
    f.close();
    CHECK_FALSE(f.is_open());
    loop.run();
    CHECK(slurp(p) == "hello, file");
}

TEST_CASE_FIXTURE(loop_fixture, "fs: coroutine write then read to end of file; a read past EOF gives 0") {
    temp_dir d;
    const std::string p = d / "b.bin";
    std::string data(200000, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
    auto t = [&]() -> uvkit::task<std::string> {
        uvkit::file f = co_await uvkit::fs::async_open(loop, p, UV_FS_O_RDWR | UV_FS_O_CREAT, 0644);
        std::size_t n = co_await f.async_write(data, 0);
        CHECK(n == data.size());
        co_await f.async_sync();
        co_await f.async_datasync();
        std::string back;
        char buf[65536];
        std::int64_t off = 0;
        for (int i = 0; i < 100; ++i) {
            std::size_t m = co_await f.async_read(std::span<char>(buf), off);
            if (m == 0) break;
            back.append(buf, m);
            off += static_cast<std::int64_t>(m);
        }
        // Far past the end: still 0, not an error.
        CHECK(co_await f.async_read(std::span<char>(buf), 1 << 30) == 0);
        uvkit::file_stat st = co_await f.async_stat();
        CHECK(st.size == data.size());
        co_return back;
    };
    CHECK(uvkit::run(loop, t()) == data);
}

TEST_CASE_FIXTURE(loop_fixture, "fs: offset -1 reads and writes at the current position") {
    temp_dir d;
    const std::string p = d / "pos.txt";
    auto t = [&]() -> uvkit::task<std::string> {
        uvkit::file f = co_await uvkit::fs::async_open(loop, p, UV_FS_O_RDWR | UV_FS_O_CREAT, 0644);
        co_await f.async_write("abc", -1);
        co_await f.async_write("def", -1);
        co_return slurp(p);
    };
    CHECK(uvkit::run(loop, t()) == "abcdef");
}

TEST_CASE_FIXTURE(loop_fixture, "fs: a missing file: ec form, throwing co_await and the callback") {
    temp_dir d;
    const std::string p = d / "nope";
    std::error_code ec;
    auto t = [&]() -> uvkit::task<void> {
        uvkit::file f = co_await uvkit::fs::async_open(loop, p, UV_FS_O_RDONLY, 0, ec);
        CHECK_FALSE(f.is_open());
        bool threw = false;
        try {
            co_await uvkit::fs::async_stat(loop, p);
        } catch (const std::system_error& e) {
            threw = true;
            CHECK(e.code() == std::errc::no_such_file_or_directory);
        }
        CHECK(threw);
    };
    uvkit::run(loop, t());
    CHECK(ec == std::errc::no_such_file_or_directory);
    int calls = 0;
    std::error_code cb_ec;
    uvkit::fs::unlink(loop, p, [&](std::error_code e) {
        ++calls;
        cb_ec = e;
    });
    loop.run();
    CHECK(calls == 1);
    CHECK(cb_ec == std::errc::no_such_file_or_directory);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "fs: a path with an embedded NUL is EINVAL at the call and is never truncated") {
    temp_dir d;
    const std::string good = d / "x";
    put(good, "keep");
    const std::string bad = good + std::string("\0.tmp", 5);  // would name `good` if cut at the NUL
    int calls = 0;
    std::error_code ec;
    uvkit::fs_request r = uvkit::fs::unlink(
        loop, bad, [&](std::error_code) { ++calls; }, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK_FALSE(r.pending());
    CHECK_THROWS_AS(uvkit::fs::unlink(loop, bad, [&](std::error_code) { ++calls; }), std::system_error);
    CHECK_THROWS_AS(uvkit::fs::rename(loop, good, bad, [&](std::error_code) { ++calls; }), std::system_error);
    CHECK_THROWS_AS(uvkit::file::open(loop, bad, UV_FS_O_RDWR | UV_FS_O_TRUNC, 0,
                                      [&](std::error_code, uvkit::file) { ++calls; }),
                    std::system_error);
    std::error_code co_ec;
    auto t = [&]() -> uvkit::task<void> {
        co_await uvkit::fs::async_unlink(loop, bad, co_ec);
        bool threw = false;
        try {
            co_await uvkit::fs::async_copyfile(loop, good, bad, 0);
        } catch (const std::system_error& e) {
            threw = e.code() == std::errc::invalid_argument;
        }
        CHECK(threw);
    };
    uvkit::run(loop, t());
    loop.run();
    CHECK(co_ec == std::errc::invalid_argument);
    CHECK(calls == 0);
    CHECK(slurp(good) == "keep");
    CHECK(std::distance(stdfs::directory_iterator(d.path), stdfs::directory_iterator()) == 1);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "fs: a directory where a file is expected" UVKIT_SKIP_UNDER_WINE(
                      "wine opens a directory for writing, and fails rmdir/scandir of a file with "
                      "other codes than ENOTDIR (unverified on real Windows)")) {
    temp_dir d;
    const std::string dir = d / "sub";
    stdfs::create_directory(dir);
    auto t = [&]() -> uvkit::task<void> {
        std::error_code ec;
        uvkit::file f = co_await uvkit::fs::async_open(loop, dir, UV_FS_O_WRONLY, 0, ec);
        CHECK(ec == std::errc::is_a_directory);
        CHECK_FALSE(f);
        ec.clear();
        co_await uvkit::fs::async_unlink(loop, dir, ec);
        CHECK(ec);  // EISDIR on Linux, EPERM on BSDs and macOS
        ec.clear();
        const std::string file_path = d / "plain";
        put(file_path, "x");
        co_await uvkit::fs::async_rmdir(loop, file_path, ec);
        CHECK(ec == std::errc::not_a_directory);
        ec.clear();
        co_await uvkit::fs::async_scandir(loop, file_path, ec);
        CHECK(ec == std::errc::not_a_directory);
        ec.clear();
        co_await uvkit::fs::async_copyfile(loop, dir, d / "copy", 0, ec);
        CHECK(ec);
    };
    uvkit::run(loop, t());
}

// The checks of "permission denied", run by a non-root uid: this process when it is not root,
// else a child of this test binary spawned as nobody (see below).
uvkit::task<void> permission_checks(uvkit::loop& loop, std::string p) {
    std::error_code ec;
    uvkit::file f = co_await uvkit::fs::async_open(loop, p, UV_FS_O_RDONLY, 0, ec);
    CHECK(ec == std::errc::permission_denied);
    CHECK_FALSE(f);
    ec.clear();
#ifndef _WIN32
    co_await uvkit::fs::async_access(loop, p, R_OK, ec);
    CHECK(ec == std::errc::permission_denied);
#endif
    ec.clear();
    co_await uvkit::fs::async_open(loop, p, UV_FS_O_WRONLY | UV_FS_O_TRUNC, 0, ec);
    CHECK(ec == std::errc::permission_denied);
}

// Runs only in the child: UVKIT_FS_EACCES_PATH names the file.
TEST_CASE_FIXTURE(loop_fixture, "fs child: permission denied as nobody" * doctest::skip(true)) {
    const char* p = std::getenv("UVKIT_FS_EACCES_PATH");
    REQUIRE(p);
    uvkit::run(loop, permission_checks(loop, p));
}

TEST_CASE_FIXTURE(loop_fixture, "fs: permission denied" UVKIT_SKIP_ON_WINDOWS("POSIX permission bits")) {
#ifndef _WIN32
    temp_dir d;
    stdfs::permissions(d.path,
                       stdfs::perms::owner_all | stdfs::perms::group_exec | stdfs::perms::others_exec);
    const std::string p = d / "secret";
    put(p, "s");
    stdfs::permissions(p, stdfs::perms::none);
    if (!running_as_root()) {
        uvkit::run(loop, permission_checks(loop, p));
        return;
    }
    // Root passes permission bits: run the checks in this binary again, as nobody (65534).
    char exe[4096];
    std::size_t len = sizeof exe;
    REQUIRE(uv_exepath(exe, &len) == 0);
    uvkit::process_options o;
    o.file = std::string(exe, len);
    o.args = {o.file, "--no-skip", "--test-case=fs child: permission denied as nobody"};
    std::vector<std::string> env{"UVKIT_FS_EACCES_PATH=" + p};
    if (const char* path = std::getenv("PATH")) env.push_back(std::string("PATH=") + path);
    o.env = env;
    o.uid = 65534;
    o.gid = 65534;
    o.stdio = {uvkit::process_stdio::ignore(), uvkit::process_stdio::inherit(1),
               uvkit::process_stdio::inherit(2)};
    std::optional<std::int64_t> status;
    int term = 0;
    std::error_code ec;
    auto child = uvkit::process::spawn(
        loop, o,
        [&](std::int64_t st, int sig) {
            status = st;
            term = sig;
        },
        ec);
    if (ec) {
        MESSAGE("skipped: cannot run a child as nobody (", ec.message(), ")");
        return;
    }
    run_until([&] { return status.has_value(); });
    CHECK(term == 0);
    CHECK(*status == 0);  // the child's doctest run passed its checks
    child.close();
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "fs: operations on an empty or closed file fail with EINVAL, never crash") {
    uvkit::file f;
    char buf[4];
    std::error_code ec;
    int calls = 0;
    f.read(
        std::span<char>(buf), 0, [&](std::error_code, std::size_t) { ++calls; }, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK_THROWS_AS(f.write("x", 0, [&](std::error_code, std::size_t) { ++calls; }), std::system_error);
    CHECK_THROWS_AS(f.close([&](std::error_code) { ++calls; }), std::system_error);
    CHECK_THROWS_AS(f.get_loop(), std::system_error);
    std::error_code co_ec;
    auto t = [&]() -> uvkit::task<void> {
        CHECK(co_await f.async_read(std::span<char>(buf), 0, co_ec) == 0);
        CHECK_THROWS_AS(co_await f.async_stat(), std::system_error);
    };
    uvkit::run(loop, t());
    CHECK(co_ec == std::errc::invalid_argument);
    CHECK(calls == 0);
    CHECK_THROWS_AS(uvkit::file::adopt(loop, -1), std::system_error);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "fs: a file deleted while open stays readable and writable" UVKIT_SKIP_ON_WINDOWS(
                      "Windows refuses to delete an open file")) {
#ifndef _WIN32
    temp_dir d;
    const std::string p = d / "gone";
    auto t = [&]() -> uvkit::task<std::string> {
        uvkit::file f = co_await uvkit::fs::async_open(loop, p, UV_FS_O_RDWR | UV_FS_O_CREAT, 0644);
        co_await uvkit::fs::async_unlink(loop, p);
        std::error_code ec;
        co_await uvkit::fs::async_stat(loop, p, ec);
        CHECK(ec == std::errc::no_such_file_or_directory);
        co_await f.async_write("still here", 0);
        uvkit::file_stat st = co_await f.async_stat();
        CHECK(st.nlink == 0);
        char buf[32];
        std::size_t n = co_await f.async_read(std::span<char>(buf), 0);
        co_return std::string(buf, n);
    };
    CHECK(uvkit::run(loop, t()) == "still here");
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "fs: a queued read is cancelled: errc::canceled, from the loop, exactly once") {
    temp_dir d;
    const std::string p = d / "c";
    put(p, "data");
    uvkit::file f = open_now(loop, p, UV_FS_O_RDONLY);
    char buf[8];
    int calls = 0;
    std::error_code got;
    {
        pool_gate gate{loop};
        uvkit::fs_request r = f.read(std::span<char>(buf), 0, [&](std::error_code ec, std::size_t n) {
            ++calls;
            got = ec;
            CHECK(n == 0);
        });
        CHECK(r.pending());
        CHECK(r.raw_req() != nullptr);
        CHECK(r.cancel());
        CHECK(calls == 0);  // never from inside cancel()
        CHECK(r.cancel());  // idempotent
        gate.release();
        run_until([&] { return calls == 1 && gate.all_finished(); });
        CHECK_FALSE(r.pending());
        CHECK_FALSE(r.cancel());
    }
    CHECK(got == uvkit::errc::canceled);
    // The file is still usable after a cancelled read.
    int again = 0;
    f.read(std::span<char>(buf), 0, [&](std::error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        CHECK(n == 4);
        ++again;
    });
    run_until([&] { return again == 1; });
}

// A file keeps its last finished read/write request for the next one: what a
// request was (cancelled, abandoned by its task) must not leak into the next.
TEST_CASE_FIXTURE(loop_fixture,
                  "fs: awaited reads reuse one request per file: when_any cancels a queued read (twice), "
                  "abandoned, in parallel, after the loop") {
    temp_dir d;
    const std::string p = d / "reuse";
    put(p, "0123456789ab");
    uvkit::file f = open_now(loop, p, UV_FS_O_RDONLY);
    static char buf[4], b1[4], b2[4], b3[4];  // outside the frames
    // Twice: a read queued behind a busy pool is cancelled by when_any, not left running:
    // when_any waited for it, and its co_await gave errc::canceled (the second read runs on
    // the first's request, which was cancelled).
    for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        pool_gate gate{loop};
        std::error_code read_ec;
        auto reader = [&]() -> uvkit::task<int> {
            co_await f.async_read(std::span<char>(buf), 0, read_ec);
            co_return 1;
        };
        auto other = [&]() -> uvkit::task<int> {
            co_await uvkit::sleep(loop, 1ms);
            co_return 2;
        };
        auto t = [&]() -> uvkit::task<std::size_t> {
            auto r = co_await uvkit::when_any(reader(), other());
            co_return r.index();
        };
        CHECK(uvkit::run(loop, t()) == 1);
        CHECK(read_ec == uvkit::errc::canceled);
        gate.release();
        run_until([&] { return gate.all_finished(); });
    }
    // A read whose task was destroyed while it waited: its completion went nowhere.
    int resumed = 0;
    auto dropped = [&]() -> uvkit::task<void> {
        co_await f.async_read(std::span<char>(buf), 0);
        ++resumed;
    };
    {
        pool_gate gate{loop};
        auto t = dropped();
        uvkit_co_test::start(t);
    }
    run_until([&] { return !loop.alive(); });
    CHECK(resumed == 0);
    // The next read on the same file is delivered, and three at once each get their bytes.
    auto t = [&]() -> uvkit::task<std::size_t> {
        std::size_t n = co_await f.async_read(std::span<char>(buf), 8);
        auto [x, y, z] = co_await uvkit::when_all(f.async_read(std::span<char>(b1), 0),
                                                  f.async_read(std::span<char>(b2), 4),
                                                  f.async_read(std::span<char>(b3), 8));
        co_return n + x + y + z;
    };
    CHECK(uvkit::run(loop, t()) == 16);
    CHECK(std::string_view(buf, 4) == "89ab");
    CHECK(std::string_view(b1, 4) == "0123");
    CHECK(std::string_view(b2, 4) == "4567");
    CHECK(std::string_view(b3, 4) == "89ab");
    // A file that read on a loop outlives it: what it kept is freed with it, not into the
    // loop's memory (valgrind and ASan check), and it reads no more.
    std::optional<uvkit::file> kept;
    {
        uvkit::loop l2;
        kept = open_now(l2, p, UV_FS_O_RDONLY);
        auto r = [&]() -> uvkit::task<std::size_t> {
            co_return co_await kept->async_read(std::span<char>(b1), 2);
        };
        CHECK(uvkit::run(l2, r()) == 4);
        CHECK(std::string_view(b1, 4) == "2345");
    }
    std::error_code ec;
    CHECK(kept->read(
                  std::span<char>(b1), 0, [](std::error_code, std::size_t) {}, ec)
              .pending() == false);
    CHECK(ec == std::errc::invalid_argument);
    kept.reset();
}

TEST_CASE_FIXTURE(loop_fixture,
                  "fs: destroying a file with writes in flight loses no data and does not block") {
    temp_dir d;
    const std::string p = d / "w";
    uvkit::file f = open_now(loop, p, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_TRUNC);
    int done = 0;
    std::string expect;
    {
        pool_gate gate{loop};  // every pool thread busy: the writes wait in the queue
        for (int i = 0; i < 20; ++i) {
            std::string chunk = "chunk" + std::to_string(i) + ";";
            f.write(std::move(chunk), static_cast<std::int64_t>(expect.size()),
                    [&](std::error_code ec, std::size_t) {
                        CHECK_FALSE(ec);
                        ++done;
                    });
            expect += "chunk" + std::to_string(i) + ";";
        }
        f = uvkit::file{};  // returns at once although the pool is blocked
        CHECK(done == 0);
        CHECK_FALSE(f.is_open());
        gate.release();
        run_until([&] { return done == 20 && gate.all_finished(); });
    }
    loop.run();  // the deferred close
    CHECK(slurp(p) == expect);
}

TEST_CASE_FIXTURE(loop_fixture, "fs: close(handler) waits for the operations in flight, then reports") {
    temp_dir d;
    const std::string p = d / "cl";
    uvkit::file f = open_now(loop, p, UV_FS_O_WRONLY | UV_FS_O_CREAT);
    std::vector<std::string> order;
    f.write("abc", 0, [&](std::error_code ec, std::size_t) {
        CHECK_FALSE(ec);
        order.push_back("write");
    });
    f.close([&](std::error_code ec) {
        CHECK_FALSE(ec);
        order.push_back("close");
    });
    CHECK_FALSE(f);
    loop.run();
    CHECK(order == std::vector<std::string>{"write", "close"});
    CHECK(slurp(p) == "abc");
}

TEST_CASE("fs: a file that outlives its loop is empty and closes on its own") {
    temp_dir d;
    const std::string p = d / "o";
    uvkit::file f;
    int done = 0;
    {
        uvkit::loop l;
        f = open_now(l, p, UV_FS_O_RDWR | UV_FS_O_CREAT);
        f.write("x", 0, [&](std::error_code ec, std::size_t) {
            CHECK_FALSE(ec);
            ++done;
        });
        l.run();
        f.write("y", 1, [&](std::error_code ec, std::size_t) {
            // ~loop cancels it if still queued, or waits for it: exactly once either way
            CHECK((!ec || ec == uvkit::errc::canceled));
            ++done;
        });
    }
    CHECK(done == 2);
    CHECK_FALSE(f.is_open());
    char buf[2];
    std::error_code ec;
    f.read(
        std::span<char>(buf), 0, [](std::error_code, std::size_t) {}, ec);
    CHECK(ec == std::errc::invalid_argument);
    f.close();  // synchronous now: no loop
    CHECK(slurp(p).substr(0, 1) == "x");
}

TEST_CASE("fs: destroying the loop cancels queued requests and waits for running ones") {
    temp_dir d;
    const std::string p = d / "q";
    put(p, "q");
    int canceled = 0, ok = 0;
    char buf[4];
    {
        uvkit::loop l;
        uvkit::file f = open_now(l, p, UV_FS_O_RDONLY);
        pool_gate gate{l};
        for (int i = 0; i < 3; ++i)
            f.read(std::span<char>(buf), 0, [&](std::error_code ec, std::size_t) {
                if (ec == uvkit::errc::canceled)
                    ++canceled;
                else
                    ++ok;
            });
        uvkit::fs::stat(l, p, [&](std::error_code ec, uvkit::file_stat) {
            if (ec == uvkit::errc::canceled)
                ++canceled;
            else
                ++ok;
        });
        gate.release();
    }
    CHECK(canceled + ok == 4);
}

TEST_CASE("fs: destroying the loop cancels an awaited read still queued and waits for one running") {
    // An awaited read is on its file's list, not in the loop's registry:
    // ~loop finds it there. The file and the task outlive the loop, so that
    // nothing else keeps ~loop waiting.
    temp_dir d;
    const std::string p = d / "r";
    put(p, "abcd");
    static char buf[8];  // outside the frame
    int resumed = 0;
    std::size_t got = 0;
    std::error_code read_ec;
    auto reader = [&](uvkit::file& f) -> uvkit::task<void> {
        got = co_await f.async_read(std::span<char>(buf), 0, read_ec);
        ++resumed;
    };
    std::optional<uvkit::file> f;
    std::optional<uvkit::task<void>> t;
    // Round 0: the read may still be queued or already run when ~loop comes:
    // either way it completes, once. Round 1: another loop's work keeps every
    // pool thread busy through ~loop, so the read stays queued: ~loop must
    // cancel it (waiting would block until the gate gives up, and the read
    // would then complete with its bytes).
    for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        resumed = 0;
        got = 0;
        read_ec = {};
        uvkit::loop other;
        std::optional<pool_gate> gate;
        {
            uvkit::loop l;
            f = open_now(l, p, UV_FS_O_RDONLY);  // (an open goes through the pool too)
            if (round == 1) gate.emplace(other);
            t.emplace(reader(*f));
            uvkit_co_test::start(*t);
            CHECK(resumed == 0);
        }
        CHECK(resumed == 1);
        if (round == 1)
            CHECK(read_ec == uvkit::errc::canceled);
        else
            CHECK((read_ec == uvkit::errc::canceled || (!read_ec && got == 4)));
        CHECK_FALSE(f->is_open());  // its loop is gone
        t.reset();
        f.reset();
        if (gate) {
            gate->release();
            for (int i = 0; i < 1000 && !gate->all_finished(); ++i) other.run(uvkit::run_mode::once);
            CHECK(gate->all_finished());
        }
    }
}

TEST_CASE("fs: destroying the loop cancels a spawned task's queued read; the task ends") {
    temp_dir d;
    const std::string p = d / "s";
    put(p, "abcd");
    static char buf[8];
    int reads = 0;
    std::error_code last;
    // A reader that would read for ever: only a cancellation ends it.
    auto reader = [&](uvkit::file& file) -> uvkit::task<void> {
        for (int i = 0; i < 1000000; ++i) {
            std::error_code ec;
            co_await file.async_read(std::span<char>(buf), 0, ec);
            ++reads;
            last = ec;
            if (ec) co_return;
        }
    };
    std::optional<uvkit::file> f;  // outlives the loop: its close needs no pool thread
    uvkit::loop other;
    std::optional<pool_gate> gate;
    {
        uvkit::loop l;
        f = open_now(l, p, UV_FS_O_RDONLY);  // (an open goes through the pool too)
        gate.emplace(other);                 // every pool thread busy until the loop is gone
        uvkit::spawn(l, reader(*f)).detach();
        l.run(uvkit::run_mode::nowait);  // the task runs up to its first read
        CHECK(reads == 0);
    }
    CHECK(reads == 1);
    CHECK(last == uvkit::errc::canceled);
    f.reset();
    gate->release();
    for (int i = 0; i < 1000 && !gate->all_finished(); ++i) other.run(uvkit::run_mode::once);
    CHECK(gate->all_finished());
}

TEST_CASE_FIXTURE(loop_fixture, "fs: a task destroyed while its read waits: nothing touches the frame") {
    temp_dir d;
    const std::string p = d / "t";
    put(p, "abcd");
    uvkit::file f = open_now(loop, p, UV_FS_O_RDONLY);
    static char buf[8];  // outside the frame (see uvkit/co/fs.hpp)
    bool destroyed = false;
    int resumed = 0;
    auto reader = [&]() -> uvkit::task<void> {
        uvkit_co_test::destroy_flag flag{&destroyed};
        co_await f.async_read(std::span<char>(buf), 0);
        ++resumed;
    };
    {
        pool_gate gate{loop};
        auto t = reader();
        uvkit_co_test::start(t);
        CHECK_FALSE(destroyed);
    }  // the task goes first, then the gate opens
    CHECK(destroyed);
    run_until([&] { return !loop.alive(); });
    CHECK(resumed == 0);
    // And once more with the read already running: it completes into `buf` and is dropped.
    {
        auto t = reader();
        uvkit_co_test::start(t);
    }
    loop.run();
    CHECK(resumed == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "fs: an owned co_await write survives its task being destroyed mid-write") {
    temp_dir d;
    const std::string p = d / "owned";
    uvkit::file f = open_now(loop, p, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_TRUNC);
    const std::string text(100000, 'k');
    int resumed = 0;
    auto writer = [&]() -> uvkit::task<void> {
        std::string local = text;  // in the frame; moved into the request
        co_await f.async_write(std::move(local), 0);
        ++resumed;
    };
    {
        // The write is cancelled if it is still queued when the task dies: let it start first.
        auto t = writer();
        uvkit_co_test::start(t);
        // A second write queued behind it keeps the file busy; the task is destroyed now.
    }
    loop.run();
    CHECK(resumed == 0);
    // Either the write had started (all bytes written) or it was cancelled (none): never partial garbage.
    const std::string on_disk = slurp(p);
    CHECK((on_disk.empty() || on_disk == text));
    std::error_code ec;
    auto t2 = [&]() -> uvkit::task<std::size_t> {
        co_return co_await f.async_write(std::string("tail"), -1, ec);
    };
    CHECK(uvkit::run(loop, t2()) == 4);
    CHECK_FALSE(ec);
}

TEST_CASE_FIXTURE(loop_fixture, "fs: allocation failure when starting: UV_ENOMEM, the handler never runs") {
    temp_dir d;
    const std::string p = d / "m";
    put(p, "m");
    uvkit::file f = open_now(loop, p, UV_FS_O_RDONLY);
    char buf[4];
    int failed = 0;
    for (std::size_t allow = 0; allow < 4; ++allow) {
        int calls = 0;
        std::error_code open_ec, read_ec;
        {
            uvkit_test::alloc_failure fail{allow};
            uvkit::file::open(
                loop, p, UV_FS_O_RDONLY, 0, [&](std::error_code, uvkit::file) { ++calls; }, open_ec);
            f.read(
                std::span<char>(buf), 0, [&](std::error_code, std::size_t) { ++calls; }, read_ec);
        }
        loop.run();
        const int started = (open_ec ? 0 : 1) + (read_ec ? 0 : 1);
        CHECK(calls == started);
        for (const std::error_code& e : {open_ec, read_ec})
            if (e) {
                CHECK(e == std::errc::not_enough_memory);
                ++failed;
            }
    }
    // The file and the loop are still fine afterwards.
    CHECK(f.is_open());
    CHECK(failed >= 1);  // at least the open with no allocation allowed (its file's state block)
}

TEST_CASE_FIXTURE(loop_fixture,
                  "fs: allocation failure for an awaited read's first request: UV_ENOMEM, then reads work") {
    temp_dir d;
    const std::string p = d / "am";
    put(p, "am");
    uvkit::file f = open_now(loop, p, UV_FS_O_RDONLY);  // the loop's registry exists from here
    static char buf[4];
    std::error_code ec;
    std::size_t n = 99;
    bool done = false;
    auto reader = [&]() -> uvkit::task<void> {
        n = co_await f.async_read(std::span<char>(buf), 0, ec);
        done = true;
    };
    auto t = reader();  // the frame is made before the window
    {
        uvkit_test::alloc_failure oom;
        uvkit_co_test::start(t);  // the file has no request yet, and none can be made
    }
    CHECK(done);
    CHECK(ec == std::errc::not_enough_memory);
    CHECK(n == 0);
    auto again = [&]() -> uvkit::task<std::size_t> {
        co_return co_await f.async_read(std::span<char>(buf), 0);
    };
    CHECK(uvkit::run(loop, again()) == 2);
    CHECK(std::string_view(buf, 2) == "am");
}

TEST_CASE_FIXTURE(loop_fixture, "fs: destroying an fs_request does not cancel it") {
    temp_dir d;
    const std::string p = d / "r";
    int calls = 0;
    {
        uvkit::fs_request r = uvkit::fs::mkdir(loop, p, 0755, [&](std::error_code ec) {
            CHECK_FALSE(ec);
            ++calls;
        });
        uvkit::fs_request moved = std::move(r);
        CHECK_FALSE(r.pending());
        CHECK(moved.pending());
    }
    loop.run();
    CHECK(calls == 1);
    CHECK(stdfs::is_directory(p));
}

TEST_CASE_FIXTURE(loop_fixture, "fs: a handler that throws stops the loop; run() rethrows") {
    temp_dir d;
    uvkit::fs::stat(loop, d.path.string(), [](std::error_code, uvkit::file_stat) {
        throw std::runtime_error("from the fs handler");
    });
    CHECK(run_until_throw() == "from the fs handler");
}

TEST_CASE_FIXTURE(loop_fixture, "fs: a warm read loop allocates nothing per read (callbacks and co_await)") {
    temp_dir d;
    const std::string p = d / "big";
    put(p, std::string(64 * 1024, 'z'));
    uvkit::file f = open_now(loop, p, UV_FS_O_RDONLY);
    static char buf[4096];
    // Callbacks: a chain of reads, each started from the previous one's handler.
    int left = 40;
    std::size_t window_allocs = 0;
    std::optional<uvkit_test::alloc_window> w;
    std::function<void()> next;  // allocated once, before the window
    next = [&] {
        f.read(std::span<char>(buf), 0, [&](std::error_code ec, std::size_t) {
            REQUIRE_FALSE(ec);
            if (--left == 30) w.emplace();  // warm from here on
            if (left == 0) {
                window_allocs = w->count();
                return;
            }
            next();
        });
    };
    next();
    run_until([&] { return left == 0; });
    // Under ASan, exactly the request's block per read, nothing else.
    CHECK(window_allocs == (requests_pooled ? 0u : 30u));
    // co_await
    auto t = [&]() -> uvkit::task<std::size_t> {
        for (int i = 0; i < 10; ++i) co_await f.async_read(std::span<char>(buf), 0);
        uvkit_test::alloc_window cw;
        for (int i = 0; i < 30; ++i) co_await f.async_read(std::span<char>(buf), i * 100);
        co_return cw.count();
    };
    CHECK(uvkit::run(loop, t()) == (requests_pooled ? 0u : 30u));
}

TEST_CASE_FIXTURE(loop_fixture, "fs: truncate, chmod, utime on a file and stat's chrono times") {
    temp_dir d;
    const std::string p = d / "meta";
    put(p, "0123456789");
    auto t = [&]() -> uvkit::task<void> {
        uvkit::file f = co_await uvkit::fs::async_open(loop, p, UV_FS_O_RDWR, 0);
        co_await f.async_truncate(4);
        CHECK((co_await f.async_stat()).size == 4);
        const auto when = std::chrono::system_clock::time_point(std::chrono::seconds(1600000000));
        co_await f.async_utime(when, when);
        uvkit::file_stat st = co_await f.async_stat();
        CHECK(std::chrono::duration_cast<std::chrono::seconds>(st.mtime.time_since_epoch()).count() ==
              1600000000);
#ifndef _WIN32
        co_await f.async_chmod(0600);
        CHECK((co_await f.async_stat()).permissions() == 0600);
#endif
        const auto later = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
        co_await uvkit::fs::async_utime(loop, p, later, later);
        st = co_await uvkit::fs::async_stat(loop, p);
        CHECK(std::chrono::duration_cast<std::chrono::seconds>(st.mtime.time_since_epoch()).count() ==
              1700000000);
    };
    uvkit::run(loop, t());
    CHECK(slurp(p) == "0123");
}

TEST_CASE_FIXTURE(loop_fixture,
                  "fs: path operations: mkdir, scandir with types, rename, copyfile, rmdir, unlink") {
    temp_dir d;
    auto t = [&]() -> uvkit::task<void> {
        co_await uvkit::fs::async_mkdir(loop, d / "dir", 0755);
        std::error_code ec;
        co_await uvkit::fs::async_mkdir(loop, d / "dir", 0755, ec);
        CHECK(ec == std::errc::file_exists);
        put(d / "one", "1");
        co_await uvkit::fs::async_rename(loop, d / "one", d / "two");
        co_await uvkit::fs::async_copyfile(loop, d / "two", d / "three", 0);
        ec.clear();
        co_await uvkit::fs::async_copyfile(loop, d / "two", d / "three", UV_FS_COPYFILE_EXCL, ec);
        CHECK(ec == std::errc::file_exists);
        std::vector<uvkit::dir_entry> es = co_await uvkit::fs::async_scandir(loop, d.path.string());
        std::sort(es.begin(), es.end(), [](auto& a, auto& b) { return a.name < b.name; });
        REQUIRE(es.size() == 3);
        CHECK(es[0] == uvkit::dir_entry{"dir", uvkit::entry_type::directory});
        CHECK(es[1].name == "three");
        CHECK(es[2].name == "two");
        // scandir may say unknown on some file systems, never something wrong
        CHECK((es[1].type == uvkit::entry_type::file || es[1].type == uvkit::entry_type::unknown));
        co_await uvkit::fs::async_rmdir(loop, d / "dir");
        co_await uvkit::fs::async_unlink(loop, d / "two");
        co_await uvkit::fs::async_access(loop, d / "three", 0);
        ec.clear();
        co_await uvkit::fs::async_access(loop, d / "two", 0, ec);
        CHECK(ec == std::errc::no_such_file_or_directory);
        std::string real = co_await uvkit::fs::async_realpath(loop, d / "three");
        CHECK(stdfs::equivalent(real, d / "three"));
        uvkit::fs_stats fsst = co_await uvkit::fs::async_statfs(loop, d.path.string());
        CHECK(fsst.bsize > 0);
        CHECK(fsst.blocks > 0);
    };
    uvkit::run(loop, t());
    CHECK(slurp(d / "three") == "1");
    CHECK_FALSE(stdfs::exists(d / "dir"));
}

TEST_CASE_FIXTURE(loop_fixture, "fs: mkdtemp and mkstemp make unique names; the temp file is open") {
    temp_dir d;
    auto t = [&]() -> uvkit::task<void> {
        std::string a = co_await uvkit::fs::async_mkdtemp(loop, d / "tmpXXXXXX");
        std::string b = co_await uvkit::fs::async_mkdtemp(loop, d / "tmpXXXXXX");
        CHECK(a != b);
        CHECK(stdfs::is_directory(a));
        CHECK(a.find("XXXXXX") == std::string::npos);
        uvkit::temp_file tf = co_await uvkit::fs::async_mkstemp(loop, d / "fileXXXXXX");
        CHECK(tf.file.is_open());
        co_await tf.file.async_write("tmp", 0);
        CHECK(slurp(tf.path) == "tmp");
        std::error_code ec;
        co_await uvkit::fs::async_mkdtemp(loop, d / "no-template", ec);
        CHECK(ec == std::errc::invalid_argument);
    };
    uvkit::run(loop, t());
}

TEST_CASE_FIXTURE(loop_fixture,
                  "fs: link, symlink, readlink, lstat" UVKIT_SKIP_ON_WINDOWS("symlinks need privileges")) {
#ifndef _WIN32
    temp_dir d;
    put(d / "target", "t");
    auto t = [&]() -> uvkit::task<void> {
        co_await uvkit::fs::async_link(loop, d / "target", d / "hard");
        CHECK((co_await uvkit::fs::async_stat(loop, d / "target")).nlink == 2);
        co_await uvkit::fs::async_symlink(loop, "target", d / "soft", 0);
        CHECK(co_await uvkit::fs::async_readlink(loop, d / "soft") == "target");
        CHECK((co_await uvkit::fs::async_lstat(loop, d / "soft")).is_symlink());
        CHECK((co_await uvkit::fs::async_stat(loop, d / "soft")).is_regular());
        std::error_code ec;
        co_await uvkit::fs::async_readlink(loop, d / "target", ec);
        CHECK(ec == std::errc::invalid_argument);
        co_await uvkit::fs::async_chmod(loop, d / "target", 0640);
        CHECK((co_await uvkit::fs::async_stat(loop, d / "target")).permissions() == 0640);
        uvkit::file_stat st = co_await uvkit::fs::async_stat(loop, d / "target");
        co_await uvkit::fs::async_chown(loop, d / "target", static_cast<uv_uid_t>(st.uid),
                                        static_cast<uv_gid_t>(st.gid));
        co_await uvkit::fs::async_lchown(loop, d / "soft", static_cast<uv_uid_t>(st.uid),
                                         static_cast<uv_gid_t>(st.gid));
    };
    uvkit::run(loop, t());
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "fs: sendfile between files and to a socket") {
    temp_dir d;
    std::string data(300000, 'q');
    for (std::size_t i = 0; i < data.size(); i += 97) data[i] = static_cast<char>('a' + i % 26);
    put(d / "src", data);
    auto t = [&]() -> uvkit::task<void> {
        uvkit::file in = co_await uvkit::fs::async_open(loop, d / "src", UV_FS_O_RDONLY, 0);
        uvkit::file out =
            co_await uvkit::fs::async_open(loop, d / "dst", UV_FS_O_WRONLY | UV_FS_O_CREAT, 0644);
        std::size_t sent = 0;
        for (int i = 0; i < 1000 && sent < data.size(); ++i)
            sent += co_await in.async_sendfile(out, static_cast<std::int64_t>(sent), data.size() - sent);
        CHECK(sent == data.size());
        uvkit::file empty;
        std::error_code ec;
        co_await in.async_sendfile(empty, 0, 10, ec);
        CHECK(ec == std::errc::bad_file_descriptor);
    };
    uvkit::run(loop, t());
    CHECK(slurp(d / "dst") == data);
#ifndef _WIN32
    // To a connected socket; the peer reads everything.
    auto ab = uvkit_co_test::connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    std::string received;
    b.read_start([&](std::error_code ec, std::string_view chunk) {
        if (!ec) received.append(chunk);
    });
    auto s = [&]() -> uvkit::task<void> {
        uvkit::file in = co_await uvkit::fs::async_open(loop, d / "src", UV_FS_O_RDONLY, 0);
        std::size_t sent = 0;
        char buf[65536];
        for (int i = 0; i < 100000 && sent < data.size(); ++i) {
            std::error_code ec;
            std::size_t n =
                co_await in.async_sendfile(a, static_cast<std::int64_t>(sent), data.size() - sent, ec);
            if (ec == std::errc::resource_unavailable_try_again) {
                // The socket buffer is full: read + write, whose completion is the backpressure.
                n = co_await in.async_read(std::span<char>(buf), static_cast<std::int64_t>(sent));
                co_await a.async_write(std::string_view(buf, n));
            } else {
                REQUIRE_FALSE(ec);
            }
            sent += n;
        }
        CHECK(sent == data.size());
    };
    uvkit::run(loop, s());
    run_until([&] { return received.size() >= data.size(); });
    CHECK(received == data);
    a.close();
    b.close();
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "fs: EMFILE from open is a clear error" UVKIT_SKIP_ON_WINDOWS("RLIMIT_NOFILE")) {
#ifndef _WIN32
    temp_dir d;
    put(d / "f", "f");
    rlimit saved{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
    const int probe = ::open("/dev/null", O_RDONLY);
    REQUIRE(probe >= 0);
    ::close(probe);
    rlimit low = saved;
    low.rlim_cur = static_cast<rlim_t>(probe) + 16;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
    std::vector<uvkit::file> files;
    std::error_code last;
    auto t = [&]() -> uvkit::task<void> {
        for (int i = 0; i < 64; ++i) {
            std::error_code ec;
            uvkit::file f = co_await uvkit::fs::async_open(loop, d / "f", UV_FS_O_RDONLY, 0, ec);
            if (ec) {
                last = ec;
                break;
            }
            files.push_back(std::move(f));
        }
    };
    uvkit::run(loop, t());
    CHECK(last == std::errc::too_many_files_open);
    files.clear();
    loop.run();  // the closes
    setrlimit(RLIMIT_NOFILE, &saved);
    // Descriptors are back: opening works again.
    CHECK(open_now(loop, d / "f", UV_FS_O_RDONLY).is_open());
#endif
}

}  // TEST_SUITE

TEST_CASE_FIXTURE(loop_fixture,
                  "fs: co_await reads and borrowed writes: results, pool errors, the thrown name, dump") {
    temp_dir d;
    const std::string p = d / "rw";
    uvkit::file f = open_now(loop, p, UV_FS_O_RDWR | UV_FS_O_CREAT | UV_FS_O_TRUNC);
    uvkit::file ro;
    static char buf[16];  // outside the frames
    std::string dump;
    auto t = [&]() -> uvkit::task<void> {
        CHECK(co_await f.async_write(std::string_view("hello world"), 0) == 11);
        CHECK(co_await f.async_write(std::string_view("HELLO"), 0) == 5);
        CHECK(co_await f.async_read(std::span<char>(buf), 0) == 11);
        CHECK(std::string_view(buf, 11) == "HELLO world");
        CHECK(co_await f.async_read(std::span<char>(buf, 4), 6) == 4);
        CHECK(std::string_view(buf, 4) == "worl");
        CHECK(co_await f.async_read(std::span<char>(buf), 11) == 0);  // at the end
        // A write to a file opened read-only fails in the pool: the error, and 0 bytes.
        ro = co_await uvkit::fs::async_open(loop, p, UV_FS_O_RDONLY, 0);
        std::error_code ec;
        CHECK(co_await ro.async_write(std::string_view("x"), 0, ec) == 0);
        CHECK(ec);
#ifndef _WIN32
        CHECK(ec == std::errc::bad_file_descriptor);
#endif
        try {
            co_await ro.async_write(std::string_view("x"), 0);
            FAIL("no throw");
        } catch (const std::system_error& e) {
            CHECK(e.code() == ec);
            CHECK(std::string_view(e.what()).starts_with("uvkit::file::async_write"));
        }
        // A closed file: UV_EINVAL at once, the pool never sees it.
        ro.close();
        CHECK(co_await ro.async_read(std::span<char>(buf), 0, ec) == 0);
        CHECK(ec == std::errc::invalid_argument);
        // While a read waits in the pool's queue, dump_tasks names it.
        pool_gate gate{loop};
        uvkit::task_group g{loop};
        g.spawn([&]() -> uvkit::task<void> { co_await f.async_read(std::span<char>(buf), 0); }());
        co_await uvkit::sleep(loop, 0ms);
        dump = uvkit::dump_tasks(loop);
        gate.release();
        co_await g.join();
    };
    uvkit::run(loop, t());
    CHECK(dump.find("task: file read") != std::string::npos);
    CHECK(slurp(p) == "HELLO world");
}
