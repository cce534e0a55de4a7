// Moving a C program to uvkit one handle at a time (README "Migrating a C program"):
// a borrowed uv_loop_t, the C code's uv_walk/uv_run/uv_loop_close, SIGPIPE, handler exceptions.
#include <uvkit/loop.hpp>
#include <uvkit/tcp.hpp>
#include <uvkit/timer.hpp>

#include <doctest/doctest.h>

#include "platform.hpp"

#ifndef _WIN32
#include <sys/wait.h>
#endif
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

namespace {

// The C program's usual shutdown: close every handle not closing yet.
void close_everything(uv_loop_t* l) {
    uv_walk(
        l,
        [](uv_handle_t* h, void*) {
            if (!uv_is_closing(h)) uv_close(h, nullptr);
        },
        nullptr);
}

// The same, skipping uvkit's handles.
int close_c_handles(uv_loop_t* l) {
    int closed = 0;
    uv_walk(
        l,
        [](uv_handle_t* h, void* n) {
            if (uvkit::is_uvkit_handle(h) || uv_is_closing(h)) return;
            uv_close(h, nullptr);
            ++*static_cast<int*>(n);
        },
        &closed);
    return closed;
}

int count_handles(uv_loop_t* l) {
    int n = 0;
    uv_walk(
        l, [](uv_handle_t*, void* p) { ++*static_cast<int*>(p); }, &n);
    return n;
}

struct c_timer {
    uv_timer_t t{};
    int fired = 0;
    explicit c_timer(uv_loop_t* l) {
        REQUIRE(uv_timer_init(l, &t) == 0);
        t.data = this;
    }
    void start(uint64_t ms) {
        REQUIRE(uv_timer_start(
                    &t, [](uv_timer_t* h) { ++static_cast<c_timer*>(h->data)->fired; }, ms, 0) == 0);
    }
};

}  // namespace

TEST_CASE("migration: uv_walk closing every handle, uvkit's included, neither aborts nor leaks") {
    uv_loop_t raw;
    REQUIRE(uv_loop_init(&raw) == 0);
    c_timer ct{&raw};
    {
        uvkit::loop l{&raw};
        uvkit::timer t{l};
        uvkit::timer kept{l};  // its C++ object outlives the raw close
        uvkit::tcp server{l};
        server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
        server.listen(8, [](std::error_code) {});
        server.unref();  // the C code's uv_run ends with the timers
        bool fired = false;
        t.start(1ms, [&] { fired = true; });
        ct.start(1);
        uv_run(&raw, UV_RUN_DEFAULT);
        CHECK(fired);
        CHECK(ct.fired == 1);
        CHECK(l.handle_count() == 3);

        close_everything(&raw);  // uvkit's timer, tcp and post() handle too
        CHECK(kept.closing());
        CHECK(t.closing());
        std::error_code ec;
        kept.start(
            1ms, [] {}, ec);
        CHECK(ec == std::errc::invalid_argument);
        t.close();  // no second uv_close: that would abort in libuv
        uv_run(&raw, UV_RUN_DEFAULT);
        // A block is finished once uvkit noticed the raw close (t.close() did) and
        // uv_walk no longer lists the handle (checked by run(), close_handles(), ~loop).
        CHECK(l.handle_count() == 3);
        l.run(uvkit::run_mode::nowait);
        CHECK(l.handle_count() == 2);  // kept and server: not noticed yet
        l.close_handles();             // notices them, and the post() handle's close
        CHECK(l.handle_count() == 0);
        CHECK(count_handles(&raw) == 0);
    }  // ~kept, ~server, ~t, ~loop: nothing left to close, nothing freed twice
    CHECK(uv_loop_close(&raw) == 0);
}

TEST_CASE(
    "migration: writes on a connected tcp that raw code closed fail with UV_EINVAL, the handler not run") {
    uv_loop_t raw;
    REQUIRE(uv_loop_init(&raw) == 0);
    {
        uvkit::loop l{&raw};
        uvkit::tcp server{l};
        server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
        uvkit::tcp accepted;
        server.listen(8, [&](std::error_code ec) {
            REQUIRE_FALSE(ec);
            accepted = uvkit::tcp{l};
            server.accept(accepted);
        });
        uvkit::tcp c{l};
        bool connected = false;
        c.connect(server.local_endpoint(), [&](std::error_code ec) { connected = !ec; });
        for (int i = 0; i < 1000 && !(connected && accepted); ++i) uv_run(&raw, UV_RUN_ONCE);
        REQUIRE(connected);
        REQUIRE(static_cast<bool>(accepted));
        bool pending_done = false;  // a write queued before the raw close completes (ECANCELED)
        c.write(std::string(8u << 20, 'p'), [&](std::error_code) { pending_done = true; });

        close_everything(&raw);
        int ran = 0;
        std::error_code ec;
        c.write(
            "borrowed", [&](std::error_code) { ++ran; }, ec);
        CHECK(ec == std::errc::invalid_argument);
        ec = {};
        c.write(
            std::string("owned"), [&](std::error_code) { ++ran; }, ec);
        CHECK(ec == std::errc::invalid_argument);
        CHECK_THROWS_AS(c.write("throwing", [&](std::error_code) { ++ran; }), std::system_error);
        for (int i = 0; i < 1000 && !pending_done; ++i) uv_run(&raw, UV_RUN_ONCE);
        CHECK(pending_done);
        CHECK(ran == 0);
        c.close();
        accepted.close();
        server.close();
        l.close_handles();
        CHECK(count_handles(&raw) == 0);
    }
    CHECK(uv_loop_close(&raw) == 0);
}

TEST_CASE("migration: a uvkit handle closed by raw code and destroyed before the close finished") {
    uv_loop_t raw;
    REQUIRE(uv_loop_init(&raw) == 0);
    {
        uvkit::loop l{&raw};
        bool on_closed = false;
        {
            uvkit::timer t{l};
            uv_close(t.raw_handle(), nullptr);  // raw code closes it; libuv has not finished
            t.close([&] { on_closed = true; });
        }  // ~timer: the block waits for libuv
        CHECK(l.handle_count() == 1);
        CHECK_FALSE(on_closed);
    }  // ~loop runs the close, sees the timer go and frees its block
    CHECK(uv_loop_close(&raw) == 0);
}

TEST_CASE("migration: is_uvkit_handle tells uvkit's handles apart in uv_walk") {
    uv_loop_t raw;
    REQUIRE(uv_loop_init(&raw) == 0);
    c_timer ct{&raw};
    CHECK_FALSE(uvkit::is_uvkit_handle(reinterpret_cast<uv_handle_t*>(&ct.t)));
    CHECK_FALSE(uvkit::is_uvkit_handle(nullptr));
    {
        uvkit::loop l{&raw};
        uvkit::timer t{l};
        CHECK(uvkit::is_uvkit_handle(t.raw_handle()));
        CHECK_FALSE(uvkit::is_uvkit_handle(reinterpret_cast<uv_handle_t*>(&ct.t)));
        int uvkit_handles = 0;
        uv_walk(
            &raw, [](uv_handle_t* h, void* n) { *static_cast<int*>(n) += uvkit::is_uvkit_handle(h) ? 1 : 0; },
            &uvkit_handles);
        CHECK(uvkit_handles == 2);  // the timer and the post() wake-up
        CHECK(close_c_handles(&raw) == 1);
        uv_run(&raw, UV_RUN_NOWAIT);
        t.close();
        l.run(uvkit::run_mode::nowait);
        CHECK_FALSE(uvkit::is_uvkit_handle(t.raw_handle()));
    }
    CHECK(uv_loop_close(&raw) == 0);
}

TEST_CASE(
    "migration: close_handles() then the C code's uv_run: uv_loop_close works while the wrapper lives, "
    "~loop runs no iteration") {
    uv_loop_t raw;
    REQUIRE(uv_loop_init(&raw) == 0);
    c_timer ct{&raw};
    {
        uvkit::loop l{&raw};
        uvkit::timer t{l};
        t.start(1h, [] {});
        CHECK(uv_loop_close(&raw) == UV_EBUSY);  // uvkit's handles are open
        l.close_handles();
        CHECK(t.closing());
        CHECK_THROWS_AS(l.post([] {}), std::system_error);
        uv_run(&raw, UV_RUN_NOWAIT);  // the close callbacks
        CHECK(l.handle_count() == 0);
        CHECK(count_handles(&raw) == 1);  // the C timer only
        ct.start(0);                      // due at the next iteration
    }
    CHECK(ct.fired == 0);  // ~loop ran no iteration
    uv_close(reinterpret_cast<uv_handle_t*>(&ct.t), nullptr);
    uv_run(&raw, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&raw) == 0);
}

TEST_CASE("migration: without close_handles(), ~loop of a borrowed loop runs whole iterations (documented)") {
    uv_loop_t raw;
    REQUIRE(uv_loop_init(&raw) == 0);
    c_timer ct{&raw};
    {
        uvkit::loop l{&raw};
        uvkit::timer t{l};
        ct.start(0);
    }  // ~loop closes t and its post() handle and runs the loop until they closed
    CHECK(ct.fired == 1);
    uv_close(reinterpret_cast<uv_handle_t*>(&ct.t), nullptr);
    uv_run(&raw, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&raw) == 0);  // after ~loop: nothing of uvkit's is left
}

TEST_CASE("migration: a handler's exception under the C code's uv_run waits for rethrow_pending()") {
    uv_loop_t raw;
    REQUIRE(uv_loop_init(&raw) == 0);
    {
        uvkit::loop l{&raw};
        uvkit::timer t{l};
        uvkit::timer t2{l};
        t.start(1ms, [] { throw std::runtime_error("from a handler"); });
        t2.start(50ms, [] {});
        CHECK_FALSE(l.has_pending_exception());
        uv_run(&raw, UV_RUN_DEFAULT);  // the throw stops it: t2 is still pending
        CHECK(t2.active());
        CHECK(l.has_pending_exception());
        CHECK_THROWS_WITH_AS(l.rethrow_pending(), "from a handler", std::runtime_error);
        CHECK_FALSE(l.has_pending_exception());
        CHECK_NOTHROW(l.rethrow_pending());
    }
    CHECK(uv_loop_close(&raw) == 0);
}

#ifdef UVKIT_MIGRATION_PROBE
#ifndef _WIN32
namespace {
int probe(const char* mode) {
    const std::string cmd = std::string("'") + UVKIT_MIGRATION_PROBE + "' " + mode;
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
}  // namespace
#endif
#define UVKIT_NO_SIGPIPE UVKIT_SKIP_ON_WINDOWS("Windows has no SIGPIPE")

TEST_CASE(
    "migration: SIGPIPE, default: ignored while loops exist, default again after the last "
    "one" UVKIT_NO_SIGPIPE) {
#ifndef _WIN32
    CHECK(probe("sigpipe-default") == 0);
#endif
}
TEST_CASE("migration: SIGPIPE already ignored by the program stays ignored" UVKIT_NO_SIGPIPE) {
#ifndef _WIN32
    CHECK(probe("sigpipe-ignored") == 0);
#endif
}
TEST_CASE("migration: SIGPIPE handler of the program is never replaced" UVKIT_NO_SIGPIPE) {
#ifndef _WIN32
    CHECK(probe("sigpipe-handler") == 0);
#endif
}
TEST_CASE("migration: SIGPIPE handler set while a loop exists stays after the last loop" UVKIT_NO_SIGPIPE) {
#ifndef _WIN32
    CHECK(probe("sigpipe-changed") == 0);
#endif
}
#endif
