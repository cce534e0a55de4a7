// post, uvkit callbacks: another thread posts N messages with loop.post() that run on the loop.
// uvkit's wake-up handle is unref'd, so a timer that never fires keeps run() going until the last
// message ran and stops it.
#include <uvkit/timer.hpp>

#include <thread>

#include "bench.h"

int main(int argc, char** argv) {
    const long total = bench_count(argc, argv, "post");
    long ran = 0;
    uvkit::loop loop;
    uvkit::timer keep_alive{loop};
    keep_alive.start(std::chrono::hours(1), [] {});
    std::thread producer([&] {
        for (long i = 0; i < total; ++i)
            loop.post([&] {
                if (++ran == total) keep_alive.stop();
            });
    });
    loop.run();
    producer.join();
    BENCH_CHECK(ran == total, "every message ran once");
    bench_ok("post", total);
    return 0;
}
