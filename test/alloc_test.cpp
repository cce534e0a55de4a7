// Steady-state allocation counts: restarting timers, repeating timers, idle
// ticks and post() allocate nothing once warm. (TCP reads and writes are
// counted in tcp_test.cpp.)
#include <uvkit/uvkit.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>

#include "alloc_counter.hpp"
#include "fixture.hpp"

using namespace std::chrono_literals;
using uvkit_test::alloc_window;
using uvkit_test::loop_fixture;

TEST_SUITE_BEGIN("alloc");

TEST_CASE_FIXTURE(loop_fixture, "restarting a timer allocates nothing") {
    uvkit::timer t{loop};
    int fired = 0;
    int* pf = &fired;
    t.start(10s, [pf] { ++*pf; });  // warm-up
    t.stop();
    alloc_window w;
    for (int i = 0; i < 1000; ++i) {
        t.start(10s, [pf] { ++*pf; });
        t.start(20s, 5s, [pf] { ++*pf; });  // restart while active: replaces the handler
        t.again();
        t.set_repeat(1s);
        t.stop();
    }
    CHECK(w.count() == 0);
    CHECK(fired == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "a repeating timer firing allocates nothing") {
    uvkit::timer t{loop};
    constexpr int warm = 3;
    constexpr int total = 30;
    int n = 0;
    std::optional<alloc_window> w;
    std::size_t during = 0;
    t.start(1ms, 1ms, [&] {
        ++n;
        if (n == warm) w.emplace();
        if (n == total) {
            during = w->count();
            t.stop();
        }
    });
    run_all();
    CHECK(n == total);
    REQUIRE(w.has_value());
    CHECK(during == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "a timer restarted from its own handler allocates nothing") {
    uvkit::timer t{loop};
    constexpr int warm = 3;
    constexpr int total = 30;
    int n = 0;
    std::optional<alloc_window> w;
    std::size_t during = 0;
    struct ctx {
        uvkit::timer* t;
        int* n;
        std::optional<alloc_window>* w;
        std::size_t* during;
        // Small enough to be stored inline: four pointers.
        void operator()() const {
            ++*n;
            if (*n == warm) w->emplace();
            if (*n == total) {
                *during = (*w)->count();
                return;
            }
            t->start(0ms, ctx{*this});
        }
    };
    t.start(0ms, ctx{&t, &n, &w, &during});
    run_all();
    CHECK(n == total);
    CHECK(during == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "an idle tick allocates nothing") {
    uvkit::idle i{loop};
    constexpr int warm = 10;
    constexpr int total = 1010;
    int n = 0;
    std::optional<alloc_window> w;
    std::size_t during = 0;
    i.start([&] {
        ++n;
        if (n == warm) w.emplace();
        if (n == total) {
            during = w->count();
            i.stop();
        }
    });
    run_all();
    CHECK(n == total);
    CHECK(during == 0);
}

TEST_CASE_FIXTURE(loop_fixture, "post() allocates nothing once warm") {
    constexpr int batch = 100;
    int got = 0;
    int* pg = &got;
    auto round = [&] {
        for (int k = 0; k < batch; ++k) loop.post([pg] { ++*pg; });
        loop.run();
    };
    round();  // warm-up: the queue grows to its working size
    REQUIRE(got == batch);
    alloc_window w;
    for (int r = 0; r < 5; ++r) round();
    CHECK(w.count() == 0);
    CHECK(got == 6 * batch);
}

TEST_CASE_FIXTURE(loop_fixture, "post() from a handler allocates nothing once warm") {
    uvkit::timer t{loop};
    constexpr int warm = 3;
    constexpr int total = 30;
    int n = 0;
    int delivered = 0;
    std::optional<alloc_window> w;
    std::size_t during = 0;
    t.start(1ms, 1ms, [&] {
        ++n;
        if (n == warm) w.emplace();
        if (n == total) {
            during = w->count();
            t.stop();
            return;
        }
        int* pd = &delivered;
        for (int k = 0; k < 10; ++k) loop.post([pd] { ++*pd; });
    });
    run_all();
    CHECK(n == total);
    CHECK(during == 0);
    CHECK(delivered == (total - 1) * 10);
}

// State blocks of closed handles go back to a per-loop pool (not under
// AddressSanitizer, which must see every block freed).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool blocks_pooled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool blocks_pooled = false;
#else
constexpr bool blocks_pooled = true;
#endif
#else
constexpr bool blocks_pooled = true;
#endif

TEST_CASE_FIXTURE(loop_fixture, "a handle created after another one closed reuses its state block") {
    constexpr int rounds = 100;
    auto noop = [] {};
    auto round = [&] {
        {
            uvkit::timer t{loop};  // destroyed at once: closed by the next iteration
            t.start(10s, noop);
        }
        uvkit::idle i{loop};
        i.close();  // closed, but its C++ object still holds the block until the end of the round
        loop.run(uvkit::run_mode::nowait);
    };
    round();  // warm-up
    alloc_window w;
    for (int r = 0; r < rounds; ++r) round();
    if (blocks_pooled)
        CHECK(w.count() == 0);
    else
        CHECK(w.count() == 2 * rounds);
    CHECK(loop.handle_count() == 0);
}

TEST_CASE("a closed handle still held when its loop goes away is freed by its destructor") {
    auto l = std::make_unique<uvkit::loop>();
    uvkit::timer closed{*l};
    uvkit::timer reopened{*l};
    closed.close();
    reopened.close();
    l->run(uvkit::run_mode::nowait);  // both closed; their objects still hold the blocks
    reopened = uvkit::timer{*l};      // releases a closed block while the loop lives
    l.reset();                        // detaches `closed` from the pool that is freed here
    CHECK(closed.closing());
    CHECK(reopened.closing());
    CHECK_THROWS_AS((void)closed.get_loop(), std::system_error);
    // The destructors run after the loop: ASan/LSan check that nothing leaks or is freed twice.
}

TEST_CASE_FIXTURE(loop_fixture, "a TCP connect/close cycle allocates nothing once warm") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    int accepted = 0;
    server.listen(16, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        uvkit::tcp conn{loop};
        server.accept(conn);
        ++accepted;
    });
    const uvkit::endpoint ep = server.local_endpoint();
    constexpr int warm = 3;
    constexpr int total = 23;
    int connected = 0;
    std::size_t during = 0;
    std::optional<alloc_window> w;
    uvkit::tcp client;
    std::function<void()> cycle = [&] {
        if (connected == warm) w.emplace();
        if (connected == total) {
            during = w->count();
            server.close();
            return;
        }
        client = uvkit::tcp{loop};
        client.connect(ep, [&](std::error_code ec) {
            REQUIRE_FALSE(ec);
            ++connected;
            client.close([&] { cycle(); });
        });
    };
    cycle();
    run_all();
    CHECK(connected == total);
    if (blocks_pooled)
        CHECK(during == 0);
    else
        CHECK(during > 0);
}

TEST_SUITE_END();
