/* tls_throughput, raw libuv + OpenSSL 3: N MiB through TLS 1.3 (TLS_AES_128_GCM_SHA256 forced on
 * both ends) over 127.0.0.1, server and client in one loop. OpenSSL sees memory BIOs only, the way
 * uvkit's tls_stream drives it: what the transport read goes into the rbio, SSL_do_handshake /
 * SSL_read / SSL_write run over them, and what OpenSSL wrote to the wbio is read out into a buffer
 * handed to uv_write. The client SSL_writes 64 KiB chunks, each one uv_write of its ciphertext,
 * while fewer than BENCH_TLS_QUEUE bytes wait for the kernel (libuv's write_queue_size), then
 * close_notify and uv_shutdown; the server SSL_reads 16 KiB at a time (as uvkit does), counts the
 * bytes, and closes at the client's close_notify. SO_SNDBUF/SO_RCVBUF are pinned to 256 KiB.
 * Steady state allocates nothing here: write slots (a uv_write_t and a ciphertext buffer) are
 * kept on a free list and reused, so what callgrind counts per MiB is OpenSSL's own. No session
 * tickets (a TLS 1.3 server sends them after the handshake; nothing reads them). */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "bench.h"
#include "tls_bench_cert.h"

#define READ_CHUNK (16 * 1024) /* plaintext per SSL_read */

struct peer {
    uv_tcp_t tcp;
    SSL* ssl;
    BIO* rbio; /* what the transport read, for OpenSSL */
    BIO* wbio; /* what OpenSSL wrote, for the transport */
    int established;
};

/* One chunk's ciphertext while libuv writes it. */
struct slot {
    uv_write_t req;
    struct slot* next;
    char* buf;
    size_t cap;
};

/* Handshake and close_notify bytes: one malloc per write, not steady state. */
struct once_write {
    uv_write_t req;
    char data[];
};

static uv_loop_t loop;
static uv_tcp_t server;
static struct peer srv, cli;
static uv_connect_t connect_req;
static uv_shutdown_t shutdown_req;
static SSL_CTX* server_ctx;
static SSL_CTX* client_ctx;
static char read_buf[64 * 1024];
static char plain[READ_CHUNK];
static char chunk[BENCH_CHUNK];
static struct slot* free_slots;
static long long total_chunks;
static long long issued;
static long long completed;
static long long received;

static void ssl_check(int ok, const char* what) {
    if (!ok) {
        fprintf(stderr, "OpenSSL: %s failed\n", what);
        ERR_print_errors_fp(stderr);
        exit(1);
    }
}

static SSL_CTX* new_ctx(int server_side) {
    SSL_CTX* c = SSL_CTX_new(TLS_method());
    ssl_check(c != NULL, "SSL_CTX_new");
    ssl_check(SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION), "set_min_proto_version");
    ssl_check(SSL_CTX_set_ciphersuites(c, BENCH_TLS_SUITE), "set_ciphersuites");
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION);
    if (server_side) {
        ssl_check(tls_bench_use_cert(c), "the certificate");
        ssl_check(SSL_CTX_set_num_tickets(c, 0), "set_num_tickets");
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    }
    return c;
}

static void pin_buffers(uv_tcp_t* t) {
    int size = BENCH_SOCKBUF;
    BENCH_UV(uv_send_buffer_size((uv_handle_t*)t, &size));
    size = BENCH_SOCKBUF;
    BENCH_UV(uv_recv_buffer_size((uv_handle_t*)t, &size));
}

static void peer_init(struct peer* p, SSL_CTX* ctx, int server_side) {
    p->ssl = SSL_new(ctx);
    p->rbio = BIO_new(BIO_s_mem());
    p->wbio = BIO_new(BIO_s_mem());
    ssl_check(p->ssl && p->rbio && p->wbio, "SSL_new / BIO_new");
    SSL_set_bio(p->ssl, p->rbio, p->wbio);
    if (server_side)
        SSL_set_accept_state(p->ssl);
    else
        SSL_set_connect_state(p->ssl);
}

static void on_once_written(uv_write_t* req, int status) {
    BENCH_UV(status);
    free(req);
}

/* Sends what OpenSSL left in the wbio (handshake records, close_notify), if anything. */
static void flush(struct peer* p) {
    size_t n = BIO_ctrl_pending(p->wbio);
    if (n == 0) return;
    struct once_write* w = malloc(sizeof *w + n);
    BENCH_CHECK(w != NULL, "malloc");
    BENCH_CHECK(BIO_read(p->wbio, w->data, (int)n) == (int)n, "BIO_read");
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    BENCH_UV(uv_write(&w->req, (uv_stream_t*)&p->tcp, &b, 1, on_once_written));
}

/* Runs the handshake on; 1 once it is done. */
static int handshake(struct peer* p) {
    int r = SSL_do_handshake(p->ssl);
    flush(p);
    if (r == 1) {
        p->established = 1;
        BENCH_CHECK(strcmp(SSL_get_cipher_name(p->ssl), BENCH_TLS_SUITE) == 0, SSL_get_cipher_name(p->ssl));
        return 1;
    }
    ssl_check(SSL_get_error(p->ssl, r) == SSL_ERROR_WANT_READ, "SSL_do_handshake");
    return 0;
}

/* Puts what the transport read into the rbio. */
static void feed(struct peer* p, ssize_t nread, const uv_buf_t* buf) {
    BENCH_CHECK(nread >= 0, uv_strerror((int)nread));
    BENCH_CHECK(BIO_write(p->rbio, buf->base, (int)nread) == (int)nread, "BIO_write");
}

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_server_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    (void)s;
    if (nread == 0) return;
    feed(&srv, nread, buf);
    if (!srv.established && !handshake(&srv)) return;
    for (;;) {
        int n = SSL_read(srv.ssl, plain, READ_CHUNK);
        if (n > 0) {
            received += n;
            continue;
        }
        int e = SSL_get_error(srv.ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            flush(&srv); /* what reading produced (a key update's answer) */
            return;
        }
        ssl_check(e == SSL_ERROR_ZERO_RETURN, "SSL_read");
        /* The client's close_notify: done. */
        uv_close((uv_handle_t*)&srv.tcp, NULL);
        uv_close((uv_handle_t*)&server, NULL);
        return;
    }
}

static void on_shutdown(uv_shutdown_t* req, int status) {
    BENCH_UV(status);
    uv_close((uv_handle_t*)req->handle, NULL);
}

static void fill(void);

static void on_write(uv_write_t* req, int status) {
    BENCH_UV(status);
    struct slot* sl = (struct slot*)req;
    sl->next = free_slots;
    free_slots = sl;
    ++completed;
    if (issued < total_chunks) {
        fill();
    } else if (completed == total_chunks) {
        SSL_shutdown(cli.ssl); /* close_notify into the wbio (0: the peer's not seen yet) */
        flush(&cli);
        BENCH_UV(uv_shutdown(&shutdown_req, (uv_stream_t*)&cli.tcp, on_shutdown));
    }
}

/* Encrypts one chunk and hands its ciphertext to libuv. */
static void write_chunk(void) {
    struct slot* sl = free_slots;
    if (sl)
        free_slots = sl->next;
    else
        BENCH_CHECK((sl = calloc(1, sizeof *sl)) != NULL, "calloc");
    ssl_check(SSL_write(cli.ssl, chunk, (int)sizeof chunk) == (int)sizeof chunk, "SSL_write");
    size_t n = BIO_ctrl_pending(cli.wbio);
    if (n > sl->cap) {
        char* b = realloc(sl->buf, n);
        BENCH_CHECK(b != NULL, "realloc");
        sl->buf = b;
        sl->cap = n;
    }
    BENCH_CHECK(BIO_read(cli.wbio, sl->buf, (int)n) == (int)n, "BIO_read");
    uv_buf_t b = uv_buf_init(sl->buf, (unsigned)n);
    ++issued;
    BENCH_UV(uv_write(&sl->req, (uv_stream_t*)&cli.tcp, &b, 1, on_write));
}

static void fill(void) {
    while (issued < total_chunks &&
           uv_stream_get_write_queue_size((uv_stream_t*)&cli.tcp) < BENCH_TLS_QUEUE)
        write_chunk();
}

static void on_client_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    if (nread == 0 || cli.established) return;
    feed(&cli, nread, buf);
    if (!handshake(&cli)) return;
    BENCH_UV(uv_read_stop(s)); /* nothing more comes: the server sends no tickets */
    fill();
}

static void on_connection(uv_stream_t* s, int status) {
    BENCH_UV(status);
    BENCH_UV(uv_tcp_init(&loop, &srv.tcp));
    BENCH_UV(uv_accept(s, (uv_stream_t*)&srv.tcp));
    peer_init(&srv, server_ctx, 1);
    BENCH_UV(uv_read_start((uv_stream_t*)&srv.tcp, on_alloc, on_server_read));
}

static void on_connect(uv_connect_t* req, int status) {
    (void)req;
    BENCH_UV(status);
    pin_buffers(&cli.tcp);
    peer_init(&cli, client_ctx, 0);
    BENCH_UV(uv_read_start((uv_stream_t*)&cli.tcp, on_alloc, on_client_read));
    handshake(&cli); /* the ClientHello */
}

int main(int argc, char** argv) {
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    long mib = bench_count(argc, argv, "tls_throughput");
    total_chunks = (long long)mib * (1024 * 1024 / BENCH_CHUNK);
    memset(chunk, 'x', sizeof chunk);
    server_ctx = new_ctx(1);
    client_ctx = new_ctx(0);
    BENCH_UV(uv_loop_init(&loop));
    BENCH_UV(uv_ip4_addr("127.0.0.1", 0, &addr));
    BENCH_UV(uv_tcp_init(&loop, &server));
    BENCH_UV(uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0));
    pin_buffers(&server);
    BENCH_UV(uv_listen((uv_stream_t*)&server, 128, on_connection));
    BENCH_UV(uv_tcp_getsockname(&server, (struct sockaddr*)&bound, &len));
    BENCH_UV(uv_tcp_init(&loop, &cli.tcp));
    BENCH_UV(uv_tcp_connect(&connect_req, &cli.tcp, (const struct sockaddr*)&bound, on_connect));
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_CHECK(received == (long long)mib * 1024 * 1024, "every byte arrived");
    BENCH_UV(uv_loop_close(&loop));
    SSL_free(srv.ssl); /* frees its BIOs */
    SSL_free(cli.ssl);
    while (free_slots) {
        struct slot* sl = free_slots;
        free_slots = sl->next;
        free(sl->buf);
        free(sl);
    }
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    bench_ok("tls_throughput", mib);
    return 0;
}
