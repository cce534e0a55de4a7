// Allocation counts of the coroutine layer: awaiting an operation allocates
// nothing once warm; a task costs at most its frame.
#include "fixture.hpp"

#include <uvkit/uvkit.hpp>

#include <string>

#include "alloc_counter.hpp"
#include "co_util.hpp"

using namespace std::chrono_literals;
using uvkit_test::alloc_window;

namespace {

// More than a stream's run of writes that complete at once (64): the first
// write that goes through the loop makes the loop's write-request pool.
constexpr int warmup = 100;
constexpr int iterations = 1000;

uvkit::task<void> nothing() { co_return; }

uvkit::task<int> ready_int(int v) { co_return v; }

}  // namespace

TEST_SUITE("co: allocations") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: an awaited read (span) and borrowed write allocate nothing once warm") {
    auto ab = uvkit_co_test::connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    CHECK(uvkit::run(loop, uvkit_co_test::pingpong_allocations(a, b, warmup, iterations)) == 0);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: async_read_exactly into a span allocates nothing once warm") {
    auto ab = uvkit_co_test::connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    std::size_t counted = 0;
    auto t = [&]() -> uvkit::task<void> {
        char out[32] = "0123456789abcdef0123456789abcde";
        char in[32];
        std::size_t window_start = 0;
        for (int i = 0; i < warmup + iterations; ++i) {
            if (i == warmup) window_start = uvkit_test::allocations();
            std::error_code ec;
            co_await a.async_write(std::string_view(out, sizeof out), ec);
            co_await b.async_read_exactly(std::span<char>(in), ec);
            CHECK_FALSE(ec);  // doctest allocates only on failure
        }
        counted = uvkit_test::allocations() - window_start;
    };
    uvkit::run(loop, t());
    CHECK(counted == 0);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: an awaited sleep allocates nothing once warm") {
    std::size_t counted = 0;
    auto t = [&]() -> uvkit::task<void> {
        std::size_t window_start = 0;
        for (int i = 0; i < warmup + iterations; ++i) {
            if (i == warmup) window_start = uvkit_test::allocations();
            co_await uvkit::sleep(loop, 0ms);
        }
        counted = uvkit_test::allocations() - window_start;
    };
    uvkit::run(loop, t());
    CHECK(counted == 0);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a cancelled sleep allocates nothing once warm") {
    std::size_t counted = 0;
    auto sleeper = [&]() -> uvkit::task<int> {
        std::error_code ec;
        co_await uvkit::sleep(loop, 1h, ec);
        co_return 0;
    };
    auto t = [&]() -> uvkit::task<void> {
        for (int i = 0; i < warmup + iterations; ++i) {
            // when_any allocates the two child frames, nothing else.
            alloc_window w;
            co_await uvkit::when_any(sleeper(), ready_int(1));
            if (i >= warmup && w.count() > 2) ++counted;
        }
    };
    uvkit::run(loop, t());
    CHECK(counted == 0);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: spawn() costs at most one allocation per task") {
    // Warm up the loop's coroutine context.
    for (int i = 0; i < warmup; ++i) uvkit::spawn(loop, nothing()).detach();
    alloc_window w;
    for (int i = 0; i < iterations; ++i) uvkit::spawn(loop, nothing()).detach();
    CHECK(w.count() <= static_cast<std::size_t>(iterations));
    loop.run();
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: awaiting a task costs its frame, when_all nothing more") {
    auto t = [&]() -> uvkit::task<std::size_t> {
        co_await ready_int(0);  // warm
        alloc_window w;
        for (int i = 0; i < 100; ++i) co_await ready_int(i);
        std::size_t one = w.count();
        alloc_window w2;
        for (int i = 0; i < 100; ++i) co_await uvkit::when_all(ready_int(i), ready_int(i));
        CHECK(w2.count() <= 200);
        co_return one;
    };
    CHECK(uvkit::run(loop, t()) <= 100);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: task_group children cost their frames only") {
    uvkit::task_group g{loop};
    auto child = [&]() -> uvkit::task<void> { co_await uvkit::sleep(loop, 0ms); };
    for (int i = 0; i < warmup; ++i) g.spawn(child());
    auto join = [&]() -> uvkit::task<void> { co_await g.join(); };
    uvkit::run(loop, join());
    std::size_t counted = 0;
    auto t = [&]() -> uvkit::task<void> {
        alloc_window w;
        for (int i = 0; i < 100; ++i) g.spawn(child());
        co_await g.join();
        counted = w.count();
    };
    uvkit::run(loop, t());  // 100 concurrent sleeps grow the timer pool once
    uvkit::run(loop, t());
    CHECK(counted <= 100);  // after that, only the children's frames
}

}  // TEST_SUITE("co: allocations")
