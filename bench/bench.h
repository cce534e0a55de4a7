/* bench.h: what every benchmark program shares (C11 and C++20).
 *
 * Every program takes `NAME N [args]` on its command line (argv[0] is the
 * program, argv[1] the count) and prints exactly one result line on success,
 * "<workload> <N> ok", that ./dev bench and the smoke test check. Errors go to
 * stderr with a non-zero exit status. */
#ifndef UVKIT_BENCH_H
#define UVKIT_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The count N from argv[1], or exits with a usage message. */
static inline long bench_count(int argc, char** argv, const char* workload) {
    char* end = NULL;
    long n = argc > 1 ? strtol(argv[1], &end, 10) : 0;
    if (argc < 2 || *end != '\0' || n <= 0) {
        fprintf(stderr, "usage: %s N  (%s: N > 0)\n", argc > 0 ? argv[0] : "bench", workload);
        exit(2);
    }
    return n;
}

/* Exits with a message if `cond` is false. */
#define BENCH_CHECK(cond, what)                                                                   \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond, (what)); \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

/* Exits with libuv's message if `rc` is a libuv error. */
#define BENCH_UV(rc)                                                                             \
    do {                                                                                         \
        int bench_rc_ = (rc);                                                                    \
        if (bench_rc_ < 0) {                                                                     \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #rc, uv_strerror(bench_rc_)); \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

/* The result line. */
static inline void bench_ok(const char* workload, long n) {
    printf("%s %ld ok\n", workload, n);
    fflush(stdout);
}

/* Workload parameters shared by all variants. */
#define BENCH_PING_MSG "PING!" /* pingpong: 5 bytes echoed */
#define BENCH_PING_LEN 5
#define BENCH_CHUNK (64 * 1024)            /* throughput: bytes per write */
#define BENCH_IN_FLIGHT 16                 /* throughput: writes in flight */
#define BENCH_SOCKBUF (256 * 1024)         /* throughput: SO_SNDBUF / SO_RCVBUF */
#define BENCH_BATCH_MSG "0123456789abcdef" /* write_batch: one small write */
#define BENCH_BATCH_LEN 16
#define BENCH_TIMER_FAR 1000000 /* timers: the first start, stopped before it fires (ms) */

#endif
