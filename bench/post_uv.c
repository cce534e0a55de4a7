/* post, raw libuv: another thread posts N messages (a function and its argument) that run on the
 * loop: a uv_async_t plus a mutex-protected queue, the usual C way. The queue is an array that
 * the loop swaps with a second one to drain outside the lock; both keep their capacity. */
#include <uv.h>

#include "bench.h"

typedef struct {
    void (*fn)(void*);
    void* arg;
} message;

typedef struct {
    message* items;
    size_t len;
    size_t cap;
} queue;

static uv_loop_t loop;
static uv_async_t async;
static uv_mutex_t mutex;
static queue posted, draining;
static long total;
static long ran;

static void post(void (*fn)(void*), void* arg) {
    uv_mutex_lock(&mutex);
    if (posted.len == posted.cap) {
        posted.cap = posted.cap ? 2 * posted.cap : 64;
        posted.items = realloc(posted.items, posted.cap * sizeof *posted.items);
        BENCH_CHECK(posted.items != NULL, "realloc");
    }
    posted.items[posted.len].fn = fn;
    posted.items[posted.len].arg = arg;
    ++posted.len;
    uv_mutex_unlock(&mutex);
    BENCH_UV(uv_async_send(&async));
}

static void on_async(uv_async_t* a) {
    (void)a;
    uv_mutex_lock(&mutex);
    queue q = posted;
    posted = draining;
    draining = q;
    uv_mutex_unlock(&mutex);
    for (size_t i = 0; i < draining.len; ++i) draining.items[i].fn(draining.items[i].arg);
    draining.len = 0;
}

static void count(void* arg) {
    (void)arg;
    if (++ran == total) uv_close((uv_handle_t*)&async, NULL);
}

static void producer(void* arg) {
    (void)arg;
    for (long i = 0; i < total; ++i) post(count, NULL);
}

int main(int argc, char** argv) {
    uv_thread_t thread;
    total = bench_count(argc, argv, "post");
    BENCH_UV(uv_loop_init(&loop));
    BENCH_UV(uv_mutex_init(&mutex));
    BENCH_UV(uv_async_init(&loop, &async, on_async));
    BENCH_UV(uv_thread_create(&thread, producer, NULL));
    BENCH_UV(uv_run(&loop, UV_RUN_DEFAULT));
    BENCH_UV(uv_thread_join(&thread));
    BENCH_CHECK(ran == total, "every message ran once");
    BENCH_UV(uv_loop_close(&loop));
    uv_mutex_destroy(&mutex);
    free(posted.items);
    free(draining.items);
    bench_ok("post", total);
    return 0;
}
