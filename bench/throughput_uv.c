/* throughput, raw libuv: N MiB written in 64 KiB chunks, 16 writes in flight, to a sink in the
 * same loop that counts bytes until EOF. SO_SNDBUF/SO_RCVBUF are pinned to 256 KiB (the accepted
 * socket inherits the listener's). Each write mallocs its uv_write_t (the usual C way). */
#include <uv.h>

#include "bench.h"

static uv_loop_t loop;
static uv_tcp_t server, conn, client;
static uv_connect_t connect_req;
static uv_shutdown_t shutdown_req;
static char read_buf[64 * 1024];
static char chunk[BENCH_CHUNK];
static long long total_chunks;
static long long issued;
static long long completed;
static long long received;

static void pin_buffers(uv_tcp_t* t) {
    int size = BENCH_SOCKBUF;
    BENCH_UV(uv_send_buffer_size((uv_handle_t*)t, &size));
    size = BENCH_SOCKBUF;
    BENCH_UV(uv_recv_buffer_size((uv_handle_t*)t, &size));
}

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

static void on_shutdown(uv_shutdown_t* req, int status) {
    BENCH_UV(status);
    uv_close((uv_handle_t*)req->handle, NULL);
}

static void write_chunk(void);

static void on_write(uv_write_t* req, int status) {
    BENCH_UV(status);
    free(req);
    ++completed;
    if (issued < total_chunks)
        write_chunk();
    else if (completed == total_chunks)
        BENCH_UV(uv_shutdown(&shutdown_req, (uv_stream_t*)&client, on_shutdown));
}

static void write_chunk(void) {
    uv_write_t* req = malloc(sizeof *req);
    BENCH_CHECK(req != NULL, "malloc");
    uv_buf_t b = uv_buf_init(chunk, sizeof chunk);
    ++issued;
    BENCH_UV(uv_write(req, (uv_stream_t*)&client, &b, 1, on_write));
}

static void on_connect(uv_connect_t* req, int status) {
    (void)req;
    BENCH_UV(status);
    pin_buffers(&client);
    for (int i = 0; i < BENCH_IN_FLIGHT && issued < total_chunks; ++i) write_chunk();
}

int main(int argc, char** argv) {
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    long mib = bench_count(argc, argv, "throughput");
    total_chunks = (long long)mib * (1024 * 1024 / BENCH_CHUNK);
    memset(chunk, 'x', sizeof chunk);
    BENCH_UV(uv_loop_init(&loop));
    BENCH_UV(uv_ip4_addr("127.0.0.1", 0, &addr));
    BENCH_UV(uv_tcp_init(&loop, &server));
    BENCH_UV(uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0));
    pin_buffers(&server);
    BENCH_UV(uv_listen((uv_stream_t*)&server, 128, on_connection));
    BENCH_UV(uv_tcp_getsockname(&server, (struct sockaddr*)&bound, &len));
    BENCH_UV(uv_tcp_init(&loop, &client));
    BENCH_UV(uv_tcp_connect(&connect_req, &client, (const struct sockaddr*)&bound, on_connect));
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_CHECK(received == (long long)mib * 1024 * 1024, "every byte arrived");
    BENCH_UV(uv_loop_close(&loop));
    bench_ok("throughput", mib);
    return 0;
}
