// uvkit::poll: readiness of foreign sockets (a socketpair made by uv_socketpair,
// a raw UDP socket), and its error and lifetime rules.
#include <uvkit/uvkit.hpp>

#ifndef _WIN32
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "fixture.hpp"
#include "platform.hpp"

using uvkit_test::loop_fixture;

namespace {

const std::error_code einval = uvkit::make_uv_error(UV_EINVAL);

template <class F>
void check_einval_throw(F&& f) {
    try {
        f();
        FAIL("expected std::system_error(UV_EINVAL)");
    } catch (const std::system_error& e) {
        CHECK(e.code() == einval);
    }
}

// The foreign sockets are made with the platform's own calls: a SOCKET on Windows.
#ifdef _WIN32
constexpr uv_os_sock_t no_socket = INVALID_SOCKET;
constexpr int shutdown_write = SD_SEND;
void close_socket(uv_os_sock_t s) { ::closesocket(s); }
#else
constexpr uv_os_sock_t no_socket = -1;
constexpr int shutdown_write = SHUT_WR;
void close_socket(uv_os_sock_t s) { ::close(s); }
#endif

/// Two connected stream sockets, closed at scope exit.
struct socket_pair {
    uv_os_sock_t fd[2]{no_socket, no_socket};
    socket_pair() { REQUIRE(uv_socketpair(SOCK_STREAM, 0, fd, 0, 0) == 0); }
    ~socket_pair() {
        for (uv_os_sock_t s : fd)
            if (s != no_socket) close_socket(s);
    }
    socket_pair(const socket_pair&) = delete;
    socket_pair& operator=(const socket_pair&) = delete;
    void put(uv_os_sock_t s, std::string_view data) const {
        REQUIRE(::send(s, data.data(), static_cast<int>(data.size()), 0) == static_cast<int>(data.size()));
    }
    std::string take(uv_os_sock_t s) const {
        char buf[256];
#ifdef _WIN32
        u_long nonblocking = 1;
        REQUIRE(::ioctlsocket(s, FIONBIO, &nonblocking) == 0);
        int n = ::recv(s, buf, sizeof buf, 0);
#else
        auto n = ::recv(s, buf, sizeof buf, MSG_DONTWAIT);
#endif
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string{};
    }
};

}  // namespace

TEST_SUITE("poll") {

TEST_CASE_FIXTURE(loop_fixture, "poll: a socketpair end is writable at once, readable once the peer wrote") {
    socket_pair sp;
    uvkit::poll p{loop, sp.fd[0]};
    CHECK_FALSE(p.active());

    int writable_calls = 0;
    p.start(uvkit::poll::writable, [&](std::error_code ec, int events) {
        CHECK_FALSE(ec);
        CHECK((events & uvkit::poll::writable) != 0);
        CHECK((events & uvkit::poll::readable) == 0);
        ++writable_calls;
        p.stop();
    });
    CHECK(p.active());
    run_until([&] { return writable_calls == 1; });
    CHECK_FALSE(p.active());

    // Nothing to read yet: a readable watch keeps quiet until the peer writes.
    std::string got;
    p.start(uvkit::poll::readable, [&](std::error_code ec, int events) {
        CHECK_FALSE(ec);
        CHECK((events & uvkit::poll::readable) != 0);
        got += sp.take(sp.fd[0]);  // the library does the I/O; uvkit only reports readiness
        if (got.size() >= 5) p.stop();
    });
    CHECK(loop.run(uvkit::run_mode::nowait));
    CHECK(got.empty());
    sp.put(sp.fd[1], "hello");
    run_until([&] { return got.size() >= 5; });
    CHECK(got == "hello");
    CHECK_FALSE(p.active());
}

TEST_CASE_FIXTURE(loop_fixture, "poll: readable | writable reports both; restarting changes the events") {
    socket_pair sp;
    sp.put(sp.fd[1], "x");
    uvkit::poll p{loop, sp.fd[0]};
    int seen = 0;
    p.start(uvkit::poll::readable | uvkit::poll::writable, [&](std::error_code ec, int events) {
        CHECK_FALSE(ec);
        seen |= events;
        if ((seen & (uvkit::poll::readable | uvkit::poll::writable)) ==
            (uvkit::poll::readable | uvkit::poll::writable))
            p.stop();
    });
    run_until([&] { return !p.active(); });
    CHECK((seen & uvkit::poll::readable) != 0);
    CHECK((seen & uvkit::poll::writable) != 0);
    // events 0 watches nothing, like stop().
    p.start(0, [](std::error_code, int) { FAIL("called with no events"); });
    CHECK_FALSE(p.active());
    CHECK_FALSE(loop.run(uvkit::run_mode::nowait));
}

TEST_CASE_FIXTURE(loop_fixture, "poll: the peer shutting down is reported as disconnect") {
    socket_pair sp;
    uvkit::poll p{loop, sp.fd[0]};
    int events_seen = 0;
    p.start(uvkit::poll::readable | uvkit::poll::disconnect, [&](std::error_code ec, int events) {
        CHECK_FALSE(ec);
        events_seen |= events;
        p.stop();
    });
    REQUIRE(::shutdown(sp.fd[1], shutdown_write) == 0);
    run_until([&] { return !p.active(); });
    CHECK((events_seen & uvkit::poll::readable) != 0);  // EOF reads as readable
#ifdef __linux__
    CHECK((events_seen & uvkit::poll::disconnect) != 0);  // EPOLLRDHUP
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "poll: from_fd watches a file descriptor" UVKIT_SKIP_ON_WINDOWS(
                                    "uv_poll_init takes a C runtime descriptor there, which a socket is not "
                                    "(poll{loop, socket} is the way)")) {
#ifndef _WIN32
    socket_pair sp;
    uvkit::poll p = uvkit::poll::from_fd(loop, sp.fd[1]);
    int n = 0;
    p.start(uvkit::poll::writable, [&](std::error_code ec, int events) {
        CHECK_FALSE(ec);
        CHECK(events == uvkit::poll::writable);
        ++n;
        p.close();
    });
    run_until([&] { return n == 1; });
    run_all();
    CHECK(n == 1);
#endif
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "poll: a socket error reaches the handler as UV_EBADF and stops the handle" UVKIT_SKIP_ON_WINDOWS(
        "an ICMP port unreachable is reported there as a reset on the next receive, not as a socket error "
        "that polling sees")) {
#ifndef _WIN32
    // A raw UDP socket connected to a port nobody listens on: the ICMP port
    // unreachable answer to a datagram leaves an error on the socket (POLLERR).
    uvkit::endpoint closed;
    {
        uvkit::udp probe{loop};
        probe.bind(uvkit::endpoint::parse("127.0.0.1:0"));
        closed = probe.local_endpoint();
    }
    run_all();
    int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(s >= 0);
    REQUIRE(::connect(s, closed.data(), static_cast<socklen_t>(closed.size())) == 0);
    REQUIRE(::send(s, "x", 1, 0) == 1);

    uvkit::poll p{loop, s};
    std::error_code got;
    int calls = 0;
    p.start(uvkit::poll::readable, [&](std::error_code ec, int events) {
        ++calls;
        got = ec;
        CHECK(events == 0);
        CHECK_FALSE(p.active());
    });
    run_until([&] { return calls == 1; });
    CHECK(got == uvkit::make_uv_error(UV_EBADF));
    CHECK_FALSE(p.active());
    p.close();
    run_all();
    ::close(s);
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "poll: errors creating and starting") {
    // A regular file cannot be polled with epoll.
    std::FILE* f = std::tmpfile();
    REQUIRE(f != nullptr);
#ifdef __linux__
    try {
        (void)uvkit::poll::from_fd(loop, ::fileno(f));
        FAIL("expected std::system_error");
    } catch (const std::system_error& e) {
        CHECK(e.code() == uvkit::make_uv_error(UV_EPERM));
    }
#endif
    std::fclose(f);

    socket_pair sp;
    uvkit::poll p{loop, sp.fd[0]};
    // Bits that are not poll events.
    std::error_code ec;
    p.start(
        0x100, [](std::error_code, int) {}, ec);
    CHECK(ec == einval);
    check_einval_throw([&] { p.start(uvkit::poll::all_events + 1, [](std::error_code, int) {}); });
    CHECK_FALSE(p.active());
    // A second poll handle for a descriptor that one already watches (libuv on Windows does not
    // refuse it: README, Platforms).
    p.start(uvkit::poll::readable, [](std::error_code, int) {});
#ifndef _WIN32
    try {
        uvkit::poll second{loop, sp.fd[0]};
        FAIL("expected std::system_error(UV_EEXIST)");
    } catch (const std::system_error& e) {
        CHECK(e.code() == uvkit::make_uv_error(UV_EEXIST));
    }
#endif
    p.close();
    check_einval_throw([&] { p.start(uvkit::poll::readable, [](std::error_code, int) {}); });
    run_all();
}

TEST_CASE_FIXTURE(loop_fixture,
                  "poll: every operation on a moved-from or default poll fails with UV_EINVAL") {
    socket_pair sp;
    uvkit::poll original{loop, sp.fd[0]};
    uvkit::poll moved{std::move(original)};
    uvkit::poll def;
    for (uvkit::poll* p : {&original, &def}) {
        CHECK_FALSE(static_cast<bool>(*p));
        check_einval_throw([&] { p->start(uvkit::poll::readable, [](std::error_code, int) {}); });
        std::error_code ec;
        p->start(
            uvkit::poll::readable, [](std::error_code, int) {}, ec);
        CHECK(ec == einval);
        p->stop();
        CHECK(p->raw() == nullptr);
        CHECK_FALSE(p->active());
    }
    def = std::move(moved);
    int n = 0;
    def.start(uvkit::poll::writable, [&](std::error_code, int) {
        ++n;
        def.stop();
    });
    run_all();
    CHECK(n == 1);
    CHECK(uv_handle_get_type(def.raw_handle()) == UV_POLL);
}

TEST_CASE_FIXTURE(loop_fixture, "poll: destroying it inside its own handler; the socket stays open") {
    socket_pair sp;
    std::optional<uvkit::poll> p{std::in_place, loop, sp.fd[0]};
    int n = 0;
    p->start(uvkit::poll::writable, [&](std::error_code, int) {
        ++n;
        p.reset();
    });
    run_all();
    CHECK(n == 1);
    // uvkit never closes the borrowed socket.
    sp.put(sp.fd[0], "still open");
    CHECK(sp.take(sp.fd[1]) == "still open");
}

TEST_CASE_FIXTURE(loop_fixture, "poll: a handler exception stops the loop; run() rethrows") {
    socket_pair sp;
    uvkit::poll p{loop, sp.fd[0]};
    p.start(uvkit::poll::writable, [](std::error_code, int) { throw std::runtime_error("poll boom"); });
    CHECK_THROWS_WITH_AS(run_all(), "poll boom", std::runtime_error);
    CHECK(p.active());
    p.stop();
}

TEST_CASE("poll: destroying the loop while a poll handle is active") {
    socket_pair sp;
    uvkit::poll p;
    auto lp = std::make_unique<uvkit::loop>();
    p = uvkit::poll{*lp, sp.fd[0]};
    p.start(uvkit::poll::readable, [](std::error_code, int) {});
    lp.reset();
    CHECK(p.closing());
    CHECK_FALSE(p.active());
    check_einval_throw([&] { p.start(uvkit::poll::readable, [](std::error_code, int) {}); });
    // The socket is still ours and still works.
    sp.put(sp.fd[1], "ok");
    CHECK(sp.take(sp.fd[0]) == "ok");
}

}  // TEST_SUITE("poll")
