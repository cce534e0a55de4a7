// Conformance ports of libuv's timer tests (test/test-timer.c,
// test/test-timer-again.c, test/test-timer-from-check.c) against uvkit::timer.
#include <chrono>
#include <limits>
#include <string>
#include <vector>

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;
using uvkit_conf::uv_code;

TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture, "conformance: timer_init (test-timer.c)") {
    uvkit::timer t{loop};
    CHECK_FALSE(t.active());
    CHECK_FALSE(t.closing());
    CHECK(t.has_ref());
    CHECK(t.repeat() == 0ms);
    CHECK(t.due_in() == 0ms);
    // A timer that was never started does not keep the loop alive.
    CHECK_FALSE(loop.alive());
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: timer_start_twice (test-timer.c)") {
    uvkit::timer t{loop};
    int first = 0;
    int second = 0;
    t.start(100'000ms, [&] { ++first; });
    // Starting again replaces timeout and handler: only the second runs, once.
    t.start(10ms, [&] { ++second; });
    run_all();
    CHECK(first == 0);
    CHECK(second == 1);
    CHECK_FALSE(t.active());
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: timer_huge_timeout (test-timer.c)") {
    uvkit::timer tiny{loop};
    uvkit::timer huge1{loop};
    uvkit::timer huge2{loop};
    int tiny_fired = 0;
    int huge_fired = 0;
    // A timeout near the end of time must neither overflow into "now" nor fire.
    huge1.start(std::chrono::milliseconds(0xffffffffffffLL), [&] { ++huge_fired; });
    huge2.start(std::chrono::milliseconds(std::numeric_limits<std::int64_t>::max()), [&] { ++huge_fired; });
    huge1.unref();
    huge2.unref();
    tiny.start(1ms, [&] { ++tiny_fired; });
    CHECK(huge1.due_in() > 1000h);
    CHECK(huge2.due_in() > 1000h);
    run_all();
    CHECK(tiny_fired == 1);
    CHECK(huge_fired == 0);
    CHECK(huge1.active());
    CHECK(huge2.active());
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: timer_huge_repeat (test-timer.c)") {
    uvkit::timer repeating{loop};
    uvkit::timer stopper{loop};
    int fired = 0;
    // First expiry after 2 ms, then "every" huge interval: it fires exactly once
    // before the stopper closes both.
    repeating.start(2ms, std::chrono::milliseconds(0xffffffffffffLL), [&] { ++fired; });
    stopper.start(50ms, [&] {
        repeating.close();
        stopper.close();
    });
    run_all();
    CHECK(fired == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: timer_run_once (test-timer.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::timer t{loop};
    int fired = 0;
    t.start(0ms, [&] { ++fired; });
    // One iteration runs a due timer; nothing is left, so run(once) reports no more work.
    CHECK_FALSE(loop.run(uvkit::run_mode::once));
    CHECK(fired == 1);
    t.start(1ms, [&] { ++fired; });
    // run(once) waits for the 1 ms timer, then runs it.
    CHECK_FALSE(loop.run(uvkit::run_mode::once));
    CHECK(fired == 2);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: timer_is_closing (test-timer.c)") {
    uvkit::timer t{loop};
    bool closed = false;
    t.close([&] { closed = true; });
    CHECK(t.closing());
    // libuv's uv_timer_start on a closing handle is UV_EINVAL; uvkit keeps that,
    // as an exception or through the error_code form.
    std::error_code ec;
    t.start(
        10ms, [] {}, ec);
    CHECK(ec == uv_code(UV_EINVAL));
    uvkit_conf::require_throws_code(uv_code(UV_EINVAL), [&] { t.start(10ms, [] {}); });
    run_all();
    CHECK(closed);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: timer_null_callback (test-timer.c)") {
    uvkit::timer t{loop};
    // libuv rejects a NULL callback with UV_EINVAL; an empty handler is its
    // uvkit equivalent (nullptr or an empty std::function).
    std::error_code ec;
    t.start(10ms, nullptr, ec);
    CHECK(ec == uv_code(UV_EINVAL));
    CHECK_FALSE(t.active());
    void (*no_function)() = nullptr;
    uvkit_conf::require_throws_code(uv_code(UV_EINVAL), [&] { t.start(10ms, no_function); });
    CHECK_FALSE(t.active());
    CHECK_FALSE(loop.alive());
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: timer_again (test-timer-again.c)") {
    uvkit::timer t{loop};
    int fired = 0;
    t.start(100'000ms, 100'000ms, [&] {
        if (++fired == 3) t.stop();
    });
    // A new repeat takes effect at the next expiry, or at once through again(),
    // which re-arms the timer with the repeat as its timeout.
    t.set_repeat(5ms);
    CHECK(t.due_in() > 1000ms);
    t.again();
    CHECK(t.due_in() <= 5ms);
    CHECK(t.repeat() == 5ms);
    run_all();
    CHECK(fired == 3);
    CHECK_FALSE(t.active());
    // again() on a stopped repeating timer starts it once more.
    t.again();
    CHECK(t.active());
    t.stop();
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: timer_from_check (test-timer-from-check.c)") {
    uvkit::prepare prep{loop};
    uvkit::check chk{loop};
    uvkit::timer t{loop};
    uvkit::idle spin{loop};  // keeps the loop from blocking while nothing else is due
    std::vector<std::string> events;
    spin.start([] {});
    prep.start([&] { events.push_back("prepare"); });
    chk.start([&] {
        events.push_back("check");
        if (events.size() == 2) {
            // A 0 ms timer started after polling fires at the start of the next
            // iteration, before that iteration's prepare.
            t.start(0ms, [&] {
                events.push_back("timer");
                prep.stop();
                chk.stop();
                spin.stop();
            });
        }
    });
    run_all();
    std::vector<std::string> want{"prepare", "check", "timer"};
    CHECK(events == want);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: timer_no_run_on_unref (test-timer.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::timer t{loop};
    int fired = 0;
    t.start(0ms, [&] { ++fired; });
    t.unref();
    // Nothing referenced: run() returns at once and does not run the due timer.
    CHECK_FALSE(loop.run());
    CHECK(fired == 0);
    CHECK(t.active());
    t.ref();
    CHECK_FALSE(loop.run());
    CHECK(fired == 1);
}

}  // TEST_SUITE("conformance")
