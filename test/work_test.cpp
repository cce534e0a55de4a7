// uvkit::work and uvkit::async_work: libuv's thread pool.
#include "fixture.hpp"

#include <uvkit/uvkit.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "co_util.hpp"
#include "pool_gate.hpp"

using namespace std::chrono_literals;
using uvkit_test::pool_gate;

TEST_SUITE("work") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "work: fn runs on a pool thread, done on the loop thread") {
    const auto loop_thread = std::this_thread::get_id();
    std::thread::id fn_thread, done_thread;
    int calls = 0;
    int value = 0;
    std::error_code err = uvkit::errc::unknown;
    auto req = uvkit::work(
        loop,
        [&] {
            fn_thread = std::this_thread::get_id();
            return 42;
        },
        [&](std::error_code ec, uvkit::work_result<int> r) {
            ++calls;
            done_thread = std::this_thread::get_id();
            err = ec;
            CHECK(r.has_value());
            CHECK_FALSE(r.exception());
            value = r.value();
        });
    CHECK(req.pending());
    run_all();
    CHECK(calls == 1);
    CHECK_FALSE(err);
    CHECK(value == 42);
    CHECK(fn_thread != loop_thread);
    CHECK(done_thread == loop_thread);
    CHECK_FALSE(req.pending());
    CHECK_FALSE(req.cancel());  // completed: nothing to cancel
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "work: a void fn") {
    std::atomic<int> ran{0};
    int calls = 0;
    uvkit::work(
        loop, [&] { ++ran; },
        [&](std::error_code ec, uvkit::work_result<void> r) {
            ++calls;
            CHECK_FALSE(ec);
            CHECK(r.has_value());
            CHECK_NOTHROW(r.value());
        })
        .detach();
    run_all();
    CHECK(ran == 1);
    CHECK(calls == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "work: fn's exception is delivered to done") {
    int calls = 0;
    auto req = uvkit::work(
        loop, []() -> int { throw std::runtime_error("boom on the pool"); },
        [&](std::error_code ec, uvkit::work_result<int> r) {
            ++calls;
            CHECK_FALSE(ec);
            CHECK_FALSE(r.has_value());
            CHECK(r.exception());
            CHECK_THROWS_WITH_AS(r.value(), "boom on the pool", std::runtime_error);
        });
    run_all();
    CHECK(calls == 1);

    // A void fn's exception too.
    bool got = false;
    auto req2 = uvkit::work(
        loop, [] { throw std::logic_error("void boom"); },
        [&](std::error_code, uvkit::work_result<void> r) {
            got = true;
            CHECK_THROWS_AS(r.value(), std::logic_error);
        });
    run_all();
    CHECK(got);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "work: move-only fn and result") {
    auto in = std::make_unique<std::string>("payload");
    std::unique_ptr<std::string> out;
    auto req = uvkit::work(
        loop, [p = std::move(in)]() mutable { return std::make_unique<std::string>(*p + "!"); },
        [&](std::error_code ec, uvkit::work_result<std::unique_ptr<std::string>> r) {
            REQUIRE_FALSE(ec);
            out = std::move(r).value();
        });
    run_all();
    REQUIRE(out);
    CHECK(*out == "payload!");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "work: cancelled while queued gets errc::canceled; fn never runs") {
    pool_gate gate{loop};
    std::atomic<bool> ran{false};
    int calls = 0;
    std::error_code err;
    bool had_value = true;
    auto req = uvkit::work(
        loop, [&] { ran = true; },
        [&](std::error_code ec, uvkit::work_result<void> r) {
            ++calls;
            err = ec;
            had_value = r.has_value();
            CHECK(r.error() == uvkit::errc::canceled);
            CHECK_THROWS_AS(r.value(), std::system_error);
        });
    CHECK(req.cancel());
    CHECK(req.cancel());  // idempotent
    CHECK(calls == 0);    // never from inside cancel()
    CHECK(req.pending());
    run_until([&] { return calls == 1; });
    CHECK(err == uvkit::errc::canceled);
    CHECK(err == std::errc::operation_canceled);
    CHECK_FALSE(had_value);
    gate.release();
    run_until([&] { return gate.all_finished(); });
    CHECK_FALSE(ran);
    CHECK(calls == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "work: cancel() of a running fn fails; the result arrives") {
    pool_gate gate{loop};
    // Occupy one more "thread" slot: our fn is queued; release the gate so it runs,
    // then wait for it to be running before cancelling.
    std::mutex m;
    std::condition_variable cv;
    bool running = false, go = false;
    int calls = 0, value = 0;
    auto req = uvkit::work(
        loop,
        [&] {
            std::unique_lock<std::mutex> lock(m);
            running = true;
            cv.notify_all();
            cv.wait_for(lock, 20s, [&] { return go; });
            return 5;
        },
        [&](std::error_code ec, uvkit::work_result<int> r) {
            ++calls;
            CHECK_FALSE(ec);
            value = r.value();
        });
    gate.release();
    {
        std::unique_lock<std::mutex> lock(m);
        REQUIRE(cv.wait_for(lock, 20s, [&] { return running; }));
    }
    CHECK_FALSE(req.cancel());  // UV_EBUSY: it runs
    {
        std::lock_guard<std::mutex> lock(m);
        go = true;
        cv.notify_all();
    }
    run_until([&] { return calls == 1 && gate.all_finished(); });
    CHECK(value == 5);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "work: destroying a pending request cancels it; done still runs once") {
    pool_gate gate{loop};
    std::atomic<bool> ran{false};
    int calls = 0;
    std::error_code err;
    {
        auto req = uvkit::work(
            loop, [&] { ran = true; },
            [&](std::error_code ec, uvkit::work_result<void>) {
                ++calls;
                err = ec;
            });
    }
    CHECK(calls == 0);
    run_until([&] { return calls == 1; });
    CHECK(err == uvkit::errc::canceled);

    // Assigning over a pending request cancels the old one too; moving keeps it alive.
    int a_calls = 0, b_calls = 0;
    std::error_code a_err, b_err = uvkit::errc::unknown;
    auto a = uvkit::work(
        loop, [] { return 1; },
        [&](std::error_code ec, uvkit::work_result<int>) {
            ++a_calls;
            a_err = ec;
        });
    uvkit::work_request moved = std::move(a);
    CHECK_FALSE(a.pending());
    CHECK(moved.pending());
    moved = uvkit::work(
        loop, [] { return 2; },
        [&](std::error_code ec, uvkit::work_result<int> r) {
            ++b_calls;
            b_err = ec;
            CHECK(r.value() == 2);
        });
    gate.release();
    run_until([&] { return a_calls == 1 && b_calls == 1 && gate.all_finished(); });
    CHECK(a_err == uvkit::errc::canceled);
    CHECK_FALSE(b_err);
    CHECK_FALSE(ran);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "work: destroying the request object inside done is fine") {
    std::unique_ptr<uvkit::work_request> holder;
    int calls = 0;
    holder = std::make_unique<uvkit::work_request>(uvkit::work(
        loop, [] { return 3; },
        [&](std::error_code, uvkit::work_result<int> r) {
            ++calls;
            CHECK_FALSE(holder->pending());
            holder.reset();
            CHECK(r.value() == 3);
        }));
    run_all();
    CHECK(calls == 1);
    CHECK_FALSE(holder);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "work: 1000 requests each complete exactly once") {
    constexpr int n = 1000;
    std::vector<int> done(n, 0);
    std::vector<uvkit::work_request> reqs;
    long long sum = 0;
    for (int i = 0; i < n; ++i)
        reqs.push_back(uvkit::work(
            loop, [i] { return static_cast<long long>(i) * i; },
            [&, i](std::error_code ec, uvkit::work_result<long long> r) {
                REQUIRE_FALSE(ec);
                ++done[static_cast<std::size_t>(i)];
                sum += r.value();
            }));
    run_all();
    for (int d : done) REQUIRE(d == 1);
    CHECK(sum == 332833500LL);  // sum of i^2 for i < 1000
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "work: an exception thrown by done leaves loop.run()") {
    auto req = uvkit::work(
        loop, [] {},
        [](std::error_code, uvkit::work_result<void>) { throw std::runtime_error("from done"); });
    CHECK_THROWS_WITH_AS(loop.run(), "from done", std::runtime_error);
    run_all();
}

TEST_CASE("work: destroying the loop cancels queued work and waits for running work") {
    std::atomic<int> ran{0};
    int calls = 0, canceled = 0;
    {
        uvkit::loop l;
        for (int i = 0; i < 20; ++i)
            uvkit::work(
                l, [&] { ++ran; },
                [&](std::error_code ec, uvkit::work_result<void>) {
                    ++calls;
                    if (ec == uvkit::errc::canceled) ++canceled;
                })
                .detach();
    }
    CHECK(calls == 20);  // every handler ran, during the destructor
    CHECK(ran + canceled == 20);
}

}  // TEST_SUITE("work")

namespace {

uvkit::task<int> work_value(uvkit::loop& l) {
    int v = co_await uvkit::async_work(l, [] { return 6 * 7; });
    co_return v;
}

uvkit::task<void> work_void(uvkit::loop& l, std::atomic<int>& hits) {
    co_await uvkit::async_work(l, [&] { ++hits; });
}

uvkit::task<int> work_throws(uvkit::loop& l) {
    co_return co_await uvkit::async_work(l, []() -> int { throw std::runtime_error("pool says no"); });
}

uvkit::task<std::unique_ptr<int>> work_move_only(uvkit::loop& l) {
    auto p = std::make_unique<int>(9);
    // A named lambda: GCC 12 miscompiles a lambda temporary whose init-capture
    // has a destructor inside a co_await expression (its capture is destroyed
    // twice), whatever the awaitable; clang is fine.
    auto fn = [p = std::move(p)]() mutable { return std::move(p); };
    co_return co_await uvkit::async_work(l, std::move(fn));
}

uvkit::task<int> work_blocked(uvkit::loop& l, std::atomic<bool>& ran, int& seen) {
    int v = co_await uvkit::async_work(l, [&] {
        ran = true;
        return 11;
    });
    seen = v;
    co_return v;
}

}  // namespace

TEST_SUITE("co: work") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_work returns fn's value") {
    CHECK(uvkit::run(loop, work_value(loop)) == 42);
    std::atomic<int> hits{0};
    uvkit::run(loop, work_void(loop, hits));
    CHECK(hits == 1);
    auto p = uvkit::run(loop, work_move_only(loop));
    REQUIRE(p);
    CHECK(*p == 9);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_work rethrows fn's exception") {
    CHECK_THROWS_WITH_AS(uvkit::run(loop, work_throws(loop)), "pool says no", std::runtime_error);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: with_timeout cancels a queued async_work") {
    pool_gate gate{loop};
    std::atomic<bool> ran{false};
    int seen = -1;
    auto t = uvkit::with_timeout(loop, 20ms, work_blocked(loop, ran, seen));
    try {
        uvkit::run(loop, std::move(t));
        FAIL("expected timed_out");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::timed_out);
    }
    CHECK_FALSE(ran);
    CHECK(seen == -1);  // the cancelled co_await threw errc::canceled
    gate.release();
    run_until([&] { return gate.all_finished(); });
    CHECK_FALSE(ran);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a cancelled async_work that already runs waits for its result") {
    std::mutex m;
    std::condition_variable cv;
    bool go = false;
    std::atomic<bool> running{false};
    int seen = -1;
    auto slow = [&]() -> uvkit::task<int> {
        int v = co_await uvkit::async_work(loop, [&] {
            running = true;
            std::unique_lock<std::mutex> lock(m);
            cv.wait_for(lock, 20s, [&] { return go; });
            return 17;
        });
        seen = v;
        co_return v;
    };
    // Finishes as soon as fn runs, so that when_any cancels slow() while fn
    // runs; a timer then lets fn return.
    uvkit::timer opener{loop};
    auto trigger = [&]() -> uvkit::task<void> {
        for (int i = 0; i < 20000 && !running; ++i) co_await uvkit::sleep(loop, 1ms);
        opener.start(20ms, [&] {
            std::lock_guard<std::mutex> lock(m);
            go = true;
            cv.notify_all();
        });
    };
    auto both = [&]() -> uvkit::task<std::size_t> {
        co_return (co_await uvkit::when_any(slow(), trigger())).index();
    };
    CHECK(uvkit::run(loop, both()) == 1);
    CHECK(running);
    CHECK(seen == 17);  // cancel() could not stop it: the awaiter waited and delivered the result
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: non-throwing async_work stores errc::canceled") {
    pool_gate gate{loop};
    std::error_code ec;
    int got = -1;
    auto body = [&]() -> uvkit::task<void> {
        got = co_await uvkit::async_work(
            loop, [] { return 1; }, ec);
    };
    auto t = uvkit::with_timeout(loop, 10ms, body());
    CHECK_THROWS_AS(uvkit::run(loop, std::move(t)), std::system_error);
    CHECK(ec == uvkit::errc::canceled);
    CHECK(got == 0);  // value-initialised
    gate.release();
    run_until([&] { return gate.all_finished(); });

    auto ok = [&]() -> uvkit::task<void> {
        got = co_await uvkit::async_work(
            loop, [] { return 8; }, ec);
    };
    uvkit::run(loop, ok());
    CHECK_FALSE(ec);
    CHECK(got == 8);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: destroying a task suspended on queued work") {
    pool_gate gate{loop};
    std::atomic<bool> ran{false};
    int seen = -1;
    {
        auto t = work_blocked(loop, ran, seen);
        uvkit_co_test::start(t);
    }  // destroyed while suspended: the work is cancelled and never calls back
    gate.release();
    run_until([&] { return gate.all_finished(); });
    run_all();
    CHECK_FALSE(ran);
    CHECK(seen == -1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: destroying a task suspended on running work") {
    std::mutex m;
    std::condition_variable cv;
    bool go = false;
    auto running = std::make_shared<std::atomic<bool>>(false);
    auto finished = std::make_shared<std::atomic<bool>>(false);
    bool resumed = false;
    auto body = [&]() -> uvkit::task<void> {
        // Captures by value what outlives the frame (see uvkit/co/work.hpp).
        auto fn = [&m, &cv, &go, running, finished] {
            *running = true;
            std::unique_lock<std::mutex> lock(m);
            cv.wait_for(lock, 20s, [&] { return go; });
            *finished = true;
            return std::vector<int>(1000, 1);
        };
        auto big = co_await uvkit::async_work(loop, std::move(fn));
        (void)big;
        resumed = true;
    };
    {
        auto t = body();
        uvkit_co_test::start(t);
        auto limit = std::chrono::steady_clock::now() + 20s;
        while (!*running && std::chrono::steady_clock::now() < limit) std::this_thread::yield();
        REQUIRE(*running);
    }
    {
        std::lock_guard<std::mutex> lock(m);
        go = true;
        cv.notify_all();
    }
    run_all();  // the completion arrives; the result is dropped, the frame is not touched
    CHECK(*finished);
    CHECK_FALSE(resumed);
}

TEST_CASE("co: destroying the loop with a spawned task suspended on work") {
    std::atomic<int> ran{0};
    {
        uvkit::loop l;
        auto body = [&]() -> uvkit::task<void> {
            co_await uvkit::async_work(l, [&] { ++ran; });
            co_await uvkit::async_work(l, [&] { ++ran; });
        };
        uvkit::spawn(l, body()).detach();
        l.run(uvkit::run_mode::nowait);
    }
    CHECK(ran <= 2);
}

}  // TEST_SUITE("co: work")
