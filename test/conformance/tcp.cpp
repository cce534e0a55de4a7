// Conformance ports of libuv's TCP tests (test/test-tcp-bind-error.c,
// test/test-tcp-bind6-error.c, test/test-tcp-connect-error.c,
// test/test-tcp-close-while-connecting.c, test/test-tcp-write-after-connect.c,
// test/test-tcp-write-to-half-open-connection.c, test/test-tcp-read-stop.c,
// test/test-tcp-read-stop-start.c, test/test-tcp-open.c, test/test-tcp-flags.c,
// test/test-tcp-unexpected-read.c, test/test-tcp-try-write-error.c,
// test/test-getsockname.c) against uvkit::tcp.
//
// uvkit differs by design in how errors arrive: a synchronous libuv error is
// a std::system_error (or the error_code& form), and the handler of an
// operation that failed to start never runs.
#include <chrono>
#include <memory>
#include <string>

#ifndef _WIN32
#include <sys/socket.h>
#include <unistd.h>
#endif

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;
using uvkit_conf::uv_code;

TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_bind_error_addrinuse_listen (test-tcp-bind-error.c)") {
    uvkit::tcp s1{loop};
    uvkit::tcp s2{loop};
    s1.bind(uvkit_conf::loopback_any());
    auto ep = s1.local_endpoint();
    // Both binds succeed (libuv sets SO_REUSEADDR); the conflict shows at listen.
    s2.bind(ep);
    s1.listen(8);
    uvkit_conf::require_throws_code(uv_code(UV_EADDRINUSE), [&] { s2.listen(8); });
    std::error_code ec;
    s2.listen(8, ec);
    CHECK(ec == uv_code(UV_EADDRINUSE));
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_bind_error_addrinuse_connect (test-tcp-bind-error.c)") {
    uvkit::tcp server{loop};
    server.bind(uvkit_conf::loopback_any());
    server.listen(8);
    auto ep = server.local_endpoint();
    // A client bound to the server's own address and port cannot connect from
    // there. As in libuv, bind() succeeds (the error is delayed) and so does
    // starting the connect; the handler gets address_in_use, once.
    uvkit::tcp c{loop};
    c.bind(ep);
    std::error_code got;
    int calls = 0;
    c.connect(ep, [&](std::error_code ec) {
        ++calls;
        got = ec;
    });
    run_until([&] { return calls == 1; });
    loop.run(uvkit::run_mode::nowait);
    CHECK(calls == 1);
    CHECK(got == std::errc::address_in_use);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_bind_error_addrnotavail_2 (test-tcp-bind-error.c)") {
    uvkit::tcp s{loop};
    // An address that is not one of this host's.
    uvkit_conf::require_throws_code(uv_code(UV_EADDRNOTAVAIL), [&] {
        s.bind(uvkit::endpoint{"4.4.4.4", 0});
    });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_bind_error_fault (test-tcp-bind-error.c)") {
    // libuv rejects a garbage sockaddr with UV_EINVAL. uvkit's endpoint cannot
    // hold garbage (parse() rejects it); the one invalid value is the empty
    // endpoint, which gets the same answer.
    uvkit::tcp s{loop};
    std::error_code ec;
    s.bind(uvkit::endpoint{}, false, ec);
    CHECK(ec == uv_code(UV_EINVAL));
    CHECK_THROWS_AS(uvkit::endpoint::parse("blah blah blah"), std::invalid_argument);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_bind_error_inval (test-tcp-bind-error.c)") {
    uvkit::tcp s{loop};
    s.bind(uvkit_conf::loopback_any());
    // Binding a bound socket again is UV_EINVAL.
    uvkit_conf::require_throws_code(uv_code(UV_EINVAL), [&] { s.bind(uvkit_conf::loopback_any()); });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_bind_invalid_flags (test-tcp-bind-error.c)") {
    uvkit::tcp s{loop};
    // UV_TCP_IPV6ONLY with an IPv4 address is UV_EINVAL.
    uvkit_conf::require_throws_code(uv_code(UV_EINVAL), [&] { s.bind(uvkit_conf::loopback_any(), true); });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_listen_without_bind (test-tcp-bind-error.c)") {
    uvkit::tcp s{loop};
    // Listening without bind works: the kernel picks an address and port.
    s.listen(8, [](std::error_code) {});
    CHECK(s.active());
    CHECK(s.local_endpoint().port() != 0);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_bind6_error_addrinuse (test-tcp-bind6-error.c)") {
    uvkit::tcp s1{loop};
    std::error_code ec;
    s1.bind(uvkit::endpoint::parse("[::1]:0"), false, ec);
    if (ec) {
        MESSAGE("no IPv6 loopback: ", ec.message());
        return;
    }
    uvkit::tcp s2{loop};
    s2.bind(s1.local_endpoint());
    s1.listen(8);
    uvkit_conf::require_throws_code(uv_code(UV_EADDRINUSE), [&] { s2.listen(8); });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_connect_error_fault (test-tcp-connect-error.c)") {
    uvkit::tcp c{loop};
    int calls = 0;
    std::error_code ec;
    // An invalid address fails at once; the handler never runs.
    c.connect(
        uvkit::endpoint{}, [&](std::error_code) { ++calls; }, ec);
    CHECK(ec == uv_code(UV_EINVAL));
    c.close();
    run_all();
    CHECK(calls == 0);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: tcp_close_while_connecting (test-tcp-close-while-connecting.c)") {
    // libuv connects to an unroutable address and closes while the connect is
    // pending. On loopback (and on this machine even "unroutable" connects can
    // succeed) a connect is still pending until the loop ran, so destroying
    // the handle before that is the same situation. uvkit: destroying the
    // object closes it; the handler runs once, with canceled.
    uvkit::tcp server{loop};
    server.bind(uvkit_conf::loopback_any());
    server.listen(8);
    auto c = std::make_unique<uvkit::tcp>(loop);
    int calls = 0;
    std::error_code got;
    c->connect(server.local_endpoint(), [&](std::error_code ec) {
        ++calls;
        got = ec;
    });
    c.reset();
    run_until([&] { return calls == 1; });
    loop.run(uvkit::run_mode::nowait);
    CHECK(calls == 1);
    CHECK(got == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "conformance: tcp_write_after_connect (test-tcp-write-after-connect.c)" UVKIT_SKIP_UNDER_WINE(
        "a write queued right after connect failed with broken pipe")) {
    // A write queued right after connect() to a port where nothing listens:
    // the connect fails with connection_refused and the write completes once,
    // with canceled.
    auto ep = uvkit_co_test::closed_endpoint(loop);
    uvkit::tcp c{loop};
    std::error_code connect_ec;
    std::error_code write_ec;
    int connects = 0;
    int writes = 0;
    c.connect(ep, [&](std::error_code ec) {
        ++connects;
        connect_ec = ec;
    });
    c.write(std::string("HELLO"), [&](std::error_code ec) {
        ++writes;
        write_ec = ec;
        c.close();
    });
    run_all();
    CHECK(connects == 1);
    CHECK(connect_ec == std::errc::connection_refused);
    CHECK(writes == 1);
    CHECK(write_ec == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "conformance: tcp_write_to_half_open_connection (test-tcp-write-to-half-open-connection.c)") {
    // The client closes as soon as it connected; the server's write to it
    // still succeeds (the kernel takes it), and its read ends with EOF or a reset.
    uvkit::tcp server{loop};
    server.bind(uvkit_conf::loopback_any());
    uvkit::tcp peer{loop};
    int writes = 0;
    int reads = 0;
    std::error_code read_end;
    server.listen(1, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        server.accept(peer);
        peer.read_start([&](std::error_code rec, std::string_view) {
            ++reads;
            if (rec) {
                read_end = rec;
                server.close();
                peer.close();
            }
        });
        peer.write(std::string("hello\n"), [&](std::error_code wec) {
            CHECK_FALSE(wec);
            ++writes;
        });
    });
    uvkit::tcp c{loop};
    c.connect(server.local_endpoint(), [&](std::error_code ec) {
        CHECK_FALSE(ec);
        c.close();
    });
    run_all();
    CHECK(writes == 1);
    CHECK(reads > 0);
    CHECK((read_end == uvkit::errc::eof || read_end == std::errc::connection_reset));
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_read_stop, tcp_read_stop_start (test-tcp-read-stop*.c)") {
    auto ab = uvkit_co_test::connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    std::string got;
    int calls = 0;
    // Stopping inside the read handler: no more calls until reading starts again.
    auto reader = [&](std::error_code ec, std::string_view data) {
        REQUIRE_FALSE(ec);
        ++calls;
        got.append(data);
        b.read_stop();
    };
    b.read_start(reader);
    a.write(std::string("one"));
    run_until([&] { return calls == 1; });
    CHECK_FALSE(b.active());
    a.write(std::string("two"));
    // Give the second chunk every chance to arrive: a few iterations via a timer.
    uvkit::timer wait{loop};
    bool waited = false;
    wait.start(20ms, [&] { waited = true; });
    run_until([&] { return waited; });
    CHECK(calls == 1);
    CHECK(got == "one");
    // Restarting delivers what arrived meanwhile.
    b.read_start(reader);
    run_until([&] { return calls == 2; });
    CHECK(got == "onetwo");
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_open_twice (test-tcp-open.c)" UVKIT_SKIP_ON_WINDOWS(
                                    "opens sockets made with the POSIX socket() call")) {
#ifndef _WIN32
    int s1 = ::socket(AF_INET, SOCK_STREAM, 0);
    int s2 = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(s1 >= 0);
    REQUIRE(s2 >= 0);
    uvkit::tcp t{loop};
    t.open(s1);  // t owns s1 from here on
    // A handle that already has a socket cannot adopt another: UV_EBUSY.
    std::error_code ec;
    t.open(s2, ec);
    CHECK(ec == uv_code(UV_EBUSY));
    ::close(s2);
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_flags (test-tcp-flags.c)" UVKIT_SKIP_UNDER_WINE(
                                    "binding an opened socket failed with an unknown error")) {
    uvkit::tcp t{loop};
    // Options set before the socket exists are remembered, not errors.
    t.set_nodelay(true);
    t.set_keepalive(true, std::chrono::seconds(60));
    t.set_simultaneous_accepts(true);
    t.bind(uvkit_conf::loopback_any());
    t.set_nodelay(false);
    t.set_keepalive(false);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_unexpected_read (test-tcp-unexpected-read.c)") {
    // The server writes to a client that does not read: the loop must not spin
    // on the readable socket nobody reads.
    uvkit::tcp server{loop};
    server.bind(uvkit_conf::loopback_any());
    uvkit::tcp peer{loop};
    server.listen(1, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        server.accept(peer);
        peer.read_start([](std::error_code, std::string_view) { FAIL("the client sent nothing"); });
        peer.write(std::string("PING"), [](std::error_code wec) { CHECK_FALSE(wec); });
    });
    uvkit::tcp c{loop};
    c.connect(server.local_endpoint(), [](std::error_code ec) { CHECK_FALSE(ec); });
    uvkit::check ticks{loop};
    unsigned long n = 0;
    ticks.start([&] { ++n; });
    uvkit::timer end{loop};
    end.start(100ms, [&] {
        ticks.close();
        end.close();
        server.close();
        peer.close();
        c.close();
    });
    run_all();
    CHECK(n <= 20);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: tcp_try_write_error (test-tcp-try-write-error.c)" UVKIT_SKIP_ON_WINDOWS(
                      "libuv on Windows reports a write to a closed peer as EPIPE, not EBADF")) {
    // try_write on a stream that has no connection fails; nothing is queued.
    uvkit::tcp t{loop};
    std::error_code ec;
    std::size_t n = t.try_write("x", ec);
    CHECK(n == 0);
    CHECK(ec);
    CHECK(ec == uv_code(UV_EBADF));
    CHECK(t.write_queue_size() == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_getsockname, tcp_getpeername (test-getsockname.c)") {
    uvkit::tcp fresh{loop};
    std::error_code ec;
    fresh.peer_endpoint(ec);
    CHECK(ec);  // no socket, no peer
    uvkit::tcp server{loop};
    server.bind(uvkit_conf::loopback_any());
    auto server_ep = server.local_endpoint();
    CHECK(server_ep.address() == "127.0.0.1");
    CHECK(server_ep.port() != 0);
    // A bound, unconnected socket has no peer.
    server.peer_endpoint(ec);
    CHECK(ec == uv_code(UV_ENOTCONN));
    uvkit::tcp peer{loop};
    bool accepted = false;
    server.listen(1, [&](std::error_code lec) {
        REQUIRE_FALSE(lec);
        server.accept(peer);
        accepted = true;
    });
    uvkit::tcp c{loop};
    bool connected = false;
    c.connect(server_ep, [&](std::error_code cec) {
        REQUIRE_FALSE(cec);
        connected = true;
    });
    run_until([&] { return accepted && connected; });
    CHECK(c.peer_endpoint() == server_ep);
    CHECK(peer.peer_endpoint() == c.local_endpoint());
    CHECK(peer.local_endpoint() == server_ep);
}

}  // TEST_SUITE("conformance")
