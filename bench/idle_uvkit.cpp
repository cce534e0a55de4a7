// idle, uvkit callbacks: N ticks of one idle handle.
#include <uvkit/idle.hpp>

#include "bench.h"

int main(int argc, char** argv) {
    long total = bench_count(argc, argv, "idle");
    long ticks = 0;
    uvkit::loop loop;
    uvkit::idle idle{loop};
    idle.start([&] {
        if (++ticks == total) idle.stop();
    });
    loop.run();
    idle.close();
    loop.run();
    BENCH_CHECK(ticks == total, "N ticks");
    bench_ok("idle", total);
    return 0;
}
