// Conformance ports of libuv's idle tests (test/test-idle.c) against uvkit::idle.
#include <chrono>

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;
using uvkit_conf::uv_code;

TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture, "conformance: idle_starvation (test-idle.c)") {
    uvkit::idle spin{loop};
    uvkit::check chk{loop};
    uvkit::timer t{loop};
    int idles = 0;
    int checks = 0;
    int timers = 0;
    spin.start([&] { ++idles; });
    chk.start([&] { ++checks; });
    // An always-active idle handle must not starve timers (nor check handles).
    t.start(20ms, [&] {
        ++timers;
        spin.stop();
        chk.stop();
    });
    run_all();
    CHECK(timers == 1);
    CHECK(idles > 0);
    CHECK(checks > 0);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: idle_check (test-idle.c)") {
    uvkit::idle spin{loop};
    uvkit::check chk{loop};
    int idles = 0;
    int checks = 0;
    // While idle is active the loop polls without blocking and every iteration
    // runs idle, then (after the poll) check.
    chk.start([&] { ++checks; });
    spin.start([&] {
        if (++idles == 10) {
            spin.stop();
            chk.stop();  // before this iteration's check phase
        }
    });
    run_all();
    CHECK(idles == 10);
    CHECK(checks == 9);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: idle start twice and null callback (test-idle.c, uv_idle_start)") {
    uvkit::idle spin{loop};
    int a = 0;
    int b = 0;
    // uv_idle_start on an active handle keeps it active; uvkit replaces the handler.
    spin.start([&] { ++a; });
    spin.start([&] {
        if (++b == 3) spin.stop();
    });
    run_all();
    CHECK(a == 0);
    CHECK(b == 3);
    // uv_idle_start(h, NULL) is UV_EINVAL; so is an empty uvkit handler.
    std::error_code ec;
    spin.start(nullptr, ec);
    CHECK(ec == uv_code(UV_EINVAL));
    CHECK_FALSE(spin.active());
}

}  // TEST_SUITE("conformance")
