// Conformance ports of libuv's pipe tests (test/test-pipe-bind-error.c,
// test/test-pipe-connect-error.c, test/test-pipe-getsockname.c,
// test/test-pipe-server-close.c, test/test-pipe-connect-multiple.c,
// test/test-pipe-connect-prepare.c, test/test-pipe-set-fchmod.c) against uvkit::pipe.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;
using uvkit_conf::uv_code;

TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: pipe_bind_error_addrinuse (test-pipe-bind-error.c)" UVKIT_SKIP_ON_WINDOWS(
                      "named pipes are not files: no path to bind twice, remove or chmod")) {
#ifndef _WIN32
    std::string path = uvkit_conf::temp_socket_path("inuse");
    uvkit::pipe p1{loop};
    p1.bind(path);
    p1.listen(8);
    uvkit::pipe p2{loop};
    uvkit_conf::require_throws_code(uv_code(UV_EADDRINUSE), [&] { p2.bind(path); });
    // The first keeps working.
    CHECK(p1.local_name() == path);
    uvkit_conf::remove_path(path);
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: pipe_bind_error_addrnotavail (test-pipe-bind-error.c)" UVKIT_SKIP_ON_WINDOWS(
                      "named pipes are not files: no path to bind twice, remove or chmod")) {
#ifndef _WIN32
    // A name in a directory that does not exist cannot be bound.
    uvkit::pipe p{loop};
    std::error_code ec;
    p.bind("/path/to/unix/socket/that/really/should/not/be/there", ec);
    CHECK((ec == std::errc::no_such_file_or_directory || ec == std::errc::permission_denied));
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: pipe_bind_error_inval (test-pipe-bind-error.c)" UVKIT_SKIP_ON_WINDOWS(
                      "named pipes are not files: no path to bind twice, remove or chmod")) {
#ifndef _WIN32
    std::string p1 = uvkit_conf::temp_socket_path("inval1");
    std::string p2 = uvkit_conf::temp_socket_path("inval2");
    uvkit::pipe p{loop};
    p.bind(p1);
    // A bound pipe cannot be bound again.
    uvkit_conf::require_throws_code(uv_code(UV_EINVAL), [&] { p.bind(p2); });
    uvkit_conf::remove_path(p1);
    uvkit_conf::remove_path(p2);
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: pipe_listen_without_bind (test-pipe-bind-error.c)" UVKIT_SKIP_ON_WINDOWS(
                      "named pipes are not files: no path to bind twice, remove or chmod")) {
#ifndef _WIN32
    // Unlike TCP, a pipe has no address to pick: listening unbound is UV_EINVAL.
    uvkit::pipe p{loop};
    uvkit_conf::require_throws_code(uv_code(UV_EINVAL), [&] { p.listen(8, [](std::error_code) {}); });
    CHECK_FALSE(p.active());
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: pipe_connect_to_file (test-pipe-connect-error.c)" UVKIT_SKIP_ON_WINDOWS(
                      "named pipes are not files: no path to bind twice, remove or chmod")) {
#ifndef _WIN32
    // A regular file is not a socket: the connect fails through its handler, once.
    std::string path = uvkit_conf::temp_socket_path("file");
    uv_fs_t req;
    int fd = uv_fs_open(nullptr, &req, path.c_str(), UV_FS_O_CREAT | UV_FS_O_WRONLY, 0600, nullptr);
    uv_fs_req_cleanup(&req);
    REQUIRE(fd >= 0);
    uv_fs_close(nullptr, &req, fd, nullptr);
    uv_fs_req_cleanup(&req);
    uvkit::pipe c{loop};
    int calls = 0;
    std::error_code got;
    c.connect(path, [&](std::error_code ec) {
        ++calls;
        got = ec;
    });
    run_until([&] { return calls == 1; });
    loop.run(uvkit::run_mode::nowait);
    CHECK(calls == 1);
    CHECK((got == std::errc::connection_refused || got == std::errc::not_a_socket));
    uvkit_conf::remove_path(path);
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: pipe_getsockname (test-pipe-getsockname.c)" UVKIT_SKIP_ON_WINDOWS(
                      "named pipes are not files: no path to bind twice, remove or chmod")) {
#ifndef _WIN32
    std::string path = uvkit_conf::temp_socket_path("name");
    uvkit::pipe fresh{loop};
    std::error_code ec;
    // No descriptor yet: no names.
    fresh.local_name(ec);
    CHECK(ec == uv_code(UV_EBADF));
    fresh.peer_name(ec);
    CHECK(ec == uv_code(UV_EBADF));
    uvkit::pipe server{loop};
    server.bind(path);
    CHECK(server.local_name() == path);
    // A bound, listening pipe has no peer.
    server.listen(1);
    server.peer_name(ec);
    CHECK(ec == uv_code(UV_ENOTCONN));
    uvkit::pipe c{loop};
    bool connected = false;
    c.connect(path, [&](std::error_code cec) {
        REQUIRE_FALSE(cec);
        connected = true;
    });
    run_until([&] { return connected; });
    CHECK(c.peer_name() == path);
    CHECK(c.local_name().empty());  // an unbound client socket has no name
    uvkit_conf::remove_path(path);
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: pipe_server_close (test-pipe-server-close.c)" UVKIT_SKIP_ON_WINDOWS(
                      "named pipes are not files: no path to bind twice, remove or chmod")) {
#ifndef _WIN32
    std::string path = uvkit_conf::temp_socket_path("srvclose");
    uvkit::pipe server{loop};
    server.bind(path);
    uvkit::pipe peer{loop};
    int accepted = 0;
    server.listen(1, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        server.accept(peer);
        ++accepted;
        // Closing the server from its own connection handler, keeping the
        // accepted connection: the client is unaffected.
        server.close();
    });
    uvkit::pipe c{loop};
    int connects = 0;
    c.connect(path, [&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++connects;
    });
    run_until([&] { return accepted == 1 && connects == 1; });
    CHECK(server.closing());
    c.close();
    peer.close();
    run_all();
    uvkit_conf::remove_path(path);
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: pipe_connect_multiple (test-pipe-connect-multiple.c)" UVKIT_SKIP_ON_WINDOWS(
                      "named pipes are not files: no path to bind twice, remove or chmod")) {
#ifndef _WIN32
    std::string path = uvkit_conf::temp_socket_path("multi");
    uvkit::pipe server{loop};
    server.bind(path);
    std::vector<std::unique_ptr<uvkit::pipe>> peers;
    server.listen(8, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        peers.push_back(std::make_unique<uvkit::pipe>(loop));
        server.accept(*peers.back());
    });
    constexpr int n = 4;
    std::vector<std::unique_ptr<uvkit::pipe>> clients;
    int connects = 0;
    for (int i = 0; i < n; ++i) {
        clients.push_back(std::make_unique<uvkit::pipe>(loop));
        clients.back()->connect(path, [&](std::error_code ec) {
            CHECK_FALSE(ec);
            ++connects;
        });
    }
    run_until([&] { return connects == n && peers.size() == n; });
    CHECK(connects == n);
    CHECK(peers.size() == n);
    uvkit_conf::remove_path(path);
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: pipe_connect_on_prepare (test-pipe-connect-prepare.c)" UVKIT_SKIP_ON_WINDOWS(
                      "named pipes are not files: no path to bind twice, remove or chmod")) {
#ifndef _WIN32
    // Starting a connect from a prepare handler (just before the loop polls)
    // to a name that does not exist: its handler runs once, with the error.
    std::string path = uvkit_conf::temp_socket_path("absent");
    uvkit::prepare prep{loop};
    uvkit::pipe c{loop};
    int calls = 0;
    std::error_code got;
    prep.start([&] {
        prep.stop();
        c.connect(path, [&](std::error_code ec) {
            ++calls;
            got = ec;
            c.close();
        });
    });
    run_all();
    CHECK(calls == 1);
    CHECK(got == std::errc::no_such_file_or_directory);
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: pipe_set_chmod (test-pipe-set-fchmod.c)" UVKIT_SKIP_ON_WINDOWS(
                                    "named pipes are not files: no path to bind twice, remove or chmod")) {
#ifndef _WIN32
    std::string path = uvkit_conf::temp_socket_path("chmod");
    uvkit::pipe p{loop};
    std::error_code ec;
    // Nothing bound yet: UV_EBADF.
    p.chmod(uvkit::pipe_access::readable, ec);
    CHECK(ec == uv_code(UV_EBADF));
    p.bind(path);
    auto mode = [&] {
        uv_fs_t req;
        REQUIRE(uv_fs_stat(nullptr, &req, path.c_str(), nullptr) == 0);
        auto m = req.statbuf.st_mode;
        uv_fs_req_cleanup(&req);
        return m;
    };
    p.chmod(uvkit::pipe_access::readable);
    CHECK((mode() & 0444) == 0444);
    // libuv adds permissions, it does not take any away.
    p.chmod(uvkit::pipe_access::writable);
    CHECK((mode() & 0666) == 0666);
    p.chmod(uvkit::pipe_access::read_write);
    CHECK((mode() & 0666) == 0666);
    uvkit_conf::remove_path(path);
#endif
}

}  // TEST_SUITE("conformance")
