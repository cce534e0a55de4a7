// Awaitable stream operations: read, write, shutdown, connect, accept, and a
// coroutine echo server.
#include "fixture.hpp"

#include <uvkit/uvkit.hpp>

#include <memory>
#include <string>
#include <vector>

#include "co_util.hpp"

using namespace std::chrono_literals;
using uvkit_co_test::connected_pair;
using uvkit_co_test::destroy_flag;
using uvkit_co_test::start;

namespace {

uvkit::task<std::string> read_chunk(uvkit::stream& s) { co_return co_await s.async_read(); }

/// Reads until EOF, collecting everything.
uvkit::task<std::string> read_all(uvkit::stream& s) {
    std::string all;
    for (;;) {
        std::string chunk = co_await s.async_read();
        if (chunk.empty()) co_return all;
        all += chunk;
    }
}

/// A byte pattern that shows reordering or loss.
std::string pattern(std::size_t n, std::size_t seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
    return s;
}

uvkit::task<void> write_later(uvkit::loop& l, uvkit::stream& s, std::vector<std::string> pieces,
                              std::chrono::milliseconds gap, bool shutdown) {
    for (auto& p : pieces) {
        co_await uvkit::sleep(l, gap);
        co_await s.async_write(p);
    }
    if (shutdown) co_await s.async_shutdown();
}

}  // namespace

TEST_SUITE("co: stream read") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_read() gives the next chunk and \"\" at EOF") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    auto t = [&]() -> uvkit::task<void> {
        co_await b.async_write("hello");
        CHECK(co_await a.async_read() == "hello");
        co_await b.async_shutdown();
        CHECK(co_await a.async_read() == "");
        std::error_code ec = make_error_code(std::errc::io_error);
        CHECK(co_await a.async_read(ec) == "");  // still EOF, and not an error
        CHECK_FALSE(ec);
    };
    uvkit::run(loop, t());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_read(span) reads in place, 0 at EOF") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    auto t = [&]() -> uvkit::task<void> {
        char buf[4];
        co_await b.async_write("abcdef");
        std::size_t n = co_await a.async_read(std::span<char>(buf));
        CHECK(n == 4);
        CHECK(std::string_view(buf, n) == "abcd");
        std::error_code ec;
        n = co_await a.async_read(std::span<char>(buf), ec);
        CHECK_FALSE(ec);
        CHECK(std::string_view(buf, n) == "ef");
        // An empty buffer reads nothing, at once.
        CHECK(co_await a.async_read(std::span<char>()) == 0);
        co_await b.async_shutdown();
        CHECK(co_await a.async_read(std::span<char>(buf)) == 0);
        CHECK(co_await a.async_read(std::span<char>(buf), ec) == 0);
        CHECK_FALSE(ec);
    };
    uvkit::run(loop, t());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_read_exactly fills the buffer across chunks") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    auto t = [&]() -> uvkit::task<void> {
        char buf[6];
        // (Named: GCC 12 mishandles an initializer_list temporary across co_await.)
        std::vector<std::string> pieces{"ab", "c", "defgh"};
        auto [n, w] = co_await uvkit::when_all(
            [](uvkit::tcp& s, std::span<char> bf) -> uvkit::task<std::size_t> {
                co_return co_await s.async_read_exactly(bf);
            }(a, buf),
            write_later(loop, b, pieces, 2ms, false));
        CHECK(n == 6);
        CHECK(std::string_view(buf, 6) == "abcdef");
        // What did not fit stays for the next read.
        CHECK(co_await a.async_read() == "gh");
    };
    uvkit::run(loop, t());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: async_read_exactly gives errc::eof when the peer closes early") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    char buf[10];
    SUBCASE("throwing form") {
        auto t = [&]() -> uvkit::task<void> {
            co_await b.async_write("short");
            co_await b.async_shutdown();
            co_await a.async_read_exactly(std::span<char>(buf));
        };
        try {
            uvkit::run(loop, t());
            FAIL("no error");
        } catch (const std::system_error& e) {
            CHECK(e.code() == uvkit::errc::eof);
        }
    }
    SUBCASE("error_code form") {
        auto t = [&]() -> uvkit::task<std::error_code> {
            co_await b.async_write("short");
            b.close();
            std::error_code ec;
            co_await a.async_read_exactly(std::span<char>(buf), ec);
            co_return ec;
        };
        CHECK(uvkit::run(loop, t()) == uvkit::errc::eof);
    }
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: async_read_until splits lines, keeps the rest in the buffer") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    auto t = [&]() -> uvkit::task<std::vector<std::string>> {
        std::vector<std::string> lines;
        std::string buf;
        // The delimiter "\r\n" arrives split across chunks.
        std::vector<std::string> pieces{"hel", "lo\r", "\nwor", "ld\r\nx", "y\r\n"};
        uvkit::spawn(loop, write_later(loop, b, pieces, 2ms, true)).detach();
        for (;;) {
            std::error_code ec;
            std::size_t n = co_await a.async_read_until(buf, "\r\n", 1024, ec);
            if (ec == uvkit::errc::eof) break;
            REQUIRE_FALSE(ec);
            lines.push_back(buf.substr(0, n));
            buf.erase(0, n);
        }
        CHECK(buf.empty());
        co_return lines;
    };
    CHECK(uvkit::run(loop, t()) == std::vector<std::string>{"hello\r\n", "world\r\n", "xy\r\n"});
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_read_until finds a line already in the buffer") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    auto t = [&]() -> uvkit::task<std::vector<std::string>> {
        std::vector<std::string> lines;
        std::string buf;
        // Three lines in one chunk; the peer then stays silent (no EOF).
        co_await b.async_write("one\ntwo\nthree\n");
        for (int i = 0; i < 3; ++i) {
            std::size_t n = co_await a.async_read_until(buf, "\n");
            lines.push_back(buf.substr(0, n));
            buf.erase(0, n);
        }
        co_return lines;
    };
    CHECK(uvkit::run(loop, uvkit::with_timeout(loop, 5s, t())) ==
          std::vector<std::string>{"one\n", "two\n", "three\n"});
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: async_read_until: too long is message_size, EOF first is errc::eof") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    SUBCASE("max exceeded") {
        auto t = [&]() -> uvkit::task<void> {
            co_await b.async_write(std::string(100, 'x'));
            std::string buf;
            co_await a.async_read_until(buf, "\n", 16);
        };
        try {
            uvkit::run(loop, t());
            FAIL("no error");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::message_size);
        }
    }
    SUBCASE("EOF before the delimiter") {
        auto t = [&]() -> uvkit::task<std::error_code> {
            co_await b.async_write("no newline");
            co_await b.async_shutdown();
            std::string buf;
            std::error_code ec;
            co_await a.async_read_until(buf, "\n", 1024, ec);
            CHECK(buf == "no newline");  // what was read is still there
            co_return ec;
        };
        CHECK(uvkit::run(loop, t()) == uvkit::errc::eof);
    }
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: bytes that arrive while no coroutine waits are not lost") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    SUBCASE("a few chunks") {
        auto t = [&]() -> uvkit::task<std::string> {
            co_await b.async_write("first");
            std::string got = co_await a.async_read();  // reading has started
            // The peer sends while the reader is busy elsewhere.
            co_await b.async_write("2");
            co_await b.async_write("3");
            co_await uvkit::sleep(loop, 20ms);
            co_await b.async_write("4");
            co_await b.async_shutdown();
            co_await uvkit::sleep(loop, 20ms);
            got += co_await read_all(a);
            co_return got;
        };
        CHECK(uvkit::run(loop, t()) == "first234");
    }
    SUBCASE("more than the 64 KiB kept for a stream") {
        const std::string big = pattern(1 << 20);
        auto t = [&]() -> uvkit::task<std::string> {
            char c;
            co_await b.async_write(std::string_view(big).substr(0, 1));
            co_await a.async_read(std::span<char>(&c, 1));  // reading has started
            auto writer = [&]() -> uvkit::task<void> {
                co_await b.async_write(std::string_view(big).substr(1));
                co_await b.async_shutdown();
            };
            auto reader = [&]() -> uvkit::task<std::string> {
                co_await uvkit::sleep(loop, 50ms);  // let it pile up
                co_return std::string(1, c) + co_await read_all(a);
            };
            auto [w, got] = co_await uvkit::when_all(writer(), reader());
            co_return got;
        };
        std::string got = uvkit::run(loop, t());
        CHECK(got.size() == big.size());
        CHECK(got == big);
    }
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a bulk stream read in small buffers, byte for byte") {
    // Reads of 16 KiB (and of odd sizes) under a 4 MiB stream: the reads that fill their buffer
    // switch to the loop's 64 KiB buffer and the next ones take the rest from what is kept, with
    // the kept bytes compacted as they are taken; nothing may be lost, reordered or duplicated.
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    const std::string big = pattern(4 << 20, 3);
    for (std::size_t piece : {std::size_t{16 * 1024}, std::size_t{1500}, std::size_t{70 * 1024}}) {
        CAPTURE(piece);
        auto writer = [&]() -> uvkit::task<void> { co_await b.async_write(big); };
        auto reader = [&]() -> uvkit::task<std::string> {
            std::string all;
            std::vector<char> buf(piece);
            while (all.size() < big.size()) {
                std::size_t n = co_await a.async_read(std::span<char>(buf));
                if (n == 0) break;
                all.append(buf.data(), n);
                // Now and then the reader is busy while bytes arrive: they are kept.
                if (all.size() % 7 == 0) co_await uvkit::sleep(loop, 1ms);
            }
            co_return all;
        };
        auto both = [&]() -> uvkit::task<std::string> {
            auto [w, got] = co_await uvkit::when_all(writer(), reader());
            co_return got;
        };
        std::string got = uvkit::run(loop, both());
        REQUIRE(got.size() == big.size());
        CHECK(got == big);
    }
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a second concurrent read on a stream gets UV_EALREADY") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    std::error_code second;
    auto first = [&]() -> uvkit::task<std::string> { co_return co_await a.async_read(); };
    auto other = [&]() -> uvkit::task<void> {
        char buf[8];
        co_await a.async_read(std::span<char>(buf), second);
        co_await b.async_write("x");  // lets the first read finish
    };
    auto t = [&]() -> uvkit::task<std::string> {
        auto [s, v] = co_await uvkit::when_all(first(), other());
        co_return s;
    };
    CHECK(uvkit::run(loop, t()) == "x");
    CHECK(second == uvkit::make_uv_error(UV_EALREADY));
    // The throwing form throws it.
    auto throwing = [&]() -> uvkit::task<void> {
        std::string x;
        co_await uvkit::when_all(first(),
                                 [&]() -> uvkit::task<void> { co_await a.async_read_until(x, "\n"); }());
    };
    CHECK_THROWS_AS(uvkit::run(loop, throwing()), std::system_error);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a cancelled read stops reading and keeps the data in the kernel") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    std::error_code ec;
    auto reader = [&]() -> uvkit::task<int> {
        char buf[8];
        co_await a.async_read(std::span<char>(buf), ec);
        co_return 0;
    };
    auto t = [&]() -> uvkit::task<std::size_t> {
        auto r = co_await uvkit::when_any(reader(), [&]() -> uvkit::task<int> {
            co_await uvkit::sleep(loop, 5ms);
            co_return 1;
        }());
        co_return r.index();
    };
    CHECK(uvkit::run(loop, t()) == 1);
    CHECK(ec == uvkit::errc::canceled);
    CHECK_FALSE(a.active());  // no longer reading
    b.write(std::string("after"));
    CHECK(uvkit::run(loop, read_chunk(a)) == "after");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: coroutines and a read_start() handler take turns on a stream") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    std::string by_handler;
    auto handler = [&](std::error_code e, std::string_view data) {
        if (!e) by_handler += data;
    };
    SUBCASE("the handler takes over once no read waits and nothing is kept") {
        b.write(std::string("one"));
        CHECK(uvkit::run(loop, read_chunk(a)) == "one");
        std::error_code ec;
        a.read_start(handler, ec);
        CHECK_FALSE(ec);
        b.write(std::string("two"));
        run_until([&] { return by_handler == "two"; });
        // And back: read_stop(), then coroutines read again.
        a.read_stop();
        b.write(std::string("three"));
        CHECK(uvkit::run(loop, read_chunk(a)) == "three");
    }
    SUBCASE("read_start() while a read waits: UV_EBUSY, the read still gets the bytes") {
        std::error_code ec;
        auto t = [&]() -> uvkit::task<std::string> {
            auto poke = [&]() -> uvkit::task<void> {
                a.read_start(handler, ec);
                co_await b.async_write("mine");
            };
            auto [got, done] = co_await uvkit::when_all(read_chunk(a), poke());
            co_return got;
        };
        CHECK(uvkit::run(loop, t()) == "mine");
        CHECK(ec == uvkit::make_uv_error(UV_EBUSY));
        CHECK(by_handler.empty());
    }
    SUBCASE("read_start() with read bytes kept for coroutines: UV_EBUSY, nothing lost") {
        // One 2-byte write arrives as one segment on loopback; a 1-byte read keeps the other byte.
        b.write(std::string("xy"));
        auto one = [&]() -> uvkit::task<std::string> {
            char c = 0;
            std::size_t n = co_await a.async_read(std::span<char>(&c, 1));
            co_return std::string(&c, n);
        };
        CHECK(uvkit::run(loop, one()) == "x");
        std::error_code ec;
        a.read_start(handler, ec);
        CHECK(ec == uvkit::make_uv_error(UV_EBUSY));
        CHECK(uvkit::run(loop, read_chunk(a)) == "y");
        CHECK(by_handler.empty());
    }
    SUBCASE("read_stop() completes a waiting read with canceled") {
        std::error_code ec;
        auto t = [&]() -> uvkit::task<void> {
            auto reader = [&]() -> uvkit::task<void> {
                char buf[8];
                co_await a.async_read(std::span<char>(buf), ec);
            };
            auto stopper = [&]() -> uvkit::task<void> {
                a.read_stop();
                co_return;
            };
            co_await uvkit::when_all(reader(), stopper());
        };
        uvkit::run(loop, t());
        CHECK(ec == uvkit::errc::canceled);
        CHECK_FALSE(a.active());
        b.write(std::string("later"));
        CHECK(uvkit::run(loop, read_chunk(a)) == "later");
    }
    SUBCASE("an awaited read on a stream a handler reads: UV_EALREADY") {
        a.read_start(handler);
        std::error_code ec;
        auto t = [&]() -> uvkit::task<void> {
            char buf[8];
            co_await a.async_read(std::span<char>(buf), ec);
        };
        uvkit::run(loop, t());
        CHECK(ec == uvkit::make_uv_error(UV_EALREADY));
        b.write(std::string("h"));
        run_until([&] { return by_handler == "h"; });
    }
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a deadline fires mid-read on a silent peer") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    auto t0 = loop.now();
    try {
        uvkit::run(loop, uvkit::with_timeout(loop, 20ms, read_chunk(a)));
        FAIL("no timeout");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::timed_out);
    }
    loop.update_time();
    CHECK(loop.now() - t0 >= 20ms);
    CHECK_FALSE(a.active());  // the read was stopped
    CHECK_FALSE(loop.alive());
    // A deadline on a read_exactly that got part of its bytes.
    auto partial = [&]() -> uvkit::task<void> {
        co_await b.async_write("par");
        char buf[10];
        co_await uvkit::with_timeout(loop, 20ms,
                                     [](uvkit::tcp& s, std::span<char> bf) -> uvkit::task<std::size_t> {
                                         co_return co_await s.async_read_exactly(bf);
                                     }(a, buf));
    };
    CHECK_THROWS_AS(uvkit::run(loop, partial()), std::system_error);
    CHECK_FALSE(a.active());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: closing a stream completes its waiting read with errc::canceled") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;  // the peer: kept open, silent
    (void)b;
    std::error_code ec;
    auto reader = [&]() -> uvkit::task<void> {
        char buf[8];
        co_await a.async_read(std::span<char>(buf), ec);
    };
    auto closer = [&]() -> uvkit::task<void> {
        co_await uvkit::sleep(loop, 2ms);
        a.close();
    };
    uvkit::run(loop, [&]() -> uvkit::task<void> { co_await uvkit::when_all(reader(), closer()); }());
    CHECK(ec == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a reset connection is an error for the reader") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    auto resetter = [&]() -> uvkit::task<void> {
        co_await uvkit::sleep(loop, 5ms);
        b.close_reset();
    };
    auto t = [&]() -> uvkit::task<std::error_code> {
        std::error_code ec;
        auto reader = [&]() -> uvkit::task<void> { co_await a.async_read(ec); };
        co_await uvkit::when_all(reader(), resetter());
        co_return ec;
    };
    CHECK(uvkit::run(loop, t()) == std::errc::connection_reset);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: operations on an empty stream fail with UV_EINVAL") {
    uvkit::tcp empty;
    auto t = [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await empty.async_read(ec);
        CHECK(ec == uvkit::make_uv_error(UV_EINVAL));
        ec.clear();
        co_await empty.async_write("x", ec);
        CHECK(ec == uvkit::make_uv_error(UV_EINVAL));
        ec.clear();
        co_await empty.async_shutdown(ec);
        CHECK(ec == uvkit::make_uv_error(UV_EINVAL));
        ec.clear();
        uvkit::tcp c = co_await empty.async_accept(ec);
        CHECK(ec == uvkit::make_uv_error(UV_EINVAL));
        CHECK_FALSE(static_cast<bool>(c));
        co_await empty.async_read();
    };
    CHECK_THROWS_AS(uvkit::run(loop, t()), std::system_error);
}

}  // TEST_SUITE("co: stream read")

TEST_SUITE("co: stream write") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_write borrowed, owned and literal") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    const std::string big = pattern(3 << 20, 1);  // larger than the socket buffers
    auto writer = [&]() -> uvkit::task<void> {
        co_await a.async_write("literal;");
        std::string owned = "owned;";
        co_await a.async_write(std::move(owned));
        std::string borrowed = "borrowed;";
        co_await a.async_write(std::string_view(borrowed));
        std::error_code ec;
        co_await a.async_write(std::string("owned-ec;"), ec);
        CHECK_FALSE(ec);
        co_await a.async_write(big, ec);
        CHECK_FALSE(ec);
        // Owned and larger than the socket buffers: the kernel takes a part at
        // once, the rest is written from the awaiter's string.
        co_await a.async_write(pattern(3 << 20, 2));
        co_await a.async_shutdown();
    };
    auto t = [&]() -> uvkit::task<std::string> {
        auto [w, got] = co_await uvkit::when_all(writer(), read_all(b));
        co_return got;
    };
    CHECK(uvkit::run(loop, t()) == "literal;owned;borrowed;owned-ec;" + big + pattern(3 << 20, 2));
}

TEST_CASE_FIXTURE(
    uvkit_test::loop_fixture,
    "co: writes the kernel takes at once complete without the loop, a bounded number in a row") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    constexpr int writes = 2000;
    int i = 0;
    int posted_at = -1;  // the write under way when the loop next ran
    auto writer = [&]() -> uvkit::task<void> {
        loop.post([&] { posted_at = i; });
        for (i = 0; i < writes; ++i) co_await a.async_write(std::string_view(&"0123456789"[i % 10], 1));
        co_await a.async_shutdown();
    };
    auto t = [&]() -> uvkit::task<std::string> {
        auto [w, got] = co_await uvkit::when_all(writer(), read_all(b));
        co_return got;
    };
    std::string want;
    for (int k = 0; k < writes; ++k) want += "0123456789"[k % 10];
    CHECK(uvkit::run(loop, t()) == want);
    // The first writes completed without the loop; after a bounded run of them
    // one went through the loop, and the posted function ran.
    CHECK(posted_at >= static_cast<int>(uvkit::detail::co_stream_state::sync_write_limit));
    CHECK(posted_at < writes);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: writes that complete at once inside with_timeout, when_any and a cancelled scope") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    auto writer = [&]() -> uvkit::task<int> {
        int done = 0;
        for (int i = 0; i < 200; ++i) {
            co_await uvkit::with_timeout(loop, 1h, a.async_write("t"));
            auto r = co_await uvkit::when_any(
                [&]() -> uvkit::task<int> {
                    co_await a.async_write("a");
                    co_return 0;
                }(),
                [&]() -> uvkit::task<int> {
                    co_await uvkit::sleep(loop, 1h);
                    co_return 1;
                }());
            CHECK(r.index() == 0);  // the write won, the sleep was cancelled
            ++done;
        }
        // A write in a scope already cancelled does not start, even one the kernel would take.
        uvkit::task_group g{loop};
        g.cancel();
        std::error_code ec;
        co_await g.async_spawn([&]() -> uvkit::task<void> { co_await a.async_write("never", ec); }());
        co_await g.join();
        CHECK(ec == uvkit::errc::canceled);
        co_await a.async_shutdown();
        co_return done;
    };
    auto t = [&]() -> uvkit::task<std::string> {
        auto [n, got] = co_await uvkit::when_all(writer(), read_all(b));
        CHECK(n == 200);
        co_return got;
    };
    std::string want;
    for (int i = 0; i < 200; ++i) want += "ta";
    CHECK(uvkit::run(loop, t()) == want);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_shutdown: the peer sees EOF after all the data") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    auto writer = [&]() -> uvkit::task<void> {
        for (int i = 0; i < 100; ++i)
            a.write(pattern(1000, static_cast<std::size_t>(i)));  // queued, not awaited
        co_await a.async_shutdown();
        // Writing after shutdown fails.
        std::error_code ec;
        co_await a.async_write("late", ec);
        CHECK(ec);
    };
    auto t = [&]() -> uvkit::task<std::string> {
        auto [w, got] = co_await uvkit::when_all(writer(), read_all(b));
        co_return got;
    };
    std::string want;
    for (int i = 0; i < 100; ++i) want += pattern(1000, static_cast<std::size_t>(i));
    CHECK(uvkit::run(loop, t()) == want);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a cancelled write closes the stream and completes with canceled") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;  // the peer: kept open, silent
    (void)b;
    std::string big(32u << 20, 'z');  // the peer never reads: the write stays pending
    std::error_code ec;
    auto writer = [&]() -> uvkit::task<int> {
        co_await a.async_write(big, ec);
        co_return 0;
    };
    auto t = [&]() -> uvkit::task<std::size_t> {
        auto r = co_await uvkit::when_any(writer(), [&]() -> uvkit::task<int> {
            co_await uvkit::sleep(loop, 10ms);
            co_return 1;
        }());
        co_return r.index();
    };
    CHECK(uvkit::run(loop, t()) == 1);
    CHECK(ec == uvkit::errc::canceled);
    CHECK(a.closing());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: closing a stream completes a pending write with canceled") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;  // the peer: kept open, silent
    (void)b;
    std::string big(32u << 20, 'z');
    auto t = [&]() -> uvkit::task<std::error_code> {
        std::error_code ec;
        auto closer = [&]() -> uvkit::task<void> {
            co_await uvkit::sleep(loop, 5ms);
            a.close();
        };
        auto writer = [&]() -> uvkit::task<void> { co_await a.async_write(big, ec); };
        co_await uvkit::when_all(writer(), closer());
        co_return ec;
    };
    CHECK(uvkit::run(loop, t()) == uvkit::errc::canceled);
}

}  // TEST_SUITE("co: stream write")

TEST_SUITE("co: connect and accept") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: connect and accept give connected sockets") {
    auto ab = connected_pair(loop);
    auto& a = ab.first;
    auto& b = ab.second;
    CHECK(a.peer_endpoint().port() == b.local_endpoint().port());
    CHECK(b.peer_endpoint().port() == a.local_endpoint().port());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: connect refused") {
    auto ep = uvkit_co_test::closed_endpoint(loop);
    SUBCASE("throwing form") {
        try {
            uvkit::run(loop, uvkit_co_test::connect_to(loop, ep));
            FAIL("connected");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_refused);
        }
    }
    SUBCASE("error_code form") {
        auto t = [&]() -> uvkit::task<std::error_code> {
            std::error_code ec;
            uvkit::tcp c = co_await uvkit::connect(loop, ep, ec);
            CHECK_FALSE(static_cast<bool>(c));
            co_return ec;
        };
        CHECK(uvkit::run(loop, t()) == std::errc::connection_refused);
    }
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a cancelled connect closes its socket and completes with canceled") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(8);
    auto ep = server.local_endpoint();
    std::error_code ec;
    auto connector = [&]() -> uvkit::task<int> {
        uvkit::tcp c = co_await uvkit::connect(loop, ep, ec);
        co_return c ? 1 : 0;
    };
    // The other task is ready at once: the connect is cancelled before the loop ran.
    auto ready = [&]() -> uvkit::task<int> {
        CHECK(loop.handle_count() == 2);  // the server and the connecting socket
        co_return 5;
    };
    auto t = [&]() -> uvkit::task<int> {
        auto r = co_await uvkit::when_any(connector(), ready());
        co_return static_cast<int>(r.index());
    };
    CHECK(uvkit::run(loop, t()) == 1);
    CHECK(ec == uvkit::errc::canceled);
    loop.run(uvkit::run_mode::nowait);
    CHECK(loop.handle_count() == 1);  // only the server
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a cancelled accept leaves the connection for the next accept") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(8);
    auto ep = server.local_endpoint();
    std::error_code ec;
    auto acceptor = [&]() -> uvkit::task<int> {
        uvkit::tcp c = co_await server.async_accept(ec);
        co_return 0;
    };
    auto t = [&]() -> uvkit::task<std::size_t> {
        auto r = co_await uvkit::when_any(acceptor(), [&]() -> uvkit::task<int> {
            co_await uvkit::sleep(loop, 2ms);
            co_return 1;
        }());
        co_return r.index();
    };
    CHECK(uvkit::run(loop, t()) == 1);
    CHECK(ec == uvkit::errc::canceled);
    // A client connects while nobody accepts; the next accept gets it.
    uvkit::tcp client = uvkit::run(loop, uvkit_co_test::connect_to(loop, ep));
    uvkit::tcp accepted = uvkit::run(loop, uvkit_co_test::accept_one(server));
    CHECK(accepted.peer_endpoint().port() == client.local_endpoint().port());
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: closing the server completes a waiting accept with canceled") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(8);
    auto t = [&]() -> uvkit::task<std::error_code> {
        std::error_code ec;
        auto acceptor = [&]() -> uvkit::task<void> { uvkit::tcp c = co_await server.async_accept(ec); };
        auto closer = [&]() -> uvkit::task<void> {
            co_await uvkit::sleep(loop, 2ms);
            server.close();
        };
        co_await uvkit::when_all(acceptor(), closer());
        co_return ec;
    };
    CHECK(uvkit::run(loop, t()) == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: a second concurrent accept gets UV_EALREADY") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(8);
    std::error_code second;
    auto t = [&]() -> uvkit::task<void> {
        auto one = [&]() -> uvkit::task<uvkit::tcp> { co_return co_await server.async_accept(); };
        auto two = [&]() -> uvkit::task<uvkit::tcp> {
            uvkit::tcp c = co_await server.async_accept(second);
            co_return co_await uvkit::connect(loop, server.local_endpoint());
        };
        auto [x, y] = co_await uvkit::when_all(one(), two());
        CHECK(x.peer_endpoint().port() == y.local_endpoint().port());
    };
    uvkit::run(loop, t());
    CHECK(second == uvkit::make_uv_error(UV_EALREADY));
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: an accept started before listen() gets the first connection after it") {
    // The accept parks on a stream that does not listen yet; listen() must keep that
    // waiting accept (both share the stream's listening state) and deliver to it.
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    uvkit::endpoint ep = server.local_endpoint();
    auto t = [&]() -> uvkit::task<void> {
        auto acceptor = [&]() -> uvkit::task<uvkit::tcp> { co_return co_await server.async_accept(); };
        auto client = [&]() -> uvkit::task<uvkit::tcp> {
            co_await uvkit::sleep(loop, 1ms);
            server.listen(8);
            co_return co_await uvkit::connect(loop, ep);
        };
        auto [a, c] = co_await uvkit::when_all(acceptor(), client());
        CHECK(a.peer_endpoint().port() == c.local_endpoint().port());
    };
    uvkit::run(loop, t());
    server.close();
}

}  // TEST_SUITE("co: connect and accept")

TEST_SUITE("co: echo server") {

namespace {
uvkit::task<void> serve_one(uvkit::tcp c, int* served) {
    char buf[256];
    for (;;) {
        std::size_t n = co_await c.async_read(std::span<char>(buf));
        if (n == 0) break;
        co_await c.async_write(std::string_view(buf, n));
    }
    co_await c.async_shutdown();
    ++*served;
}

uvkit::task<void> accept_loop(uvkit::tcp& server, uvkit::task_group& conns, int* served) {
    for (;;) conns.spawn(serve_one(co_await server.async_accept(), served));
}

uvkit::task<std::string> echo_client(uvkit::loop& l, uvkit::endpoint ep, int i) {
    uvkit::tcp c = co_await uvkit::connect(l, ep);
    std::string sent;
    std::string got;
    for (int k = 0; k < 3; ++k) {
        std::string line = "client " + std::to_string(i) + " line " + std::to_string(k) + "\n";
        sent += line;
        co_await c.async_write(line);
        std::string buf;
        // Echoes may be split or merged; read until this line came back.
        while (got.size() < sent.size()) {
            std::string chunk = co_await c.async_read();
            if (chunk.empty()) throw std::runtime_error("early EOF");
            got += chunk;
        }
    }
    co_await c.async_shutdown();
    std::string rest = co_await read_all(c);
    got += rest;
    if (got != sent) throw std::runtime_error("echo mismatch: " + got);
    co_return got;
}
}  // namespace

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: echo server serves 100 concurrent clients, then shuts down") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(128);
    auto ep = server.local_endpoint();
    constexpr int clients = 100;
    int served = 0;
    int ok = 0;
    uvkit::task_group conns{loop};
    uvkit::task_group idle_conns{loop};
    // Named lambdas: their captures must outlive the tasks they make.
    auto counted_client = [&](int k) -> uvkit::task<void> {
        co_await echo_client(loop, ep, k);
        ++ok;
    };
    auto idle_client = [&]() -> uvkit::task<void> {
        uvkit::tcp c = co_await uvkit::connect(loop, ep);
        co_await uvkit::sleep(loop, 1h);
    };
    auto t = [&]() -> uvkit::task<void> {
        auto server_task = [&]() -> uvkit::task<void> {
            std::error_code ec;
            try {
                co_await accept_loop(server, conns, &served);
            } catch (const std::system_error& e) {
                ec = e.code();
            }
            CHECK(ec == uvkit::errc::canceled);
            // Shutting down: cancel the connections still open, wait for them.
            conns.cancel();
            co_await conns.join();
        };
        auto clients_task = [&]() -> uvkit::task<void> {
            uvkit::task_group g{loop};
            for (int i = 0; i < clients; ++i) g.spawn(counted_client(i));
            // Two more clients connect and never send: the shutdown must cancel them.
            for (int i = 0; i < 2; ++i) idle_conns.spawn(idle_client());
            co_await g.join();
        };
        auto r = co_await uvkit::when_any(server_task(), clients_task());
        CHECK(r.index() == 1);
    };
    uvkit::run(loop, uvkit::with_timeout(loop, 30s, t()));
    CHECK(ok == clients);
    CHECK(served == clients);
    CHECK(conns.size() == 0);
    // Cancelled children that threw errc::canceled make join() rethrow it.
    idle_conns.cancel();
    std::error_code idle_ec;
    uvkit::run(loop, [&]() -> uvkit::task<void> {
        try {
            co_await idle_conns.join();
        } catch (const std::system_error& e) {
            idle_ec = e.code();
        }
    }());
    CHECK(idle_ec == uvkit::errc::canceled);
    CHECK(idle_conns.size() == 0);
    server.close();
}

}  // TEST_SUITE("co: echo server")
