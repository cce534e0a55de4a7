// uvkit::loop: owned and borrowed loops, run modes, teardown with open
// handles, handler exceptions, and post() across threads.
#include <uvkit/uvkit.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef _WIN32
#include <unistd.h>
#endif

#include "fixture.hpp"
#include "platform.hpp"

using namespace std::chrono_literals;
using uvkit_test::loop_fixture;

namespace {

/// A referenced timer that stops `l` after `limit`: keeps run() bounded in
/// time for loops that are not the fixture's.
struct watchdog {
    uvkit::timer t;
    bool expired = false;
    watchdog(uvkit::loop& l, std::chrono::milliseconds limit) : t(l) {
        t.start(limit, [this, &l] {
            expired = true;
            l.stop();
        });
        t.unref();
    }
};

/// Busy-waits (bounded) until the monotonic clock moved by at least `d`; used
/// to make time pass for now()/update_time(), not to synchronise anything.
void spin_for(std::chrono::milliseconds d) {
    std::uint64_t start = uv_hrtime();
    auto ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(d).count());
    while (uv_hrtime() - start < ns) {
    }
}

int count_raw_handles(uv_loop_t* l) {
    int n = 0;
    uv_walk(
        l, [](uv_handle_t*, void* p) { ++*static_cast<int*>(p); }, &n);
    return n;
}

}  // namespace

TEST_SUITE_BEGIN("loop");

TEST_CASE("an owned loop runs a timer and closes cleanly") {
    bool fired = false;
    {
        uvkit::loop l;
        CHECK(l.owns_raw());
        REQUIRE(l.raw() != nullptr);
        uvkit::timer t{l};
        t.start(1ms, [&] { fired = true; });
        CHECK(l.handle_count() == 1);
        watchdog w{l, 10s};
        CHECK_FALSE(l.run());
        CHECK_FALSE(w.expired);
    }
    CHECK(fired);
}

TEST_CASE("an empty loop: run() returns at once, the post handle keeps nothing alive") {
    uvkit::loop l;
    CHECK_FALSE(l.alive());
    // If uvkit's internal async handle were referenced, nowait would report work left.
    CHECK_FALSE(l.run(uvkit::run_mode::nowait));
    CHECK_FALSE(l.run(uvkit::run_mode::once));
    CHECK_FALSE(l.run());
    // uvkit's own raw handle only: the post() wake-up, unreferenced (SIGPIPE is
    // ignored with std::signal, no handle).
    CHECK(count_raw_handles(l.raw()) == 1);
}

TEST_CASE("a borrowed loop shares a uv_loop_t with a raw C timer and never closes it" UVKIT_SKIP_ON_WINDOWS(
    "uv_backend_fd is -1 on Windows (an I/O completion port is not a descriptor)")) {
    uv_loop_t raw;
    REQUIRE(uv_loop_init(&raw) == 0);
    int marker = 0;
    raw.data = &marker;

    uv_timer_t raw_timer;
    REQUIRE(uv_timer_init(&raw, &raw_timer) == 0);
    struct raw_ctx {
        int fired = 0;
    } ctx;
    raw_timer.data = &ctx;

    bool uvkit_fired = false;
    {
        uvkit::loop l{&raw};
        CHECK_FALSE(l.owns_raw());
        CHECK(l.raw() == &raw);
        uvkit::timer t{l};
        t.start(2ms, [&] { uvkit_fired = true; });
        REQUIRE(uv_timer_start(
                    &raw_timer, [](uv_timer_t* h) { ++static_cast<raw_ctx*>(h->data)->fired; }, 1, 0) == 0);
        watchdog w{l, 10s};
        CHECK_FALSE(l.run());
        CHECK_FALSE(w.expired);
        CHECK(uvkit_fired);
        CHECK(ctx.fired == 1);
        CHECK(l.handle_count() == 2);  // the uvkit timer and the watchdog
    }
    // uvkit left the raw timer and the loop alone.
    CHECK(raw_timer.data == &ctx);
    CHECK(raw.data == &marker);
    CHECK_FALSE(uv_is_closing(reinterpret_cast<uv_handle_t*>(&raw_timer)));
    CHECK(uv_backend_fd(&raw) >= 0);      // uv_loop_close would have closed it
    CHECK(count_raw_handles(&raw) == 1);  // only the raw timer is left
    CHECK(ctx.fired == 1);

    // The raw loop still works after uvkit let go of it.
    REQUIRE(uv_timer_start(
                &raw_timer, [](uv_timer_t* h) { ++static_cast<raw_ctx*>(h->data)->fired; }, 0, 0) == 0);
    CHECK(uv_run(&raw, UV_RUN_DEFAULT) == 0);
    CHECK(ctx.fired == 2);

    uv_close(reinterpret_cast<uv_handle_t*>(&raw_timer), nullptr);
    CHECK(uv_run(&raw, UV_RUN_DEFAULT) == 0);
    CHECK(uv_loop_close(&raw) == 0);
}

TEST_CASE("a null uv_loop_t* is rejected") {
    CHECK_THROWS_AS(uvkit::loop{static_cast<uv_loop_t*>(nullptr)}, std::invalid_argument);
}

TEST_CASE(
    "a loop made while stderr is closed fills it with /dev/null first: libuv's own descriptors stay above "
    "2" UVKIT_SKIP_ON_WINDOWS("libuv on Windows does not use descriptors 0-2")) {
#ifndef _WIN32
    // Without it the loop's epoll descriptor would be 2, and its teardown
    // would abort (libuv asserts that it never closes 0, 1 or 2).
    const int saved = ::dup(2);
    REQUIRE(saved > 2);
    ::close(2);
    REQUIRE(uv_guess_handle(2) == UV_UNKNOWN_HANDLE);
    int fired = 0;
    {
        uvkit::loop l;
        CHECK(uv_guess_handle(2) == UV_FILE);  // /dev/null, a character device
        CHECK(uv_backend_fd(l.raw()) > 2);
        uvkit::timer t{l};
        t.start(1ms, [&] { ++fired; });
        watchdog w{l, 10s};
        l.run();
    }  // uv_loop_close closes the epoll descriptor
    ::dup2(saved, 2);
    ::close(saved);
    CHECK(fired == 1);
    // With every standard descriptor open, nothing is opened or kept.
    const int probe = ::dup(0);
    REQUIRE(probe > 2);
    ::close(probe);
    { uvkit::loop l; }
    const int next = ::dup(0);
    CHECK(next == probe);  // the lowest free descriptor did not move
    ::close(next);
#endif
}

TEST_CASE("default_loop() wraps uv_default_loop and runs") {
    uvkit::loop& d = uvkit::loop::default_loop();
    CHECK(&d == &uvkit::loop::default_loop());
    CHECK(d.raw() == uv_default_loop());
    CHECK_FALSE(d.owns_raw());
    int fired = 0;
    {
        uvkit::timer t{d};
        t.start(1ms, [&] { ++fired; });
        watchdog w{d, 10s};
        d.run();
        CHECK_FALSE(w.expired);
    }
    // Let the close callbacks of the destroyed timers run.
    for (int i = 0; i < 10 && d.handle_count() > 0; ++i) d.run(uvkit::run_mode::nowait);
    CHECK(fired == 1);
    CHECK(d.handle_count() == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "run(once) runs one iteration, run(nowait) does not block") {
    int slow = 0;
    uvkit::timer b{loop};
    b.start(30s, [&] { ++slow; });

    // nowait: nothing is due, returns at once with work left.
    CHECK(loop.run(uvkit::run_mode::nowait));
    CHECK(slow == 0);

    // once: one iteration. An active idle handle makes it poll without
    // blocking, so it returns after exactly one tick, with b still pending.
    // (A due timer would not do: libuv 1.44 runs it, then blocks in the poll
    // until the next timer, b's 30 s, whenever the timer was already due when
    // the iteration began, which a slow machine or valgrind makes happen.)
    int ticks = 0;
    uvkit::idle tick{loop};
    tick.start([&] { ++ticks; });
    CHECK(loop.run(uvkit::run_mode::once));
    CHECK(ticks == 1);
    CHECK(loop.run(uvkit::run_mode::once));
    CHECK(ticks == 2);
    tick.stop();
    CHECK(slow == 0);
    CHECK(loop.alive());

    b.stop();
    CHECK_FALSE(loop.alive());
    CHECK_FALSE(loop.run(uvkit::run_mode::once));
}

TEST_CASE_FIXTURE(loop_fixture, "stop() makes run() return with work left") {
    int n = 0;
    uvkit::timer t{loop};
    t.start(1ms, 1ms, [&] {
        if (++n == 3) loop.stop();
    });
    watchdog w{loop, 10s};
    CHECK(loop.run());  // stopped while the repeating timer is still active
    CHECK_FALSE(w.expired);
    CHECK(n == 3);
    CHECK(t.active());
    t.stop();
    CHECK_FALSE(loop.run());
    CHECK(n == 3);
}

TEST_CASE_FIXTURE(loop_fixture, "alive() follows referenced active handles") {
    CHECK_FALSE(loop.alive());
    uvkit::timer t{loop};
    CHECK_FALSE(loop.alive());  // initialised but not started
    t.start(10s, [] {});
    CHECK(loop.alive());
    t.unref();
    CHECK_FALSE(loop.alive());
    t.ref();
    CHECK(loop.alive());
    t.stop();
    CHECK_FALSE(loop.alive());
}

TEST_CASE_FIXTURE(loop_fixture, "now() is cached until update_time()") {
    loop.update_time();
    auto before = loop.now();
    spin_for(5ms);
    CHECK(loop.now() == before);
    loop.update_time();
    CHECK(loop.now() >= before + 5ms);
    CHECK(loop.now().count() == static_cast<std::int64_t>(uv_now(loop.raw())));
}

TEST_CASE("destroying a loop closes open and active timers and idles; leftovers report UV_EINVAL") {
    auto l = std::make_unique<uvkit::loop>();
    uvkit::timer started{*l};
    uvkit::timer idle_timer{*l};
    uvkit::idle active_idle{*l};
    uvkit::idle idle_idle{*l};
    uvkit::timer closing{*l};
    int closed = 0;
    bool ran = false;
    started.start(10s, 1s, [&] { ran = true; });
    active_idle.start([&] { ran = true; });
    closing.close([&] { ++closed; });
    // Destroyed before the loop, while its close is pending: freed by the loop's teardown.
    {
        uvkit::timer dropped{*l};
        dropped.start(10s, [&] { ran = true; });
    }
    CHECK(l->handle_count() == 6);

    l.reset();  // ASan/LSan checks that every state block was freed
    CHECK_FALSE(ran);
    CHECK(closed == 1);

    auto noop = [] {};
    for (uvkit::timer* t : {&started, &idle_timer, &closing}) {
        CHECK(static_cast<bool>(*t));
        CHECK_FALSE(t->active());
        CHECK(t->closing());
        CHECK_FALSE(t->has_ref());
        t->ref();
        t->unref();
        t->stop();
        t->set_repeat(5ms);
        CHECK(t->due_in() == 0ms);
        try {
            t->start(1ms, [] {});
            FAIL("start on a timer whose loop is gone did not throw");
        } catch (const std::system_error& e) {
            CHECK(e.code() == uvkit::make_uv_error(UV_EINVAL));
        }
        std::error_code ec;
        t->start(1ms, noop, ec);
        CHECK(ec == uvkit::make_uv_error(UV_EINVAL));
        ec.clear();
        t->again(ec);
        CHECK(ec == uvkit::make_uv_error(UV_EINVAL));
        CHECK_THROWS_AS(t->again(), std::system_error);
        CHECK_THROWS_AS((void)t->get_loop(), std::system_error);
        int late = 0;
        t->close([&] { ++late; });
        CHECK(late == 0);
    }
    for (uvkit::idle* i : {&active_idle, &idle_idle}) {
        CHECK_FALSE(i->active());
        CHECK(i->closing());
        i->stop();
        std::error_code ec;
        i->start([] {}, ec);
        CHECK(ec == uvkit::make_uv_error(UV_EINVAL));
        CHECK_THROWS_AS(i->start([] {}), std::system_error);
    }
    // The handles' destructors run here, after their loop: they must not crash.
}

TEST_CASE("destroying a loop closes handles opened by close callbacks during teardown") {
    auto l = std::make_unique<uvkit::loop>();
    uvkit::loop& lr = *l;
    std::optional<uvkit::timer> inner;
    bool inner_fired = false;
    uvkit::timer outer{lr};
    outer.close([&] {
        // A close callback during teardown that opens and starts another handle:
        // the teardown must close that one too.
        inner.emplace(lr);
        inner->start(10s, [&] { inner_fired = true; });
    });
    l.reset();
    REQUIRE(inner.has_value());
    CHECK(inner->closing());
    CHECK_FALSE(inner->active());
    CHECK_FALSE(inner_fired);
}

TEST_CASE_FIXTURE(loop_fixture, "a handler exception is rethrown by run() and the loop runs again") {
    uvkit::timer t{loop};
    uvkit::timer other{loop};
    int other_fired = 0;
    t.start(1ms, [] { throw std::runtime_error("boom from a timer"); });
    other.start(5s, [&] { ++other_fired; });
    watchdog w{loop, 10s};
    CHECK_THROWS_WITH_AS(loop.run(), "boom from a timer", std::runtime_error);
    CHECK_FALSE(w.expired);
    CHECK(other.active());  // the loop stopped; other handles are untouched
    CHECK(other_fired == 0);

    // The error is reported once: the next run works normally.
    other.stop();
    int fired = 0;
    t.start(1ms, [&] { ++fired; });
    CHECK_NOTHROW(loop.run());
    CHECK(fired == 1);

    // An idle handler that throws, the same way.
    uvkit::idle i{loop};
    i.start([] { throw std::logic_error("boom from an idle"); });
    CHECK_THROWS_WITH_AS(loop.run(), "boom from an idle", std::logic_error);
    i.stop();
    CHECK_NOTHROW(loop.run());
}

TEST_CASE_FIXTURE(loop_fixture,
                  "two handlers that throw in one iteration: each run() rethrows one, none is lost") {
    uvkit::timer a{loop};
    uvkit::timer b{loop};
    int ran = 0;
    a.start(0ms, [&] {
        ++ran;
        throw std::runtime_error("first");
    });
    b.start(0ms, [&] {
        ++ran;
        throw std::runtime_error("second");
    });
    CHECK_THROWS_WITH_AS(loop.run(), "first", std::runtime_error);
    CHECK(ran == 2);  // both ran in the same iteration before the loop stopped
    uvkit::idle later{loop};
    bool later_ran = false;
    later.start([&] {
        later_ran = true;
        later.stop();
    });
    // The second is rethrown at the start of the next run(), before anything else runs.
    CHECK_THROWS_WITH_AS(loop.run(), "second", std::runtime_error);
    CHECK_FALSE(later_ran);
    CHECK_NOTHROW(loop.run());
    CHECK(later_ran);
}

TEST_CASE_FIXTURE(loop_fixture, "an on_closed handler that throws is rethrown by run()") {
    uvkit::timer t{loop};
    t.close([] { throw std::runtime_error("boom on close"); });
    CHECK_THROWS_WITH_AS(loop.run(), "boom on close", std::runtime_error);
    CHECK(loop.handle_count() == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "post() before run() is delivered by run()") {
    std::vector<int> got;
    for (int i = 0; i < 5; ++i) loop.post([&got, i] { got.push_back(i); });
    CHECK(got.empty());
    watchdog w{loop, 10s};
    CHECK_FALSE(loop.run());
    CHECK_FALSE(w.expired);
    CHECK(got == std::vector<int>{0, 1, 2, 3, 4});
    // Nothing left: the next run() returns at once with nothing delivered twice.
    CHECK_FALSE(loop.run(uvkit::run_mode::nowait));
    CHECK(got.size() == 5);
}

TEST_CASE_FIXTURE(loop_fixture, "post() from within handlers is delivered by the same run()") {
    std::vector<std::string> got;
    uvkit::timer t{loop};
    t.start(1ms, [&] {
        got.emplace_back("timer");
        loop.post([&] {
            got.emplace_back("posted by timer");
            loop.post([&] { got.emplace_back("posted by posted"); });
        });
    });
    watchdog w{loop, 10s};
    CHECK_FALSE(loop.run());
    CHECK_FALSE(w.expired);
    CHECK(got == std::vector<std::string>{"timer", "posted by timer", "posted by posted"});
}

TEST_CASE_FIXTURE(loop_fixture, "post() from 4 threads x 10000: each delivered once, in per-thread order") {
    constexpr int threads = 4;
    constexpr int per_thread = 10000;
    constexpr int total = threads * per_thread;

    std::vector<int> next(threads, 0);
    int delivered = 0;
    int out_of_order = 0;
    int off_thread = 0;
    auto loop_thread = std::this_thread::get_id();

    // Keeps run() alive until the last message arrived (post() alone does
    // not), and bounds the test in time.
    uvkit::timer keeper{loop};
    bool expired = false;
    keeper.start(20s, [&] {
        expired = true;
        loop.stop();
    });

    std::atomic<bool> go{false};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            while (!go.load()) std::this_thread::yield();
            for (int i = 0; i < per_thread; ++i) {
                loop.post([&, t, i] {
                    if (std::this_thread::get_id() != loop_thread) ++off_thread;
                    if (next[static_cast<std::size_t>(t)] != i) ++out_of_order;
                    next[static_cast<std::size_t>(t)] = i + 1;
                    if (++delivered == total) keeper.stop();
                });
            }
        });
    }
    go = true;
    CHECK_FALSE(loop.run());
    for (auto& w : workers) w.join();
    // Anything that raced with the end of run() is delivered now.
    loop.run();

    CHECK_FALSE(expired);
    CHECK(delivered == total);
    CHECK(out_of_order == 0);
    CHECK(off_thread == 0);
    for (int t = 0; t < threads; ++t) CHECK(next[static_cast<std::size_t>(t)] == per_thread);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "an exception in a posted function is rethrown; the rest are delivered later") {
    std::vector<int> got;
    loop.post([&] { got.push_back(1); });
    loop.post([&] {
        got.push_back(2);
        throw std::runtime_error("boom from post");
    });
    loop.post([&] { got.push_back(3); });
    loop.post([&] { got.push_back(4); });

    watchdog w{loop, 10s};
    CHECK_THROWS_WITH_AS(loop.run(), "boom from post", std::runtime_error);
    CHECK(got == std::vector<int>{1, 2});

    loop.post([&] { got.push_back(5); });
    CHECK_NOTHROW(loop.run());
    CHECK_FALSE(w.expired);
    CHECK(got == std::vector<int>{1, 2, 3, 4, 5});
}

TEST_CASE("messages posted to a loop that is destroyed unrun are destroyed, not leaked") {
    auto l = std::make_unique<uvkit::loop>();
    auto token = std::make_shared<int>(7);
    std::weak_ptr<int> watch = token;
    bool ran = false;
    l->post([token = std::move(token), &ran] { ran = *token == 7; });
    CHECK_FALSE(watch.expired());
    l.reset();
    CHECK_FALSE(ran);
    CHECK(watch.expired());
}

#ifndef _WIN32
// Destroying a loop inside its own handler: the process must stop with one
// clear line, before any memory is touched. The test binary runs itself in a
// child, where the case below does it (UVKIT_DEATH says how); this process
// watches the child die.

TEST_CASE("death child: a loop destroyed inside its own handler" * doctest::skip()) {
    const char* how = std::getenv("UVKIT_DEATH");
    REQUIRE(how != nullptr);
    const std::string mode = how;
    auto* l = new uvkit::loop;
    auto* t = new uvkit::timer{*l};
    if (mode == "timer") {
        t->start(0ms, [l] { delete l; });
    } else if (mode == "post") {
        l->post([l] { delete l; });
    } else if (mode == "on_closed") {
        t->close([l] { delete l; });
    } else if (mode == "nested") {  // run() inside a handler returns into the outer run()
        l->post([l] {
            l->run(uvkit::run_mode::nowait);
            delete l;
        });
    }
    l->run();
    FAIL("the loop survived its own destruction (", mode, ")");
}

TEST_CASE("destroying a loop inside its own handler aborts with one line, before touching memory") {
    char exe[4096];
    std::size_t size = sizeof exe;
    REQUIRE(uv_exepath(exe, &size) == 0);
    uv_env_item_t* items = nullptr;
    int count = 0;
    REQUIRE(uv_os_environ(&items, &count) == 0);
    std::vector<std::string> env;
    for (int i = 0; i < count; ++i)
        if (std::string_view(items[i].name) != "UVKIT_DEATH")
            env.push_back(std::string(items[i].name) + "=" + items[i].value);
    uv_os_free_environ(items, count);

    for (const char* mode : {"timer", "post", "on_closed", "nested"}) {
        CAPTURE(mode);
        uvkit::loop l;
        uvkit::pipe err{l};
        uvkit::process_options opts;
        opts.file = exe;
        opts.args = {exe, "--no-skip", "--test-case=death child: a loop destroyed inside its own handler",
                     "--no-breaks"};
        opts.env = env;
        opts.env->push_back(std::string("UVKIT_DEATH=") + mode);
        opts.stdio = {uvkit::process_stdio::ignore(), uvkit::process_stdio::ignore(),
                      uvkit::process_stdio::create_pipe(err)};
        std::optional<uvkit::process_exit> exit;
        uvkit::process child{l, opts, [&](std::int64_t status, int sig) { exit = {status, sig}; }};
        std::string text;
        bool eof = false;
        err.read_start([&](std::error_code ec, std::string_view d) {
            if (ec) {
                eof = true;
                err.close();
                return;
            }
            text += d;
        });
        watchdog w{l, 60s};
        while (!(exit && eof) && !w.expired) l.run(uvkit::run_mode::once);
        REQUIRE(exit.has_value());
        CHECK(exit->term_signal == SIGABRT);
        // The first line is ours; a sanitizer or doctest may add theirs after it.
        const std::string first = text.substr(0, text.find('\n'));
        CHECK(first ==
              "uvkit: a loop was destroyed inside one of its own handlers (while run() runs it on this "
              "thread); destroy it after run() returned. Aborting.");
        CHECK(text.find("uvkit:", 1) == std::string::npos);  // said once
    }
}
#endif

TEST_SUITE_END();
