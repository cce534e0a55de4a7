// timers, uvkit callbacks: per timer init, start, stop, start again, fire (timeout 0), close.
// One timer at a time; the next one is created from the previous one's handler.
#include <uvkit/timer.hpp>

#include "bench.h"

namespace {

struct bench_state {
    uvkit::loop loop;
    uvkit::timer current;
    long total = 0;
    long fired = 0;

    void start_one() {
        // Assigning closes the previous timer, the one whose handler is running: that is allowed.
        current = uvkit::timer{loop};
        auto on_fire = [this] {
            if (++fired < total)
                start_one();
            else
                current.close();
        };
        current.start(std::chrono::milliseconds(BENCH_TIMER_FAR), on_fire);
        current.stop();
        current.start(std::chrono::milliseconds(0), on_fire);
    }
};

}  // namespace

int main(int argc, char** argv) {
    bench_state b;
    b.total = bench_count(argc, argv, "timers");
    b.start_one();
    b.loop.run();
    BENCH_CHECK(b.fired == b.total, "every timer fired once");
    bench_ok("timers", b.total);
    return 0;
}
