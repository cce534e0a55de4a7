// uvkit/co/tls.hpp: awaited handshake, read, write, shutdown; cancellation and
// tasks destroyed in the middle of a handshake or a write.
#include <uvkit/co/sync.hpp>
#include <uvkit/co/tls.hpp>

#include <uvkit/uvkit.hpp>

#include <memory>
#include <string>
#include <vector>

#include "alloc_counter.hpp"
#include "co_util.hpp"
#include "fixture.hpp"
#include "tls_util.hpp"

using uvkit_co_test::connected_pair;
using uvkit_co_test::destroy_flag;
using uvkit_co_test::start;
using uvkit_tls_test::client_ctx;
using uvkit_tls_test::pattern;
using uvkit_tls_test::server_ctx;

namespace {

/// A TLS pair over a connected tcp pair: {server, client}, handshake not started.
std::pair<uvkit::tls_stream, uvkit::tls_stream> tls_pair(uvkit::loop& l) {
    auto ab = connected_pair(l);
    uvkit::tls_stream s{server_ctx(), std::move(ab.first)};
    uvkit::tls_stream c{client_ctx(), std::move(ab.second)};
    c.set_hostname("localhost");
    return {std::move(s), std::move(c)};
}

uvkit::task<void> handshake(uvkit::tls_stream& t) { co_await t.async_handshake(); }

/// Both ends' handshakes, at the same time.
uvkit::task<void> handshake_both(uvkit::tls_stream& s, uvkit::tls_stream& c) {
    co_await uvkit::when_all(handshake(s), handshake(c));
}

uvkit::task<std::string> read_all(uvkit::tls_stream& t) {
    std::string all;
    for (;;) {
        std::string chunk = co_await t.async_read();
        if (chunk.empty()) co_return all;
        all += chunk;
    }
}

uvkit::task<void> send_all(uvkit::tls_stream& t, const std::string& data) {
    for (std::size_t pos = 0; pos < data.size(); pos += 64 * 1024)
        co_await t.async_write(std::string_view(data).substr(pos, 64 * 1024));
    co_await t.async_shutdown();
}

/// A connection object whose member coroutine writes once the handshake is
/// done (the shape of a server that refuses a connection over TLS).
template <class S>
struct refusing_connection {
    S t;
    int& ran;
    uvkit::task<void> refuse() {
        ++ran;
        co_await t.async_write("503 refused");
        co_await t.async_shutdown();
    }
};

/// The handshake inside with_timeout inside a task<bool>: false if it failed.
uvkit::task<bool> handshake_in_time(uvkit::loop& l, uvkit::tls_stream& t) {
    try {
        co_await uvkit::with_timeout(l, std::chrono::hours(1), t.async_handshake());
    } catch (const std::system_error&) {
        co_return false;
    }
    co_return true;
}

uvkit::task<void> refuse_after_handshake(uvkit::loop& l, uvkit::tcp socket, int& ran) {
    std::error_code ec;
    uvkit::tls_stream t{server_ctx(), std::move(socket), ec};
    if (ec || !co_await handshake_in_time(l, t)) co_return;
    refusing_connection<uvkit::tls_stream> c{std::move(t), ran};
    co_await c.refuse();
}

}  // namespace

TEST_SUITE("co: tls") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: tls echo: handshake, write, read, shutdown") {
    auto sc = tls_pair(loop);
    auto& s = sc.first;
    auto& c = sc.second;
    auto server = [&]() -> uvkit::task<void> {
        co_await s.async_handshake();
        std::string line = co_await s.async_read();
        co_await s.async_write("echo: " + line);
        co_await s.async_shutdown();
        CHECK(co_await s.async_read() == "");  // the client's close_notify
    };
    auto client = [&]() -> uvkit::task<void> {
        // A write awaited while the handshake runs waits for it, then goes out.
        co_await uvkit::when_all(
            [&]() -> uvkit::task<void> { co_await c.async_handshake(); }(),
            [&]() -> uvkit::task<void> { co_await c.async_write("queued before the handshake"); }());
        co_await c.async_handshake();  // done already: completes at once
        CHECK(c.protocol() == "TLSv1.3");
        std::string reply = co_await read_all(c);
        CHECK(reply == "echo: queued before the handshake");
        co_await c.async_shutdown();
    };
    auto both = [&]() -> uvkit::task<void> { co_await uvkit::when_all(server(), client()); };
    uvkit::run(loop, both());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: tls 1 MiB each way, byte for byte; async_read(span)") {
    auto sc = tls_pair(loop);
    auto& s = sc.first;
    auto& c = sc.second;
    const std::string up = pattern(1 << 20, 5), down = pattern(1 << 20, 6);
    auto side = [&](uvkit::tls_stream& t, const std::string& out, bool spans) -> uvkit::task<std::string> {
        co_await t.async_handshake();
        auto writer = send_all(t, out);
        auto reader = [&]() -> uvkit::task<std::string> {
            if (!spans) co_return co_await read_all(t);
            std::string all;
            char buf[3000];
            for (;;) {
                std::size_t n = co_await t.async_read(std::span<char>(buf));
                if (n == 0) co_return all;
                all.append(buf, n);
            }
        };
        auto [w, got] = co_await uvkit::when_all(std::move(writer), reader());
        (void)w;
        co_return got;
    };
    std::string at_server, at_client;
    auto both = [&]() -> uvkit::task<void> {
        auto [a, b] = co_await uvkit::when_all(side(s, down, true), side(c, up, false));
        at_server = std::move(a);
        at_client = std::move(b);
    };
    uvkit::run(loop, both());
    CHECK(at_server.size() == up.size());
    CHECK(at_server == up);
    CHECK(at_client.size() == down.size());
    CHECK(at_client == down);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls errors: verify failure and unexpected eof, with ec forms") {
    {
        auto ab = connected_pair(loop);
        uvkit::tls_stream s{
            server_ctx(uvkit_tls_test::certs::get().self_signed, uvkit_tls_test::certs::get().self_key),
            std::move(ab.first)};
        uvkit::tls_stream c{client_ctx(), std::move(ab.second)};
        c.set_hostname("localhost");
        auto t = [&]() -> uvkit::task<void> {
            std::error_code se, ce;
            co_await uvkit::when_all([&]() -> uvkit::task<void> { co_await s.async_handshake(se); }(),
                                     [&]() -> uvkit::task<void> { co_await c.async_handshake(ce); }());
            CHECK(ce == uvkit::tls_errc::verify_failed);
            CHECK(se == uvkit::tls_errc::handshake_failed);
            std::error_code rec;
            CHECK(co_await c.async_read(rec) == "");
            CHECK(rec == ce);
            bool threw = false;
            try {
                co_await c.async_write("x");
            } catch (const std::system_error& e) {
                threw = e.code() == uvkit::tls_errc::verify_failed;
            }
            CHECK(threw);
        };
        uvkit::run(loop, t());
    }
    {
        auto sc = tls_pair(loop);
        auto& s = sc.first;
        auto& c = sc.second;
        auto t = [&]() -> uvkit::task<void> {
            co_await handshake_both(s, c);
            co_await s.async_write("cut");
            s.close();  // no close_notify
            CHECK(co_await c.async_read() == "cut");
            std::error_code ec;
            CHECK(co_await c.async_read(ec) == "");
            CHECK(ec == uvkit::tls_errc::unexpected_eof);
            std::error_code again;
            CHECK(co_await c.async_read(again) == "");
            CHECK(again == uvkit::tls_errc::unexpected_eof);  // sticky
        };
        uvkit::run(loop, t());
    }
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls a cancelled read completes with canceled; the stream goes on") {
    auto sc = tls_pair(loop);
    auto& s = sc.first;
    auto& c = sc.second;
    auto t = [&]() -> uvkit::task<void> {
        co_await handshake_both(s, c);
        // when_any: the read loses to the write-and-read of the other branch.
        auto r = co_await uvkit::when_any(
            [&]() -> uvkit::task<std::string> { co_return co_await s.async_read(); }(),
            [&]() -> uvkit::task<int> { co_return 7; }());
        CHECK(r.index() == 1);
        co_await c.async_write("after the cancel");
        CHECK(co_await s.async_read() == "after the cancel");
    };
    uvkit::run(loop, t());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls close completes a waiting handshake and read with canceled") {
    auto sc = tls_pair(loop);
    auto& s = sc.first;
    auto& c = sc.second;
    auto t = [&]() -> uvkit::task<void> {
        std::error_code hec, rec;
        // The server never answers: nobody calls its handshake.
        co_await uvkit::when_all([&]() -> uvkit::task<void> { co_await c.async_handshake(hec); }(),
                                 [&]() -> uvkit::task<void> {
                                     co_await uvkit::sleep(loop, std::chrono::milliseconds(1));
                                     c.close();
                                     co_return;
                                 }());
        CHECK(hec == uvkit::errc::canceled);
        std::string got = co_await c.async_read(rec);
        CHECK(rec == std::errc::invalid_argument);  // closed
        CHECK(got.empty());
    };
    uvkit::run(loop, t());
    (void)s;
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls a task destroyed mid-handshake closes the stream, nothing leaks") {
    auto sc = tls_pair(loop);
    auto& c = sc.second;
    bool destroyed = false;
    {
        auto fn = [&](bool* flag) -> uvkit::task<void> {
            destroy_flag f{flag};
            co_await c.async_handshake();  // the server never answers
            FAIL("not reached");
        };
        auto t = fn(&destroyed);
        start(t);
        loop.run(uvkit::run_mode::nowait);  // the ClientHello goes out
    }
    CHECK(destroyed);
    CHECK(c.closing());
    for (int i = 0; i < 10 && loop.handle_count() > 1; ++i) loop.run(uvkit::run_mode::nowait);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls a task destroyed mid-write closes the stream; the bytes are never read") {
    auto sc = tls_pair(loop);
    auto& s = sc.first;
    auto& c = sc.second;
    auto hs = [&]() -> uvkit::task<void> { co_await handshake_both(s, c); };
    uvkit::run(loop, hs());
    bool destroyed = false;
    {
        // 16 MiB that the server does not read: the write waits on the transport.
        auto data = std::make_unique<std::string>(pattern(16 << 20, 7));
        auto fn = [&](bool* flag, const std::string& d) -> uvkit::task<void> {
            destroy_flag f{flag};
            co_await c.async_write(d);
            FAIL("not reached");
        };
        auto t = fn(&destroyed, *data);
        start(t);
        CHECK(c.write_queue_size() > 0);
        // The task goes, then the bytes.
    }
    CHECK(destroyed);
    CHECK(c.closing());
    for (int i = 0; i < 10 && loop.handle_count() > 1; ++i) loop.run(uvkit::run_mode::nowait);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls one read at a time; a read_start handler takes over when idle") {
    auto sc = tls_pair(loop);
    auto& s = sc.first;
    auto& c = sc.second;
    auto t = [&]() -> uvkit::task<void> {
        co_await handshake_both(s, c);
        co_await c.async_write("one");
        CHECK(co_await s.async_read() == "one");
        std::string got;
        uvkit::event two{loop};
        s.read_start([&](std::error_code ec, std::string_view d) {
            if (!ec) got += d;
            if (got.size() >= 3) two.set();
        });
        std::error_code ec;
        co_await s.async_read(ec);
        CHECK(ec == std::errc::connection_already_in_progress);
        co_await c.async_write("two");
        co_await two.wait();  // the handler has all three bytes
        CHECK(got == "two");
        // After read_stop() a coroutine takes the stream back.
        s.read_stop();
        co_await c.async_write("three");
        CHECK(co_await s.async_read() == "three");
        CHECK(got == "two");
    };
    uvkit::run(loop, t());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: tls on an empty stream: UV_EINVAL") {
    uvkit::tls_stream e;
    auto t = [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await e.async_handshake(ec);
        CHECK(ec == std::errc::invalid_argument);
        co_await e.async_write("x", ec);
        CHECK(ec == std::errc::invalid_argument);
        CHECK(co_await e.async_read(ec) == "");
        CHECK(ec == std::errc::invalid_argument);
        co_await e.async_shutdown(ec);
        CHECK(ec == std::errc::invalid_argument);
    };
    uvkit::run(loop, t());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls an error inside one coroutine's write wakes a waiting read later, from the loop") {
    auto sc = tls_pair(loop);
    auto& s = sc.first;
    auto& c = sc.second;
    bool reader_done = false, reader_waiting = false;
    std::error_code read_ec, write_ec;
    uvkit::event ready{loop};
    auto server = [&]() -> uvkit::task<void> {
        co_await s.async_handshake();
        std::error_code ec;
        co_await s.async_read(ec);  // the client's transport ends (no close_notify)
        CHECK(ec);
    };
    auto reader = [&]() -> uvkit::task<void> {
        co_await c.async_handshake();
        reader_waiting = true;
        ready.set();
        co_await c.async_read(read_ec);
        reader_done = true;
    };
    auto writer = [&]() -> uvkit::task<void> {
        co_await ready.wait();
        CHECK(reader_waiting);
        c.transport().shutdown([](std::error_code) {});  // the next transport write fails at once
        co_await c.async_write("x", write_ec);
        CHECK(write_ec);
        CHECK_FALSE(reader_done);  // not resumed inside this write
    };
    auto all = [&]() -> uvkit::task<void> { co_await uvkit::when_all(server(), reader(), writer()); };
    uvkit::run(loop, all());
    CHECK(reader_done);
    CHECK(read_ec == write_ec);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls read_stop() from another coroutine wakes the read later") {
    auto sc = tls_pair(loop);
    auto& s = sc.first;
    auto& c = sc.second;
    bool reader_done = false;
    std::error_code read_ec;
    uvkit::event ready{loop};
    auto server = [&]() -> uvkit::task<void> { co_await s.async_handshake(); };
    auto reader = [&]() -> uvkit::task<void> {
        co_await c.async_handshake();
        ready.set();
        co_await c.async_read(read_ec);
        reader_done = true;
    };
    auto stopper = [&]() -> uvkit::task<void> {
        co_await ready.wait();
        c.read_stop();
        CHECK_FALSE(reader_done);  // not resumed inside read_stop()
    };
    auto all = [&]() -> uvkit::task<void> { co_await uvkit::when_all(server(), reader(), stopper()); };
    uvkit::run(loop, all());
    CHECK(reader_done);
    CHECK(read_ec == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls a borrowed write and a span read allocate nothing once warm") {
    auto sc = tls_pair(loop);
    auto& s = sc.first;
    auto& c = sc.second;
    auto t = [&]() -> uvkit::task<std::size_t> {
        co_await handshake_both(s, c);
        co_return co_await uvkit_co_test::pingpong_allocations(c, s, 10, 500);
    };
    CHECK(uvkit::run(loop, t()) == 0);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls a read ended by read_stop() and destroyed before the loop resumed it") {
    auto sc = tls_pair(loop);
    auto& s = sc.first;
    auto& c = sc.second;
    auto hs = [&]() -> uvkit::task<void> { co_await handshake_both(s, c); };
    uvkit::run(loop, hs());
    bool destroyed = false;
    {
        auto fn = [&](bool* flag) -> uvkit::task<void> {
            destroy_flag f{flag};
            co_await c.async_read();
            FAIL("not reached");
        };
        auto t = fn(&destroyed);
        start(t);
        c.read_stop();  // the loop is to resume it, soon
    }                   // but the frame goes first
    CHECK(destroyed);
    CHECK_FALSE(c.closing());
    auto rest = [&]() -> uvkit::task<void> {
        co_await s.async_write("after");
        CHECK(co_await c.async_read() == "after");
    };
    uvkit::run(loop, rest());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls: a member task awaited right after a handshake in with_timeout runs") {
    // The handshake completes from the TLS read callback; the task awaited next
    // must start there and run, spawned in a task_group or awaited through when_all.
    for (bool group : {true, false}) {
        CAPTURE(group);
        auto ab = connected_pair(loop);
        uvkit::tls_stream c{client_ctx(), std::move(ab.second)};
        c.set_hostname("localhost");
        int ran = 0;
        auto client = [&]() -> uvkit::task<std::string> {
            co_await c.async_handshake();
            co_return co_await read_all(c);
        };
        std::string got;
        if (group) {
            uvkit::task_group g{loop};
            g.spawn(refuse_after_handshake(loop, std::move(ab.first), ran));
            got = uvkit::run(loop, client());
        } else {
            auto both = [&]() -> uvkit::task<std::string> {
                auto [r, text] = co_await uvkit::when_all(
                    refuse_after_handshake(loop, std::move(ab.first), ran), client());
                co_return text;
            };
            got = uvkit::run(loop, both());
        }
        CHECK(ran == 1);
        CHECK(got == "503 refused");
    }
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: tls span reads of every size, decrypted in place, byte for byte") {
    // Spans smaller than a record (the rest stays in OpenSSL for the next
    // read), about a record, and larger: what arrives is what was sent.
    auto sc = tls_pair(loop);
    auto& s = sc.first;
    auto& c = sc.second;
    const std::string data = pattern(300 * 1024, 9);
    auto reader = [&]() -> uvkit::task<std::string> {
        co_await s.async_handshake();
        std::string all;
        std::vector<char> buf(70000);
        constexpr std::size_t sizes[] = {1, 7, 4096, 16384, 16385, 70000};
        for (std::size_t i = 0;; ++i) {
            std::size_t n = co_await s.async_read(std::span<char>(buf.data(), sizes[i % std::size(sizes)]));
            if (n == 0) co_return all;
            all.append(buf.data(), n);
        }
    };
    auto writer = [&]() -> uvkit::task<void> {
        co_await c.async_handshake();
        co_await send_all(c, data);
    };
    auto both = [&]() -> uvkit::task<std::string> {
        auto [w, got] = co_await uvkit::when_all(writer(), reader());
        co_return got;
    };
    CHECK(uvkit::run(loop, both()) == data);
}

}  // TEST_SUITE
