/* idle, raw libuv: N ticks of one idle handle. */
#include <uv.h>

#include "bench.h"

static long total;
static long ticks;

static void on_idle(uv_idle_t* h) {
    if (++ticks == total) uv_idle_stop(h);
}

int main(int argc, char** argv) {
    uv_loop_t loop;
    uv_idle_t idle;
    total = bench_count(argc, argv, "idle");
    BENCH_UV(uv_loop_init(&loop));
    BENCH_UV(uv_idle_init(&loop, &idle));
    BENCH_UV(uv_idle_start(&idle, on_idle));
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    uv_close((uv_handle_t*)&idle, NULL);
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_CHECK(ticks == total, "N ticks");
    BENCH_UV(uv_loop_close(&loop));
    bench_ok("idle", total);
    return 0;
}
