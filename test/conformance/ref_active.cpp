// Conformance ports of libuv's reference-count and activity tests
// (test/test-ref.c, test/test-active.c) against uvkit's handles: an
// unreferenced handle does not keep run() going, but a request (connect,
// send, write) does, even on an unreferenced handle.
#include <chrono>
#include <string>

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;

TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture, "conformance: idle_ref, prepare_ref, check_ref (test-ref.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::idle i{loop};
    uvkit::prepare p{loop};
    uvkit::check c{loop};
    i.start([] {});
    p.start([] {});
    c.start([] {});
    i.unref();
    p.unref();
    c.unref();
    // Active but unreferenced: run() has nothing to wait for and returns.
    CHECK_FALSE(loop.run());
    CHECK(i.active());
    CHECK(p.active());
    CHECK(c.active());
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: unref_in_prepare_cb (test-ref.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::prepare p{loop};
    int calls = 0;
    p.start([&] {
        ++calls;
        p.unref();
    });
    CHECK_FALSE(loop.run());
    CHECK(calls == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: timer_ref, timer_ref2 (test-ref.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::timer t{loop};
    int fired = 0;
    // Unreferenced before it is started: starting does not re-reference it.
    t.unref();
    t.start(1ms, 1ms, [&] { ++fired; });
    CHECK_FALSE(t.has_ref());
    CHECK_FALSE(loop.run());
    CHECK(fired == 0);
    // Unreferenced while active (timer_ref).
    t.ref();
    t.start(0ms, [&] { ++fired; });
    t.unref();
    CHECK_FALSE(loop.run());
    CHECK(fired == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: has_ref (test-ref.c)") {
    uvkit::idle i{loop};
    CHECK(i.has_ref());
    i.unref();
    i.unref();  // idempotent, as in libuv: one ref() undoes any number of unref()
    CHECK_FALSE(i.has_ref());
    i.ref();
    CHECK(i.has_ref());
    i.ref();
    i.unref();
    CHECK_FALSE(i.has_ref());
    // A closing handle reports no reference (uvkit: closed handles are unusable).
    i.close();
    CHECK_FALSE(i.has_ref());
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_ref2 (test-ref.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::tcp server{loop};
    server.bind(uvkit_conf::loopback_any());
    server.listen(8, [](std::error_code) {});
    server.unref();
    // A listening, unreferenced server does not keep the loop running.
    CHECK_FALSE(loop.run());
    CHECK(server.active());
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: tcp_ref3 (test-ref.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::tcp server{loop};
    server.bind(uvkit_conf::loopback_any());
    server.listen(8);
    uvkit::tcp c{loop};
    int connected = 0;
    int shut = 0;
    c.connect(server.local_endpoint(), [&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++connected;
        c.shutdown([&](std::error_code sec) {
            CHECK_FALSE(sec);
            ++shut;
        });
    });
    c.unref();
    server.unref();
    // The connect and shutdown requests keep run() going although no handle is referenced.
    CHECK_FALSE(loop.run());
    CHECK(connected == 1);
    CHECK(shut == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: udp_ref2, udp_ref3 (test-ref.c)") {
    uvkit_conf::watchdog wd{loop};
    uvkit::udp u{loop};
    u.bind(uvkit_conf::loopback_any());
    u.recv_start([](std::error_code, std::string_view, const uvkit::endpoint&, unsigned) {});
    u.unref();
    // Receiving on an unreferenced udp: run() returns (udp_ref2).
    CHECK_FALSE(loop.run());
    CHECK(u.active());
    // A send request keeps the loop alive (udp_ref3).
    int sent = 0;
    u.send(std::string("x"), u.local_endpoint(), [&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++sent;
    });
    CHECK_FALSE(loop.run());
    CHECK(sent == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: pipe_ref3 (test-ref.c)" UVKIT_SKIP_ON_WINDOWS(
                                    "binds a Unix socket path in the temporary directory; a named pipe "
                                    "cannot be bound to a file path (uv_pipe_bind gave permission denied)")) {
    uvkit_conf::watchdog wd{loop};
    std::string path = uvkit_conf::temp_socket_path("ref");
    uvkit::pipe server{loop};
    server.bind(path);
    server.listen(8);
    server.unref();
    uvkit::pipe c{loop};
    int connected = 0;
    c.connect(path, [&](std::error_code ec) {
        CHECK_FALSE(ec);
        ++connected;
    });
    c.unref();
    // The connect request keeps run() going.
    CHECK_FALSE(loop.run());
    CHECK(connected == 1);
    uvkit_conf::remove_path(path);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: process_ref (test-ref.c)" UVKIT_SKIP_ON_WINDOWS("the child is /bin/cat")) {
#ifndef _WIN32
    uvkit_conf::watchdog wd{loop};
    uvkit::pipe in{loop};
    uvkit::process_options opts;
    opts.file = "/bin/cat";
    opts.stdio = {uvkit::process_stdio::create_pipe(in), uvkit::process_stdio::ignore(),
                  uvkit::process_stdio::inherit(2)};
    int exits = 0;
    uvkit::process child{loop, opts, [&](std::int64_t status, int) {
                             CHECK(status == 0);
                             ++exits;
                         }};
    child.unref();
    // A running, unreferenced child does not keep run() going.
    CHECK_FALSE(loop.run());
    CHECK(exits == 0);
    // End its input; referenced again, the loop waits for its exit.
    in.close();
    child.ref();
    run_until([&] { return exits == 1; });
    CHECK(exits == 1);
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: active (test-active.c)") {
    uvkit::timer t{loop};
    CHECK_FALSE(t.active());
    t.start(1h, [] {});
    CHECK(t.active());
    t.stop();
    CHECK_FALSE(t.active());
    t.start(1h, [] {});
    CHECK(t.active());
    // Closing a handle deactivates it at once, before the close callback.
    t.close();
    CHECK_FALSE(t.active());
    CHECK(t.closing());

    // A stream is active while it listens or reads.
    uvkit::tcp server{loop};
    server.bind(uvkit_conf::loopback_any());
    CHECK_FALSE(server.active());
    server.listen(8, [](std::error_code) {});
    CHECK(server.active());
}

}  // TEST_SUITE("conformance")
