// Shared test helpers: a loop fixture that checks the loop closed cleanly, and
// a bounded runner so that no test can hang.
#pragma once

#include <uvkit/uvkit.hpp>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>

#include "doctest_include.hpp"

namespace uvkit_test {

/// A loop per test. Teardown requires that every uvkit handle was closed
/// and that the raw loop can be closed (nothing leaked on it).
struct loop_fixture {
    uvkit::loop loop;

    /// Runs the loop until `done()` or until `limit` passed (then FAILs).
    /// Uses a watchdog timer, so a test that forgets to stop cannot hang.
    void run_until(const std::function<bool()>& done,
                   std::chrono::milliseconds limit = std::chrono::seconds(20)) {
        uvkit::timer watchdog{loop};
        bool expired = false;
        watchdog.start(limit, [&] {
            expired = true;
            loop.stop();
        });
        watchdog.unref();
        // run(once) blocks until something happened, then `done` is checked again.
        for (int i = 0; i < 1000000 && !done() && !expired; ++i) {
            if (!loop.run(uvkit::run_mode::once) && !done()) {
                // Nothing referenced is left: run once more to flush, then give up.
                loop.run(uvkit::run_mode::nowait);
                break;
            }
        }
        REQUIRE_MESSAGE(!expired, "run_until: time limit reached");
    }

    /// Runs the loop until a handler throws; returns the exception's what()
    /// ("no exception" if the loop ended without one). A watchdog timer that
    /// throws its own exception ("watchdog") bounds the wait.
    std::string run_until_throw(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
        uvkit::timer watchdog{loop};
        watchdog.start(limit, [] { throw std::runtime_error("watchdog"); });
        watchdog.unref();
        try {
            loop.run();
        } catch (const std::runtime_error& e) {
            return e.what();
        }
        return "no exception";
    }

    /// Runs the loop to completion, bounded by a watchdog.
    void run_all(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
        uvkit::timer watchdog{loop};
        bool expired = false;
        watchdog.start(limit, [&] {
            expired = true;
            loop.stop();
        });
        watchdog.unref();
        loop.run();
        REQUIRE_MESSAGE(!expired, "run_all: time limit reached");
    }

    ~loop_fixture() {
        // Let close callbacks of handles destroyed by the test run, then
        // require that nothing uvkit opened is still open.
        for (int i = 0; i < 10 && loop.handle_count() > 0; ++i) loop.run(uvkit::run_mode::nowait);
        if (loop.handle_count() != 0) {
            std::string open;
            uv_walk(
                loop.raw(),
                [](uv_handle_t* h, void* out) {
                    auto& o = *static_cast<std::string*>(out);
                    o += std::string(uv_handle_type_name(h->type)) + (uv_is_closing(h) ? "(closing) " : " ");
                },
                &open);
            FAIL_CHECK("handles left open: ", loop.handle_count(), ": ", open);
        }
        // Only uvkit's own handles (the loop's post() handle, whose
        // data is the loop; the coroutine layer's pooled timers and scheduler)
        // may remain on the raw loop.
        struct walk_state {
            uvkit::loop* loop;
            int foreign;
        } w{&loop, 0};
        uv_walk(
            loop.raw(),
            [](uv_handle_t* h, void* arg) {
                auto& st = *static_cast<walk_state*>(arg);
                if (h->data == st.loop) return;
                auto* s = static_cast<uvkit::detail::handle_state*>(h->data);
                if (!s || !s->internal) ++st.foreign;
            },
            &w);
        int foreign = w.foreign;
        CHECK_MESSAGE(foreign == 0, "non-internal raw handles on the loop: ", foreign);
    }
};

}  // namespace uvkit_test
