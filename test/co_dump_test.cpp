// uvkit::dump_tasks(loop): the tree of live tasks, each with what it waits on.
//
// Every dump here is taken inside one resume chain (no loop iteration between
// the tasks' suspension and the dump), so no timer can fire in between: the
// sleeps' durations are only what the dump shows.
#include <uvkit/co/dump.hpp>

#include "fixture.hpp"

#include <uvkit/uvkit.hpp>

#include <string>
#include <vector>

#include "co_util.hpp"

using namespace std::chrono_literals;
using uvkit_co_test::connected_pair;

namespace {

/// The dump's lines, to compare one by one (doctest shows the first that differs).
std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < s.size()) {
        std::size_t end = s.find('\n', start);
        if (end == std::string::npos) end = s.size();
        out.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

void check_lines(const std::string& dump, const std::vector<std::string>& expected) {
    INFO("dump:\n" << dump);
    CHECK(!dump.empty());
    CHECK(dump.back() == '\n');
    auto got = lines(dump);
    for (std::size_t i = 0; i < expected.size() && i < got.size(); ++i) {
        INFO("line " << i);
        CHECK(got[i] == expected[i]);
    }
    CHECK(got.size() == expected.size());
}

/// Sleeps; a cancellation ends it quietly.
uvkit::task<void> sleeper(uvkit::loop& l, std::chrono::milliseconds d) {
    std::error_code ec;
    co_await uvkit::sleep(l, d, ec);
}
uvkit::task<void> reader(uvkit::stream& s) {
    std::error_code ec;
    (void)co_await s.async_read(ec);
}
uvkit::task<void> receiver(uvkit::channel<int>& ch) {
    std::error_code ec;
    (void)co_await ch.recv(ec);
}
uvkit::task<void> waiter(uvkit::event& e) {
    std::error_code ec;
    co_await e.wait(ec);
}

/// A user's operation that waits until cancelled; with a name for the dump or without.
struct parked_op : uvkit::operation<parked_op> {
    explicit parked_op(uvkit::loop& l, std::error_code& ec) : operation(l, ec) {}
    void start() {}
};
struct named_op : uvkit::operation<named_op> {
    named_op(uvkit::loop& l, std::string key, std::error_code& ec) : operation(l, ec), key_(std::move(key)) {}
    void start() {}
    std::string dump_name() const { return "fetch " + key_; }
    std::string key_;
};

}  // namespace

TEST_SUITE("co: dump_tasks") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: dump_tasks of a loop without tasks is empty") {
    CHECK(uvkit::dump_tasks(loop) == "");  // no coroutine state yet
    auto t = [&]() -> uvkit::task<int> {
        co_await uvkit::sleep(loop, 0ms);
        co_return 1;
    };
    CHECK(uvkit::run(loop, t()) == 1);
    CHECK(uvkit::dump_tasks(loop) == "");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: dump_tasks: a spawned task joining a task_group of a sleep, a read and a when_all") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    const std::string peer = b.local_endpoint().to_string();
    uvkit::channel<int> ch{loop, 1};
    uvkit::event ev{loop};
    auto both = [&]() -> uvkit::task<void> { co_await uvkit::when_all(receiver(ch), waiter(ev)); };
    auto owner = [&]() -> uvkit::task<void> {
        uvkit::task_group g{loop};
        g.spawn(sleeper(loop, 250ms));
        g.spawn(reader(a));
        g.spawn(both());
        co_await g.join();
    };
    int dumps = 0;
    auto main = [&]() -> uvkit::task<void> {
        auto h = uvkit::spawn(loop, owner());
        check_lines(uvkit::dump_tasks(loop), {
                                                 "task (run): running",
                                                 "task (spawned): join 3 children",
                                                 "  task: sleep 250 ms",
                                                 "  task: read tcp " + peer,
                                                 "  task: when_all 2 children",
                                                 "    task: channel recv",
                                                 "    task: event wait",
                                             });
        ++dumps;
        h.cancel();
        std::error_code ec;
        try {
            co_await h;
        } catch (const std::system_error& e) {
            ec = e.code();
        }
        CHECK(ec == uvkit::errc::canceled);  // its join() was cancelled
        // Everything finished: only this task is left.
        check_lines(uvkit::dump_tasks(loop), {"task (run): running"});
        ++dumps;
    };
    uvkit::run(loop, main());
    CHECK(dumps == 2);
    CHECK(uvkit::dump_tasks(loop) == "");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: dump_tasks shows a joined task below its joiner, once") {
    int dumps = 0;
    auto main = [&]() -> uvkit::task<void> {
        auto h = uvkit::spawn(loop, sleeper(loop, 60000ms));
        auto join_it = [&]() -> uvkit::task<void> { co_await h; };
        auto dump_then_cancel = [&]() -> uvkit::task<void> {
            co_await uvkit::sleep(loop, 0ms);  // the joiner is suspended by now
            check_lines(uvkit::dump_tasks(loop), {
                                                     "task (run): when_all 2 children",
                                                     "  task: join task",
                                                     "    task: sleep 60000 ms",
                                                     "  task: running",
                                                 });
            ++dumps;
            h.cancel();
        };
        co_await uvkit::when_all(join_it(), dump_then_cancel());
    };
    uvkit::run(loop, main());
    CHECK(dumps == 1);
    CHECK(uvkit::dump_tasks(loop) == "");
}

TEST_CASE_FIXTURE(
    uvkit_test::loop_fixture,
    "co: dump_tasks lists groups nobody joins, with their queue, and finished tasks not at all") {
    int dumps = 0;
    uvkit::event ev{loop};
    auto main = [&]() -> uvkit::task<void> {
        uvkit::task_group g{loop, 1};
        g.spawn(waiter(ev));
        g.spawn(sleeper(loop, 10ms));  // queued: the group runs one child at a time
        auto seven = []() -> uvkit::task<int> { co_return 7; };
        auto done = uvkit::spawn(loop, seven());
        CHECK(done.done());  // finished, kept for its handle: not live
        check_lines(uvkit::dump_tasks(loop), {
                                                 "task (run): running",
                                                 "task_group (not joined): 1 child, 1 queued",
                                                 "  task: event wait",
                                             });
        ++dumps;
        CHECK(co_await done == 7);
        ev.set();
        co_await g.join();
    };
    uvkit::run(loop, main());
    CHECK(dumps == 1);
    CHECK(uvkit::dump_tasks(loop) == "");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: dump_tasks names each kind of operation") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(8);
    const std::string local = server.local_endpoint().to_string();
    uvkit::async_mutex m{loop};
    uvkit::channel<int> ch{loop, 1};
    uvkit::event ev{loop};
    int dumps = 0;
    auto acceptor = [&]() -> uvkit::task<void> {
        std::error_code ec;
        (void)co_await server.async_accept(ec);
    };
    auto locker = [&]() -> uvkit::task<void> {
        std::error_code ec;
        auto g = co_await m.lock(ec);
    };
    auto sender = [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await ch.send(2, ec);
    };
    auto timed = [&]() -> uvkit::task<void> {
        try {
            co_await uvkit::with_timeout(loop, 5s, uvkit::sleep(loop, 60000ms));
        } catch (const std::system_error&) {
        }
    };
    auto shield = [&]() -> uvkit::task<void> {
        try {
            co_await uvkit::shielded(loop, 3s, waiter(ev));
        } catch (const std::system_error&) {
        }
    };
    auto any = [&]() -> uvkit::task<void> { co_await uvkit::when_any(waiter(ev), sleeper(loop, 60000ms)); };
    auto user_ops = [&]() -> uvkit::task<void> {
        std::error_code e1, e2;
        co_await parked_op{loop, e1};
        co_await named_op{loop, "k", e2};
    };
    auto user_named = [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await named_op{loop, "k", ec};
    };
    auto main = [&]() -> uvkit::task<void> {
        auto lock = co_await m.lock();
        co_await ch.send(1);  // full now
        uvkit::task_group g{loop};
        g.spawn(acceptor());
        g.spawn(locker());
        g.spawn(sender());
        g.spawn(timed());
        g.spawn(shield());
        g.spawn(any());
        g.spawn(user_ops());
        g.spawn(user_named());
        check_lines(uvkit::dump_tasks(loop), {
                                                 "task (run): running",
                                                 "task_group (not joined): 8 children",
                                                 "  task: accept tcp " + local,
                                                 "  task: mutex lock",
                                                 "  task: channel send",
                                                 "  task: with_timeout 5000 ms",
                                                 "    task: sleep 60000 ms",
                                                 "  task: shielded 3000 ms",
                                                 "    task: event wait",
                                                 "  task: when_any 2 children",
                                                 "    task: event wait",
                                                 "    task: sleep 60000 ms",
                                                 "  task: operation",
                                                 "  task: fetch k",
                                             });
        ++dumps;
        ev.set();  // the shield ends by itself: the group's cancellation does not reach it
        g.cancel();
        co_await g.join();
    };
    uvkit::run(loop, main());
    CHECK(dumps == 1);
    CHECK(uvkit::dump_tasks(loop) == "");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: dump_tasks from a callback, and after the loop dropped its tasks") {
    auto ab = connected_pair(loop);
    auto& b = ab.second;
    std::string from_timer;
    auto h = uvkit::spawn(loop, reader(b));
    uvkit::timer t{loop};
    t.start(1ms, [&] {
        from_timer = uvkit::dump_tasks(loop);
        h.cancel();
    });
    loop.run();
    const std::string peer = ab.first.local_endpoint().to_string();
    check_lines(from_timer, {"task (spawned): read tcp " + peer});
    CHECK(uvkit::dump_tasks(loop) == "");
}

}  // TEST_SUITE
