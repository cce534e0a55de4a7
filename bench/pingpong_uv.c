/* pingpong, raw libuv: client and server in one loop over 127.0.0.1, TCP_NODELAY, a 5-byte
 * message echoed N times. Reads go to one static buffer; each write mallocs its uv_write_t
 * (the usual C way, as in libuv's own ping-pong benchmark). */
#include <uv.h>

#include "bench.h"

static uv_loop_t loop;
static uv_tcp_t server, conn, client;
static uv_connect_t connect_req;
static char read_buf[64 * 1024];
static char echo_buf[64];
static long total;
static long pongs;
static long received;

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_write(uv_write_t* req, int status) {
    BENCH_UV(status);
    free(req);
}

static void write_bytes(uv_tcp_t* t, const char* p, size_t n) {
    uv_write_t* req = malloc(sizeof *req);
    BENCH_CHECK(req != NULL, "malloc");
    uv_buf_t b = uv_buf_init((char*)p, (unsigned)n);
    BENCH_UV(uv_write(req, (uv_stream_t*)t, &b, 1, on_write));
}

static void on_server_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    if (nread < 0) {
        BENCH_CHECK(nread == UV_EOF, uv_strerror((int)nread));
        uv_close((uv_handle_t*)s, NULL);
        uv_close((uv_handle_t*)&server, NULL);
        return;
    }
    /* One message is in flight at a time, so one echo buffer suffices. */
    BENCH_CHECK((size_t)nread <= sizeof echo_buf, "small message");
    memcpy(echo_buf, buf->base, (size_t)nread);
    write_bytes((uv_tcp_t*)s, echo_buf, (size_t)nread);
}

static void on_connection(uv_stream_t* s, int status) {
    BENCH_UV(status);
    BENCH_UV(uv_tcp_init(&loop, &conn));
    BENCH_UV(uv_accept(s, (uv_stream_t*)&conn));
    BENCH_UV(uv_tcp_nodelay(&conn, 1));
    BENCH_UV(uv_read_start((uv_stream_t*)&conn, on_alloc, on_server_read));
}

static void on_client_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    (void)buf;
    BENCH_CHECK(nread >= 0, uv_strerror((int)nread));
    received += nread;
    while (received >= BENCH_PING_LEN) {
        received -= BENCH_PING_LEN;
        if (++pongs < total)
            write_bytes(&client, BENCH_PING_MSG, BENCH_PING_LEN);
        else
            uv_close((uv_handle_t*)s, NULL);
    }
}

static void on_connect(uv_connect_t* req, int status) {
    BENCH_UV(status);
    BENCH_UV(uv_tcp_nodelay(&client, 1));
    BENCH_UV(uv_read_start(req->handle, on_alloc, on_client_read));
    write_bytes(&client, BENCH_PING_MSG, BENCH_PING_LEN);
}

int main(int argc, char** argv) {
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    total = bench_count(argc, argv, "pingpong");
    BENCH_UV(uv_loop_init(&loop));
    BENCH_UV(uv_ip4_addr("127.0.0.1", 0, &addr));
    BENCH_UV(uv_tcp_init(&loop, &server));
    BENCH_UV(uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0));
    BENCH_UV(uv_listen((uv_stream_t*)&server, 128, on_connection));
    BENCH_UV(uv_tcp_getsockname(&server, (struct sockaddr*)&bound, &len));
    BENCH_UV(uv_tcp_init(&loop, &client));
    BENCH_UV(uv_tcp_connect(&connect_req, &client, (const struct sockaddr*)&bound, on_connect));
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_CHECK(pongs == total, "N pongs");
    BENCH_UV(uv_loop_close(&loop));
    bench_ok("pingpong", total);
    return 0;
}
