// Test helper: occupies every thread of libuv's pool until released, so that
// work queued after it deterministically waits (and can be cancelled).
#pragma once

#include <uvkit/uvkit.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "doctest_include.hpp"

namespace uvkit_test {

class pool_gate {
public:
    /// libuv's pool size: UV_THREADPOOL_SIZE, default 4 (read once by libuv).
    static int pool_size() {
        const char* v = std::getenv("UV_THREADPOOL_SIZE");
        int n = v ? std::atoi(v) : 4;
        if (n < 1) n = 1;
        if (n > 1024) n = 1024;
        return n;
    }

    /// Queues one blocking work per pool thread and waits until all of them run.
    explicit pool_gate(uvkit::loop& l) : s_(std::make_shared<state>()) {
        int n = pool_size();
        for (int i = 0; i < n; ++i) {
            uvkit::work(
                l,
                [s = s_] {
                    std::unique_lock<std::mutex> lock(s->m);
                    ++s->running;
                    s->cv.notify_all();
                    // Bounded: a failing test cannot leave the pool blocked for ever.
                    s->cv.wait_for(lock, std::chrono::seconds(30), [&] { return s->open; });
                },
                [s = s_](std::error_code, uvkit::work_result<void>) { ++s->finished; })
                .detach();
        }
        std::unique_lock<std::mutex> lock(s_->m);
        bool all = s_->cv.wait_for(lock, std::chrono::seconds(20), [&] { return s_->running == n; });
        REQUIRE_MESSAGE(all, "pool_gate: the pool threads did not all start");
    }
    pool_gate(const pool_gate&) = delete;
    pool_gate& operator=(const pool_gate&) = delete;
    ~pool_gate() { release(); }

    void release() {
        std::lock_guard<std::mutex> lock(s_->m);
        s_->open = true;
        s_->cv.notify_all();
    }
    /// Blocking works whose handler ran (loop thread).
    int finished() const { return s_->finished; }
    bool all_finished() const { return s_->finished == pool_size(); }

private:
    struct state {
        std::mutex m;
        std::condition_variable cv;
        int running = 0;
        bool open = false;
        int finished = 0;  // loop thread only
    };
    std::shared_ptr<state> s_;
};

}  // namespace uvkit_test
