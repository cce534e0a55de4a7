// Steady-state allocation counts: restarting timers, repeating timers, idle
// ticks and post() allocate nothing once warm. (TCP reads and writes are
// counted in tcp_test.cpp.)
#include <uvkit/uvkit.hpp>

#include <chrono>
#include <cstddef>
#include <optional>

#include "alloc_counter.hpp"
#include "fixture.hpp"

using namespace std::chrono_literals;
using uvkit_test::alloc_window;
using uvkit_test::loop_fixture;

TEST_SUITE_BEGIN("alloc");

TEST_CASE_FIXTURE(loop_fixture, "restarting a timer allocates nothing") {
    uvkit::timer t{loop};
    int fired = 0;
    int* pf = &fired;
    t.start(10s, [pf] { ++*pf; });  // warm-up
    t.stop();
    alloc_window w;
    for (int i = 0; i < 1000; ++i) {
        t.start(10s, [pf] { ++*pf; });
        t.start(20s, 5s, [pf] { ++*pf; });  // restart while active: replaces the handler
        t.again();
        t.set_repeat(1s);
        t.stop();
    }
    CHECK(w.count() == 0);
    CHECK(fired == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "a repeating timer firing allocates nothing") {
    uvkit::timer t{loop};
    constexpr int warm = 3;
    constexpr int total = 30;
    int n = 0;
    std::optional<alloc_window> w;
    std::size_t during = 0;
    t.start(1ms, 1ms, [&] {
        ++n;
        if (n == warm) w.emplace();
        if (n == total) {
            during = w->count();
            t.stop();
        }
    });
    run_all();
    CHECK(n == total);
    REQUIRE(w.has_value());
    CHECK(during == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "a timer restarted from its own handler allocates nothing") {
    uvkit::timer t{loop};
    constexpr int warm = 3;
    constexpr int total = 30;
    int n = 0;
    std::optional<alloc_window> w;
    std::size_t during = 0;
    struct ctx {
        uvkit::timer* t;
        int* n;
        std::optional<alloc_window>* w;
        std::size_t* during;
        // Small enough to be stored inline: four pointers.
        void operator()() const {
            ++*n;
            if (*n == warm) w->emplace();
            if (*n == total) {
                *during = (*w)->count();
                return;
            }
            t->start(0ms, ctx{*this});
        }
    };
    t.start(0ms, ctx{&t, &n, &w, &during});
    run_all();
    CHECK(n == total);
    CHECK(during == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "an idle tick allocates nothing") {
    uvkit::idle i{loop};
    constexpr int warm = 10;
    constexpr int total = 1010;
    int n = 0;
    std::optional<alloc_window> w;
    std::size_t during = 0;
    i.start([&] {
        ++n;
        if (n == warm) w.emplace();
        if (n == total) {
            during = w->count();
            i.stop();
        }
    });
    run_all();
    CHECK(n == total);
    CHECK(during == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "post() allocates nothing once warm") {
    constexpr int batch = 100;
    int got = 0;
    int* pg = &got;
    auto round = [&] {
        for (int k = 0; k < batch; ++k) loop.post([pg] { ++*pg; });
        loop.run();
    };
    round();  // warm-up: the queue grows to its working size
    REQUIRE(got == batch);
    alloc_window w;
    for (int r = 0; r < 5; ++r) round();
    CHECK(w.count() == 0);
    CHECK(got == 6 * batch);
}

TEST_CASE_FIXTURE(loop_fixture, "post() from a handler allocates nothing once warm") {
    uvkit::timer t{loop};
    constexpr int warm = 3;
    constexpr int total = 30;
    int n = 0;
    int delivered = 0;
    std::optional<alloc_window> w;
    std::size_t during = 0;
    t.start(1ms, 1ms, [&] {
        ++n;
        if (n == warm) w.emplace();
        if (n == total) {
            during = w->count();
            t.stop();
            return;
        }
        int* pd = &delivered;
        for (int k = 0; k < 10; ++k) loop.post([pd] { ++*pd; });
    });
    run_all();
    CHECK(n == total);
    CHECK(during == 0);
    CHECK(delivered == (total - 1) * 10);
}

TEST_SUITE_END();
