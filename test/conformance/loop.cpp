// Conformance ports of libuv's loop tests (test/test-loop-alive.c,
// test/test-loop-stop.c, test/test-loop-close.c, test/test-run-once.c,
// test/test-run-nowait.c, test/test-loop-time.c) against uvkit::loop.
#include <chrono>
#include <memory>

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;
using uvkit_conf::uv_code;

TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture, "conformance: loop_alive (test-loop-alive.c)") {
    uvkit_conf::watchdog wd{loop};
    CHECK_FALSE(loop.alive());
    uvkit::timer t{loop};
    t.start(1ms, [] {});
    CHECK(loop.alive());
    CHECK_FALSE(loop.run());  // not run_all(): its watchdog's closing would count as alive
    CHECK_FALSE(loop.alive());

    // A pending thread-pool request keeps the loop alive too.
    bool done = false;
    auto req = uvkit::work(
        loop, [] { return 7; },
        [&](std::error_code ec, uvkit::work_result<int> r) { done = !ec && r.value() == 7; });
    CHECK(loop.alive());
    CHECK_FALSE(loop.run());
    CHECK(done);
    CHECK_FALSE(loop.alive());

    // So does a handle that is closing, until its close callback ran.
    t.close();
    CHECK(loop.alive());
    CHECK_FALSE(loop.run());
    CHECK_FALSE(loop.alive());
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: loop_stop (test-loop-stop.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::idle spin{loop};
    uvkit::prepare prep{loop};
    int idles = 0;
    int prepares = 0;
    spin.start([&] { ++idles; });
    prep.start([&] {
        if (++prepares == 3) loop.stop();
    });
    // stop() ends run() after the current iteration, with work left.
    CHECK(loop.run());
    CHECK(prepares == 3);
    CHECK(idles == 3);
    // The next run goes on where it stopped.
    CHECK(loop.run(uvkit::run_mode::nowait));
    CHECK(prepares == 4);
    spin.stop();
    prep.stop();
    CHECK_FALSE(loop.alive());
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: loop_stop_before_run (test-loop-stop.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::timer t{loop};
    int fired = 0;
    t.start(0ms, [&] { ++fired; });
    // A stop() before run() makes that run() return at once, with work left;
    // the stop request is then used up.
    loop.stop();
    CHECK(loop.run());
    CHECK(fired == 0);
    CHECK_FALSE(loop.run());
    CHECK(fired == 1);
}

TEST_CASE("conformance: loop_close (test-loop-close.c)") {
    // libuv: uv_loop_close on a loop with open handles is UV_EBUSY, and succeeds
    // once they are closed. Through a borrowed loop: while uvkit objects live on
    // it the raw loop is busy; once they are gone nothing of uvkit is left on it.
    // uvkit's owned loop differs by design: its destructor closes what is open
    // (running the close callbacks) instead of failing.
    uv_loop_t raw;
    REQUIRE(uv_loop_init(&raw) == 0);
    {
        uvkit::loop borrowed{&raw};
        uvkit::timer t{borrowed};
        t.start(1ms, 1ms, [&] { t.stop(); });
        borrowed.run();
        CHECK(uv_loop_close(&raw) == UV_EBUSY);
    }  // the timer, then the wrapper (and its internal handles) are closed
    CHECK(uv_loop_close(&raw) == 0);

    bool closed = false;
    {
        uvkit::loop owned;
        uvkit::timer t{owned};
        t.start(1h, [] {});
        t.close([&] { closed = true; });
    }
    CHECK(closed);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: run_once (test-run-once.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::idle spin{loop};
    int calls = 0;
    spin.start([&] {
        if (++calls == 6) spin.stop();
    });
    // Each run(once) is one iteration; it reports work left until the handle stopped.
    int runs = 0;
    while (loop.run(uvkit::run_mode::once) && runs < 100) ++runs;
    CHECK(calls == 6);
    CHECK(runs == 5);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: run_nowait (test-run-nowait.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::timer t{loop};
    int fired = 0;
    t.start(100ms, [&] { ++fired; });
    // One iteration without blocking: the timer is not due, work is left.
    CHECK(loop.run(uvkit::run_mode::nowait));
    CHECK(fired == 0);
    t.stop();
    CHECK_FALSE(loop.run(uvkit::run_mode::nowait));
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: loop_update_time (test-loop-time.c)") {
    loop.update_time();
    auto start = loop.now();
    // now() is cached: it does not move while the loop thread is busy...
    std::uint64_t until = uv_hrtime() + 5'000'000;  // 5 ms of busy work
    while (uv_hrtime() < until) {
    }
    CHECK(loop.now() == start);
    // ...until update_time() (or the next iteration) refreshes it.
    loop.update_time();
    CHECK(loop.now() >= start + 5ms);
}

}  // TEST_SUITE("conformance")
