/* write_batch, raw libuv: N small (16-byte) writes queued at once, then shutdown; a sink in the
 * same loop counts bytes until EOF. Like libuv's tcp_write_batch benchmark, the N uv_write_t come
 * from one array allocated up front. */
#include <uv.h>

#include "bench.h"

static uv_loop_t loop;
static uv_tcp_t server, conn, client;
static uv_connect_t connect_req;
static uv_shutdown_t shutdown_req;
static uv_write_t* write_reqs;
static char read_buf[64 * 1024];
static long total;
static long completed;
static long long received;

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_sink_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    (void)buf;
    if (nread < 0) {
        BENCH_CHECK(nread == UV_EOF, uv_strerror((int)nread));
        uv_close((uv_handle_t*)s, NULL);
        uv_close((uv_handle_t*)&server, NULL);
        return;
    }
    received += nread;
}

static void on_connection(uv_stream_t* s, int status) {
    BENCH_UV(status);
    BENCH_UV(uv_tcp_init(&loop, &conn));
    BENCH_UV(uv_accept(s, (uv_stream_t*)&conn));
    BENCH_UV(uv_read_start((uv_stream_t*)&conn, on_alloc, on_sink_read));
}

static void on_write(uv_write_t* req, int status) {
    (void)req;
    BENCH_UV(status);
    ++completed;
}

static void on_shutdown(uv_shutdown_t* req, int status) {
    BENCH_UV(status);
    uv_close((uv_handle_t*)req->handle, NULL);
}

static void on_connect(uv_connect_t* req, int status) {
    (void)req;
    BENCH_UV(status);
    uv_buf_t b = uv_buf_init(BENCH_BATCH_MSG, BENCH_BATCH_LEN);
    for (long i = 0; i < total; ++i)
        BENCH_UV(uv_write(&write_reqs[i], (uv_stream_t*)&client, &b, 1, on_write));
    BENCH_UV(uv_shutdown(&shutdown_req, (uv_stream_t*)&client, on_shutdown));
}

int main(int argc, char** argv) {
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    total = bench_count(argc, argv, "write_batch");
    write_reqs = malloc(sizeof *write_reqs * (size_t)total);
    BENCH_CHECK(write_reqs != NULL, "malloc");
    BENCH_UV(uv_loop_init(&loop));
    BENCH_UV(uv_ip4_addr("127.0.0.1", 0, &addr));
    BENCH_UV(uv_tcp_init(&loop, &server));
    BENCH_UV(uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0));
    BENCH_UV(uv_listen((uv_stream_t*)&server, 128, on_connection));
    BENCH_UV(uv_tcp_getsockname(&server, (struct sockaddr*)&bound, &len));
    BENCH_UV(uv_tcp_init(&loop, &client));
    BENCH_UV(uv_tcp_connect(&connect_req, &client, (const struct sockaddr*)&bound, on_connect));
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_CHECK(completed == total, "every write completed");
    BENCH_CHECK(received == (long long)total * BENCH_BATCH_LEN, "every byte arrived");
    BENCH_UV(uv_loop_close(&loop));
    free(write_reqs);
    bench_ok("write_batch", total);
    return 0;
}
