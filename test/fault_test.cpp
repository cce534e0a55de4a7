// Faults a network program meets in production, survived: a peer that resets
// in the middle of a write, one that sends 64 MiB in one write, 1,000
// connections at once, running out of file descriptors on accept, and a
// handler of every kind that throws. Everything talks over 127.0.0.1 and
// every wait is a bounded run of the loop.
#include <uv.h>

#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#ifndef _WIN32
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#endif

#include "alloc_counter.hpp"
#include "co_util.hpp"
#include "fixture.hpp"
#include "platform.hpp"

using namespace std::chrono_literals;
using uvkit_test::loop_fixture;

namespace {

const uvkit::endpoint any_v4{"127.0.0.1", 0};

std::string pattern(std::size_t n, std::uint32_t seed) {
    std::string s(n, '\0');
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& c : s) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x);
    }
    return s;
}

// An echo server with backpressure: a connection stops reading while more
// than `high_water` bytes wait in its write queue and resumes when it drained.
class echo_server {
public:
    explicit echo_server(uvkit::loop& l, std::size_t high_water = 1 << 20)
        : loop_(l), listener_(l), high_water_(high_water) {
        listener_.bind(any_v4);
        listener_.listen(1024, [this](std::error_code ec) {
            if (ec) {
                ++accept_errors;  // e.g. too many open files: keep listening
                return;
            }
            auto c = std::make_unique<uvkit::tcp>(loop_);
            listener_.accept(*c);
            start_reading(*c);
            conns_.push_back(std::move(c));
            ++accepted;
        });
    }

    std::uint16_t port() const { return listener_.local_endpoint().port(); }
    void close() {
        listener_.close();
        conns_.clear();
    }

    int accepted = 0;
    int accept_errors = 0;
    std::size_t peak_queue = 0;

private:
    void start_reading(uvkit::tcp& c) {
        c.read_start([this, &c](std::error_code ec, std::string_view data) {
            if (ec) {
                c.shutdown([&c](std::error_code) { c.close(); });
                return;
            }
            c.write(std::string(data), [this, &c](std::error_code wec) {
                if (!wec && paused_ == &c && c.write_queue_size() <= high_water_ / 2) {
                    paused_ = nullptr;
                    start_reading(c);
                }
            });
            peak_queue = std::max(peak_queue, c.write_queue_size());
            if (c.write_queue_size() > high_water_) {
                c.read_stop();
                paused_ = &c;
            }
        });
    }

    uvkit::loop& loop_;
    uvkit::tcp listener_;
    std::size_t high_water_;
    std::vector<std::unique_ptr<uvkit::tcp>> conns_;
    uvkit::tcp* paused_ = nullptr;  // one paused connection at a time is all these tests need
};

}  // namespace

TEST_SUITE("faults") {

TEST_CASE_FIXTURE(loop_fixture, "faults: a peer that resets mid-write: every queued write completes once") {
    uvkit::tcp listener{loop};
    listener.bind(any_v4);
    uvkit::tcp server_side{loop};
    listener.listen(128, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        listener.accept(server_side);
        // Read a little, then reset the connection while the client still writes.
        server_side.read_start([&](std::error_code, std::string_view) {
            server_side.read_stop();
            server_side.close_reset();
        });
    });

    uvkit::tcp client{loop};
    const std::string chunk = pattern(64 * 1024, 7);
    constexpr int writes = 256;  // 16 MiB: far more than the socket buffers hold
    int completed = 0;
    int failed = 0;
    client.connect(uvkit::endpoint{"127.0.0.1", listener.local_endpoint().port()}, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        for (int i = 0; i < writes; ++i) {
            client.write(chunk, [&](std::error_code wec) {
                ++completed;
                if (wec) ++failed;
            });
        }
    });
    run_until([&] { return completed == writes; }, 30s);
    CHECK(completed == writes);  // each handler exactly once, none lost
    CHECK(failed > 0);           // the reset reached the writer as errors, not silence
    client.close();
    listener.close();
    run_all();
}

TEST_CASE_FIXTURE(loop_fixture, "faults: a peer that sends 64 MiB in one write gets every byte back") {
    echo_server server{loop};
    const std::string payload = pattern(64u << 20, 64);
    uvkit::tcp client{loop};
    std::string got;
    got.reserve(payload.size());
    bool eof = false;
    client.connect(uvkit::endpoint{"127.0.0.1", server.port()}, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        client.write(payload, [&](std::error_code wec) {
            CHECK_FALSE(wec);
            client.shutdown([](std::error_code) {});
        });
        client.read_start([&](std::error_code rec, std::string_view data) {
            if (rec) {
                eof = true;
                return;
            }
            got += data;
        });
    });
    run_until([&] { return eof; }, 60s);
    CHECK(got.size() == payload.size());
    CHECK(got == payload);
    // Backpressure held the server's queue near its high-water mark, not at 64 MiB.
    CHECK(server.peak_queue < (4u << 20));
    client.close();
    server.close();
    run_all();
}

TEST_CASE_FIXTURE(loop_fixture, "faults: 1,000 connections at once, every byte checked") {
    constexpr int n = 1000;
#ifndef _WIN32
    // Each connection costs two descriptors here (client and server side).
    rlimit lim{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &lim) == 0);
    const rlim_t need = 2 * n + 64;
    if (lim.rlim_cur < need) {
        REQUIRE_MESSAGE((lim.rlim_max == RLIM_INFINITY || lim.rlim_max >= need), "this test needs ", need,
                        " file descriptors; the hard limit is ", lim.rlim_max);
        rlimit raised = lim;
        raised.rlim_cur = need;
        REQUIRE(setrlimit(RLIMIT_NOFILE, &raised) == 0);
    }
#endif
    echo_server server{loop};
    struct client_state {
        uvkit::tcp sock;
        std::string sent;
        std::string got;
        bool done = false;
    };
    std::vector<std::unique_ptr<client_state>> clients;
    int done = 0;
    for (int i = 0; i < n; ++i) {
        auto c = std::make_unique<client_state>(
            client_state{uvkit::tcp{loop}, pattern(4096, static_cast<std::uint32_t>(i)), {}});
        client_state& cs = *c;
        cs.sock.connect(uvkit::endpoint{"127.0.0.1", server.port()}, [&](std::error_code ec) {
            REQUIRE_FALSE(ec);
            cs.sock.write(cs.sent, [&](std::error_code wec) {
                CHECK_FALSE(wec);
                cs.sock.shutdown([](std::error_code) {});
            });
            cs.sock.read_start([&](std::error_code rec, std::string_view data) {
                if (rec) {
                    cs.done = true;
                    ++done;
                    cs.sock.close();
                    return;
                }
                cs.got += data;
            });
        });
        clients.push_back(std::move(c));
    }
    run_until([&] { return done == n; }, 60s);
    CHECK(server.accepted == n);
    int wrong = 0;
    for (const auto& c : clients) wrong += c->got != c->sent;
    CHECK(wrong == 0);
    clients.clear();
    server.close();
    run_all();
#ifndef _WIN32
    setrlimit(RLIMIT_NOFILE, &lim);
#endif
}

#ifndef _WIN32
namespace {
// Lowers the soft descriptor limit and uses up all but `spare` descriptors;
// gives everything back on release() or destruction, whatever happened.
class descriptor_squeeze {
public:
    explicit descriptor_squeeze(int spare) {
        REQUIRE(getrlimit(RLIMIT_NOFILE, &saved_) == 0);
        const int probe = ::open("/dev/null", O_RDONLY);
        REQUIRE(probe >= 0);
        ::close(probe);
        rlimit low = saved_;
        low.rlim_cur = static_cast<rlim_t>(probe) + 32;  // a little room above what is open now
        REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
        lowered_ = true;
        for (int i = 0; i < 1024; ++i) {
            const int fd = ::open("/dev/null", O_RDONLY);
            if (fd < 0) {
                REQUIRE(errno == EMFILE);
                break;
            }
            hogs_.push_back(fd);
        }
        REQUIRE(hogs_.size() > static_cast<std::size_t>(spare));
        for (int i = 0; i < spare; ++i) {
            ::close(hogs_.back());
            hogs_.pop_back();
        }
    }
    ~descriptor_squeeze() { release(); }
    void release() {
        for (int fd : hogs_) ::close(fd);
        hogs_.clear();
        if (lowered_) setrlimit(RLIMIT_NOFILE, &saved_);
        lowered_ = false;
    }

private:
    rlimit saved_{};
    bool lowered_ = false;
    std::vector<int> hogs_;
};
}  // namespace

// libuv (on Unix) keeps a spare descriptor for this: on EMFILE it frees the
// spare, accepts the pending connections and closes them at once, so the
// clients see their connection end instead of hanging, and the listening
// socket does not stay readable (no busy loop). The connection handler is not
// called for them.
#endif
TEST_CASE_FIXTURE(
    loop_fixture,
    "faults: out of descriptors on accept: the server keeps running, without spinning" UVKIT_SKIP_ON_WINDOWS(
        "lowers RLIMIT_NOFILE, which Windows does not have")) {
#ifndef _WIN32
    echo_server server{loop};
    descriptor_squeeze squeeze{1};  // the client's socket takes the last one; accept() meets EMFILE

    uvkit::tcp first{loop};
    bool first_ended = false;
    first.connect(uvkit::endpoint{"127.0.0.1", server.port()}, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);  // the kernel completes the handshake; accept() is what fails
        first.read_start([&](std::error_code rec, std::string_view) {
            if (rec) first_ended = true;
        });
    });
    run_until([&] { return first_ended; }, 20s);
    CHECK(server.accepted == 0);

    // While descriptors are short, the loop sleeps: count its iterations over 200 ms.
    int iterations = 0;
    uvkit::prepare counter{loop};
    counter.start([&] { ++iterations; });
    bool window_over = false;
    uvkit::timer window{loop};
    window.start(200ms, [&] { window_over = true; });
    run_until([&] { return window_over; }, 20s);
    counter.stop();
    CHECK(iterations < 50);

    // Descriptors come back: the same server serves again.
    squeeze.release();
    uvkit::tcp second{loop};
    std::string got;
    bool eof = false;
    second.connect(uvkit::endpoint{"127.0.0.1", server.port()}, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        second.write(std::string_view("hello again"),
                     [&](std::error_code) { second.shutdown([](std::error_code) {}); });
        second.read_start([&](std::error_code rec, std::string_view data) {
            if (rec) {
                eof = true;
                return;
            }
            got += data;
        });
    });
    run_until([&] { return eof; }, 20s);
    CHECK(got == "hello again");
    CHECK(server.accepted == 1);
    first.close();
    second.close();
    server.close();
    run_all();
#endif
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "faults: a throwing connect, listen, write or shutdown handler leaves run() and the loop runs on") {
    // loop.run() with a listening handle only returns through an exception:
    // run_until_throw() bounds each wait with a watchdog that throws its own.
    uvkit::tcp listener{loop};
    listener.bind(any_v4);
    uvkit::tcp server_side{loop};
    listener.listen(128, [&](std::error_code) {
        listener.accept(server_side);
        throw std::runtime_error("listen handler");
    });
    uvkit::tcp client{loop};
    client.connect(uvkit::endpoint{"127.0.0.1", listener.local_endpoint().port()},
                   [](std::error_code) { throw std::runtime_error("connect handler"); });
    // Both throw; each run() rethrows one, in whichever order they came.
    std::set<std::string> thrown{run_until_throw(), run_until_throw()};
    INFO("thrown: ", *thrown.begin(), " / ", *thrown.rbegin());
    CHECK(thrown == std::set<std::string>{"listen handler", "connect handler"});

    client.write(std::string_view("x"), [](std::error_code) { throw std::runtime_error("write handler"); });
    CHECK(run_until_throw() == "write handler");
    client.shutdown([](std::error_code) { throw std::runtime_error("shutdown handler"); });
    CHECK(run_until_throw() == "shutdown handler");
    loop.post([] { throw std::runtime_error("posted"); });
    CHECK(run_until_throw() == "posted");

    // The loop still works after all of that.
    bool ticked = false;
    uvkit::timer t{loop};
    t.start(1ms, [&] { ticked = true; });
    run_until([&] { return ticked; });
    client.close();
    server_side.close();
    listener.close();
    run_all();
}

// Out of memory: every operation that needs memory says UV_ENOMEM (or throws
// std::bad_alloc where it has no error_code form), calls no handler, leaks
// nothing (the fixture and valgrind check), and works once memory is back.
TEST_CASE_FIXTURE(loop_fixture, "faults: allocation failure: listen, read_start and write fail cleanly") {
    using uvkit_test::alloc_failure;
    uvkit::tcp server{loop};
    server.bind(any_v4);
    int handler_calls = 0;
    std::error_code ec;
    // Checks stay outside the failure windows: a failing check allocates its message.
    std::size_t refused = 0;
    {
        alloc_failure oom;  // the listening state cannot be made
        server.listen(
            8, [&](std::error_code) { ++handler_calls; }, ec);
        refused = oom.refused();
    }
    CHECK(refused > 0);
    CHECK(ec == uvkit::make_uv_error(UV_ENOMEM));

    server.listen(
        8, [&](std::error_code) { ++handler_calls; }, ec);
    CHECK_FALSE(ec);  // memory is back: the same listen works
    auto pair = uvkit_co_test::connected_pair(loop);
    uvkit::tcp& conn = pair.first;
    uvkit::tcp& client = pair.second;

    {
        alloc_failure oom;  // no read buffer yet on this loop, and none can be made
        conn.read_start([&](std::error_code, std::string_view) { ++handler_calls; }, ec);
    }
    CHECK(ec == uvkit::make_uv_error(UV_ENOMEM));
    {
        alloc_failure oom;  // the loop's pool of write requests is empty and cannot grow
        client.write(
            std::string_view("lost?"), [&](std::error_code) { ++handler_calls; }, ec);
    }
    CHECK(ec == uvkit::make_uv_error(UV_ENOMEM));
    bool threw_bad_alloc = false;
    {
        alloc_failure oom;  // no state block for a new handle: the constructor throws
        try {
            uvkit::timer t{loop};
        } catch (const std::bad_alloc&) {
            threw_bad_alloc = true;
        }
    }
    CHECK(threw_bad_alloc);
    for (int i = 0; i < 5; ++i) loop.run(uvkit::run_mode::nowait);
    CHECK(handler_calls == 0);

    // Memory is back: the same calls work, and the bytes written now arrive.
    std::string got;
    conn.read_start([&](std::error_code e, std::string_view d) {
        if (!e) got.append(d);
    });
    client.write(std::string_view("hello"), [&](std::error_code e) { CHECK_FALSE(e); });
    run_until([&] { return got == "hello"; });
    client.close();
    conn.close();
    server.close();
    run_all();
}

TEST_CASE_FIXTURE(loop_fixture,
                  "faults: allocation failure: udp receives and coroutine reads report UV_ENOMEM") {
    // Every way of starting to read makes the loop's shared read buffer first;
    // none may start reading without it. Checks stay outside the failure windows.
    using uvkit_test::alloc_failure;
    uvkit::udp u{loop};
    u.bind(any_v4);
    std::error_code recv_ec;
    {
        alloc_failure oom;
        u.recv_start([](std::error_code, std::string_view, const uvkit::endpoint&, unsigned) {}, recv_ec);
    }
    CHECK(recv_ec == uvkit::make_uv_error(UV_ENOMEM));
    CHECK_FALSE(u.active());

    auto pair = uvkit_co_test::connected_pair(loop);  // for the coroutine read
    uvkit::tcp& conn = pair.first;

    // The task's frame, its sleep timer and the coroutine context are made before
    // the window; it wakes inside it and tries to read.
    std::error_code read_ec, recv_co_ec;
    bool done = false;
    auto reader = [&]() -> uvkit::task<void> {
        co_await uvkit::sleep(loop, 1ms);
        char buf[16];
        co_await conn.async_read(std::span<char>(buf), read_ec);
        co_await u.async_recv(std::span<char>(buf), recv_co_ec);
        done = true;
    };
    uvkit::spawn(loop, reader()).detach();
    uvkit::timer watchdog{loop};  // made outside the window: a read that waits is cut short
    bool expired = false;
    watchdog.start(10s, [&] { expired = true; });
    {
        alloc_failure oom;
        for (int i = 0; i < 1000 && !done && !expired; ++i) loop.run(uvkit::run_mode::once);
    }
    watchdog.close();
    CHECK_FALSE(expired);
    CHECK(done);
    CHECK(read_ec == uvkit::make_uv_error(UV_ENOMEM));
    CHECK(recv_co_ec == uvkit::make_uv_error(UV_ENOMEM));

    // Memory is back: a datagram is received.
    std::string got;
    u.recv_start([&](std::error_code e, std::string_view d, const uvkit::endpoint&, unsigned) {
        if (!e && !d.empty()) got = d;
    });
    uvkit::udp tx{loop};
    tx.send("back", u.local_endpoint(), [](std::error_code e) { CHECK_FALSE(e); });
    run_until([&] { return got == "back"; });
    u.close();
    tx.close();
    pair.first.close();
    pair.second.close();
    run_all();
}

TEST_CASE_FIXTURE(loop_fixture,
                  "faults: allocation failure while two handlers throw: the first is "
                  "rethrown, the second is dropped, not a crash") {
    // The loop keeps a second exception of the same iteration in a vector; if
    // that vector cannot grow, the exception is logged and dropped.
    uvkit::timer a{loop};
    uvkit::timer b{loop};
    a.start(0ms, [] { throw 1; });  // throwing an int allocates nothing through operator new
    b.start(0ms, [] { throw 2; });
    int first = 0;
    std::size_t refused = 0;
    {
        uvkit_test::alloc_failure oom;
        try {
            loop.run();
        } catch (int v) {
            first = v;
        }
        refused = oom.refused();
    }
    CHECK(first == 1);
    CHECK(refused > 0);         // the second exception's slot could not be made
    CHECK_NOTHROW(loop.run());  // nothing left to rethrow
    a.close();
    b.close();
    run_all();
}

}  // TEST_SUITE("faults")
