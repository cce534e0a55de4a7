// Tests of uvkit::tty. The suite may run without a terminal, so the terminal
// tests use a pseudo-terminal made here (posix_openpt) and are skipped, with
// the reason, where none can be made; the error paths need no terminal.
#include <uv.h>

#include <cstdio>
#include <filesystem>
#include <string>

#ifndef _WIN32
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#endif

#include "fixture.hpp"
#include "platform.hpp"

using uvkit_test::loop_fixture;

namespace {
bool is_einval(const std::error_code& ec) { return ec == uvkit::make_uv_error(UV_EINVAL); }

#ifndef _WIN32
/// A pseudo-terminal pair, or none (`ok == false`, `why` says why).
struct pty {
    int master = -1;
    int slave = -1;
    bool ok = false;
    std::string why;
    pty() {
        master = posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0) {
            why = "posix_openpt failed";
            return;
        }
        const char* name = nullptr;
        if (grantpt(master) != 0 || unlockpt(master) != 0 || (name = ptsname(master)) == nullptr) {
            why = "grantpt/unlockpt/ptsname failed";
            return;
        }
        slave = ::open(name, O_RDWR | O_NOCTTY);
        if (slave < 0) {
            why = std::string("cannot open ") + name;
            return;
        }
        ok = true;
    }
    ~pty() {
        if (slave >= 0) ::close(slave);
        if (master >= 0) ::close(master);
    }
    /// Reads what the terminal side wrote, waiting at most a second.
    std::string read_master() const {
        pollfd p{master, POLLIN, 0};
        if (::poll(&p, 1, 1000) != 1) return {};
        char buf[256];
        ssize_t n = ::read(master, buf, sizeof buf);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string{};
    }
};
#endif
}  // namespace

TEST_CASE_FIXTURE(loop_fixture, "tty: a regular file is not a terminal" UVKIT_SKIP_ON_WINDOWS(
                                    "uv_tty_init accepts a regular file on Windows (no EINVAL)")) {
    auto path = std::filesystem::temp_directory_path() / ("uvkit-tty-" + std::to_string(uv_os_getpid()));
    std::FILE* f = std::fopen(path.string().c_str(), "w+");
    REQUIRE(f != nullptr);
#ifdef _WIN32
    uv_file fd = _fileno(f);
#else
    uv_file fd = fileno(f);
#endif
    bool threw = false;
    try {
        uvkit::tty t{loop, fd};
    } catch (const std::system_error& e) {
        threw = true;
        CHECK(is_einval(e.code()));
    }
    CHECK(threw);
    std::fclose(f);
    std::filesystem::remove(path);
}

TEST_CASE_FIXTURE(loop_fixture, "tty: moved-from and closed ttys fail with UV_EINVAL") {
    uvkit::tty empty;
    std::error_code ec;
    empty.set_mode(uvkit::tty_mode::raw, ec);
    CHECK(is_einval(ec));
    CHECK(empty.window_size(ec) == uvkit::tty_size{});
    CHECK(is_einval(ec));
    CHECK_THROWS_AS(empty.set_mode(uvkit::tty_mode::normal), std::system_error);
    CHECK_THROWS_AS(empty.window_size(), std::system_error);
    CHECK(empty.raw() == nullptr);
#ifndef _WIN32
    // A pipe is accepted as a tty stream: check that moving and closing it behave.
    uv_file fds[2];
    REQUIRE(uv_pipe(fds, 0, 0) == 0);
    uvkit::tty a{loop, fds[1]};
    uvkit::tty b = std::move(a);
    CHECK_FALSE(a);
    a.set_mode(uvkit::tty_mode::raw, ec);
    CHECK(is_einval(ec));
    int writes = 0;
    b.write("x", [&](std::error_code) { ++writes; });
    b.close();
    b.set_mode(uvkit::tty_mode::raw, ec);
    CHECK(is_einval(ec));
    run_all();
    CHECK(writes == 1);  // exactly once, whether written or canceled
    ::close(fds[0]);
#endif
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "tty: modes, window size and the stream interface on a pseudo-terminal" UVKIT_SKIP_ON_WINDOWS(
        "needs a POSIX pseudo-terminal")) {
#ifndef _WIN32
    pty p;
    if (!p.ok) {
        MESSAGE("skipped: no pseudo-terminal: ", p.why);
        return;
    }
    winsize ws{};
    ws.ws_col = 123;
    ws.ws_row = 45;
    REQUIRE(::ioctl(p.master, TIOCSWINSZ, &ws) == 0);

    uvkit::tty t{loop, p.slave};
    CHECK(t.window_size() == uvkit::tty_size{123, 45});

    t.set_mode(uvkit::tty_mode::raw);
    termios tio{};
    REQUIRE(::tcgetattr(p.slave, &tio) == 0);
    CHECK((tio.c_lflag & ICANON) == 0);
    CHECK((tio.c_lflag & ECHO) == 0);

    // Raw mode: keys arrive one by one, without a newline.
    std::string got;
    t.read_start([&](std::error_code ec, std::string_view data) {
        REQUIRE_FALSE(ec);
        got += data;
        if (got.size() >= 3) t.read_stop();
    });
    REQUIRE(::write(p.master, "abc", 3) == 3);
    run_until([&] { return got.size() >= 3; });
    CHECK(got == "abc");

    bool written = false;
    t.write("out", [&](std::error_code ec) {
        CHECK_FALSE(ec);
        written = true;
    });
    run_until([&] { return written; });
    CHECK(p.read_master() == "out");

    // reset_mode restores what the first switch to raw saved.
    uvkit::tty::reset_mode();
    REQUIRE(::tcgetattr(p.slave, &tio) == 0);
    CHECK((tio.c_lflag & ICANON) != 0);

    t.set_mode(uvkit::tty_mode::normal);
    t.close();
    run_all();
#endif
}
