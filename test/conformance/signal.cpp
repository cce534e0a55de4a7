// Conformance ports of libuv's signal tests (test/test-signal.c,
// test/test-signal-multiple-loops.c, test/test-signal-pending-on-close.c)
// against uvkit::signal.
#include <chrono>
#include <csignal>

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;
using uvkit_conf::uv_code;

#ifndef _WIN32

namespace {
void raise_signal(int sig) { uvkit::process::kill(uv_os_getpid(), sig); }
}  // namespace

#endif
TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(
    loop_fixture,
    "conformance: we_get_signals_mixed (test-signal.c)" UVKIT_SKIP_ON_WINDOWS(
        "SIGUSR1 and SIGUSR2 do not exist there, and a process cannot raise a signal to itself")) {
#ifndef _WIN32
    uvkit::signal regular{loop};
    uvkit::signal oneshot{loop};
    int regular_calls = 0;
    int oneshot_calls = 0;
    regular.start(SIGUSR1, [&](int s) {
        CHECK(s == SIGUSR1);
        ++regular_calls;
    });
    oneshot.start_oneshot(SIGUSR1, [&](int s) {
        CHECK(s == SIGUSR1);
        ++oneshot_calls;
    });
    // Every handle watching the signal is called; the one-shot handle only once.
    raise_signal(SIGUSR1);
    run_until([&] { return regular_calls == 1; });
    CHECK_FALSE(oneshot.active());
    raise_signal(SIGUSR1);
    run_until([&] { return regular_calls == 2; });
    CHECK(oneshot_calls == 1);
    // Restarting the one-shot handle (from outside its handler) arms it again.
    oneshot.start_oneshot(SIGUSR1, [&](int) { ++oneshot_calls; });
    raise_signal(SIGUSR1);
    run_until([&] { return regular_calls == 3 && oneshot_calls == 2; });
    CHECK(oneshot_calls == 2);
    regular.stop();
#endif
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "conformance: kill_invalid_signum (test-signal.c)" UVKIT_SKIP_ON_WINDOWS(
        "SIGUSR1 and SIGUSR2 do not exist there, and a process cannot raise a signal to itself")) {
#ifndef _WIN32
    std::error_code ec;
    uvkit::process::kill(uv_os_getpid(), -1, ec);
    CHECK(ec == uv_code(UV_EINVAL));
    uvkit::process::kill(uv_os_getpid(), 4096, ec);
    CHECK(ec == uv_code(UV_EINVAL));
    // Starting a handle on an invalid signal fails the same way.
    uvkit::signal s{loop};
    s.start(
        4096, [](int) {}, ec);
    CHECK(ec == uv_code(UV_EINVAL));
    CHECK_FALSE(s.active());
#endif
}

TEST_CASE("conformance: signal_multiple_loops (test-signal-multiple-loops.c)" UVKIT_SKIP_ON_WINDOWS(
    "SIGUSR1 and SIGUSR2 do not exist there, and a process cannot raise a signal to itself")) {
#ifndef _WIN32
    // Two loops (here on one thread, run in turn) watching the same signal:
    // one delivery reaches the handles of both.
    uvkit::loop l1;
    uvkit::loop l2;
    int calls1 = 0;
    int calls2 = 0;
    {
        uvkit::signal s1{l1};
        uvkit::signal s2{l2};
        s1.start(SIGUSR2, [&](int) { ++calls1; });
        s2.start(SIGUSR2, [&](int) { ++calls2; });
        raise_signal(SIGUSR2);
        for (int i = 0; i < 2000 && (calls1 == 0 || calls2 == 0); ++i) {
            l1.run(uvkit::run_mode::nowait);
            l2.run(uvkit::run_mode::nowait);
            if (calls1 == 0 || calls2 == 0) uv_sleep(1);
        }
    }
    CHECK(calls1 == 1);
    CHECK(calls2 == 1);
    l1.run(uvkit::run_mode::nowait);
    l2.run(uvkit::run_mode::nowait);
    CHECK(l1.handle_count() == 0);
    CHECK(l2.handle_count() == 0);
#endif
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "conformance: signal_pending_on_close (test-signal-pending-on-close.c)" UVKIT_SKIP_ON_WINDOWS(
        "SIGUSR1 and SIGUSR2 do not exist there, and a process cannot raise a signal to itself")) {
#ifndef _WIN32
    // A signal that arrived but was not yet dispatched when the handle is
    // closed is dropped: the handler never runs, nothing is left open.
    // `keep` keeps SIGUSR2 caught (not fatal) until the signal was surely
    // delivered: its own handler ran. Under valgrind a signal raised by kill()
    // reaches the process later, not before kill() returns: closing `keep`
    // before that restores the default action, and the signal ends the process.
    uvkit::signal keep{loop};
    int kept = 0;
    keep.start(SIGUSR2, [&](int) { ++kept; });
    int calls = 0;
    {
        uvkit::signal s{loop};
        s.start(SIGUSR2, [&](int) { ++calls; });
        raise_signal(SIGUSR2);
    }  // destroyed (closed) before the loop ran
    run_until([&] { return kept == 1; });
    keep.close();
    run_all();
    CHECK(calls == 0);
#endif
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "conformance: signal_close_loop_alive (test-signal.c)" UVKIT_SKIP_ON_WINDOWS(
        "SIGUSR1 and SIGUSR2 do not exist there, and a process cannot raise a signal to itself")) {
#ifndef _WIN32
    uvkit_conf::watchdog wd{loop};
    uvkit::signal s{loop};
    int calls = 0;
    s.start(SIGUSR1, [&](int) {
        ++calls;
        s.close();
    });
    raise_signal(SIGUSR1);
    // Once the handle closed itself, nothing keeps the loop alive.
    CHECK_FALSE(loop.run());
    CHECK(calls == 1);
    CHECK_FALSE(loop.alive());
#endif
}

}  // TEST_SUITE("conformance")
