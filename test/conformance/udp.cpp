// Conformance ports of libuv's UDP tests (test/test-udp-send-immediate.c,
// test/test-udp-create-socket-early.c, test/test-udp-connect.c,
// test/test-udp-try-send.c, test/test-udp-options.c) against uvkit::udp.
#include <chrono>
#include <string>
#include <vector>

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;
using uvkit_conf::uv_code;

TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture, "conformance: udp_send_immediate (test-udp-send-immediate.c)") {
    uvkit::udp server{loop};
    server.bind(uvkit_conf::loopback_any());
    std::vector<std::string> got;
    server.recv_start([&](std::error_code ec, std::string_view data, const uvkit::endpoint&, unsigned) {
        REQUIRE_FALSE(ec);
        got.emplace_back(data);
        if (got.size() == 2) server.recv_stop();
    });
    // Two sends from an unbound udp before the loop ever ran: the first binds
    // it (wildcard address, free port); both arrive.
    uvkit::udp client{loop};
    int sent = 0;
    client.send(std::string("PING"), server.local_endpoint(), [&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++sent;
    });
    client.send(std::string("PING"), server.local_endpoint(), [&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++sent;
    });
    CHECK(client.local_endpoint().port() != 0);
    run_all();
    CHECK(sent == 2);
    CHECK(got == std::vector<std::string>{"PING", "PING"});
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: udp_create_early (test-udp-create-socket-early.c)" UVKIT_SKIP_UNDER_WINE(
                      "getsockname on a socket created early but not bound failed with invalid argument")) {
    uvkit::udp u{loop, AF_INET};
    // The socket exists before bind: it has an (unbound) IPv4 address.
    auto before = u.local_endpoint();
    CHECK(before.family() == AF_INET);
    CHECK(before.port() == 0);
    u.set_ttl(10);
    u.bind(uvkit_conf::loopback_any());
    auto after = u.local_endpoint();
    CHECK(after.port() != 0);
    CHECK(after.address() == "127.0.0.1");
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: udp_create_early_bad_bind (test-udp-create-socket-early.c)") {
    std::error_code ec;
    uvkit::udp u6{loop, AF_INET6};
    // An IPv6 socket cannot bind an IPv4 address.
    u6.bind(uvkit_conf::loopback_any(), 0, ec);
    CHECK(ec == uv_code(UV_EINVAL));
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: udp_create_early_bad_domain (test-udp-create-socket-early.c)") {
    // Families other than AF_INET, AF_INET6 (and AF_UNSPEC) are UV_EINVAL.
    uvkit_conf::require_throws_code(uv_code(UV_EINVAL), [&] { uvkit::udp u(loop, 47); });
    uvkit_conf::require_throws_code(uv_code(UV_EINVAL), [&] { uvkit::udp u(loop, 1024); });
    CHECK(loop.handle_count() == 0);  // the failed handles left nothing behind
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: udp_connect (test-udp-connect.c)") {
    uvkit::udp server{loop};
    server.bind(uvkit_conf::loopback_any());
    uvkit::udp stranger{loop};
    stranger.bind(uvkit_conf::loopback_any());
    uvkit::udp client{loop};
    client.connect(server.local_endpoint());
    CHECK(client.peer_endpoint() == server.local_endpoint());
    std::vector<std::string> got;
    client.recv_start([&](std::error_code ec, std::string_view data, const uvkit::endpoint& from, unsigned) {
        REQUIRE_FALSE(ec);
        CHECK(from == server.local_endpoint());
        got.emplace_back(data);
        if (data == "from server") client.recv_stop();
    });
    // A connected udp receives only from its peer: the stranger's datagram,
    // sent first, is dropped by the kernel.
    stranger.send(std::string("from stranger"), client.local_endpoint(), [&](std::error_code ec) {
        CHECK_FALSE(ec);
        server.send(std::string("from server"), client.local_endpoint());
    });
    // Sending to an explicit endpoint on a connected udp is UV_EISCONN.
    std::error_code ec;
    client.send(std::string("x"), server.local_endpoint(), nullptr, ec);
    CHECK(ec == uv_code(UV_EISCONN));
    run_all();
    CHECK(got == std::vector<std::string>{"from server"});
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: udp_try_send (test-udp-try-send.c)") {
    uvkit::udp server{loop};
    server.bind(uvkit_conf::loopback_any());
    std::string got;
    server.recv_start([&](std::error_code ec, std::string_view data, const uvkit::endpoint&, unsigned) {
        REQUIRE_FALSE(ec);
        got = data;
        server.recv_stop();
    });
    uvkit::udp client{loop};
    // try_send binds an unbound udp, as send does, and sends at once.
    CHECK(client.try_send("EXIT", server.local_endpoint()) == 4);
    CHECK(client.local_endpoint().port() != 0);
    // A datagram too large for UDP is message_size, reported at once.
    std::error_code ec;
    std::string huge(70000, 'x');
    client.try_send(huge, server.local_endpoint(), ec);
    CHECK(ec == std::errc::message_size);
    run_all();
    CHECK(got == "EXIT");
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: udp_no_autobind (test-udp-options.c)") {
    uvkit::udp u{loop};
    std::error_code ec;
    // Options and queries need a socket; they do not create one.
    u.set_multicast_ttl(32, ec);
    CHECK(ec == uv_code(UV_EBADF));
    u.set_broadcast(true, ec);
    CHECK(ec == uv_code(UV_EBADF));
    u.set_ttl(1, ec);
    CHECK(ec == uv_code(UV_EBADF));
    u.set_multicast_loop(true, ec);
    CHECK(ec == uv_code(UV_EBADF));
    u.set_multicast_interface("0.0.0.0", ec);
    CHECK(ec == uv_code(UV_EBADF));
    u.local_endpoint(ec);
    CHECK(ec);
    u.recv_stop();  // harmless on a udp that never received
    // Receiving does bind (to the wildcard address and a free port).
    u.recv_start([](std::error_code, std::string_view, const uvkit::endpoint&, unsigned) {});
    CHECK(u.local_endpoint().port() != 0);
    u.recv_stop();
}

}  // TEST_SUITE("conformance")
