// Conformance ports of libuv's shutdown tests (test/test-shutdown-close.c,
// test/test-shutdown-eof.c, test/test-shutdown-twice.c,
// test/test-shutdown-simultaneous.c) against stream::shutdown().
#include <chrono>
#include <string>

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;
using uvkit_conf::uv_code;

TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture, "conformance: shutdown_close_tcp (test-shutdown-close.c)") {
    uvkit::tcp server{loop};
    server.bind(uvkit_conf::loopback_any());
    server.listen(8);
    uvkit::tcp c{loop};
    int shutdowns = 0;
    bool closed = false;
    std::error_code shutdown_ec;
    c.connect(server.local_endpoint(), [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        c.shutdown([&](std::error_code sec) {
            ++shutdowns;
            shutdown_ec = sec;
            CHECK_FALSE(closed);  // the request completes before the close handler
        });
        // Closed right after the shutdown was queued: it completes, once, with canceled.
        c.close([&] { closed = true; });
    });
    run_until([&] { return closed; });
    CHECK(shutdowns == 1);
    CHECK(shutdown_ec == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: shutdown_close_pipe (test-shutdown-close.c)" UVKIT_SKIP_ON_WINDOWS(
                      "binds a Unix socket path in the temporary directory; a named pipe cannot be bound to "
                      "a file path (uv_pipe_bind gave permission denied)")) {
    std::string path = uvkit_conf::temp_socket_path("shutclose");
    uvkit::pipe server{loop};
    server.bind(path);
    server.listen(8);
    uvkit::pipe c{loop};
    int shutdowns = 0;
    bool closed = false;
    std::error_code shutdown_ec;
    c.connect(path, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        c.shutdown([&](std::error_code sec) {
            ++shutdowns;
            shutdown_ec = sec;
        });
        c.close([&] { closed = true; });
    });
    run_until([&] { return closed; });
    CHECK(shutdowns == 1);
    CHECK(shutdown_ec == uvkit::errc::canceled);
    uvkit_conf::remove_path(path);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: shutdown_eof (test-shutdown-eof.c)") {
    // The client writes, shuts its write side down and keeps reading: the
    // server sees the data then EOF, answers, closes; the client reads the
    // answer, then EOF of its own.
    uvkit::tcp server{loop};
    server.bind(uvkit_conf::loopback_any());
    uvkit::tcp peer{loop};
    std::string server_got;
    bool server_eof = false;
    server.listen(8, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        server.accept(peer);
        peer.read_start([&](std::error_code rec, std::string_view data) {
            if (rec) {
                server_eof = rec == uvkit::errc::eof;
                peer.write(std::string("ANSWER"), [&](std::error_code wec) {
                    CHECK_FALSE(wec);
                    peer.close();
                });
                server.close();
                return;
            }
            server_got.append(data);
        });
    });
    uvkit::tcp c{loop};
    std::string client_got;
    std::error_code client_end;
    int shutdowns = 0;
    c.connect(server.local_endpoint(), [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        c.write(std::string("TEST"));
        c.shutdown([&](std::error_code sec) {
            CHECK_FALSE(sec);
            ++shutdowns;
        });
        CHECK_FALSE(c.writable());  // no more writes after a shutdown was queued
        c.read_start([&](std::error_code rec, std::string_view data) {
            if (rec) {
                client_end = rec;
                c.close();
                return;
            }
            client_got.append(data);
        });
    });
    run_all();
    CHECK(server_got == "TEST");
    CHECK(server_eof);
    CHECK(shutdowns == 1);
    CHECK(client_got == "ANSWER");
    CHECK(client_end == uvkit::errc::eof);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: shutdown_twice (test-shutdown-twice.c)") {
    uvkit::tcp server{loop};
    server.bind(uvkit_conf::loopback_any());
    server.listen(8);
    uvkit::tcp c{loop};
    int shutdowns = 0;
    int second_calls = 0;
    std::error_code second;
    c.connect(server.local_endpoint(), [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        c.shutdown([&](std::error_code sec) {
            CHECK_FALSE(sec);
            ++shutdowns;
            c.close();
        });
        // libuv: a second uv_shutdown is UV_ENOTCONN, reported at once; its
        // handler never runs. uvkit: the same code, as error_code or exception.
        c.shutdown([&](std::error_code) { ++second_calls; }, second);
        uvkit_conf::require_throws_code(uv_code(UV_ENOTCONN),
                                        [&] { c.shutdown([&](std::error_code) { ++second_calls; }); });
    });
    run_until([&] { return c.closing() && shutdowns == 1; });
    CHECK(shutdowns == 1);
    CHECK(second == uv_code(UV_ENOTCONN));
    CHECK(second_calls == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: shutdown_simultaneous (test-shutdown-simultaneous.c)") {
    // Both ends shut down their write side at the same time; each still reads
    // what the other wrote, then EOF.
    auto ab = uvkit_co_test::connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    std::string got_a;
    std::string got_b;
    int eofs = 0;
    int shutdowns = 0;
    auto reader = [&](uvkit::tcp& self, std::string& got) {
        return [&](std::error_code ec, std::string_view data) {
            if (ec) {
                CHECK(ec == uvkit::errc::eof);
                ++eofs;
                self.close();
                return;
            }
            got.append(data);
        };
    };
    a.write(std::string("from a"));
    b.write(std::string("from b"));
    a.shutdown([&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++shutdowns;
    });
    b.shutdown([&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++shutdowns;
    });
    a.read_start(reader(a, got_a));
    b.read_start(reader(b, got_b));
    run_all();
    CHECK(got_a == "from b");
    CHECK(got_b == "from a");
    CHECK(eofs == 2);
    CHECK(shutdowns == 2);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: shutdown of an unconnected stream (test-shutdown-twice.c, uv_shutdown)") {
    // uv_shutdown on a stream that is not connected (not writable) is UV_ENOTCONN.
    uvkit::tcp c{loop};
    int calls = 0;
    std::error_code ec;
    c.shutdown([&](std::error_code) { ++calls; }, ec);
    CHECK(ec == uv_code(UV_ENOTCONN));
    run_all();
    CHECK(calls == 0);
}

}  // TEST_SUITE("conformance")
