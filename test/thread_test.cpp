// Loops on several threads: what a multi-core server does (one loop per
// thread, messages between them with post(), sockets between them over
// loopback). ./dev test also runs these under ThreadSanitizer.
#include <uvkit/uvkit.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "doctest_include.hpp"

using namespace std::chrono_literals;

namespace {

// A loop on its own thread, kept running by a referenced timer until stop_soon().
// The watchdog bounds the test: if the other side never finishes, run() returns anyway.
class loop_thread {
public:
    loop_thread() : keep_alive_(loop), thread_([this] { run(); }) { started_.get_future().wait(); }
    ~loop_thread() {
        stop_soon();
        thread_.join();
    }

    /// Lets run() return once nothing else is active (safe from any thread).
    void stop_soon() {
        loop.post([this] { keep_alive_.stop(); });
    }

    bool timed_out() const { return timed_out_; }

    uvkit::loop loop;

private:
    void run() {
        // Generous: only a hang reaches it (under wine on a loaded machine 10,000 rounds took over 30 s).
        keep_alive_.start(120s, [this] { timed_out_ = true; });
        started_.set_value();
        loop.run();
    }

    uvkit::timer keep_alive_;
    std::promise<void> started_;
    std::atomic<bool> timed_out_{false};
    std::thread thread_;
};

}  // namespace

TEST_SUITE("threads") {

TEST_CASE("threads: two loops on two threads play 10,000 rounds of ping-pong with post()") {
    constexpr int rounds = 10000;
    std::atomic<int> pongs{0};
    std::promise<void> done;
    {
        loop_thread a;
        loop_thread b;
        // Each message carries the round; a sends ping n to b, b answers pong n, a sends ping n+1.
        // The counters live on their loop's thread only: `seen_on_b` is touched by b's thread alone.
        int seen_on_b = 0;
        std::function<void(int)> ping;
        ping = [&](int n) {
            b.loop.post([&, n] {
                CHECK(n == seen_on_b);
                ++seen_on_b;
                a.loop.post([&, n] {
                    pongs.fetch_add(1);
                    if (n + 1 < rounds) {
                        ping(n + 1);
                    } else {
                        done.set_value();
                    }
                });
            });
        };
        a.loop.post([&] { ping(0); });
        CHECK(done.get_future().wait_for(150s) == std::future_status::ready);
        CHECK_FALSE(a.timed_out());
        CHECK_FALSE(b.timed_out());
    }
    CHECK(pongs.load() == rounds);
}

TEST_CASE("threads: a server loop and a client loop on two threads exchange 1 MiB over loopback") {
    std::string payload(1 << 20, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>((i * 131) % 251);
    std::promise<std::uint16_t> port;
    std::promise<std::string> echoed;
    // Each handle is made, used and destroyed on its loop's thread; these
    // pointers outlive the threads, which are joined at the end of the block.
    std::unique_ptr<uvkit::tcp> listener;
    std::unique_ptr<uvkit::tcp> conn;
    std::unique_ptr<uvkit::tcp> client;
    std::string got;
    {
        loop_thread server_thread;
        loop_thread client_thread;
        // The server: an echo of one connection.
        server_thread.loop.post([&] {
            listener = std::make_unique<uvkit::tcp>(server_thread.loop);
            listener->bind(uvkit::endpoint{"127.0.0.1", 0});
            listener->listen(128, [&](std::error_code ec) {
                REQUIRE_FALSE(ec);
                conn = std::make_unique<uvkit::tcp>(server_thread.loop);
                listener->accept(*conn);
                listener->close();
                conn->read_start([&](std::error_code rec, std::string_view data) {
                    if (rec) {
                        conn->shutdown([&](std::error_code) { conn->close(); });
                        return;
                    }
                    conn->write(std::string(data), [](std::error_code) {});
                });
            });
            port.set_value(listener->local_endpoint().port());
        });
        const std::uint16_t p = port.get_future().get();

        client_thread.loop.post([&] {
            client = std::make_unique<uvkit::tcp>(client_thread.loop);
            client->connect(uvkit::endpoint{"127.0.0.1", p}, [&](std::error_code ec) {
                REQUIRE_FALSE(ec);
                client->write(payload, [&](std::error_code wec) {
                    CHECK_FALSE(wec);
                    client->shutdown([](std::error_code) {});
                });
                client->read_start([&](std::error_code rec, std::string_view data) {
                    if (rec) {
                        client->close();
                        echoed.set_value(got);
                        return;
                    }
                    got += data;
                });
            });
        });
        auto result = echoed.get_future();
        REQUIRE(result.wait_for(150s) == std::future_status::ready);
        CHECK(result.get() == payload);
        CHECK_FALSE(server_thread.timed_out());
        CHECK_FALSE(client_thread.timed_out());
        server_thread.loop.post([&] {
            conn.reset();
            listener.reset();
        });
        client_thread.loop.post([&] { client.reset(); });
    }
}

TEST_CASE("threads: two loops queue work on the shared pool at once; each result reaches its own loop") {
    constexpr int per_loop = 200;
    std::atomic<int> wrong_thread{0};
    std::promise<void> a_done;
    std::promise<void> b_done;
    std::vector<long> sums(2, 0);
    {
        loop_thread a;
        loop_thread b;
        auto start = [&](loop_thread& t, int idx, std::promise<void>& done) {
            t.loop.post([&, idx] {
                const auto loop_id = std::this_thread::get_id();
                auto remaining = std::make_shared<int>(per_loop);
                for (int i = 0; i < per_loop; ++i) {
                    uvkit::work(
                        t.loop, [i] { return long{i} * 2; },
                        [&, idx, loop_id, remaining](std::error_code ec, uvkit::work_result<long> r) {
                            CHECK_FALSE(ec);
                            if (std::this_thread::get_id() != loop_id) wrong_thread.fetch_add(1);
                            sums[static_cast<std::size_t>(idx)] += r.value();
                            if (--*remaining == 0) done.set_value();
                        })
                        .detach();
                }
            });
        };
        start(a, 0, a_done);
        start(b, 1, b_done);
        CHECK(a_done.get_future().wait_for(150s) == std::future_status::ready);
        CHECK(b_done.get_future().wait_for(150s) == std::future_status::ready);
    }
    CHECK(wrong_thread.load() == 0);
    const long expected = long{per_loop} * (per_loop - 1);  // sum of 2i for i < per_loop
    CHECK(sums[0] == expected);
    CHECK(sums[1] == expected);
}

}  // TEST_SUITE("threads")
