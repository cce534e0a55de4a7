// channel<T>, async_mutex, event.
#include <uvkit/co/channel.hpp>

#include "fixture.hpp"

#include <uvkit/uvkit.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

bool canceled(const std::system_error& e) { return e.code() == uvkit::errc::canceled; }

uvkit::task<void> send_one(uvkit::channel<int>& ch, int v) { co_await ch.send(v); }
uvkit::task<std::optional<int>> recv_one(uvkit::channel<int>& ch) { co_return co_await ch.recv(); }

}  // namespace

TEST_SUITE("co: channel") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: channel sends wait while full, recv gives values in order") {
    uvkit::channel<std::string> ch{loop, 2};
    CHECK(ch.capacity() == 2);
    std::vector<std::string> got;
    int sent = 0;
    auto producer = [&]() -> uvkit::task<void> {
        for (int i = 0; i < 10; ++i) {
            co_await ch.send("v" + std::to_string(i));
            ++sent;
            CHECK(ch.size() <= 2);
        }
        ch.close();
    };
    auto consumer = [&]() -> uvkit::task<void> {
        while (auto v = co_await ch.recv()) got.push_back(*v);
    };
    auto both = [&]() -> uvkit::task<void> { co_await uvkit::when_all(producer(), consumer()); };
    uvkit::run(loop, both());
    CHECK(sent == 10);
    REQUIRE(got.size() == 10);
    for (int i = 0; i < 10; ++i) CHECK(got[static_cast<std::size_t>(i)] == "v" + std::to_string(i));
    CHECK_THROWS_AS(uvkit::channel<int>(loop, 0), std::invalid_argument);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: channel close: buffered values drain, sends fail with broken_pipe") {
    uvkit::channel<int> ch{loop, 4};
    int v = 1;
    CHECK(ch.try_send(v));
    v = 2;
    CHECK(ch.try_send(v));
    ch.close();
    ch.close();
    v = 3;
    CHECK_FALSE(ch.try_send(v));
    auto t = [&]() -> uvkit::task<void> {
        CHECK(*co_await ch.recv() == 1);
        CHECK(*co_await ch.recv() == 2);
        CHECK_FALSE((co_await ch.recv()).has_value());
        std::error_code ec;
        co_await ch.send(4, ec);
        CHECK(ec == std::errc::broken_pipe);
        CHECK_THROWS_AS(co_await ch.send(5), std::system_error);
    };
    uvkit::run(loop, t());

    // Waiting senders and receivers are woken by close().
    uvkit::channel<int> full{loop, 1};
    v = 0;
    CHECK(full.try_send(v));
    auto s = uvkit::spawn(loop, send_one(full, 1));
    uvkit::channel<int> empty{loop, 1};
    auto r = uvkit::spawn(loop, recv_one(empty));
    full.close();
    empty.close();
    CHECK_FALSE(s.done());  // never inside close()
    auto check = [&]() -> uvkit::task<void> {
        try {
            co_await s;
            FAIL("the send went through a closed channel");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::broken_pipe);
        }
        CHECK_FALSE((co_await r).has_value());
    };
    uvkit::run(loop, check());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: channel fairness: waiting senders and receivers first come, first served") {
    uvkit::channel<int> ch{loop, 1};
    int zero = 0;
    CHECK(ch.try_send(zero));
    auto a = uvkit::spawn(loop, send_one(ch, 1));
    auto b = uvkit::spawn(loop, send_one(ch, 2));
    auto c = uvkit::spawn(loop, send_one(ch, 3));
    auto drain = [&]() -> uvkit::task<std::vector<int>> {
        std::vector<int> out;
        for (int i = 0; i < 4; ++i) out.push_back(*co_await ch.recv());
        co_return out;
    };
    CHECK(uvkit::run(loop, drain()) == std::vector<int>{0, 1, 2, 3});

    auto r1 = uvkit::spawn(loop, recv_one(ch));
    auto r2 = uvkit::spawn(loop, recv_one(ch));
    auto r3 = uvkit::spawn(loop, recv_one(ch));
    for (int v : {10, 20, 30}) CHECK(ch.try_send(v));
    auto collect = [&]() -> uvkit::task<std::vector<int>> {
        std::vector<int> out;
        out.push_back(*co_await r1);
        out.push_back(*co_await r2);
        out.push_back(*co_await r3);
        co_return out;
    };
    CHECK(uvkit::run(loop, collect()) == std::vector<int>{10, 20, 30});
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a cancelled send is not delivered; a delivered one is not cancelled") {
    uvkit::channel<int> ch{loop, 1};
    int zero = 0;
    CHECK(ch.try_send(zero));
    auto s = uvkit::spawn(loop, send_one(ch, 1));  // waits: full
    s.cancel();
    auto t = [&]() -> uvkit::task<void> {
        try {
            co_await s;
            FAIL("not cancelled");
        } catch (const std::system_error& e) {
            CHECK(canceled(e));
        }
        CHECK(*co_await ch.recv() == 0);
        CHECK_FALSE(ch.try_recv().has_value());  // 1 was never delivered
    };
    uvkit::run(loop, t());

    // Taken into the buffer, then the cancellation arrives: the send succeeded.
    CHECK(ch.try_send(zero));
    auto s2 = uvkit::spawn(loop, send_one(ch, 2));
    CHECK(ch.try_recv() == 0);  // frees the slot: 2 moves into the buffer, s2 is woken
    s2.cancel();                // too late: it was delivered
    auto t2 = [&]() -> uvkit::task<void> {
        co_await s2;  // no exception
        CHECK(*co_await ch.recv() == 2);
    };
    uvkit::run(loop, t2());

    // A receiver handed a value, then cancelled: it returns the value.
    auto r = uvkit::spawn(loop, recv_one(ch));
    int seven = 7;
    CHECK(ch.try_send(seven));
    r.cancel();
    auto t3 = [&]() -> uvkit::task<void> { CHECK(*co_await r == 7); };
    uvkit::run(loop, t3());
    // A waiting receiver cancelled takes nothing.
    auto r2 = uvkit::spawn(loop, recv_one(ch));
    r2.cancel();
    auto t4 = [&]() -> uvkit::task<void> {
        CHECK_THROWS_AS(co_await r2, std::system_error);
        int eight = 8;
        CHECK(ch.try_send(eight));
        CHECK(ch.try_recv() == 8);
    };
    uvkit::run(loop, t4());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: channel property: no value lost or duplicated over random schedules") {
    // Seeded, bounded: 60 schedules of 3 producers x 12 values and 2
    // consumers, random capacity, random yields, random cancellations of
    // single sends and receives.
    for (unsigned seed = 1; seed <= 60; ++seed) {
        CAPTURE(seed);
        std::mt19937 rng(seed);
        auto coin = [&](unsigned pct) { return rng() % 100 < pct; };
        uvkit::channel<int> ch{loop, 1 + rng() % 3};
        std::vector<int> sent_ok, sent_cancelled;
        std::map<int, int> received;
        auto yield = [&]() -> uvkit::task<void> { co_await uvkit::sleep(loop, 0ms); };
        auto producer = [&](int id) -> uvkit::task<void> {
            for (int i = 0; i < 12; ++i) {
                int v = id * 100 + i;
                auto h = uvkit::spawn(loop, send_one(ch, v));
                if (coin(30)) {
                    if (coin(50)) co_await yield();
                    h.cancel();
                }
                try {
                    co_await h;
                    sent_ok.push_back(v);
                } catch (const std::system_error& e) {
                    CHECK(canceled(e));
                    sent_cancelled.push_back(v);
                }
                if (coin(40)) co_await yield();
            }
        };
        auto consumer = [&]() -> uvkit::task<void> {
            for (;;) {
                auto h = uvkit::spawn(loop, recv_one(ch));
                if (coin(20)) {
                    if (coin(50)) co_await yield();
                    h.cancel();
                }
                try {
                    auto v = co_await h;
                    if (!v) co_return;  // closed and drained
                    ++received[*v];
                } catch (const std::system_error& e) {
                    CHECK(canceled(e));
                }
                if (coin(40)) co_await yield();
            }
        };
        auto producers = [&]() -> uvkit::task<void> {
            co_await uvkit::when_all(producer(1), producer(2), producer(3));
            ch.close();
        };
        auto all = [&]() -> uvkit::task<void> {
            co_await uvkit::when_all(producers(), consumer(), consumer());
        };
        uvkit::run(loop, all());
        while (auto v = ch.try_recv()) ++received[*v];
        CHECK(sent_ok.size() + sent_cancelled.size() == 36);
        for (int v : sent_ok) CHECK(received[v] == 1);  // delivered exactly once
        for (int v : sent_cancelled) CHECK(received.count(v) == 0);
        std::size_t total = 0;
        for (auto& [v, n] : received) total += static_cast<std::size_t>(n);
        CHECK(total == sent_ok.size());
        // Per producer, values arrive in the order they were sent.
    }
}

}  // TEST_SUITE

TEST_SUITE("co: async_mutex and event") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: async_mutex excludes, and hands over first come, first served") {
    uvkit::async_mutex m{loop};
    int inside = 0, most = 0;
    std::vector<int> order;
    auto worker = [&](int id) -> uvkit::task<void> {
        auto g = co_await m.lock();
        CHECK(g);
        CHECK(m.locked());
        ++inside;
        most = std::max(most, inside);
        order.push_back(id);
        co_await uvkit::sleep(loop, 0ms);
        --inside;
    };
    auto all = [&]() -> uvkit::task<void> {
        co_await uvkit::when_all(worker(1), worker(2), worker(3), worker(4));
    };
    uvkit::run(loop, all());
    CHECK(most == 1);
    CHECK(order == std::vector<int>{1, 2, 3, 4});
    CHECK_FALSE(m.locked());
    auto g = m.try_lock();
    CHECK(g);
    CHECK_FALSE(m.try_lock());
    g.unlock();
    CHECK_FALSE(m.locked());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: async_mutex: a cancelled waiter, and one cancelled after the handover") {
    uvkit::async_mutex m{loop};
    auto held = m.try_lock();
    int got = 0;
    auto locker = [&]() -> uvkit::task<bool> {
        std::error_code ec;
        auto g = co_await m.lock(ec);
        if (ec) co_return false;
        ++got;
        co_return true;
    };
    auto a = uvkit::spawn(loop, locker());
    auto b = uvkit::spawn(loop, locker());
    a.cancel();  // waiting: it gives up
    auto t = [&]() -> uvkit::task<void> { CHECK_FALSE(co_await a); };
    uvkit::run(loop, t());
    held.unlock();  // handed to b
    b.cancel();     // too late: b owns it
    auto u = [&]() -> uvkit::task<void> { CHECK(co_await b); };
    uvkit::run(loop, u());
    CHECK(got == 1);
    CHECK_FALSE(m.locked());  // b's guard released it
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: event: set wakes every waiter, reset, cancel") {
    uvkit::event e{loop};
    int woke = 0;
    auto waiter = [&]() -> uvkit::task<void> {
        co_await e.wait();
        ++woke;
    };
    auto a = uvkit::spawn(loop, waiter());
    auto b = uvkit::spawn(loop, waiter());
    CHECK_FALSE(e.is_set());
    e.set();
    CHECK(woke == 0);  // resumed by the loop, not inside set()
    loop.run();
    CHECK(woke == 2);
    auto c = uvkit::spawn(loop, waiter());  // already set: at once
    CHECK(woke == 3);
    e.reset();
    auto d = uvkit::spawn(loop, waiter());
    d.cancel();
    auto t = [&]() -> uvkit::task<void> { CHECK_THROWS_AS(co_await d, std::system_error); };
    uvkit::run(loop, t());
    CHECK(woke == 3);
}

}  // TEST_SUITE
