/* fs_read, raw libuv: reads an N MiB file in 64 KiB chunks, one uv_fs_read at a time, each
 * started from the previous one's callback. The file is sparse (made by one ftruncate), so
 * making it costs the same at every N and the per-MiB slope is the reads alone. */
#include <uv.h>

#include "bench.h"

static uv_loop_t loop;
static uv_fs_t req;
static uv_file fd;
static char buf[BENCH_CHUNK];
static long long offset, total;

static void on_read(uv_fs_t* r);

static void read_next(void) {
    uv_buf_t b = uv_buf_init(buf, sizeof buf);
    BENCH_UV(uv_fs_read(&loop, &req, fd, &b, 1, offset, on_read));
}

static void on_read(uv_fs_t* r) {
    BENCH_UV((int)r->result);
    BENCH_CHECK(r->result > 0, "unexpected end of file");
    offset += r->result;
    uv_fs_req_cleanup(r);
    if (offset < total) read_next();
}

int main(int argc, char** argv) {
    long n = bench_count(argc, argv, "fs_read");
    total = (long long)n * 1024 * 1024;
    char path[4096];
    size_t len = sizeof path - 64;
    BENCH_UV(uv_os_tmpdir(path, &len));
    snprintf(path + len, 64, "/uvkit-bench-fs-read-uv-%d", (int)uv_os_getpid());
    BENCH_UV(uv_loop_init(&loop));
    uv_fs_t s;
    fd = uv_fs_open(NULL, &s, path, UV_FS_O_RDWR | UV_FS_O_CREAT | UV_FS_O_TRUNC, 0600, NULL);
    BENCH_UV(fd);
    uv_fs_req_cleanup(&s);
    BENCH_UV(uv_fs_ftruncate(NULL, &s, fd, total, NULL));
    uv_fs_req_cleanup(&s);
    read_next();
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_CHECK(offset == total, "short read");
    uv_fs_close(NULL, &s, fd, NULL);
    uv_fs_req_cleanup(&s);
    uv_fs_unlink(NULL, &s, path, NULL);
    uv_fs_req_cleanup(&s);
    BENCH_UV(uv_loop_close(&loop));
    bench_ok("fs_read", n);
    return 0;
}
