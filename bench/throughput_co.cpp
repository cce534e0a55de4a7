// throughput, uvkit coroutines: N MiB written in 64 KiB chunks by 16 writer tasks (16 writes in
// flight) on one connection, then shut down; a sink task counts bytes until EOF. SO_SNDBUF and
// SO_RCVBUF are pinned to 256 KiB (the accepted socket inherits the listener's).
#include <uvkit/co.hpp>
#include <uvkit/tcp.hpp>

#include <span>
#include <string_view>
#include <vector>

#include "uvkit_bench.hpp"

namespace {

std::vector<char> read_buf(64 * 1024);
std::vector<char> chunk(BENCH_CHUNK, 'x');

uvkit::task<void> sink(uvkit::tcp& server, long long& received) {
    uvkit::tcp conn = co_await server.async_accept();
    for (;;) {
        std::size_t n = co_await conn.async_read(std::span<char>{read_buf});
        if (n == 0) break;
        received += static_cast<long long>(n);
    }
    server.close();
}

uvkit::task<void> writer(uvkit::tcp& c, long long chunks) {
    for (long long i = 0; i < chunks; ++i)
        co_await c.async_write(std::string_view{chunk.data(), chunk.size()});
}

uvkit::task<void> source(uvkit::loop& loop, uvkit::endpoint ep, long long total_chunks) {
    uvkit::tcp c = co_await uvkit::connect(loop, ep);
    pin_buffers(c);
    uvkit::task_group writers{loop};
    for (int i = 0; i < BENCH_IN_FLIGHT; ++i)
        writers.spawn(
            writer(c, total_chunks / BENCH_IN_FLIGHT + (i < total_chunks % BENCH_IN_FLIGHT ? 1 : 0)));
    co_await writers.join();
    co_await c.async_shutdown();
}

}  // namespace

int main(int argc, char** argv) {
    const long mib = bench_count(argc, argv, "throughput");
    uvkit::loop loop;
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    pin_buffers(server);
    server.listen(128);
    long long received = 0;
    uvkit::spawn(loop, sink(server, received)).detach();
    uvkit::run(loop, source(loop, server.local_endpoint(),
                            static_cast<long long>(mib) * (1024 * 1024 / BENCH_CHUNK)));
    loop.run();  // the sink reads to the end of stream
    BENCH_CHECK(received == static_cast<long long>(mib) * 1024 * 1024, "every byte arrived");
    bench_ok("throughput", mib);
    return 0;
}
