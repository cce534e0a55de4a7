// Awaited operations against the lifetime of what they refer to: handles moved or destroyed
// under a pending operation, tasks destroyed mid-await (also inside with_timeout), loops
// destroyed under spawned tasks, and long runs of awaits that complete at once (the stack
// must not grow with them, at any optimisation level).
#include <uvkit/co.hpp>
#include <uvkit/uvkit.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include "co_util.hpp"
#include "doctest_include.hpp"
#include "fixture.hpp"

using namespace std::chrono_literals;
using uvkit_co_test::connected_pair;
using uvkit_co_test::start;

namespace {

// A write big enough to stay queued while the peer does not read.
constexpr std::size_t stuck_size = 64 * 1024 * 1024;

uvkit::task<void> read_with_timeout(uvkit::loop& l, uvkit::tcp& c) {
    co_await uvkit::with_timeout(l, 1h, c.async_read());
}

uvkit::task<void> sleep_with_timeout(uvkit::loop& l) {
    co_await uvkit::with_timeout(l, 1h, uvkit::sleep(l, 1h));
}

uvkit::task<void> write_owned(uvkit::tcp& c, std::size_t n, std::error_code* out = nullptr) {
    std::error_code ec;
    co_await c.async_write(std::string(n, 'w'), ec);
    if (out) *out = ec;
}

uvkit::task<int> ready_value(int i) { co_return i; }

// The value of a task that start() and the loop ran to its end.
template <class T>
T result_of(uvkit::task<T>& t) {
    REQUIRE(t.done());
    return t.handle().promise().take();
}

}  // namespace

TEST_SUITE("co: lifetime") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a task destroyed inside with_timeout(loop, d, c.async_read())") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    {
        auto t = read_with_timeout(loop, a);
        start(t);
        CHECK_FALSE(t.done());
    }  // destroyed while the read waits under the timeout
    // The stream is still usable: a new read gets what the peer sends.
    ab.second.write(std::string("hello"));
    std::string got = uvkit::run(
        loop, [](uvkit::tcp& c) -> uvkit::task<std::string> { co_return co_await c.async_read(); }(a));
    CHECK(got == "hello");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a task_group destroyed while a child sleeps inside with_timeout") {
    {
        uvkit::task_group g{loop};
        g.spawn(sleep_with_timeout(loop));
        g.spawn(sleep_with_timeout(loop));
        CHECK(g.size() == 2);
    }
    CHECK_FALSE(loop.run(uvkit::run_mode::nowait));
}

TEST_CASE("co: a loop destroyed while a spawned task's thread-pool work writes into its frame") {
    // ~loop waits for the work before it destroys the frame the work writes into (ASan checks).
    std::atomic<bool> running{false};
    std::atomic<bool> finished{false};
    {
        uvkit::loop l;
        auto body = [](uvkit::loop& lp, std::atomic<bool>& run, std::atomic<bool>& fin) -> uvkit::task<void> {
            std::array<char, 4096> frame_buf{};
            std::error_code ec;
            co_await uvkit::async_work(
                lp,
                [&] {
                    run = true;
                    // Long enough that ~loop normally starts while this runs; correct either way.
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                    frame_buf.fill('w');
                    fin = true;
                },
                ec);
        };
        uvkit::spawn(l, body(l, running, finished)).detach();
        for (int i = 0; i < 100000 && !running; ++i) {
            l.run(uvkit::run_mode::nowait);
            std::this_thread::yield();
        }
        REQUIRE(running);
    }
    CHECK(finished);  // the loop waited for the work to end
}

TEST_CASE("co: a loop destroyed under spawned tasks waiting in with_timeout, sleep and read") {
    auto l = std::make_unique<uvkit::loop>();
    auto ab = connected_pair(*l);
    uvkit::spawn(*l, sleep_with_timeout(*l)).detach();
    uvkit::spawn(*l, read_with_timeout(*l, ab.first)).detach();
    uvkit::spawn(*l, [](uvkit::loop& lp) -> uvkit::task<void> { co_await uvkit::sleep(lp, 1h); }(*l))
        .detach();
    l->run(uvkit::run_mode::nowait);
    l.reset();  // the frames go with the loop; the sockets outlive it, empty
    CHECK_FALSE(ab.first.writable());
    std::error_code ec;
    ab.second.write(
        std::string_view("x"), [](std::error_code) {}, ec);
    CHECK(ec == std::errc::invalid_argument);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a tcp moved while its write is pending, then the task destroyed") {
    auto ab = connected_pair(loop);
    std::optional<uvkit::tcp> moved;
    {
        auto t = write_owned(ab.first, stuck_size);
        start(t);
        REQUIRE_FALSE(t.done());
        moved.emplace(std::move(ab.first));
    }  // the task and its bytes are gone: the write must not go on reading them
    CHECK(moved->closing());
    bool closed = false;
    ab.second.read_start([&](std::error_code ec, std::string_view) {
        if (ec) closed = true;
    });
    run_until([&] { return closed; });
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a tcp and the task writing on it destroyed in the same turn") {
    auto ab = connected_pair(loop);
    auto c = std::make_unique<uvkit::tcp>(std::move(ab.first));
    auto t = write_owned(*c, stuck_size);
    start(t);
    REQUIRE_FALSE(t.done());
    c.reset();
    t = {};
    bool closed = false;
    ab.second.read_start([&](std::error_code ec, std::string_view) {
        if (ec) closed = true;
    });
    run_until([&] { return closed; });
}

// A borrowed write whose bytes live in its own frame: a write behind a queued
// one (the steady-state path straight to uv_write).
uvkit::task<void> write_borrowed_own(uvkit::tcp& c, std::size_t n, char fill,
                                     std::error_code* out = nullptr) {
    std::string bytes(n, fill);
    std::error_code ec;
    co_await c.async_write(std::string_view{bytes}, ec);
    if (out) *out = ec;
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a borrowed write queued behind another, its task destroyed, then the stream moved") {
    auto ab = connected_pair(loop);
    std::error_code first_ec;
    auto first = write_owned(ab.first, stuck_size, &first_ec);
    start(first);
    REQUIRE_FALSE(first.done());
    REQUIRE(ab.first.write_queue_size() > 0);
    {
        auto second = write_borrowed_own(ab.first, 1 << 20, 'b');
        start(second);
        REQUIRE_FALSE(second.done());
    }  // its bytes are gone: the stream closes, so that libuv never writes them
    CHECK(ab.first.closing());
    uvkit::tcp moved = std::move(ab.first);
    bool closed = false;
    ab.second.read_start([&](std::error_code ec, std::string_view) {
        if (ec) closed = true;
    });
    run_until([&] { return closed && first.done(); });
    CHECK(first_ec == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: an awaited write on a tcp raw code closed fails with UV_EINVAL") {
    auto ab = connected_pair(loop);
    std::error_code first_ec;
    auto first = write_owned(ab.first, stuck_size, &first_ec);
    bool queued = false;
    SUBCASE("behind a queued write") {
        start(first);
        REQUIRE_FALSE(first.done());
        queued = true;
    }
    SUBCASE("nothing queued") {}
    uv_close(ab.first.raw_handle(), nullptr);  // raw code closes it (a uv_walk)
    std::error_code ec;
    auto t = write_borrowed_own(ab.first, 100, 'x', &ec);
    start(t);
    CHECK(t.done());
    CHECK(ec == std::errc::invalid_argument);
    if (queued) {
        run_until([&] { return first.done(); });
        CHECK(first_ec);  // libuv's ECANCELED for the write the close cut off
    }
    ab.first.close();  // uvkit notices the raw close
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: cancelling a borrowed write queued behind another completes both") {
    auto ab = connected_pair(loop);
    std::error_code first_ec, second_ec;
    auto first = write_owned(ab.first, stuck_size, &first_ec);
    start(first);
    REQUIRE_FALSE(first.done());
    auto t = [](uvkit::loop& l, uvkit::tcp& c, std::error_code& out) -> uvkit::task<std::size_t> {
        co_return co_await uvkit_co_test::any_index(
            write_borrowed_own(c, 1 << 20, 'b', &out),
            [](uvkit::loop& lp) -> uvkit::task<void> { co_await uvkit::sleep(lp, 20ms); }(l));
    }(loop, ab.first, second_ec);
    start(t);
    REQUIRE_FALSE(t.done());
    run_until([&] { return t.done() && first.done(); });
    CHECK(result_of(t) == 1);  // the sleep won
    CHECK(second_ec == uvkit::errc::canceled);
    CHECK(first_ec == uvkit::errc::canceled);
    CHECK(ab.first.closing());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: borrowed writes queued behind each other arrive whole and in order") {
    auto ab = connected_pair(loop);
    constexpr std::size_t n = 4u << 20;  // more than the socket buffers: the later writes queue
    constexpr int writers = 4;
    std::array<std::error_code, writers> ecs;
    std::vector<uvkit::task<void>> tasks;
    for (int i = 0; i < writers; ++i) {
        tasks.push_back(
            write_borrowed_own(ab.first, n, static_cast<char>('a' + i), &ecs[static_cast<std::size_t>(i)]));
        start(tasks.back());
    }
    CHECK(ab.first.write_queue_size() > 0);
    std::string got;
    ab.second.read_start([&](std::error_code ec, std::string_view d) {
        REQUIRE_FALSE(ec);
        got.append(d);
    });
    // The bytes may arrive before the writes' completions (Windows reports them later).
    run_until([&] {
        return got.size() == writers * n &&
               std::all_of(tasks.begin(), tasks.end(), [](auto& t) { return t.done(); });
    });
    for (auto& ec : ecs) CHECK_FALSE(ec);
    for (int i = 0; i < writers; ++i)
        CHECK(got.find_first_not_of(static_cast<char>('a' + i), static_cast<std::size_t>(i) * n) ==
              (i + 1 == writers ? std::string::npos : static_cast<std::size_t>(i + 1) * n));
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: cancelling a write on a moved stream completes it") {
    auto ab = connected_pair(loop);
    std::error_code ec;
    auto t = [](uvkit::loop& l, uvkit::tcp& c, std::error_code& out) -> uvkit::task<std::size_t> {
        co_return co_await uvkit_co_test::any_index(
            write_owned(c, stuck_size, &out),
            [](uvkit::loop& lp) -> uvkit::task<void> { co_await uvkit::sleep(lp, 20ms); }(l));
    }(loop, ab.first, ec);
    start(t);
    REQUIRE_FALSE(t.done());
    uvkit::tcp moved = std::move(ab.first);
    run_until([&] { return t.done(); });
    CHECK(result_of(t) == 1);  // the sleep won
    CHECK(ec == uvkit::errc::canceled);
    CHECK(moved.closing());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a pending async_accept on a moved listener, and the next accept") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(8);
    auto ep = server.local_endpoint();
    auto t = uvkit_co_test::accept_one(server);
    start(t);
    REQUIRE_FALSE(t.done());
    uvkit::tcp moved = std::move(server);
    uvkit::tcp c1{loop};
    c1.connect(ep, [](std::error_code) {});
    run_until([&] { return t.done(); });
    uvkit::tcp a1 = result_of(t);
    CHECK(a1.peer_endpoint().port() == c1.local_endpoint().port());
    // The moved listener goes on accepting.
    uvkit::tcp c2{loop};
    c2.connect(ep, [](std::error_code) {});
    uvkit::tcp a2 = uvkit::run(loop, uvkit_co_test::accept_one(moved));
    CHECK(a2.peer_endpoint().port() == c2.local_endpoint().port());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a pending read on a moved stream gets the data") {
    auto ab = connected_pair(loop);
    auto t = [](uvkit::tcp& c) -> uvkit::task<std::string> { co_return co_await c.async_read(); }(ab.first);
    start(t);
    uvkit::tcp moved = std::move(ab.first);
    ab.second.write(std::string("moved"));
    run_until([&] { return t.done(); });
    CHECK(result_of(t) == "moved");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a stream destroyed under a pending read completes it with canceled") {
    auto ab = connected_pair(loop);
    auto c = std::make_unique<uvkit::tcp>(std::move(ab.first));
    std::error_code ec;
    auto t = [](uvkit::tcp& s, std::error_code& out) -> uvkit::task<void> { co_await s.async_read(out); }(*c,
                                                                                                          ec);
    start(t);
    c.reset();
    run_until([&] { return t.done(); });
    CHECK(ec == uvkit::errc::canceled);
}

// The handler matrix of awaited operations: for each operation that waits on a handle, the handle
// moved (the operation completes with its result), destroyed (it completes with canceled), or the
// awaiting task destroyed (nothing resumes it, nothing touches its frame: ASan checks).
TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: handles moved or destroyed under each pending awaited operation") {
    SUBCASE("shutdown") {
        auto ab = connected_pair(loop);
        std::error_code ec = uvkit::make_uv_error(UV_EINVAL);
        auto shut = [](uvkit::tcp& c, std::error_code& out) -> uvkit::task<void> {
            co_await c.async_shutdown(out);
        };
        bool peer_eof = false;
        ab.second.read_start([&](std::error_code e, std::string_view) {
            if (e) peer_eof = true;
        });
        SUBCASE("moved") {
            auto t = shut(ab.first, ec);
            start(t);
            uvkit::tcp moved = std::move(ab.first);
            run_until([&] { return t.done() && peer_eof; });
            CHECK_FALSE(ec);
        }
        SUBCASE("destroyed") {
            auto c = std::make_unique<uvkit::tcp>(std::move(ab.first));
            auto t = shut(*c, ec);
            start(t);
            c.reset();
            run_until([&] { return t.done() && peer_eof; });
            CHECK(ec == uvkit::errc::canceled);
        }
        SUBCASE("task destroyed") {
            {
                auto t = shut(ab.first, ec);
                start(t);
            }
            run_until([&] { return peer_eof; });
            CHECK(ab.first.closing());  // abandoning a request closes its stream
        }
    }
    SUBCASE("udp send") {
        auto make = [&] {
            uvkit::udp u{loop};
            u.bind(uvkit::endpoint::parse("127.0.0.1:0"));
            return u;
        };
        uvkit::udp rx = make();
        auto tx = std::make_unique<uvkit::udp>(make());
        std::string got;
        rx.recv_start([&](std::error_code e, std::string_view d, const uvkit::endpoint&, unsigned) {
            if (!e) got.assign(d);
        });
        std::error_code ec = uvkit::make_uv_error(UV_EINVAL);
        auto send = [](uvkit::udp& u, uvkit::endpoint to, std::error_code& out) -> uvkit::task<void> {
            co_await u.async_send("matrix", to, out);
        };
        SUBCASE("moved") {
            auto t = send(*tx, rx.local_endpoint(), ec);
            start(t);
            uvkit::udp moved = std::move(*tx);
            run_until([&] { return t.done() && got == "matrix"; });
            CHECK_FALSE(ec);
        }
        SUBCASE("destroyed") {
            auto t = send(*tx, rx.local_endpoint(), ec);
            start(t);
            REQUIRE_FALSE(t.done());
            tx.reset();
            run_until([&] { return t.done(); });
            // Closing completes the send: canceled, or sent if libuv had already sent it.
            CHECK((ec == uvkit::errc::canceled || !ec));
        }
        SUBCASE("task destroyed") {
            {
                auto t = send(*tx, rx.local_endpoint(), ec);
                start(t);
            }
            CHECK(tx->closing());  // abandoning a send closes the udp, so that libuv reads no freed bytes
            for (int i = 0; i < 10 && loop.handle_count() > 1; ++i) loop.run(uvkit::run_mode::nowait);
            CHECK(loop.handle_count() == 1);  // rx is left: tx's close completed, with its send
        }
        rx.close();
    }
#ifndef _WIN32
    SUBCASE("process exit") {
        uvkit::pipe in{loop};
        uvkit::process_options opts;
        opts.file = "/bin/cat";
        opts.stdio = {uvkit::process_stdio::create_pipe(in)};
        auto child = std::make_unique<uvkit::process>(loop, opts);
        std::error_code ec = uvkit::make_uv_error(UV_EINVAL);
        auto wait = [](uvkit::process& p, std::error_code& out) -> uvkit::task<uvkit::process_exit> {
            co_return co_await p.async_exit(out);
        };
        SUBCASE("moved") {
            auto t = wait(*child, ec);
            start(t);
            uvkit::process moved = std::move(*child);
            in.close();  // cat ends on EOF
            run_until([&] { return t.done(); });
            CHECK_FALSE(ec);
            CHECK(result_of(t) == uvkit::process_exit{0, 0});
        }
        SUBCASE("destroyed") {
            auto t = wait(*child, ec);
            start(t);
            child.reset();
            run_until([&] { return t.done(); });
            CHECK(ec == uvkit::errc::canceled);
            in.close();
        }
        SUBCASE("task destroyed") {
            {
                auto t = wait(*child, ec);
                start(t);
            }
            in.close();
            run_until([&] { return child->exit_result().has_value(); });
            CHECK(child->exit_result() == uvkit::process_exit{0, 0});
            // A new wait after the exit completes at once.
            CHECK(uvkit::run(loop, wait(*child, ec)) == uvkit::process_exit{0, 0});
        }
        run_all();
    }
#endif
}

}  // TEST_SUITE("co: lifetime")

TEST_SUITE("co: synchronous completion") {

// Each of these runs on the default stack in every build of the suite (-O0 and ASan included):
// a completion that happens while an await starts must never resume by recursion.

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: 1,000,000 awaits of tasks that return at once") {
    auto t = [](int n) -> uvkit::task<long long> {
        long long sum = 0;
        for (int i = 0; i < n; ++i) sum += co_await ready_value(i);
        co_return sum;
    }(1000000);
    CHECK(uvkit::run(loop, std::move(t)) == 499999500000LL);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: 1,000,000 async_read_until of lines already read") {
    auto ab = connected_pair(loop);
    constexpr int lines = 1000000;
    std::string all;
    for (int i = 0; i < lines; ++i) all += "x\n";
    ab.second.write(std::string_view(all), [](std::error_code) {});
    auto t = [](uvkit::tcp& c, int n) -> uvkit::task<int> {
        std::string buf;
        int got = 0;
        while (got < n) {
            std::size_t len = co_await c.async_read_until(buf, "\n", 1 << 20);
            buf.erase(0, len);
            ++got;
        }
        co_return got;
    }(ab.first, lines);
    CHECK(uvkit::run(loop, std::move(t)) == lines);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: 100,000 awaits that complete at once through when_all") {
    auto t = []() -> uvkit::task<int> {
        int sum = 0;
        for (int i = 0; i < 100000; ++i) {
            auto [x, y] = co_await uvkit::when_all(ready_value(1), ready_value(2));
            sum += x + y;
        }
        co_return sum;
    }();
    CHECK(uvkit::run(loop, std::move(t)) == 300000);
}

}  // TEST_SUITE("co: synchronous completion")

TEST_SUITE("co: when_all and when_any of operations") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: when_all of a sleep and a read, awaited in place") {
    auto ab = connected_pair(loop);
    ab.second.write(std::string("both"));
    auto t = [](uvkit::loop& l, uvkit::tcp& c) -> uvkit::task<std::string> {
        auto [slept, chunk] = co_await uvkit::when_all(uvkit::sleep(l, 5ms), c.async_read());
        static_assert(std::is_same_v<decltype(slept), std::monostate>);
        co_return chunk;
    }(loop, ab.first);
    CHECK(uvkit::run(loop, std::move(t)) == "both");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: when_any of a task, a read and a sleep: the read wins, the rest are cancelled") {
    auto ab = connected_pair(loop);
    bool task_cancelled = false;
    auto t = [](uvkit::loop& l, uvkit::tcp& c, bool& cancelled) -> uvkit::task<std::size_t> {
        auto r = co_await uvkit::when_any(
            [](uvkit::loop& lp, bool& cx) -> uvkit::task<int> {
                std::error_code ec;
                co_await uvkit::sleep(lp, 1h, ec);
                cx = ec == uvkit::errc::canceled;
                co_return 1;
            }(l, cancelled),
            c.async_read(), uvkit::sleep(l, 1h));
        CHECK(std::get<1>(r) == "first");
        co_return r.index();
    }(loop, ab.first, task_cancelled);
    ab.second.write(std::string("first"));
    CHECK(uvkit::run(loop, std::move(t)) == 1);
    CHECK(task_cancelled);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a task destroyed while when_any of operations waits") {
    auto ab = connected_pair(loop);
    {
        auto t = [](uvkit::loop& l, uvkit::tcp& c) -> uvkit::task<void> {
            co_await uvkit::when_any(c.async_read(), uvkit::sleep(l, 1h));
        }(loop, ab.first);
        start(t);
        REQUIRE_FALSE(t.done());
    }
    CHECK_FALSE(ab.first.closing());  // a read just stops; the stream stays usable
}

}  // TEST_SUITE("co: when_all and when_any of operations")

TEST_SUITE("co: lifetime") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a udp moved while a receive waits gets the datagram") {
    uvkit::udp rx{loop};
    rx.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    auto ep = rx.local_endpoint();
    char buf[64];
    auto t = [](uvkit::udp& u, std::span<char> b) -> uvkit::task<std::size_t> {
        auto d = co_await u.async_recv(b);
        co_return d.size;
    }(rx, buf);
    start(t);
    REQUIRE_FALSE(t.done());
    uvkit::udp moved = std::move(rx);
    uvkit::udp tx{loop};
    tx.send(std::string("dgram"), ep);
    run_until([&] { return t.done(); });
    CHECK(result_of(t) == 5);
    CHECK(std::string_view(buf, 5) == "dgram");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a udp destroyed under a waiting receive completes it with canceled") {
    auto rx = std::make_unique<uvkit::udp>(loop);
    rx->bind(uvkit::endpoint::parse("127.0.0.1:0"));
    char buf[16];
    std::error_code ec;
    auto t = [](uvkit::udp& u, std::span<char> b, std::error_code& out) -> uvkit::task<void> {
        co_await u.async_recv(b, out);
    }(*rx, buf, ec);
    start(t);
    rx.reset();
    run_until([&] { return t.done(); });
    CHECK(ec == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a task moved, then destroyed, while it sleeps") {
    // The awaiter lives in the frame: moving the task object moves a pointer, destroying it
    // stops the timer; nothing fires into freed memory.
    auto t = [](uvkit::loop& l) -> uvkit::task<void> { co_await uvkit::sleep(l, 1ms); }(loop);
    start(t);
    uvkit::task<void> moved = std::move(t);
    CHECK_FALSE(moved.done());
    moved = {};
    uvkit::timer later{loop};
    bool fired = false;
    later.start(5ms, [&] { fired = true; });
    run_until([&] { return fired; });
}

}  // TEST_SUITE("co: lifetime")
