// timers, uvkit coroutines: N awaited sleeps of 0 ms. The coroutine layer takes its timer from a
// per-loop pool, so this is start, fire and resume per operation (no init/close).
#include <uvkit/co.hpp>

#include "bench.h"

namespace {

uvkit::task<long> sleeper(uvkit::loop& loop, long n) {
    long done = 0;
    for (long i = 0; i < n; ++i) {
        co_await uvkit::sleep(loop, std::chrono::milliseconds(0));
        ++done;
    }
    co_return done;
}

}  // namespace

int main(int argc, char** argv) {
    long n = bench_count(argc, argv, "timers");
    uvkit::loop loop;
    long done = uvkit::run(loop, sleeper(loop, n));
    BENCH_CHECK(done == n, "every sleep completed");
    bench_ok("timers", n);
    return 0;
}
