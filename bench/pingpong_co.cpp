// pingpong, uvkit coroutines: an echo task and a client task in one loop over 127.0.0.1,
// TCP_NODELAY, a 5-byte message echoed N times. Reads go in place into the tasks' buffers.
#include <uvkit/co.hpp>
#include <uvkit/tcp.hpp>

#include <array>
#include <span>
#include <string_view>

#include "bench.h"

namespace {

uvkit::task<void> echo(uvkit::tcp& server) {
    uvkit::tcp conn = co_await server.async_accept();
    conn.set_nodelay(true);
    std::array<char, 64 * 1024> buf;
    for (;;) {
        std::size_t n = co_await conn.async_read(std::span<char>{buf});
        if (n == 0) break;
        co_await conn.async_write(std::string_view{buf.data(), n});
    }
    server.close();
}

uvkit::task<long> client(uvkit::loop& loop, uvkit::endpoint ep, long total) {
    uvkit::tcp c = co_await uvkit::connect(loop, ep);
    c.set_nodelay(true);
    std::array<char, BENCH_PING_LEN> buf;
    long pongs = 0;
    for (long i = 0; i < total; ++i) {
        co_await c.async_write(std::string_view{BENCH_PING_MSG, BENCH_PING_LEN});
        co_await c.async_read_exactly(std::span<char>{buf});
        ++pongs;
    }
    co_return pongs;
}

}  // namespace

int main(int argc, char** argv) {
    const long total = bench_count(argc, argv, "pingpong");
    uvkit::loop loop;
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(128);
    uvkit::spawn(loop, echo(server)).detach();
    long pongs = uvkit::run(loop, client(loop, server.local_endpoint(), total));
    loop.run();  // the echo task sees the end of stream and finishes
    BENCH_CHECK(pongs == total, "N pongs");
    bench_ok("pingpong", total);
    return 0;
}
