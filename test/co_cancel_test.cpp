// cancel_source/cancel_token, join_handle, with_deadline, shielded, bounded task_group.
#include <uvkit/co/cancel_token.hpp>
#include <uvkit/co/join_handle.hpp>

#include "fixture.hpp"

#include <uvkit/uvkit.hpp>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "co_util.hpp"

using namespace std::chrono_literals;
using uvkit_co_test::destroy_flag;

namespace {

bool is_canceled(const std::system_error& e) { return e.code() == uvkit::errc::canceled; }

/// Sleeps 1 h unless cancelled; counts how it ended.
struct outcome {
    int started = 0;
    int cancelled = 0;
    int finished = 0;
};
uvkit::task<int> sleeper(uvkit::loop& l, outcome& o, std::chrono::milliseconds d = 1h) {
    ++o.started;
    std::error_code ec;
    co_await uvkit::sleep(l, d, ec);
    if (ec == uvkit::errc::canceled) {
        ++o.cancelled;
        throw std::system_error(ec, "sleeper");
    }
    ++o.finished;
    co_return 7;
}

uvkit::task<int> ready(int v) { co_return v; }
uvkit::task<int> throws_now() {
    throw std::runtime_error("boom");
    co_return 0;
}

}  // namespace

TEST_SUITE("co: cancel tokens") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a cancel_source cancels a task spawned under its token") {
    uvkit::cancel_source src;
    outcome o;
    auto h = uvkit::spawn(loop, sleeper(loop, o), src.token());
    CHECK(o.started == 1);
    CHECK_FALSE(src.cancel_requested());
    uvkit::timer t{loop};
    t.start(1ms, [&] { CHECK(src.cancel()); });
    auto waiter = [&]() -> uvkit::task<bool> {
        try {
            co_await h;
        } catch (const std::system_error& e) {
            co_return is_canceled(e);
        }
        co_return false;
    };
    CHECK(uvkit::run(loop, waiter()));
    CHECK(o.cancelled == 1);
    CHECK_FALSE(src.cancel());  // the first call won
    CHECK(src.cancel_requested());
    CHECK(src.token().cancel_requested());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: run() under a token; a token cancelled before the start") {
    uvkit::cancel_source src;
    src.cancel();
    outcome o;
    CHECK_THROWS_AS(uvkit::run(loop, sleeper(loop, o), src.token()), std::system_error);
    CHECK(o.started == 1);  // it ran until its first operation, which was cancelled at once
    CHECK(o.cancelled == 1);

    // A default token never cancels; a task under it runs to its end.
    uvkit::cancel_token never;
    CHECK_FALSE(never.can_be_cancelled());
    CHECK(uvkit::run(loop, sleeper(loop, o, 1ms), never) == 7);
    CHECK(o.finished == 1);
    // A token that is never cancelled leaves the task alone too.
    uvkit::cancel_source idle;
    CHECK(idle.token().can_be_cancelled());
    CHECK(uvkit::run(loop, ready(3), idle.token()) == 3);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a token cancelled from another thread cancels through the loop") {
    uvkit::cancel_source src;
    outcome o;
    auto body = [&]() -> uvkit::task<int> { co_return co_await sleeper(loop, o); };
    std::thread canceller;
    uvkit::timer t{loop};
    // Cancelled from a thread once the task is suspended (the timer fires after it started).
    t.start(0ms, [&] { canceller = std::thread([&] { src.cancel(); }); });
    CHECK_THROWS_AS(uvkit::run(loop, body(), src.token()), std::system_error);
    canceller.join();
    CHECK(o.cancelled == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: threads: 10000 cross-thread cancels while tasks start and finish") {
    // One canceller thread; each round hands it a fresh source, spawns a task
    // under its token (half sleep 1 h, half finish at once or after 0 ms), and
    // waits for the task. Every task ends exactly once, cancelled or finished.
    std::mutex m;
    std::condition_variable cv;
    std::vector<uvkit::cancel_source> inbox;
    bool quit = false;
    std::thread canceller([&] {
        std::unique_lock lk(m);
        for (;;) {
            cv.wait(lk, [&] { return quit || !inbox.empty(); });
            if (inbox.empty() && quit) return;
            auto batch = std::move(inbox);
            inbox.clear();
            lk.unlock();
            for (auto& s : batch) s.cancel();
            lk.lock();
        }
    });
    constexpr int rounds = 10000;
    outcome o;
    int ended = 0;
    auto one = [&](int i) -> uvkit::task<void> {
        uvkit::cancel_source src;
        auto h = uvkit::spawn(loop, sleeper(loop, o, i % 2 ? 1h : 0ms), src.token());
        {
            std::lock_guard lk(m);
            inbox.push_back(src);
        }
        cv.notify_one();
        try {
            co_await h;
        } catch (const std::system_error& e) {
            CHECK(is_canceled(e));
        }
        ++ended;
    };
    auto all = [&]() -> uvkit::task<void> {
        for (int i = 0; i < rounds; ++i) co_await one(i);
    };
    uvkit::run(loop, all());
    {
        std::lock_guard lk(m);
        quit = true;
    }
    cv.notify_one();
    canceller.join();
    CHECK(ended == rounds);
    CHECK(o.started == rounds);
    CHECK(o.cancelled + o.finished == rounds);
    CHECK(o.cancelled >= rounds / 2);  // every 1 h sleeper was cancelled
}

#if UVKIT_HAS_STOP_TOKEN
TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: std::stop_token and cancel_token interoperate both ways") {
    // A std::stop_token cancels a uvkit task.
    std::stop_source ss;
    outcome o;
    uvkit::timer t{loop};
    t.start(1ms, [&] { ss.request_stop(); });
    CHECK_THROWS_AS(uvkit::run(loop, sleeper(loop, o), ss.get_token()), std::system_error);
    CHECK(o.cancelled == 1);

    // A uvkit token is handed to code that takes std::stop_token.
    uvkit::cancel_source src;
    std::stop_token st = src.token();
    int called = 0;
    std::stop_callback cb(st, [&] { ++called; });
    CHECK_FALSE(st.stop_requested());
    src.cancel();
    CHECK(st.stop_requested());
    CHECK(called == 1);
    // And a source adopts a std::stop_source: either side cancels both.
    std::stop_source outer;
    uvkit::cancel_source adopted{outer};
    outer.request_stop();
    CHECK(adopted.cancel_requested());
    CHECK(adopted.stop_source().stop_requested());
}
#endif

TEST_CASE("co: cancel_callback runs once, at once if already cancelled, never after its destruction") {
    uvkit::cancel_source src;
    int calls = 0;
    {
        uvkit::cancel_callback cb(src.token(), [&]() noexcept { ++calls; });
        {
            uvkit::cancel_callback gone(src.token(), [&]() noexcept { calls += 100; });
        }
        src.cancel();
        src.cancel();
        CHECK(calls == 1);
    }
    uvkit::cancel_callback late(src.token(), [&]() noexcept { ++calls; });
    CHECK(calls == 2);
}

}  // TEST_SUITE

TEST_SUITE("co: join handles") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: co_await a join_handle gives the value or rethrows") {
    auto t = [&]() -> uvkit::task<int> {
        auto a = uvkit::spawn(loop, ready(5));
        CHECK(a.done());  // it ran to its end inside spawn()
        auto b = uvkit::spawn(loop, [](uvkit::loop& l) -> uvkit::task<int> {
            co_await uvkit::sleep(l, 1ms);
            co_return 6;
        }(loop));
        CHECK_FALSE(b.done());
        auto c = uvkit::spawn(loop, throws_now());
        int sum = co_await a + co_await b;
        CHECK(b.done());
        CHECK_THROWS_AS(co_await c, std::runtime_error);
        co_return sum;
    };
    CHECK(uvkit::run(loop, t()) == 11);
    CHECK_FALSE(loop.run(uvkit::run_mode::nowait));
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a join_handle destroyed before its task finished cancels it") {
    outcome o;
    bool freed = false;
    auto body = [&]() -> uvkit::task<int> {
        destroy_flag f(&freed);
        co_return co_await sleeper(loop, o);
    };
    { auto h = uvkit::spawn(loop, body()); }
    CHECK(o.started == 1);
    CHECK_FALSE(freed);  // cancelled, not destroyed: it stops at its operation, soon
    loop.run();          // and its errc::canceled does not leave run()
    CHECK(o.cancelled == 1);
    CHECK(freed);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a join_handle destroyed while its task runs, and after it finished") {
    // During: the task itself drops its own handle while it runs.
    std::optional<uvkit::join_handle<int>> self;
    outcome o;
    auto body = [&]() -> uvkit::task<int> {
        co_await uvkit::sleep(loop, 0ms);
        self.reset();  // cancels the task that is running this line
        co_return co_await sleeper(loop, o);
    };
    self.emplace(uvkit::spawn(loop, body()));
    loop.run();
    CHECK(o.cancelled == 1);

    // After: the frame (and the parameter it holds) waits for the handle, which frees it.
    auto token = std::make_shared<int>(0);
    auto quick = [](std::shared_ptr<int>) -> uvkit::task<int> { co_return 1; };
    {
        auto h = uvkit::spawn(loop, quick(token));
        CHECK(h.done());
        CHECK(token.use_count() == 2);
    }
    CHECK(token.use_count() == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: detach() lets it run; an exception nobody awaits leaves run()") {
    outcome o;
    uvkit::spawn(loop, sleeper(loop, o, 1ms)).detach();
    loop.run();
    CHECK(o.finished == 1);

    uvkit::spawn(loop,
                 [](uvkit::loop& l) -> uvkit::task<void> {
                     co_await uvkit::sleep(l, 1ms);
                     throw std::runtime_error("detached");
                 }(loop))
        .detach();
    CHECK(run_until_throw() == "detached");

    // Dropped unawaited after it threw: the exception is not lost either.
    { auto h = uvkit::spawn(loop, throws_now()); }
    CHECK(run_until_throw() == "boom");

    // Detached after it finished: freed at once; its exception leaves run().
    auto h = uvkit::spawn(loop, throws_now());
    h.detach();
    CHECK_FALSE(h);
    CHECK(run_until_throw() == "boom");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: h.cancel(), and cancelling the awaiter cancels the joined task") {
    outcome o;
    auto h = uvkit::spawn(loop, sleeper(loop, o));
    h.cancel();
    auto t = [&]() -> uvkit::task<bool> {
        try {
            co_await h;
        } catch (const std::system_error& e) {
            co_return is_canceled(e);
        }
        co_return false;
    };
    CHECK(uvkit::run(loop, t()));
    CHECK(o.cancelled == 1);

    // The awaiter is cancelled (by with_timeout): the joined task is cancelled with it.
    auto h2 = uvkit::spawn(loop, sleeper(loop, o));
    auto join = [&]() -> uvkit::task<int> { co_return co_await h2; };
    CHECK_THROWS_AS(uvkit::run(loop, uvkit::with_timeout(loop, 1ms, join())), std::system_error);
    CHECK(o.cancelled == 2);
    CHECK(h2.done());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: the awaiting frame destroyed while it waits on a handle") {
    outcome o;
    auto h = uvkit::spawn(loop, sleeper(loop, o, 1ms));
    {
        auto join = [&]() -> uvkit::task<int> { co_return co_await h; };
        auto t = join();
        uvkit_co_test::start(t);
        CHECK_FALSE(t.done());
    }  // the joiner goes; the task runs on under its handle
    loop.run();
    CHECK(o.finished == 1);
    CHECK(h.done());
    auto again = [&]() -> uvkit::task<int> { co_return co_await h; };
    CHECK(uvkit::run(loop, again()) == 7);
}

TEST_CASE("co: a loop destroyed under a spawned task empties its handle") {
    auto l = std::make_unique<uvkit::loop>();
    outcome o;
    auto h = uvkit::spawn(*l, sleeper(*l, o));
    auto moved = std::move(h);
    CHECK_FALSE(h);
    CHECK(moved);
    l.reset();
    CHECK_FALSE(moved);
    CHECK_FALSE(moved.done());
    CHECK_THROWS_AS((void)uvkit::spawn(*std::make_unique<uvkit::loop>(), uvkit::task<int>{}),
                    std::invalid_argument);
}

}  // TEST_SUITE

TEST_SUITE("co: deadlines and shields") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: with_deadline on the loop's clock, and on steady_clock") {
    CHECK(uvkit::loop_clock::now(loop).time_since_epoch().count() == loop.now().count());
    outcome o;
    auto t = [&]() -> uvkit::task<int> {
        auto until = uvkit::loop_clock::now(loop) + 1h;
        int a = co_await uvkit::with_deadline(loop, until, ready(1));
        int b = co_await uvkit::with_deadline(loop, until, sleeper(loop, o, 1ms));
        // A deadline already past: the task starts, and is cancelled at the next timer pass.
        try {
            co_await uvkit::with_deadline(loop, uvkit::loop_clock::now(loop) - 1s, sleeper(loop, o));
            co_return -1;
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::timed_out);
        }
        try {
            co_await uvkit::with_deadline(loop, std::chrono::steady_clock::now() - 1ms,
                                          uvkit::sleep(loop, 1h));
            co_return -1;
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::timed_out);
        }
        int c = co_await uvkit::with_deadline(loop, std::chrono::steady_clock::now() + 1h, ready(3));
        co_return a + b + c;
    };
    CHECK(uvkit::run(loop, t()) == 11);
    CHECK(o.cancelled == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: with_timeout takes any std::chrono::duration") {
    outcome o;
    auto t = [&]() -> uvkit::task<int> {
        int a =
            co_await uvkit::with_timeout(loop, std::chrono::microseconds(1), ready(1));  // rounds up to 1 ms
        int b = co_await uvkit::with_timeout(loop, std::chrono::hours(1), ready(2));
        int c = co_await uvkit::with_timeout(loop, std::chrono::duration<double>(3600.0), ready(3));
        try {
            co_await uvkit::with_timeout(loop, std::chrono::nanoseconds(1), sleeper(loop, o));
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::timed_out);
        }
        co_return a + b + c;
    };
    CHECK(uvkit::run(loop, t()) == 6);
    CHECK(o.cancelled == 1);
    CHECK_THROWS_AS((void)uvkit::with_timeout(loop, 1s, uvkit::task<int>{}), std::invalid_argument);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: cancelling a parent while its child is in a shield") {
    std::vector<std::string> events;
    auto cleanup = [&]() -> uvkit::task<int> {
        events.push_back("cleanup starts");
        co_await uvkit::sleep(loop, 2ms);  // not interrupted by the parent's cancellation
        events.push_back("cleanup done");
        co_return 9;
    };
    auto parent = [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await uvkit::sleep(loop, 1h, ec);
        events.push_back("parent " + std::string(ec == uvkit::errc::canceled ? "cancelled" : "woke"));
        events.push_back("shield gave " + std::to_string(co_await uvkit::shielded(loop, 1h, cleanup())));
        co_await uvkit::sleep(loop, 1h, ec);  // still cancelled: sticky
        events.push_back(ec == uvkit::errc::canceled ? "next sleep cancelled" : "next sleep woke");
    };
    auto h = uvkit::spawn(loop, parent());
    uvkit::timer t{loop};
    t.start(1ms, [&] { h.cancel(); });
    loop.run();
    CHECK(h.done());
    std::vector<std::string> want{"parent cancelled", "cleanup starts", "cleanup done", "shield gave 9",
                                  "next sleep cancelled"};
    CHECK(events == want);

    // Cancelled while inside the shield: the cleanup still finishes.
    events.clear();
    auto inside = [&]() -> uvkit::task<void> {
        events.push_back("shield gave " + std::to_string(co_await uvkit::shielded(loop, 1h, cleanup())));
    };
    auto h2 = uvkit::spawn(loop, inside());
    h2.cancel();  // the shield's child sleeps: the request does not reach it
    loop.run();
    std::vector<std::string> want2{"cleanup starts", "cleanup done", "shield gave 9"};
    CHECK(events == want2);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a shield is bounded by its own timeout") {
    outcome o;
    auto t = [&]() -> uvkit::task<bool> {
        try {
            co_await uvkit::shielded(loop, 1ms, sleeper(loop, o));
        } catch (const std::system_error& e) {
            co_return e.code() == std::errc::timed_out;
        }
        co_return false;
    };
    CHECK(uvkit::run(loop, t()));
    CHECK(o.cancelled == 1);
    // Over an operation, awaited in place.
    auto u = [&]() -> uvkit::task<void> { co_await uvkit::shielded(loop, 1h, uvkit::sleep(loop, 1ms)); };
    uvkit::run(loop, u());
}

}  // TEST_SUITE

TEST_SUITE("co: bounded task_group") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a burst of 1000 spawns never runs more than N at once") {
    constexpr std::size_t n = 7;
    uvkit::task_group g{loop, n};
    std::size_t running = 0, most = 0, done = 0;
    auto child = [&](int i) -> uvkit::task<void> {
        ++running;
        most = std::max(most, running);
        CHECK(g.size() <= n);
        if (i % 3 == 0) co_await uvkit::sleep(loop, 0ms);
        if (i % 3 == 1) co_await uvkit::sleep(loop, 1ms);
        --running;
        ++done;
    };
    for (int i = 0; i < 1000; ++i) (void)g.spawn(child(i));
    CHECK(g.size() <= n);
    CHECK(g.size() + g.queued() + done == 1000);
    auto joiner = [&]() -> uvkit::task<void> { co_await g.join(); };
    uvkit::run(loop, joiner());
    CHECK(done == 1000);
    CHECK(most == n);
    CHECK(g.size() == 0);
    CHECK(g.queued() == 0);
    CHECK_THROWS_AS(uvkit::task_group(loop, 0), std::invalid_argument);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_spawn waits for a free slot") {
    uvkit::task_group g{loop, 3};
    std::size_t running = 0, most = 0, done = 0;
    int waits = 0;
    auto child = [&]() -> uvkit::task<int> {
        ++running;
        most = std::max(most, running);
        co_await uvkit::sleep(loop, 1ms);
        --running;
        ++done;
        co_return 1;
    };
    auto producer = [&]() -> uvkit::task<int> {
        int sum = 0;
        std::vector<uvkit::join_handle<int>> hs;
        for (int i = 0; i < 50; ++i) {
            if (g.size() == 3) ++waits;
            hs.push_back(co_await g.async_spawn(child()));
            CHECK(g.size() <= 3);
            CHECK(g.queued() == 0);
        }
        for (auto& h : hs) sum += co_await h;
        co_await g.join();
        co_return sum;
    };
    CHECK(uvkit::run(loop, producer()) == 50);
    CHECK(most == 3);
    CHECK(waits > 0);
    CHECK(done == 50);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a cancelled async_spawn starts nothing; group handles") {
    uvkit::task_group g{loop, 1};
    outcome o;
    auto first = g.spawn(sleeper(loop, o));
    bool started = false;
    auto never = [&]() -> uvkit::task<int> {
        started = true;
        co_return 0;
    };
    auto spawner = [&]() -> uvkit::task<bool> {
        try {
            (void)co_await g.async_spawn(never());
        } catch (const std::system_error& e) {
            co_return is_canceled(e);
        }
        co_return false;
    };
    CHECK_THROWS_AS(uvkit::run(loop, uvkit::with_timeout(loop, 1ms, spawner())), std::system_error);
    auto h = uvkit::spawn(loop, spawner());
    h.cancel();
    auto t = [&]() -> uvkit::task<bool> { co_return co_await h; };
    CHECK(uvkit::run(loop, t()));
    CHECK_FALSE(started);
    // A group child's handle: cancel() cancels that child alone; co_await gives its result.
    first.cancel();
    auto j = [&]() -> uvkit::task<bool> {
        try {
            co_await first;
        } catch (const std::system_error& e) {
            co_return is_canceled(e);
        }
        co_return false;
    };
    CHECK(uvkit::run(loop, j()));
    CHECK(o.cancelled == 1);
    CHECK_FALSE(g.cancelled());
    // Dropping a group child's handle leaves it to the group: it is not cancelled.
    { auto dropped = g.spawn(sleeper(loop, o, 1ms)); }
    auto joiner = [&]() -> uvkit::task<void> { co_await g.join(); };
    uvkit::run(loop, joiner());
    CHECK(o.finished == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a bounded group destroyed with queued children and a waiting spawner") {
    auto token = std::make_shared<int>(0);
    outcome o;
    bool spawner_cancelled = false;
    auto queued = [](std::shared_ptr<int>) -> uvkit::task<void> { co_return; };
    std::optional<uvkit::task_group> g;
    g.emplace(loop, 1);
    (void)g->spawn(sleeper(loop, o));
    (void)g->spawn(queued(token));
    CHECK(token.use_count() == 2);
    CHECK(g->queued() == 1);
    auto spawner = [&]() -> uvkit::task<void> {
        try {
            (void)co_await g->async_spawn(sleeper(loop, o));
        } catch (const std::system_error& e) {
            spawner_cancelled = is_canceled(e);
        }
    };
    auto h = uvkit::spawn(loop, spawner());
    CHECK_FALSE(h.done());
    g.reset();
    CHECK(token.use_count() == 1);  // the queued frame, never started, is freed
    loop.run();
    CHECK(spawner_cancelled);
    CHECK(o.started == 1);
}

}  // TEST_SUITE
