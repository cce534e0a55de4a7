// uvkit::timer: libuv's timer semantics, handler lifetime, moved-from timers.
#include <uvkit/uvkit.hpp>

#include <chrono>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "fixture.hpp"

using namespace std::chrono_literals;
using uvkit_test::loop_fixture;

namespace {

const std::error_code einval = uvkit::make_uv_error(UV_EINVAL);

/// Sets `*destroyed` when the last (not moved-from) copy is destroyed, so a
/// test can tell when a closure that captures it was destroyed.
struct lifetime_tracker {
    bool* destroyed;
    explicit lifetime_tracker(bool* d) noexcept : destroyed(d) {}
    lifetime_tracker(lifetime_tracker&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)) {}
    lifetime_tracker& operator=(lifetime_tracker&&) = delete;
    ~lifetime_tracker() {
        if (destroyed) *destroyed = true;
    }
};

template <class F>
void check_einval_throw(F&& f) {
    try {
        f();
        FAIL("expected std::system_error(UV_EINVAL)");
    } catch (const std::system_error& e) {
        CHECK(e.code() == einval);
        CHECK(e.code().category() == uvkit::error_category());
    }
}

}  // namespace

TEST_SUITE_BEGIN("timer");

TEST_CASE_FIXTURE(loop_fixture, "a one-shot timer fires once") {
    uvkit::timer t{loop};
    int n = 0;
    t.start(1ms, [&] { ++n; });
    CHECK(t.active());
    CHECK(t.repeat() == 0ms);
    run_all();
    CHECK(n == 1);
    CHECK_FALSE(t.active());
    CHECK(t.due_in() == 0ms);
}

TEST_CASE_FIXTURE(loop_fixture, "a one-shot timer waits at least its timeout") {
    uvkit::timer t{loop};
    loop.update_time();
    auto start = loop.now();
    std::chrono::milliseconds fired_at{};
    t.start(20ms, [&] { fired_at = loop.now(); });
    run_all();
    CHECK(fired_at - start >= 20ms);
}

TEST_CASE_FIXTURE(loop_fixture, "a repeating timer fires N times and stops itself") {
    uvkit::timer t{loop};
    int n = 0;
    t.start(1ms, 1ms, [&] {
        if (++n == 5) t.stop();
    });
    CHECK(t.repeat() == 1ms);
    run_all();
    CHECK(n == 5);
    CHECK_FALSE(t.active());
}

TEST_CASE_FIXTURE(loop_fixture, "a zero timeout fires in the next iteration") {
    uvkit::timer t{loop};
    int n = 0;
    t.start(0ms, [&] { ++n; });
    CHECK(n == 0);
    run_all();
    CHECK(n == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "again() on a never-started timer is UV_EINVAL") {
    uvkit::timer t{loop};
    check_einval_throw([&] { t.again(); });
    std::error_code ec;
    t.again(ec);
    CHECK(ec == einval);
    CHECK(ec == std::errc::invalid_argument);
    CHECK_FALSE(t.active());
}

TEST_CASE_FIXTURE(loop_fixture, "again() restarts a repeating timer and leaves a stopped one-shot stopped") {
    uvkit::timer t{loop};
    t.start(10s, 20s, [] {});
    t.again();
    CHECK(t.active());
    CHECK(t.due_in() > 10s);  // re-armed with the repeat (20 s) as timeout
    CHECK(t.due_in() <= 20s);
    t.stop();
    CHECK_FALSE(t.active());
    std::error_code ec = uvkit::make_uv_error(UV_EIO);
    t.again(ec);  // a stopped repeating timer restarts
    CHECK_FALSE(ec);
    CHECK(t.active());

    int n = 0;
    t.start(1ms, [&] { ++n; });
    run_all();
    CHECK(n == 1);
    t.again();  // one-shot: the handler is kept, but again() does not restart it
    CHECK_FALSE(t.active());
}

TEST_CASE_FIXTURE(loop_fixture, "set_repeat, repeat and due_in") {
    uvkit::timer t{loop};
    CHECK(t.repeat() == 0ms);
    CHECK(t.due_in() == 0ms);
    t.start(1000ms, [] {});
    CHECK(t.due_in() > 0ms);
    CHECK(t.due_in() <= 1000ms);
    t.set_repeat(50ms);
    CHECK(t.repeat() == 50ms);
    CHECK(t.due_in() > 50ms);  // set_repeat does not change the current timeout
    t.stop();
    CHECK(t.due_in() == 0ms);
    CHECK(t.repeat() == 50ms);

    // set_repeat turns the next expiry into a repeat; stop after three.
    int n = 0;
    t.start(1ms, [&] {
        if (++n == 3) t.stop();
    });
    t.set_repeat(1ms);
    run_all();
    CHECK(n == 3);
}

TEST_CASE_FIXTURE(loop_fixture, "timers with equal timeouts fire in start order") {
    constexpr int count = 8;
    std::vector<uvkit::timer> timers;
    for (int i = 0; i < count; ++i) timers.emplace_back(loop);
    std::vector<int> order;
    // Start in a shuffled order of objects; the firing order is the start order.
    const int start_order[count] = {3, 0, 7, 1, 6, 2, 5, 4};
    for (int i : start_order)
        timers[static_cast<std::size_t>(i)].start(2ms, [&order, i] { order.push_back(i); });
    run_all();
    CHECK(order == std::vector<int>(std::begin(start_order), std::end(start_order)));
}

TEST_CASE_FIXTURE(loop_fixture, "a repeating timer is re-armed before its handler runs") {
    uvkit::timer t{loop};
    int n = 0;
    bool active_inside = false;
    std::chrono::milliseconds due_inside{};
    t.start(1ms, 40ms, [&] {
        ++n;
        active_inside = t.active();
        due_inside = t.due_in();
        t.stop();
    });
    run_all();
    CHECK(n == 1);
    CHECK(active_inside);
    CHECK(due_inside == 40ms);
}

TEST_CASE_FIXTURE(loop_fixture, "restarting from inside the handler keeps the running closure alive") {
    uvkit::timer t{loop};
    bool first_destroyed = false;
    bool destroyed_during_first = true;
    bool destroyed_seen_by_second = false;
    std::string text(100, 'x');  // longer than SSO: lives on the heap
    std::string seen_after_restart;
    auto shared = std::make_shared<int>(42);
    int shared_after_restart = 0;
    int second = 0;

    t.start(1ms, [&, text, shared, tr = lifetime_tracker(&first_destroyed)] {
        t.start(1ms, [&] {
            ++second;
            destroyed_seen_by_second = first_destroyed;
        });
        // The old closure is still running: its captures must be intact.
        destroyed_during_first = first_destroyed;
        seen_after_restart = text;
        shared_after_restart = *shared;
        (void)tr;
    });
    run_all();
    CHECK_FALSE(destroyed_during_first);
    CHECK(seen_after_restart == std::string(100, 'x'));
    CHECK(shared_after_restart == 42);
    CHECK(second == 1);
    CHECK(destroyed_seen_by_second);  // destroyed once the first handler returned
    CHECK(first_destroyed);
    CHECK(shared.use_count() == 1);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "restarting from inside the handler: a small (inline) closure keeps its captures") {
    uvkit::timer t{loop};
    int a = 0;
    int b = 0;
    int second = 0;
    int* pa = &a;
    int* pb = &b;
    int* ps = &second;
    uvkit::timer* pt = &t;
    t.start(1ms, [pa, pb, ps, pt] {
        pt->start(1ms, [ps] { ++*ps; });
        *pa = 1;  // captures read after the restart
        *pb = 2;
    });
    run_all();
    CHECK(a == 1);
    CHECK(b == 2);
    CHECK(second == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "restarting twice from inside the handler") {
    uvkit::timer t{loop};
    bool first_destroyed = false;
    bool middle_destroyed = false;
    bool first_alive_at_end = false;
    int last = 0;
    int middle = 0;
    t.start(1ms, [&, tr = lifetime_tracker(&first_destroyed)] {
        t.start(1ms, [&, tr2 = lifetime_tracker(&middle_destroyed)] { ++middle; });
        t.start(1ms, [&] { ++last; });
        first_alive_at_end = !first_destroyed;
        (void)tr;
    });
    run_all();
    CHECK(first_alive_at_end);
    CHECK(first_destroyed);
    CHECK(middle_destroyed);
    CHECK(middle == 0);
    CHECK(last == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "destroying a timer inside its own handler") {
    SUBCASE("one-shot") {
        std::optional<uvkit::timer> t{std::in_place, loop};
        int n = 0;
        bool captured_destroyed = false;
        bool alive_after_reset = false;
        t->start(1ms, [&, tr = lifetime_tracker(&captured_destroyed)] {
            ++n;
            t.reset();
            alive_after_reset = !captured_destroyed;
            (void)tr;
        });
        run_all();
        CHECK(n == 1);
        CHECK(alive_after_reset);
        CHECK(captured_destroyed);
    }
    SUBCASE("repeating: no further firing") {
        std::optional<uvkit::timer> t{std::in_place, loop};
        int n = 0;
        t->start(1ms, 1ms, [&] {
            ++n;
            t.reset();
        });
        // A second timer keeps the loop going a little after the destruction.
        uvkit::timer later{loop};
        later.start(30ms, [] {});
        run_all();
        CHECK(n == 1);
    }
}

TEST_CASE_FIXTURE(loop_fixture, "moving a timer inside its own handler") {
    uvkit::timer a{loop};
    uvkit::timer b;
    int n = 0;
    bool a_empty_inside = false;
    a.start(1ms, 1ms, [&] {
        if (++n == 1) {
            b = std::move(a);
            a_empty_inside = !a && !a.active();
        } else if (n == 3) {
            b.stop();
        }
    });
    run_all();
    CHECK(n == 3);
    CHECK(a_empty_inside);
    CHECK_FALSE(static_cast<bool>(a));
    CHECK(static_cast<bool>(b));
    CHECK_FALSE(b.active());
    CHECK(&b.get_loop() == &loop);
}

TEST_CASE_FIXTURE(loop_fixture, "move assignment over a live timer closes the old one") {
    uvkit::timer a{loop};
    uvkit::timer b{loop};
    int a_fired = 0;
    int b_fired = 0;
    a.start(1ms, [&] { ++a_fired; });
    b.start(1ms, [&] { ++b_fired; });
    CHECK(loop.handle_count() == 2);
    b = std::move(a);  // the old b is closed: its handler never runs
    run_all();
    loop.run(uvkit::run_mode::nowait);  // the watchdog's close callback
    CHECK(a_fired == 1);
    CHECK(b_fired == 0);
    CHECK(loop.handle_count() == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "close() is idempotent and runs on_closed exactly once") {
    uvkit::timer t{loop};
    int first = 0;
    int second = 0;
    bool fired = false;
    t.start(1ms, [&] { fired = true; });
    CHECK_FALSE(t.closing());
    t.close([&] { ++first; });
    CHECK(t.closing());
    CHECK_FALSE(t.active());
    t.close([&] { ++second; });
    t.close();
    run_all();
    CHECK(first == 1);
    CHECK(second == 0);
    CHECK_FALSE(fired);
    CHECK(t.closing());
    t.close([&] { ++second; });
    loop.run(uvkit::run_mode::nowait);
    CHECK(first == 1);
    CHECK(second == 0);
    CHECK(loop.handle_count() == 0);
    // A closed timer refuses work.
    check_einval_throw([&] { t.start(1ms, [] {}); });
}

TEST_CASE_FIXTURE(loop_fixture, "close() from inside the handler, and destroying the timer from on_closed") {
    std::optional<uvkit::timer> t{std::in_place, loop};
    int n = 0;
    int closed = 0;
    t->start(1ms, 1ms, [&] {
        ++n;
        t->close([&] {
            ++closed;
            t.reset();
        });
    });
    run_all();
    CHECK(n == 1);
    CHECK(closed == 1);
    CHECK_FALSE(t.has_value());
}

TEST_CASE_FIXTURE(loop_fixture, "every operation on a moved-from or default timer fails with UV_EINVAL") {
    uvkit::timer original{loop};
    uvkit::timer moved{std::move(original)};
    uvkit::timer def;
    CHECK(static_cast<bool>(moved));
    auto noop = [] {};
    for (uvkit::timer* t : {&original, &def}) {
        CHECK_FALSE(static_cast<bool>(*t));
        check_einval_throw([&] { t->start(1ms, [] {}); });
        check_einval_throw([&] { t->start(1ms, 1ms, [] {}); });
        check_einval_throw([&] { t->again(); });
        check_einval_throw([&] { (void)t->get_loop(); });
        std::error_code ec;
        t->start(1ms, noop, ec);
        CHECK(ec == einval);
        ec.clear();
        t->start(1ms, 1ms, noop, ec);
        CHECK(ec == einval);
        ec.clear();
        t->again(ec);
        CHECK(ec == einval);
        // The noexcept ones do nothing.
        t->stop();
        t->set_repeat(5ms);
        CHECK(t->repeat() == 0ms);
        CHECK(t->due_in() == 0ms);
        CHECK(t->raw() == nullptr);
        CHECK(t->raw_handle() == nullptr);
        CHECK_FALSE(t->active());
        CHECK(t->closing());
        t->ref();
        t->unref();
        CHECK_FALSE(t->has_ref());
        int closed = 0;
        t->close([&] { ++closed; });
        run_all();
        CHECK(closed == 0);
    }
    // The moved-to timer works.
    int n = 0;
    moved.start(1ms, [&] { ++n; });
    run_all();
    CHECK(n == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "a move-only callable as handler") {
    uvkit::timer t{loop};
    int seen = 0;
    auto p = std::make_unique<int>(7);
    t.start(1ms, [&seen, p = std::move(p)] { seen = *p; });
    run_all();
    CHECK(seen == 7);
}

TEST_CASE_FIXTURE(loop_fixture, "negative durations are rejected") {
    uvkit::timer t{loop};
    bool fired = false;
    auto set_fired = [&fired] { fired = true; };
    check_einval_throw([&] { t.start(-1ms, [&] { fired = true; }); });
    check_einval_throw([&] { t.start(1ms, -1ms, [&] { fired = true; }); });
    std::error_code ec;
    t.start(-5ms, set_fired, ec);
    CHECK(ec == einval);
    CHECK_FALSE(t.active());
    // A rejected start leaves a never-started timer: again() has no handler.
    t.again(ec);
    CHECK(ec == einval);

    t.start(10s, 2s, [] {});
    t.set_repeat(-3ms);  // ignored
    CHECK(t.repeat() == 2s);
    t.stop();
    run_all();
    CHECK_FALSE(fired);
}

TEST_CASE_FIXTURE(loop_fixture, "raw() is the libuv handle and get_loop() the loop") {
    uvkit::timer t{loop};
    REQUIRE(t.raw() != nullptr);
    CHECK(reinterpret_cast<uv_handle_t*>(t.raw()) == t.raw_handle());
    CHECK(uv_handle_get_type(t.raw_handle()) == UV_TIMER);
    CHECK(uv_handle_get_loop(t.raw_handle()) == loop.raw());
    CHECK(&t.get_loop() == &loop);
    // Raw libuv calls on it are seen by uvkit.
    t.start(10s, [] {});
    uv_timer_set_repeat(t.raw(), 123);
    CHECK(t.repeat() == 123ms);
    uv_timer_stop(t.raw());
    CHECK_FALSE(t.active());
}

TEST_SUITE_END();
