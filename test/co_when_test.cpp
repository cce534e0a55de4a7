// when_all, when_any, with_timeout, task_group, and how cancellation travels.
#include "fixture.hpp"

#include <uvkit/uvkit.hpp>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "co_util.hpp"

using namespace std::chrono_literals;
using uvkit_co_test::destroy_flag;
using uvkit_co_test::start;

namespace {

uvkit::task<int> ready_int(int v) { co_return v; }
uvkit::task<int> after(uvkit::loop& l, int v, std::chrono::milliseconds d) {
    co_await uvkit::sleep(l, d);
    co_return v;
}
uvkit::task<void> fail_after(uvkit::loop& l, std::chrono::milliseconds d, std::string what) {
    co_await uvkit::sleep(l, d);
    throw std::runtime_error(what);
}

/// Records how a long sleep ended, then passes the outcome on.
struct probe {
    std::vector<std::string> events;
    int cancelled = 0;
    int finished = 0;
};
uvkit::task<int> long_sleep(uvkit::loop& l, probe& p, std::string name) {
    std::error_code ec;
    co_await uvkit::sleep(l, 1h, ec);
    if (ec == uvkit::errc::canceled) {
        ++p.cancelled;
        p.events.push_back(name + " cancelled");
        throw std::system_error(ec, name);
    }
    ++p.finished;
    co_return 0;
}
uvkit::task<int> nested_long_sleep(uvkit::loop& l, probe& p, std::string name, int depth) {
    if (depth == 0) co_return co_await long_sleep(l, p, name);
    co_return co_await nested_long_sleep(l, p, name, depth - 1);
}

}  // namespace

TEST_SUITE("co: when_all") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: when_all returns every result, void as monostate") {
    int hits = 0;
    auto v = [&]() -> uvkit::task<void> {
        co_await uvkit::sleep(loop, 2ms);
        ++hits;
    };
    auto s = [&]() -> uvkit::task<std::string> { co_return "s"; };
    auto t = [&]() -> uvkit::task<int> {
        auto [a, b, c, d] = co_await uvkit::when_all(after(loop, 1, 5ms), v(), s(), ready_int(4));
        static_assert(std::is_same_v<decltype(b), std::monostate>);
        co_return a + (c == "s" ? 10 : 0) + d;
    };
    CHECK(uvkit::run(loop, t()) == 15);
    CHECK(hits == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: when_all of nothing and of ready tasks completes at once") {
    auto t = [&]() -> uvkit::task<int> {
        auto none = co_await uvkit::when_all();
        static_assert(std::tuple_size_v<decltype(none)> == 0);
        auto [a, b] = co_await uvkit::when_all(ready_int(1), ready_int(2));
        co_return a + b;
    };
    auto outer = [&]() -> uvkit::task<int> {
        auto inner = t();
        start(inner);
        CHECK(inner.done());                  // no loop iteration was needed
        co_return co_await std::move(inner);  // a finished task hands over its value
    };
    CHECK(uvkit::run(loop, outer()) == 3);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: when_all runs its tasks concurrently") {
    auto t = [&]() -> uvkit::task<std::chrono::milliseconds> {
        auto t0 = loop.now();
        co_await uvkit::when_all(after(loop, 1, 40ms), after(loop, 2, 40ms), after(loop, 3, 40ms));
        co_return loop.now() - t0;
    };
    auto took = uvkit::run(loop, t());
    CHECK(took >= 40ms);
    CHECK(took < 110ms);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: when_all with a failure cancels the others and rethrows once all stopped") {
    probe p;
    bool resumed_after_all = false;
    auto t = [&]() -> uvkit::task<void> {
        try {
            co_await uvkit::when_all(long_sleep(loop, p, "a"), fail_after(loop, 2ms, "boom"),
                                     long_sleep(loop, p, "b"), after(loop, 7, 1ms));
        } catch (const std::runtime_error& e) {
            CHECK(std::string(e.what()) == "boom");
            // Both sleepers had stopped before when_all gave control back.
            resumed_after_all = p.cancelled == 2;
            throw;
        }
    };
    auto t0 = loop.now();
    CHECK_THROWS_WITH_AS(uvkit::run(loop, t()), "boom", std::runtime_error);
    CHECK(resumed_after_all);
    CHECK(p.finished == 0);
    loop.update_time();
    CHECK(loop.now() - t0 < 10s);
    CHECK_FALSE(loop.alive());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: when_all rethrows the first of several failures") {
    auto t = [&]() -> uvkit::task<void> {
        co_await uvkit::when_all(fail_after(loop, 20ms, "second"), fail_after(loop, 1ms, "first"),
                                 fail_after(loop, 20ms, "third"));
    };
    CHECK_THROWS_WITH(uvkit::run(loop, t()), "first");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: when_all with a child that throws synchronously") {
    probe p;
    auto thrower = []() -> uvkit::task<int> {
        throw std::logic_error("sync");
        co_return 0;
    };
    auto t = [&]() -> uvkit::task<void> { co_await uvkit::when_all(long_sleep(loop, p, "a"), thrower()); };
    CHECK_THROWS_WITH_AS(uvkit::run(loop, t()), "sync", std::logic_error);
    CHECK(p.cancelled == 1);
}

}  // TEST_SUITE("co: when_all")

TEST_SUITE("co: when_any") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: when_any returns the index and value of the first to finish") {
    auto t = [&]() -> uvkit::task<std::pair<std::size_t, int>> {
        auto r = co_await uvkit::when_any(after(loop, 10, 30ms), after(loop, 20, 1ms), after(loop, 30, 30ms));
        co_return std::pair<std::size_t, int>(r.index(), r.index() == 1 ? std::get<1>(r) : -1);
    };
    auto [index, value] = uvkit::run(loop, t());
    CHECK(index == 1);
    CHECK(value == 20);
    CHECK_FALSE(loop.alive());  // the losers' timers are stopped
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: when_any cancels the losers and awaits them before returning") {
    probe p;
    bool losers_stopped_first = false;
    auto t = [&]() -> uvkit::task<std::size_t> {
        auto r = co_await uvkit::when_any(long_sleep(loop, p, "a"), after(loop, 5, 2ms),
                                          nested_long_sleep(loop, p, "b", 10));
        losers_stopped_first = p.cancelled == 2;
        co_return r.index();
    };
    auto t0 = loop.now();
    CHECK(uvkit::run(loop, t()) == 1);
    CHECK(losers_stopped_first);
    loop.update_time();
    CHECK(loop.now() - t0 < 10s);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: when_any rethrows the exception of the first to finish") {
    probe p;
    auto t = [&]() -> uvkit::task<void> {
        co_await uvkit::when_any(long_sleep(loop, p, "a"), fail_after(loop, 1ms, "first"));
    };
    CHECK_THROWS_WITH(uvkit::run(loop, t()), "first");
    CHECK(p.cancelled == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: when_any with a task that is ready at once") {
    probe p;
    auto t = [&]() -> uvkit::task<int> {
        auto r = co_await uvkit::when_any(long_sleep(loop, p, "a"), ready_int(3), long_sleep(loop, p, "b"));
        CHECK(r.index() == 1);
        co_return std::get<1>(r);
    };
    CHECK(uvkit::run(loop, t()) == 3);
    CHECK(p.cancelled == 2);
    CHECK(p.finished == 0);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: when_any of void tasks gives a monostate alternative") {
    auto v = [&](std::chrono::milliseconds d) -> uvkit::task<void> { co_await uvkit::sleep(loop, d); };
    auto t = [&]() -> uvkit::task<std::size_t> {
        auto r = co_await uvkit::when_any(v(50ms), v(1ms));
        static_assert(std::is_same_v<std::variant_alternative_t<1, decltype(r)>, std::monostate>);
        co_return r.index();
    };
    CHECK(uvkit::run(loop, t()) == 1);
}

}  // TEST_SUITE("co: when_any")

TEST_SUITE("co: cancellation") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: cancellation reaches nested children (when_all inside when_any)") {
    probe p;
    auto inner_all = [&]() -> uvkit::task<int> {
        auto [a, b] =
            co_await uvkit::when_all(long_sleep(loop, p, "all.a"), nested_long_sleep(loop, p, "all.b", 3));
        co_return a + b;
    };
    auto inner_any = [&]() -> uvkit::task<int> {
        auto r = co_await uvkit::when_any(long_sleep(loop, p, "any.a"), long_sleep(loop, p, "any.b"));
        co_return static_cast<int>(r.index());
    };
    auto t = [&]() -> uvkit::task<std::size_t> {
        auto r = co_await uvkit::when_any(inner_all(), inner_any(), after(loop, 9, 2ms));
        co_return r.index();
    };
    CHECK(uvkit::run(loop, t()) == 2);
    CHECK(p.cancelled == 4);
    CHECK(p.finished == 0);
    CHECK_FALSE(loop.alive());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a failing sibling cancels a when_any nested in when_all") {
    probe p;
    auto inner_any = [&]() -> uvkit::task<int> {
        auto r = co_await uvkit::when_any(long_sleep(loop, p, "x"), nested_long_sleep(loop, p, "y", 2));
        co_return static_cast<int>(r.index());
    };
    auto t = [&]() -> uvkit::task<void> {
        co_await uvkit::when_all(inner_any(), fail_after(loop, 2ms, "sibling"));
    };
    CHECK_THROWS_WITH(uvkit::run(loop, t()), "sibling");
    CHECK(p.cancelled == 2);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: with_timeout reports timed_out even if the cancelled task returns a value") {
    auto stubborn = [&]() -> uvkit::task<int> {
        std::error_code ec;
        co_await uvkit::sleep(loop, 1h, ec);
        co_return ec == uvkit::errc::canceled ? -1 : 1;
    };
    auto t = [&]() -> uvkit::task<int> {
        auto [a] = co_await uvkit::when_all(uvkit::with_timeout(loop, 2ms, stubborn()));
        co_return a;
    };
    // The deadline fired: with_timeout reports timed_out even though the task returned.
    CHECK_THROWS_AS(uvkit::run(loop, t()), std::system_error);
}

}  // TEST_SUITE("co: cancellation")

TEST_SUITE("co: with_timeout") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: with_timeout returns the value when in time") {
    CHECK(uvkit::run(loop, uvkit::with_timeout(loop, 1s, after(loop, 4, 1ms))) == 4);
    CHECK_FALSE(loop.alive());  // the deadline's timer is stopped
    auto v = [&]() -> uvkit::task<void> { co_await uvkit::sleep(loop, 1ms); };
    uvkit::run(loop, uvkit::with_timeout(loop, 1s, v()));
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: with_timeout throws timed_out and cancels the task on expiry") {
    probe p;
    auto t0 = loop.now();
    try {
        uvkit::run(loop, uvkit::with_timeout(loop, 10ms, long_sleep(loop, p, "slow")));
        FAIL("no timeout");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::timed_out);
    }
    CHECK(p.cancelled == 1);
    loop.update_time();
    CHECK(loop.now() - t0 >= 10ms);
    CHECK(loop.now() - t0 < 10s);
    CHECK_FALSE(loop.alive());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: with_timeout passes the task's own exception on") {
    CHECK_THROWS_WITH(uvkit::run(loop, uvkit::with_timeout(loop, 1s, fail_after(loop, 1ms, "own"))), "own");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: with_timeout cancelled from outside reports canceled, not timed_out") {
    probe p;
    std::error_code seen;
    auto guarded = [&]() -> uvkit::task<int> {
        try {
            co_return co_await uvkit::with_timeout(loop, 1h, long_sleep(loop, p, "inner"));
        } catch (const std::system_error& e) {
            seen = e.code();
            throw;
        }
    };
    auto t = [&]() -> uvkit::task<std::size_t> {
        auto r = co_await uvkit::when_any(guarded(), after(loop, 1, 2ms));
        co_return r.index();
    };
    CHECK(uvkit::run(loop, t()) == 1);
    CHECK(seen == uvkit::errc::canceled);
    CHECK(p.cancelled == 1);
}

}  // TEST_SUITE("co: with_timeout")

TEST_SUITE("co: task_group") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: task_group join waits for many children") {
    uvkit::task_group g{loop};
    int done = 0;
    auto child = [&](int i) -> uvkit::task<void> {
        co_await uvkit::sleep(loop, std::chrono::milliseconds(i % 7));
        ++done;
    };
    for (int i = 0; i < 200; ++i) g.spawn(child(i));
    CHECK(g.size() == 200);
    auto joiner = [&]() -> uvkit::task<void> { co_await g.join(); };
    uvkit::run(loop, joiner());
    CHECK(done == 200);
    CHECK(g.size() == 0);
    CHECK_FALSE(g.cancelled());
    // join() on an empty group completes at once; the group can be reused.
    uvkit::run(loop, joiner());
    g.spawn(child(1));
    uvkit::run(loop, joiner());
    CHECK(done == 201);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: task_group children spawned from a running task and from other children") {
    uvkit::task_group g{loop};
    int done = 0;
    std::function<uvkit::task<void>(int)> child = [&](int depth) -> uvkit::task<void> {
        co_await uvkit::sleep(loop, 1ms);
        if (depth > 0) {
            g.spawn(child(depth - 1));
            g.spawn(child(depth - 1));
        }
        ++done;
    };
    auto t = [&]() -> uvkit::task<void> {
        g.spawn(child(4));
        co_await g.join();
    };
    uvkit::run(loop, t());
    CHECK(done == 31);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a child exception cancels its siblings and join rethrows it") {
    uvkit::task_group g{loop};
    probe p;
    auto sib = [&](int i) -> uvkit::task<void> { co_await long_sleep(loop, p, "sib" + std::to_string(i)); };
    for (int i = 0; i < 5; ++i) g.spawn(sib(i));
    g.spawn(fail_after(loop, 2ms, "child failed"));
    bool all_stopped = false;
    auto t = [&]() -> uvkit::task<void> {
        try {
            co_await g.join();
        } catch (...) {
            all_stopped = g.size() == 0 && p.cancelled == 5;
            throw;
        }
    };
    CHECK_THROWS_WITH(uvkit::run(loop, t()), "child failed");
    CHECK(all_stopped);
    CHECK(g.cancelled());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: task_group cancel() stops every child, present and future") {
    uvkit::task_group g{loop};
    probe p;
    std::vector<std::error_code> seen;
    auto child = [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await uvkit::sleep(loop, 1h, ec);
        seen.push_back(ec);
    };
    for (int i = 0; i < 10; ++i) g.spawn(child());
    auto t = [&]() -> uvkit::task<void> {
        co_await uvkit::sleep(loop, 2ms);
        g.cancel();  // e.g. on shutdown
        g.spawn(child());
        co_await g.join();
    };
    auto t0 = loop.now();
    uvkit::run(loop, t());
    REQUIRE(seen.size() == 11);
    for (auto& ec : seen) CHECK(ec == uvkit::errc::canceled);
    loop.update_time();
    CHECK(loop.now() - t0 < 10s);
    CHECK(g.cancelled());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: cancelling the joiner cancels the children and join throws canceled") {
    uvkit::task_group g{loop};
    probe p;
    // Named: a coroutine lambda's captures live in the lambda object, which must outlive the task.
    auto child = [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await uvkit::sleep(loop, 1h, ec);
        if (ec) ++p.cancelled;
    };
    for (int i = 0; i < 3; ++i) g.spawn(child());
    std::error_code seen;
    auto joiner = [&]() -> uvkit::task<int> {
        try {
            co_await g.join();
        } catch (const std::system_error& e) {
            seen = e.code();
            CHECK(g.size() == 0);  // join waited for the children
            throw;
        }
        co_return 0;
    };
    auto t = [&]() -> uvkit::task<std::size_t> {
        auto r = co_await uvkit::when_any(joiner(), after(loop, 1, 2ms));
        co_return r.index();
    };
    CHECK(uvkit::run(loop, t()) == 1);
    CHECK(seen == uvkit::errc::canceled);
    CHECK(p.cancelled == 3);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: destroying a task_group with running children destroys them") {
    bool destroyed[5] = {};
    {
        uvkit::task_group g{loop};
        for (int i = 0; i < 5; ++i) {
            g.spawn([](uvkit::loop& l, bool* d) -> uvkit::task<void> {
                destroy_flag f{d};
                co_await uvkit::sleep(l, 1h);
            }(loop, &destroyed[i]));
        }
        // One child waits on a nested when_all, one on a nested task_group.
        g.spawn([](uvkit::loop& l) -> uvkit::task<void> {
            co_await uvkit::when_all(after(l, 1, 1h), after(l, 2, 1h));
        }(loop));
        g.spawn([](uvkit::loop& l) -> uvkit::task<void> {
            uvkit::task_group inner{l};
            inner.spawn([](uvkit::loop& x) -> uvkit::task<void> { co_await uvkit::sleep(x, 1h); }(l));
            co_await inner.join();
        }(loop));
        CHECK(g.size() == 7);
        CHECK(loop.alive());
    }
    for (bool d : destroyed) CHECK(d);
    CHECK_FALSE(loop.alive());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a task_group that outlives a destroyed joiner") {
    // The coroutine awaiting join() is destroyed while the group and its
    // children live on: a later finishing child must not resume freed memory.
    auto g = std::make_unique<uvkit::task_group>(loop);
    g->spawn([](uvkit::loop& l) -> uvkit::task<void> { co_await uvkit::sleep(l, 5ms); }(loop));
    {
        auto joiner = [](uvkit::task_group& grp) -> uvkit::task<void> { co_await grp.join(); }(*g);
        start(joiner);
        CHECK_FALSE(joiner.done());
    }
    run_until([&] { return g->size() == 0; }, 5s);
    CHECK(g->size() == 0);
    g.reset();
}

}  // TEST_SUITE("co: task_group")
