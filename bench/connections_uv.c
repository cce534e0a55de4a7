/* connections, raw libuv: N connect/accept/close cycles over 127.0.0.1 in one loop. Per cycle
 * the client and the accepted socket are malloc'd uv_tcp_t, both closed; the next cycle starts
 * once both close callbacks ran. */
#include <uv.h>

#include "bench.h"

static uv_loop_t loop;
static uv_tcp_t server;
static uv_connect_t connect_req;
static struct sockaddr_storage bound;
static long total;
static long cycles;
static int closed_this_cycle;

static void start_cycle(void);

static void on_close(uv_handle_t* h) {
    free(h);
    if (++closed_this_cycle < 2) return;
    closed_this_cycle = 0;
    if (++cycles < total)
        start_cycle();
    else
        uv_close((uv_handle_t*)&server, NULL);
}

static void on_connection(uv_stream_t* s, int status) {
    BENCH_UV(status);
    uv_tcp_t* conn = malloc(sizeof *conn);
    BENCH_CHECK(conn != NULL, "malloc");
    BENCH_UV(uv_tcp_init(&loop, conn));
    BENCH_UV(uv_accept(s, (uv_stream_t*)conn));
    uv_close((uv_handle_t*)conn, on_close);
}

static void on_connect(uv_connect_t* req, int status) {
    BENCH_UV(status);
    uv_close((uv_handle_t*)req->handle, on_close);
}

static void start_cycle(void) {
    uv_tcp_t* client = malloc(sizeof *client);
    BENCH_CHECK(client != NULL, "malloc");
    BENCH_UV(uv_tcp_init(&loop, client));
    BENCH_UV(uv_tcp_connect(&connect_req, client, (const struct sockaddr*)&bound, on_connect));
}

int main(int argc, char** argv) {
    struct sockaddr_in addr;
    int len = sizeof bound;
    total = bench_count(argc, argv, "connections");
    BENCH_UV(uv_loop_init(&loop));
    BENCH_UV(uv_ip4_addr("127.0.0.1", 0, &addr));
    BENCH_UV(uv_tcp_init(&loop, &server));
    BENCH_UV(uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0));
    BENCH_UV(uv_listen((uv_stream_t*)&server, 128, on_connection));
    BENCH_UV(uv_tcp_getsockname(&server, (struct sockaddr*)&bound, &len));
    start_cycle();
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_CHECK(cycles == total, "N cycles");
    BENCH_UV(uv_loop_close(&loop));
    bench_ok("connections", total);
    return 0;
}
