/* timers, raw libuv: per timer init, start, stop, start again, fire (timeout 0), close.
 * One timer at a time; the next one is created from the previous one's callback. */
#include <uv.h>

#include "bench.h"

static uv_loop_t loop;
static long total;
static long fired;

static void start_one(void);

static void on_close(uv_handle_t* h) { free(h); }

static void on_fire(uv_timer_t* t) {
    ++fired;
    uv_close((uv_handle_t*)t, on_close);
    if (fired < total) start_one();
}

static void start_one(void) {
    uv_timer_t* t = malloc(sizeof *t);
    BENCH_CHECK(t != NULL, "malloc");
    BENCH_UV(uv_timer_init(&loop, t));
    BENCH_UV(uv_timer_start(t, on_fire, BENCH_TIMER_FAR, 0));
    BENCH_UV(uv_timer_stop(t));
    BENCH_UV(uv_timer_start(t, on_fire, 0, 0));
}

int main(int argc, char** argv) {
    total = bench_count(argc, argv, "timers");
    BENCH_UV(uv_loop_init(&loop));
    start_one();
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_CHECK(fired == total, "every timer fired once");
    BENCH_UV(uv_loop_close(&loop));
    bench_ok("timers", total);
    return 0;
}
