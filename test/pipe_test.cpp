// Tests of uvkit::pipe: Unix domain sockets in a temporary directory, pipes
// adopted with open(), IPC handle passing to a loop on another thread, and the
// coroutine connect/accept. Every wait is a bounded run of the loop.
#include <uv.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "fixture.hpp"
#include "platform.hpp"

using namespace std::chrono_literals;
using uvkit_test::loop_fixture;

namespace {

bool is_einval(const std::error_code& ec) { return ec == uvkit::make_uv_error(UV_EINVAL); }

/// A fresh directory for socket files, removed with its content at scope exit. On Windows the
/// names are named pipes (\\.\pipe\...), unique the same way.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        static std::atomic<int> counter{0};
        path = std::filesystem::temp_directory_path() /
               ("uvkit-pipe-" + std::to_string(uv_os_getpid()) + "-" + std::to_string(counter++));
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
#ifdef _WIN32
    std::string file(const char* name) const {
        return "\\\\.\\pipe\\" + path.filename().string() + "-" + name;
    }
#else
    std::string file(const char* name) const { return (path / name).string(); }
#endif
};

/// Runs `l` until `done()` or a time limit, for loops the test owns.
[[maybe_unused]] bool run_bounded(uvkit::loop& l, const std::function<bool()>& done,
                                  std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    uvkit::timer watchdog{l};
    bool expired = false;
    watchdog.start(limit, [&] {
        expired = true;
        l.stop();
    });
    watchdog.unref();
    for (int i = 0; i < 1000000 && !done() && !expired; ++i)
        if (!l.run(uvkit::run_mode::once) && !done()) break;
    return done() && !expired;
}

}  // namespace

TEST_CASE_FIXTURE(loop_fixture, "pipe: echo over a Unix socket (bind, listen, accept, connect, names)") {
    temp_dir dir;
    const std::string path = dir.file("echo.sock");
    uvkit::pipe server{loop};
    server.bind(path);
    CHECK(server.local_name() == path);
    CHECK_FALSE(server.ipc());
    uvkit::pipe served;
    server.listen(8, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        served = uvkit::pipe{loop};
        server.accept(served);
        served.read_start([&](std::error_code rec, std::string_view data) {
            if (rec) {
                CHECK(rec == uvkit::errc::eof);
                served.close();
                return;
            }
            served.write(std::string(data));
        });
    });

    uvkit::pipe client{loop};
    std::error_code connect_ec = uvkit::make_uv_error(UV_EAI_AGAIN);
    std::string reply;
    bool eof = false;
    client.connect(path, [&](std::error_code ec) {
        connect_ec = ec;
        if (ec) return;
        CHECK(client.peer_name() == path);
        client.write("ping over a unix socket", [](std::error_code wec) { CHECK_FALSE(wec); });
        client.read_start([&](std::error_code rec, std::string_view data) {
            if (rec) {
                CHECK(rec == uvkit::errc::eof);
                eof = true;
                client.close();
                return;
            }
            reply += data;
            if (reply.size() == std::string_view("ping over a unix socket").size())
                client.shutdown([](std::error_code sec) { CHECK_FALSE(sec); });
        });
    });
    run_until([&] { return eof; });
    CHECK_FALSE(connect_ec);
    CHECK(reply == "ping over a unix socket");
    server.close();
    run_all();
}

TEST_CASE_FIXTURE(loop_fixture, "pipe: connect to a missing path reports through the handler, once") {
    temp_dir dir;
    uvkit::pipe client{loop};
    int calls = 0;
    std::error_code got;
    std::error_code sync;
    client.connect(
        dir.file("nobody-here.sock"),
        [&](std::error_code ec) {
            ++calls;
            got = ec;
        },
        sync);
    CHECK_FALSE(sync);
    run_all();
    CHECK(calls == 1);
    CHECK(got == std::errc::no_such_file_or_directory);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "pipe: closing before connect completed gives canceled, once" UVKIT_SKIP_UNDER_WINE(
                      "closing a named pipe client with its connect pending completed the connect with "
                      "invalid argument, not canceled")) {
    temp_dir dir;
    const std::string path = dir.file("s.sock");
    uvkit::pipe server{loop};
    server.bind(path);
    server.listen(8, [](std::error_code) {});
    uvkit::pipe client{loop};
    int calls = 0;
    std::error_code got;
    client.connect(path, [&](std::error_code ec) {
        ++calls;
        got = ec;
    });
    client.close();
    server.close();
    run_all();
    CHECK(calls == 1);
    CHECK(got == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(loop_fixture, "pipe: invalid names fail synchronously and are never truncated") {
    uvkit::pipe p{loop};
    std::error_code ec;
    p.bind(std::string(300, 'x'), ec);
    CHECK(ec == std::errc::filename_too_long);
    p.bind(std::string("a\0b", 3), ec);
    CHECK(is_einval(ec));
    bool called = false;
    p.connect(
        std::string(300, 'y'), [&](std::error_code) { called = true; }, ec);
    CHECK(ec == std::errc::filename_too_long);
    CHECK_THROWS_AS(p.bind(""), std::system_error);
    run_all();
    CHECK_FALSE(called);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "pipe: socket buffer sizes of a pipe that is no socket are an error, not a size") {
    uv_file fds[2];
    REQUIRE(uv_pipe(fds, 0, 0) == 0);
    uvkit::pipe reader{loop};
    uvkit::pipe writer{loop};
    reader.open(fds[0]);
    writer.open(fds[1]);
    std::error_code ec;
    CHECK(reader.recv_buffer_size(ec) == 0);  // UV_ENOTSOCK (UV_ENOTSUP on Windows)
    CHECK(ec);
    CHECK_FALSE(is_einval(ec));
    writer.set_send_buffer_size(65536, ec);
    CHECK(ec);
    CHECK_FALSE(is_einval(ec));
    CHECK_THROWS_AS(writer.set_send_buffer_size(65536), std::system_error);
    writer.set_send_buffer_size(0, ec);
    CHECK(is_einval(ec));
}

TEST_CASE_FIXTURE(loop_fixture, "pipe: open() adopts both ends of uv_pipe()") {
    uv_file fds[2];
    REQUIRE(uv_pipe(fds, 0, 0) == 0);
    uvkit::pipe reader{loop};
    uvkit::pipe writer{loop};
    reader.open(fds[0]);
    writer.open(fds[1]);
    CHECK(reader.readable());
    CHECK(writer.writable());
    std::string got;
    bool eof = false;
    reader.read_start([&](std::error_code ec, std::string_view data) {
        if (ec) {
            CHECK(ec == uvkit::errc::eof);
            eof = true;
            reader.close();
            return;
        }
        got += data;
    });
    std::string payload(100000, 'p');
    bool written = false;
    writer.write(std::string_view(payload), [&](std::error_code ec) {
        CHECK_FALSE(ec);
        written = true;
        writer.close();  // the reader sees EOF
    });
    run_until([&] { return eof; });
    CHECK(written);
    CHECK(got == payload);
}

TEST_CASE_FIXTURE(loop_fixture, "pipe: moved-from and closed pipes fail with UV_EINVAL") {
    uvkit::pipe a{loop, true};
    CHECK(a.ipc());
    uvkit::pipe b = std::move(a);
    CHECK_FALSE(a);
    CHECK_FALSE(a.ipc());
    CHECK(a.raw() == nullptr);
    CHECK(a.pending_count() == 0);
    CHECK(a.pending_type() == UV_UNKNOWN_HANDLE);
    a.pending_instances(4);  // no-op
    std::error_code ec;
    a.bind("/tmp/x", ec);
    CHECK(is_einval(ec));
    a.open(0, ec);
    CHECK(is_einval(ec));
    bool called = false;
    a.connect(
        "/tmp/x", [&](std::error_code) { called = true; }, ec);
    CHECK(is_einval(ec));
    CHECK(a.local_name(ec).empty());
    CHECK(is_einval(ec));
    a.peer_name(ec);
    CHECK(is_einval(ec));
    a.chmod(uvkit::pipe_access::read_write, ec);
    CHECK(is_einval(ec));
    a.write(
        "x", b, [&](std::error_code) { called = true; }, ec);
    CHECK(is_einval(ec));
    CHECK_THROWS_AS(a.bind("/tmp/x"), std::system_error);
    CHECK_THROWS_AS(a.local_name(), std::system_error);

    b.close();
    b.bind("/tmp/x", ec);
    CHECK(is_einval(ec));
    b.open(0, ec);
    CHECK(is_einval(ec));
    b.connect(
        "/tmp/x", [&](std::error_code) { called = true; }, ec);
    CHECK(is_einval(ec));
    run_all();
    CHECK_FALSE(called);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "pipe: handle passing needs an IPC pipe and an open handle, and data" UVKIT_SKIP_ON_WINDOWS(
                      "IPC handle passing there needs a named pipe that libuv opens for a child process; "
                      "uv_socketpair gives sockets, which an IPC pipe cannot adopt")) {
#ifndef _WIN32
    uv_file fds[2];
    REQUIRE(uv_socketpair(SOCK_STREAM, 0, fds, 0, 0) == 0);
    uvkit::pipe plain{loop};
    plain.open(fds[0]);
    uvkit::pipe ipc{loop, true};
    ipc.open(fds[1]);
    uvkit::tcp t{loop};
    t.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    bool called = false;
    std::error_code ec;
    plain.write(
        "x", t, [&](std::error_code) { called = true; }, ec);
    CHECK(is_einval(ec));
    ipc.write(
        "", t, [&](std::error_code) { called = true; }, ec);
    CHECK(is_einval(ec));
    uvkit::tcp gone;
    ipc.write(
        "x", gone, [&](std::error_code) { called = true; }, ec);
    CHECK(is_einval(ec));
    CHECK_THROWS_AS(plain.write("x", t, [&](std::error_code) { called = true; }), std::system_error);
    plain.close();
    ipc.close();
    t.close();
    run_all();
    CHECK_FALSE(called);
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "pipe: destroying a pipe inside its read handler") {
    uv_file fds[2];
    REQUIRE(uv_pipe(fds, 0, 0) == 0);
    auto reader = std::make_unique<uvkit::pipe>(loop);
    uvkit::pipe writer{loop};
    reader->open(fds[0]);
    writer.open(fds[1]);
    int reads = 0;
    reader->read_start([&](std::error_code, std::string_view) {
        ++reads;
        reader.reset();
    });
    writer.write(std::string("hello"));
    run_until([&] { return reader == nullptr; });
    CHECK(reads == 1);
    writer.close();
    run_all();
}

TEST_CASE("pipe: destroying the loop while a pipe reads and a connect is pending") {
    auto l = std::make_unique<uvkit::loop>();
    uv_file fds[2];
    REQUIRE(uv_pipe(fds, 0, 0) == 0);
    uvkit::pipe reader{*l};
    uvkit::pipe writer{*l};
    reader.open(fds[0]);
    writer.open(fds[1]);
    int reads = 0;
    reader.read_start([&](std::error_code, std::string_view) { ++reads; });
    int connects = 0;
    std::error_code connect_ec;
    temp_dir dir;
    uvkit::pipe client{*l};
    client.connect(dir.file("missing.sock"), [&](std::error_code ec) {
        ++connects;
        connect_ec = ec;
    });
    l->run(uvkit::run_mode::nowait);
    l.reset();  // closes every pipe; the pending connect completes
    CHECK(connects == 1);
    CHECK(connect_ec);
    std::error_code ec;
    reader.read_start([](std::error_code, std::string_view) {}, ec);
    CHECK(is_einval(ec));
    writer.write(
        "x", [](std::error_code) {}, ec);
    CHECK(is_einval(ec));
    CHECK(reads == 0);
}

// The base of multi-loop servers: loop A accepts a TCP connection and passes
// it over an IPC pipe to loop B, running on another thread, which serves it.
TEST_CASE_FIXTURE(
    loop_fixture,
    "pipe: a TCP connection accepted on one loop is served by a loop on another thread" UVKIT_SKIP_ON_WINDOWS(
        "IPC handle passing there needs a named pipe that libuv opens for a child process; uv_socketpair "
        "gives sockets, which an IPC pipe cannot adopt")) {
#ifndef _WIN32
    uv_file fds[2];
    REQUIRE(uv_socketpair(SOCK_STREAM, 0, fds, 0, 0) == 0);

    // Loop B: takes one connection from the IPC pipe and echoes it.
    std::atomic<bool> b_served{false};
    std::atomic<bool> b_ok{false};
    std::atomic<int> b_type{UV_UNKNOWN_HANDLE};
    std::string b_peer;
    std::thread::id b_thread_seen;
    struct joiner {
        std::thread t;
        ~joiner() {
            if (t.joinable()) t.join();
        }
    } b;
    b.t = std::thread([&, fd = fds[1]] {
        uvkit::loop lb;
        uvkit::pipe ipc{lb, true};
        ipc.open(fd);
        uvkit::tcp conn;
        bool done = false;
        ipc.read_start([&](std::error_code ec, std::string_view) {
            if (ec) {
                ipc.close();
                return;
            }
            while (ipc.pending_count() > 0) {
                b_type = ipc.pending_type();
                conn = uvkit::tcp{lb};
                ipc.accept(conn);
                b_peer = conn.peer_endpoint().to_string();
                b_thread_seen = std::this_thread::get_id();
                b_served = true;
                conn.read_start([&](std::error_code rec, std::string_view data) {
                    if (rec) {
                        conn.close();
                        ipc.close();
                        done = true;
                        return;
                    }
                    conn.write("B:" + std::string(data));
                });
            }
        });
        b_ok = run_bounded(lb, [&] { return done; });
        conn.close();
        ipc.close();
        lb.run();  // flush close callbacks
    });

    // Loop A: accepts, hands the connection to B, and closes its own copy.
    uvkit::pipe ipc{loop, true};
    ipc.open(fds[0]);
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    uvkit::tcp accepted;
    bool passed = false;
    server.listen(8, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        accepted = uvkit::tcp{loop};
        server.accept(accepted);
        ipc.write("h", accepted, [&](std::error_code wec) {
            CHECK_FALSE(wec);
            passed = true;
            accepted.close();  // B holds its own descriptor now
        });
    });

    uvkit::tcp client{loop};
    std::string reply;
    std::string client_local;
    client.connect(server.local_endpoint(), [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        client_local = client.local_endpoint().to_string();
        client.write(std::string("hello via loop B"));
        client.read_start([&](std::error_code rec, std::string_view data) {
            if (rec) return;
            reply += data;
            if (reply.size() >= std::string_view("B:hello via loop B").size()) client.close();
        });
    });
    run_until([&] { return client.closing() && passed; });
    server.close();
    ipc.close();
    run_all();
    b.t.join();
    CHECK(passed);
    CHECK(b_type == UV_TCP);
    CHECK(reply == "B:hello via loop B");
    CHECK(b_served);
    CHECK(b_ok);
    CHECK(b_peer == client_local);
    CHECK(b_thread_seen != std::this_thread::get_id());
#endif
}

namespace {
uvkit::task<std::string> pipe_echo_once(uvkit::loop& l, std::string path) {
    uvkit::pipe c = co_await uvkit::connect_pipe(l, path);
    co_await c.async_write("co ping");
    co_await c.async_shutdown();
    std::string all;
    for (;;) {
        std::string chunk = co_await c.async_read();
        if (chunk.empty()) break;
        all += chunk;
    }
    co_return all;
}
uvkit::task<void> pipe_echo_serve(uvkit::pipe& server) {
    uvkit::pipe c = co_await server.async_accept();
    for (;;) {
        std::string chunk = co_await c.async_read();
        if (chunk.empty()) break;
        co_await c.async_write(std::move(chunk));
    }
    co_await c.async_shutdown();
}
uvkit::task<std::error_code> pipe_connect_missing(uvkit::loop& l, std::string path) {
    std::error_code ec;
    uvkit::pipe c = co_await uvkit::connect_pipe(l, path, false, ec);
    CHECK_FALSE(c);
    co_return ec;
}
}  // namespace

TEST_CASE_FIXTURE(loop_fixture, "pipe: coroutine connect_pipe and async_accept") {
    temp_dir dir;
    const std::string path = dir.file("co.sock");
    uvkit::pipe server{loop};
    server.bind(path);
    server.listen();
    auto both = [&]() -> uvkit::task<std::string> {
        auto [s, r] = co_await uvkit::when_all(pipe_echo_serve(server), pipe_echo_once(loop, path));
        co_return r;
    };
    CHECK(uvkit::run(loop, both()) == "co ping");
    CHECK(uvkit::run(loop, pipe_connect_missing(loop, dir.file("missing.sock"))) ==
          std::errc::no_such_file_or_directory);
    auto throwing = [&]() -> uvkit::task<void> {
        co_await uvkit::connect_pipe(loop, dir.file("missing.sock"));
    };
    CHECK_THROWS_AS(uvkit::run(loop, throwing()), std::system_error);
    server.close();
}
