// post, standalone Asio: another thread posts N handlers with asio::post that run on the
// io_context's thread; a work guard keeps run() going until the last one ran.
#define ASIO_STANDALONE
#include <asio.hpp>

#include <optional>
#include <thread>

#include "bench.h"

int main(int argc, char** argv) {
    const long total = bench_count(argc, argv, "post");
    long ran = 0;
    asio::io_context io{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard{io.get_executor()};
    std::thread producer([&] {
        for (long i = 0; i < total; ++i)
            asio::post(io, [&] {
                if (++ran == total) guard.reset();
            });
    });
    io.run();
    producer.join();
    BENCH_CHECK(ran == total, "every message ran once");
    bench_ok("post", total);
    return 0;
}
