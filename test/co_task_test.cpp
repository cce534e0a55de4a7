// task<T>, run(), spawn(), sleep, and destroying suspended tasks.
#include "fixture.hpp"

#include <uvkit/uvkit.hpp>

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
uvkit::task<void> ready_void(int* hits) {
    ++*hits;
    co_return;
}
uvkit::task<int> throws_now() {
    throw std::runtime_error("now");
    co_return 0;
}
uvkit::task<int> after_sleep(uvkit::loop& l, int v, std::chrono::milliseconds d) {
    co_await uvkit::sleep(l, d);
    co_return v;
}
uvkit::task<void> throws_after_sleep(uvkit::loop& l) {
    co_await uvkit::sleep(l, 1ms);
    throw std::runtime_error("later");
}
uvkit::task<std::unique_ptr<std::string>> move_only(uvkit::loop& l, std::string s) {
    co_await uvkit::sleep(l, 0ms);
    co_return std::make_unique<std::string>(std::move(s));
}
uvkit::task<int> chain(int n) {
    if (n == 0) co_return 0;
    co_return 1 + co_await chain(n - 1);
}

}  // namespace

TEST_SUITE("co: task") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: run() returns a task's value") {
    CHECK(uvkit::run(loop, ready_int(7)) == 7);
    CHECK(uvkit::run(loop, after_sleep(loop, 8, 1ms)) == 8);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: task<void> runs to completion") {
    int hits = 0;
    uvkit::run(loop, ready_void(&hits));
    CHECK(hits == 1);
    auto outer = [&]() -> uvkit::task<void> {
        co_await ready_void(&hits);
        co_await uvkit::sleep(loop, 1ms);
        co_await ready_void(&hits);
    };
    uvkit::run(loop, outer());
    CHECK(hits == 3);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: run() rethrows the task's exception") {
    CHECK_THROWS_WITH_AS(uvkit::run(loop, throws_now()), "now", std::runtime_error);
    CHECK_THROWS_WITH_AS(uvkit::run(loop, throws_after_sleep(loop)), "later", std::runtime_error);
    // The loop is usable afterwards.
    CHECK(uvkit::run(loop, after_sleep(loop, 3, 0ms)) == 3);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: exceptions travel up through co_await") {
    auto outer = [&]() -> uvkit::task<std::string> {
        try {
            co_await throws_after_sleep(loop);
        } catch (const std::runtime_error& e) {
            co_return std::string("caught ") + e.what();
        }
        co_return "not thrown";
    };
    CHECK(uvkit::run(loop, outer()) == "caught later");
    auto rethrows = [&]() -> uvkit::task<int> { co_return co_await throws_now() + 1; };
    CHECK_THROWS_WITH(uvkit::run(loop, rethrows()), "now");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: task with a move-only result") {
    auto p = uvkit::run(loop, move_only(loop, "moved"));
    REQUIRE(p);
    CHECK(*p == "moved");
    auto outer = [&]() -> uvkit::task<std::unique_ptr<std::string>> {
        auto q = co_await move_only(loop, "inner");
        *q += "+outer";
        co_return q;
    };
    CHECK(*uvkit::run(loop, outer()) == "inner+outer");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: tasks are lazy, move-only, and destroyable unstarted") {
    int hits = 0;
    {
        auto t = ready_void(&hits);
        CHECK(static_cast<bool>(t));
        CHECK_FALSE(t.done());
        CHECK(hits == 0);  // nothing ran
        auto u = std::move(t);
        CHECK_FALSE(static_cast<bool>(t));
        CHECK(static_cast<bool>(u));
        u = ready_void(&hits);  // the first frame is destroyed, never run
    }
    CHECK(hits == 0);
    static_assert(!std::is_copy_constructible_v<uvkit::task<int>>);
    static_assert(std::is_nothrow_move_constructible_v<uvkit::task<int>>);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: run() on an empty task throws logic_error") {
    CHECK_THROWS_AS(uvkit::run(loop, uvkit::task<int>{}), std::logic_error);
    CHECK_THROWS_AS((void)uvkit::spawn(loop, uvkit::task<void>{}), std::invalid_argument);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: awaiting an empty task throws logic_error") {
    auto outer = []() -> uvkit::task<int> { co_return co_await uvkit::task<int>{}; };
    CHECK_THROWS_AS(uvkit::run(loop, outer()), std::logic_error);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: run() throws logic_error when nothing can resume the task") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(8);
    server.unref();  // the waiting accept keeps nothing alive
    bool destroyed = false;
    auto waits = [&]() -> uvkit::task<void> {
        destroy_flag f{&destroyed};
        uvkit::tcp c = co_await server.async_accept();
    };
    CHECK_THROWS_AS(uvkit::run(loop, waits()), std::logic_error);
    CHECK(destroyed);  // run() destroyed the suspended task
    // The server did not keep a dangling waiter: a new accept works.
    server.ref();
    auto ep = server.local_endpoint();
    auto [a, b] = uvkit::run(loop, uvkit_co_test::make_pair_task(loop, server, ep));
    CHECK(static_cast<bool>(a));
    CHECK(static_cast<bool>(b));
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: spawn() runs a detached task") {
    std::vector<std::string> log;
    auto work = [&]() -> uvkit::task<void> {
        log.push_back("start");
        co_await uvkit::sleep(loop, 1ms);
        log.push_back("end");
    };
    uvkit::spawn(loop, work()).detach();
    // It ran until its first suspension before spawn() returned.
    REQUIRE(log.size() == 1);
    loop.run();
    CHECK(log == std::vector<std::string>{"start", "end"});

    // A spawned task that finishes at once is freed at once.
    int hits = 0;
    uvkit::spawn(loop, ready_void(&hits)).detach();
    CHECK(hits == 1);
    CHECK_FALSE(loop.run());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a spawned task's exception leaves loop.run()") {
    uvkit::spawn(loop, throws_after_sleep(loop)).detach();
    CHECK_THROWS_WITH_AS(loop.run(), "later", std::runtime_error);
    CHECK_FALSE(loop.run());

    // Thrown before its first suspension: the next run() reports it.
    auto now = []() -> uvkit::task<void> {
        throw std::runtime_error("sync");
        co_return;
    };
    uvkit::spawn(loop, now()).detach();
    CHECK_THROWS_WITH(loop.run(), "sync");
    CHECK_FALSE(loop.run());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a spawned task's exception leaves run() of another task") {
    uvkit::spawn(loop, throws_after_sleep(loop)).detach();
    CHECK_THROWS_WITH(uvkit::run(loop, after_sleep(loop, 1, 50ms)), "later");
}

TEST_CASE("co: spawned tasks still suspended when the loop is destroyed are destroyed with it") {
    bool slept = false, read = false, nested = false, grouped = false;
    {
        auto l = std::make_unique<uvkit::loop>();
        auto sleeper = [](uvkit::loop& lp, bool* d) -> uvkit::task<void> {
            destroy_flag f{d};
            co_await uvkit::sleep(lp, 1h);
        };
        auto reader = [](uvkit::loop& lp, bool* d) -> uvkit::task<void> {
            destroy_flag f{d};
            auto ab = uvkit_co_test::connected_pair(lp);
            auto& a = ab.first;
            auto& b = ab.second;
            // A read on a silent peer, plus a write that the peer never reads.
            co_await uvkit::when_all(
                [](uvkit::tcp& s) -> uvkit::task<std::string> { co_return co_await s.async_read(); }(a),
                [](uvkit::tcp& s) -> uvkit::task<void> {
                    co_await s.async_write(std::string(32u << 20, 'x'));
                }(a));
            (void)b;
        };
        auto nester = [](uvkit::loop& lp, bool* d) -> uvkit::task<void> {
            destroy_flag f{d};
            co_await uvkit::when_any(after_sleep(lp, 1, 1h), after_sleep(lp, 2, 2h));
        };
        auto grouper = [](uvkit::loop& lp, bool* d) -> uvkit::task<void> {
            destroy_flag f{d};
            uvkit::task_group g{lp};
            for (int i = 0; i < 3; ++i) g.spawn(throws_after_sleep(lp));
            g.spawn([](uvkit::loop& x) -> uvkit::task<void> { co_await uvkit::sleep(x, 1h); }(lp));
            g.cancel();
            g.spawn([](uvkit::loop& x) -> uvkit::task<void> { co_await uvkit::sleep(x, 1h); }(lp));
            co_await uvkit::sleep(lp, 1h);
        };
        uvkit::spawn(*l, sleeper(*l, &slept)).detach();
        // The reader needs the loop to connect: it is spawned from a running task.
        uvkit::spawn(*l, reader(*l, &read)).detach();
        uvkit::spawn(*l, nester(*l, &nested)).detach();
        uvkit::spawn(*l, grouper(*l, &grouped)).detach();
        // Let the reader connect and start its read and write.
        uvkit::timer t{*l};
        t.start(50ms, [&] { l->stop(); });
        l->run();
        CHECK_FALSE(slept);
        CHECK_FALSE(nested);
        CHECK_FALSE(grouped);
        CHECK_FALSE(read);
    }
    CHECK(slept);
    CHECK(read);
    CHECK(nested);
    CHECK(grouped);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: 100000 nested co_awaits of ready tasks") {
    // Symmetric transfer: neither starting the chain nor unwinding it grows the stack.
    CHECK(uvkit::run(loop, chain(100000)) == 100000);
}

}  // TEST_SUITE("co: task")

TEST_SUITE("co: destroying suspended tasks") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: destroying a task suspended on sleep stops its timer") {
    bool destroyed = false;
    auto t = [](uvkit::loop& l, bool* d) -> uvkit::task<void> {
        destroy_flag f{d};
        co_await uvkit::sleep(l, 1h);
    }(loop, &destroyed);
    start(t);
    CHECK(loop.alive());
    t = {};
    CHECK(destroyed);
    CHECK_FALSE(loop.alive());  // the timer is stopped (pooled, unreferenced)
    CHECK_FALSE(loop.run());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: destroying a task suspended on sleep(0) that is about to fire") {
    bool destroyed = false;
    auto t = [](uvkit::loop& l, bool* d) -> uvkit::task<void> {
        destroy_flag f{d};
        co_await uvkit::sleep(l, 0ms);
        FAIL("resumed after destruction");
    }(loop, &destroyed);
    start(t);
    t = {};
    CHECK(destroyed);
    loop.run();
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: destroying a task suspended on a read") {
    auto ab = uvkit_co_test::connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    SUBCASE("the stream lives in the frame") {
        bool destroyed = false;
        auto t = [](uvkit::tcp s, bool* d) -> uvkit::task<void> {
            destroy_flag f{d};
            char buf[16];
            co_await s.async_read(std::span<char>(buf));
            FAIL("resumed after destruction");
        }(std::move(a), &destroyed);
        start(t);
        t = {};
        CHECK(destroyed);
        auto reads_eof = [](uvkit::tcp& s) -> uvkit::task<std::string> { co_return co_await s.async_read(); };
        CHECK(uvkit::run(loop, reads_eof(b)).empty());  // the frame closed its socket
    }
    SUBCASE("the stream outlives the frame") {
        bool destroyed = false;
        auto t = [](uvkit::tcp& s, bool* d) -> uvkit::task<void> {
            destroy_flag f{d};
            char buf[16];
            co_await s.async_read(std::span<char>(buf));
            FAIL("resumed after destruction");
        }(a, &destroyed);
        start(t);
        t = {};
        CHECK(destroyed);
        // The bytes sent now are not lost and do not land in the freed buffer.
        b.write(std::string("late"));
        auto reads = [](uvkit::tcp& s) -> uvkit::task<std::string> { co_return co_await s.async_read(); };
        CHECK(uvkit::run(loop, reads(a)) == "late");
    }
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: destroying a task suspended on a write to a peer that never reads") {
    auto ab = uvkit_co_test::connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;  // the peer: kept open, silent
    (void)b;
    bool destroyed = false;
    bool started = false;
    // 32 MiB borrowed from the frame: far more than the socket buffers hold.
    auto t = [](uvkit::tcp& s, bool* d, bool* st) -> uvkit::task<void> {
        destroy_flag f{d};
        std::string big(32u << 20, 'w');
        *st = true;
        co_await s.async_write(big);
        FAIL("resumed after destruction");
    }(a, &destroyed, &started);
    start(t);
    REQUIRE(started);
    run_until([&] { return a.write_queue_size() > 0; }, 5s);
    CHECK(a.write_queue_size() > 0);  // still pending
    t = {};
    CHECK(destroyed);
    // The stream was closed, so that libuv never reads the freed bytes.
    CHECK(a.closing());
    loop.run(uvkit::run_mode::nowait);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: destroying a task suspended on connect") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(8);
    bool destroyed = false;
    auto t = [](uvkit::loop& l, uvkit::endpoint ep, bool* d) -> uvkit::task<void> {
        destroy_flag f{d};
        uvkit::tcp c = co_await uvkit::connect(l, ep);
        FAIL("resumed after destruction");
    }(loop, server.local_endpoint(), &destroyed);
    start(t);
    CHECK(loop.handle_count() == 2);  // the server and the connecting socket
    t = {};
    CHECK(destroyed);
    loop.run(uvkit::run_mode::nowait);
    loop.run(uvkit::run_mode::nowait);
    CHECK(loop.handle_count() == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: destroying a task suspended on accept") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(8);
    bool destroyed = false;
    auto t = [](uvkit::tcp& s, bool* d) -> uvkit::task<void> {
        destroy_flag f{d};
        uvkit::tcp c = co_await s.async_accept();
        FAIL("resumed after destruction");
    }(server, &destroyed);
    start(t);
    t = {};
    CHECK(destroyed);
    // A connection arriving now is queued for the next accept, not handed to the freed frame.
    auto ep = server.local_endpoint();
    auto [a, b] = uvkit::run(loop, uvkit_co_test::make_pair_task(loop, server, ep));
    CHECK(static_cast<bool>(a));
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: destroying a task suspended in when_all destroys its children") {
    bool c1 = false, c2 = false, parent = false;
    auto child = [](uvkit::loop& l, bool* d) -> uvkit::task<int> {
        destroy_flag f{d};
        co_await uvkit::sleep(l, 1h);
        co_return 1;
    };
    auto parent_fn = [&]() -> uvkit::task<void> {
        destroy_flag f{&parent};
        co_await uvkit::when_all(child(loop, &c1), child(loop, &c2));
    };
    auto t = parent_fn();
    start(t);
    CHECK(loop.alive());
    t = {};
    CHECK(parent);
    CHECK(c1);
    CHECK(c2);
    CHECK_FALSE(loop.alive());
}

}  // TEST_SUITE("co: destroying suspended tasks")

TEST_SUITE("co: sleep") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: sleep honours its duration") {
    auto t = [&]() -> uvkit::task<std::chrono::milliseconds> {
        auto t0 = loop.now();
        co_await uvkit::sleep(loop, 30ms);
        co_return loop.now() - t0;
    };
    CHECK(uvkit::run(loop, t()) >= 30ms);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: sleep(0) and a negative sleep yield to the loop") {
    bool after = false;
    auto t = [&](std::chrono::milliseconds d) -> uvkit::task<void> {
        co_await uvkit::sleep(loop, d);
        after = true;
    };
    uvkit::spawn(loop, t(0ms)).detach();
    CHECK_FALSE(after);  // did not complete inside spawn()
    loop.run();
    CHECK(after);
    after = false;
    uvkit::spawn(loop, t(-5ms)).detach();
    CHECK_FALSE(after);
    loop.run();
    CHECK(after);

    // Two tasks that sleep(0) in turn both make progress.
    std::string order;
    auto turn = [&](char c) -> uvkit::task<void> {
        for (int i = 0; i < 3; ++i) {
            order += c;
            co_await uvkit::sleep(loop, 0ms);
        }
    };
    uvkit::spawn(loop, turn('a')).detach();
    uvkit::spawn(loop, turn('b')).detach();
    CHECK(order == "ab");
    loop.run();
    CHECK(order.size() == 6);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a cancelled sleep stops its timer") {
    auto t0 = loop.now();
    SUBCASE("non-throwing form gives errc::canceled") {
        std::error_code seen;
        auto sleeper = [&]() -> uvkit::task<int> {
            co_await uvkit::sleep(loop, 1h, seen);
            co_return 1;
        };
        CHECK(uvkit::run(loop, uvkit_co_test::any_index(sleeper(), after_sleep(loop, 2, 1ms))) == 1);
        CHECK(seen == uvkit::errc::canceled);
    }
    SUBCASE("throwing form throws system_error(errc::canceled)") {
        std::error_code seen;
        auto sleeper = [&]() -> uvkit::task<int> {
            try {
                co_await uvkit::sleep(loop, 1h);
            } catch (const std::system_error& e) {
                seen = e.code();
                throw;
            }
            co_return 1;
        };
        CHECK(uvkit::run(loop, uvkit_co_test::any_index(sleeper(), after_sleep(loop, 2, 1ms))) == 1);
        CHECK(seen == uvkit::errc::canceled);
    }
    loop.update_time();
    CHECK(loop.now() - t0 < 10s);
    CHECK_FALSE(loop.alive());  // no timer left running
    CHECK_FALSE(loop.run());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a sleep under an already cancelled scope completes at once") {
    // Cancellation is sticky: every later operation of a cancelled task fails at once.
    std::vector<std::error_code> seen;
    auto sleeper = [&]() -> uvkit::task<int> {
        std::error_code ec;
        co_await uvkit::sleep(loop, 1h, ec);
        seen.push_back(ec);
        co_await uvkit::sleep(loop, 1h, ec);
        seen.push_back(ec);
        co_await uvkit::sleep(loop, 0ms, ec);
        seen.push_back(ec);
        co_return 1;
    };
    CHECK(uvkit::run(loop, uvkit_co_test::any_index(ready_int(5), sleeper())) == 0);
    REQUIRE(seen.size() == 3);
    for (auto& ec : seen) CHECK(ec == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: many concurrent sleeps wake in order of their deadlines") {
    std::vector<int> order;
    auto s = [&](int ms) -> uvkit::task<void> {
        co_await uvkit::sleep(loop, std::chrono::milliseconds(ms));
        order.push_back(ms);
    };
    uvkit::task_group g{loop};
    for (int ms : {30, 10, 20, 0, 5}) g.spawn(s(ms));
    auto join = [&]() -> uvkit::task<void> { co_await g.join(); };
    uvkit::run(loop, join());
    CHECK(order == std::vector<int>{0, 5, 10, 20, 30});
}

}  // TEST_SUITE("co: sleep")
