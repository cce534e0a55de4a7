// Conformance ports of libuv's async tests (test/test-async.c,
// test/test-async-null-cb.c) against loop::post().
//
// uvkit differs by design: post() carries a message, and every message is
// delivered exactly once, in order, where uv_async_send only coalesces
// wake-ups (N sends may run the callback fewer than N times). The wake-up
// behind post() is still libuv's uv_async_t, so the thread-to-loop part is
// what these ports check.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;

namespace {
/// Waits (bounded) until `flag` reaches `want`; false on time-out.
bool wait_for(const std::atomic<int>& flag, int want) {
    for (int i = 0; i < 5000; ++i) {
        if (flag.load() >= want) return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}
}  // namespace

TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture, "conformance: async (test-async.c)") {
    // A referenced timer keeps run() blocked in its poll; each post() from the
    // other thread must wake it up, and is acknowledged before the next one.
    uvkit::timer keep{loop};
    keep.start(1h, [] {});
    std::atomic<int> acked{0};
    std::vector<int> seen;
    bool thread_ok = true;
    std::thread th([&] {
        for (int i = 1; i <= 3; ++i) {
            loop.post([&, i] {
                seen.push_back(i);
                acked.store(i);
            });
            if (!wait_for(acked, i)) {
                thread_ok = false;
                break;
            }
        }
        loop.post([&] { keep.close(); });
    });
    run_all();
    th.join();
    CHECK(thread_ok);
    CHECK(seen == std::vector<int>{1, 2, 3});
    CHECK(keep.closing());
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: async_null_cb (test-async-null-cb.c)") {
    // libuv: an async handle without a callback may be sent to; nothing runs,
    // nothing crashes. uvkit: posting an empty function is a no-op.
    int ran = 0;
    loop.post(nullptr);
    void (*none)() = nullptr;
    loop.post(none);
    loop.post([&] { ++ran; });
    std::thread th([&] { loop.post(nullptr); });
    th.join();
    run_all();
    CHECK(ran == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: async mixed with a raw uv_async_t (test-async.c)") {
    // uvkit's wake-up and a raw uv_async_t on the same loop do not interfere:
    // both are delivered, and uvkit never touches the foreign handle's data.
    struct raw_async {
        uv_async_t h;
        int* calls;
    };
    int raw_calls = 0;
    auto* ra = new raw_async{{}, &raw_calls};
    REQUIRE(uv_async_init(loop.raw(), &ra->h, [](uv_async_t* a) {
                ++*static_cast<raw_async*>(a->data)->calls;
                uv_close(reinterpret_cast<uv_handle_t*>(a),
                         [](uv_handle_t* h) { delete static_cast<raw_async*>(h->data); });
            }) == 0);
    ra->h.data = ra;
    int posted = 0;
    std::thread th([&] {
        loop.post([&] { ++posted; });
        uv_async_send(&ra->h);
    });
    th.join();
    run_all();
    CHECK(posted == 1);
    CHECK(raw_calls == 1);
}

}  // TEST_SUITE("conformance")
