/* memory, raw libuv: heap bytes per idle TCP connection. Opens N connections over 127.0.0.1 in
 * one loop (a malloc'd uv_tcp_t per client and per accepted socket, both reading, as a server
 * would), in two halves: the heap growth (glibc's mallinfo2()) over the second half, per
 * connection, leaves out what the first connection allocates once per loop. Prints
 * "memory N ok bytes_per_connection=B bytes_per_handle=H"; a connection is both of its ends. */
#include <malloc.h>
#include <uv.h>

#include "bench.h"

static uv_loop_t loop;
static uv_tcp_t server;
static uv_tcp_t** clients;
static uv_tcp_t** conns;
static uv_connect_t* connect_reqs;
static char read_buf[64 * 1024];
static long total;
static long target; /* connections to open before the loop stops */
static long connected;
static long accepted;

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    (void)s;
    (void)buf;
    BENCH_CHECK(nread == 0, "idle connections read nothing");
}

static void check_done(void) {
    if (connected == target && accepted == target) uv_stop(&loop);
}

static void on_connection(uv_stream_t* s, int status) {
    BENCH_UV(status);
    uv_tcp_t* conn = malloc(sizeof *conn);
    BENCH_CHECK(conn != NULL, "malloc");
    BENCH_UV(uv_tcp_init(&loop, conn));
    BENCH_UV(uv_accept(s, (uv_stream_t*)conn));
    BENCH_UV(uv_read_start((uv_stream_t*)conn, on_alloc, on_read));
    conns[accepted++] = conn;
    check_done();
}

static void on_connect(uv_connect_t* req, int status) {
    BENCH_UV(status);
    BENCH_UV(uv_read_start(req->handle, on_alloc, on_read));
    ++connected;
    check_done();
}

static void on_close(uv_handle_t* h) { free(h); }

int main(int argc, char** argv) {
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    total = bench_count(argc, argv, "memory");
    clients = calloc((size_t)total, sizeof *clients);
    conns = calloc((size_t)total, sizeof *conns);
    connect_reqs = calloc((size_t)total, sizeof *connect_reqs);
    BENCH_CHECK(clients && conns && connect_reqs, "calloc");
    BENCH_UV(uv_loop_init(&loop));
    BENCH_UV(uv_ip4_addr("127.0.0.1", 0, &addr));
    BENCH_UV(uv_tcp_init(&loop, &server));
    BENCH_UV(uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0));
    BENCH_UV(uv_listen((uv_stream_t*)&server, 1024, on_connection));
    BENCH_UV(uv_tcp_getsockname(&server, (struct sockaddr*)&bound, &len));
    BENCH_UV(uv_run(&loop, UV_RUN_NOWAIT));

    size_t before = 0;
    for (long i = 0; i < total; ++i) {
        if (i == 0 || i == total / 2) {
            /* Let the connections opened so far complete, then measure from here. */
            target = i;
            if (i > 0) BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
            before = mallinfo2().uordblks;
        }
        clients[i] = malloc(sizeof **clients);
        BENCH_CHECK(clients[i] != NULL, "malloc");
        BENCH_UV(uv_tcp_init(&loop, clients[i]));
        BENCH_UV(uv_tcp_connect(&connect_reqs[i], clients[i], (const struct sockaddr*)&bound, on_connect));
    }
    target = total;
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_CHECK(connected == total && accepted == total, "every connection is open");
    size_t after = mallinfo2().uordblks;

    for (long i = 0; i < total; ++i) {
        uv_close((uv_handle_t*)clients[i], on_close);
        uv_close((uv_handle_t*)conns[i], on_close);
    }
    uv_close((uv_handle_t*)&server, NULL);
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_UV(uv_loop_close(&loop));
    free(clients);
    free(conns);
    free(connect_reqs);
    double per_conn = (double)(after - before) / (double)(total - total / 2);
    printf("memory %ld ok bytes_per_connection=%.0f bytes_per_handle=%.0f\n", total, per_conn, per_conn / 2);
    return 0;
}
