// Conformance ports of libuv's close tests (test/test-close-order.c,
// test/test-walk-handles.c, test/test-handle-type-name.c) against uvkit's close().
#include <chrono>
#include <string>
#include <vector>

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;

TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture, "conformance: close_order (test-close-order.c)") {
    uvkit::check chk{loop};
    uvkit::timer t1{loop};
    uvkit::timer t2{loop};
    int checks = 0;
    int timers = 0;
    int closes = 0;
    auto on_closed = [&] { ++closes; };
    // The check handler of the first iteration runs before any close callback
    // (close callbacks run at the end of an iteration, never inside close()).
    chk.start([&] {
        CHECK(checks == 0);
        CHECK(timers == 1);  // t1 (0 ms) ran in the timer phase of the same iteration
        CHECK(closes == 0);
        chk.close(on_closed);
        t2.close(on_closed);  // pending, never fires
        CHECK(closes == 0);
        ++checks;
    });
    t1.start(0ms, [&] {
        t1.close(on_closed);
        ++timers;
    });
    t2.start(100'000ms, [&] { ++timers; });
    run_all();
    CHECK(checks == 1);
    CHECK(timers == 1);
    CHECK(closes == 3);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: walk_handles (test-walk-handles.c)") {
    uvkit::timer t{loop};
    uvkit::idle i{loop};
    // uv_walk over a loop that uvkit shares sees uvkit's handles as ordinary libuv handles.
    struct seen {
        uv_handle_t* timer;
        uv_handle_t* idle;
        int found;
    } s{t.raw_handle(), i.raw_handle(), 0};
    uv_walk(
        loop.raw(),
        [](uv_handle_t* h, void* arg) {
            auto& st = *static_cast<seen*>(arg);
            if (h == st.timer || h == st.idle) ++st.found;
        },
        &s);
    CHECK(s.found == 2);
    CHECK(std::string(uv_handle_type_name(t.raw_handle()->type)) == "timer");
    CHECK(std::string(uv_handle_type_name(i.raw_handle()->type)) == "idle");
    // Once closed and the close callback ran, the walk no longer sees them.
    t.close();
    i.close();
    run_all();
    s.found = 0;
    uv_walk(
        loop.raw(),
        [](uv_handle_t* h, void* arg) {
            auto& st = *static_cast<seen*>(arg);
            if (h == st.timer || h == st.idle) ++st.found;
        },
        &s);
    CHECK(s.found == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: close a handle from another's callback (test-close-order.c)") {
    // Closing a timer that is due in the same iteration, from the handler of an
    // earlier timer, means its handler never runs; destruction does the same.
    uvkit::timer first{loop};
    uvkit::timer second{loop};
    auto third = std::make_unique<uvkit::timer>(loop);
    std::vector<int> fired;
    first.start(1ms, [&] {
        fired.push_back(1);
        second.close();
        third.reset();
    });
    second.start(1ms, [&] { fired.push_back(2); });
    third->start(1ms, [&] { fired.push_back(3); });
    run_all();
    CHECK(fired == std::vector<int>{1});
}

}  // TEST_SUITE("conformance")
