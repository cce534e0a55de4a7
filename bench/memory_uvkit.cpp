// memory, uvkit: heap bytes per idle TCP connection, and the size of each state block next to
// the libuv handle it holds. Opens N connections over 127.0.0.1 in one loop (a uvkit::tcp per
// client and per accepted socket, both reading, as a server would), then compares glibc's
// mallinfo2() with the figure before. Prints one "sizeof <block> <bytes> <uv_type> <bytes>" line
// per state block, then "memory N ok bytes_per_connection=B bytes_per_handle=H"; a connection is
// both of its ends.
#include <malloc.h>

#include <uvkit/idle.hpp>
#include <uvkit/tcp.hpp>
#include <uvkit/timer.hpp>

#include <cstdio>
#include <vector>

#include "bench.h"
#include "write_req.hpp"

namespace {

void print_size(const char* block, std::size_t block_size, const char* uv_type, std::size_t uv_size) {
    std::printf("sizeof %s %zu %s %zu\n", block, block_size, uv_type, uv_size);
}

}  // namespace

int main(int argc, char** argv) {
    const long total = bench_count(argc, argv, "memory");
    print_size("detail::timer_state", sizeof(uvkit::detail::timer_state), "uv_timer_t", sizeof(uv_timer_t));
    print_size("detail::idle_state", sizeof(uvkit::detail::idle_state), "uv_idle_t", sizeof(uv_idle_t));
    print_size("detail::tcp_state", sizeof(uvkit::detail::tcp_state), "uv_tcp_t", sizeof(uv_tcp_t));
    print_size("detail::write_req", sizeof(uvkit::detail::write_req), "uv_write_t", sizeof(uv_write_t));
    print_size("detail::unique_function", sizeof(uvkit::detail::unique_function<void()>), "-", 0);
    print_size("uvkit::loop", sizeof(uvkit::loop), "uv_loop_t", sizeof(uv_loop_t));

    long connected = 0;
    long accepted = 0;
    long target = 0;  // connections to open before the loop stops
    uvkit::loop loop;
    uvkit::tcp server{loop};
    std::vector<uvkit::tcp> clients;
    std::vector<uvkit::tcp> conns;
    clients.reserve(static_cast<std::size_t>(total));
    conns.reserve(static_cast<std::size_t>(total));
    auto check_done = [&] {
        if (connected == target && accepted == target) loop.stop();
    };
    auto on_read = [](std::error_code, std::string_view) {
        BENCH_CHECK(false, "idle connections read nothing");
    };
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(1024, [&](std::error_code ec) {
        BENCH_CHECK(!ec, "listen");
        uvkit::tcp& conn = conns.emplace_back(loop);
        server.accept(conn);
        conn.read_start(on_read);
        ++accepted;
        check_done();
    });
    const uvkit::endpoint ep = server.local_endpoint();
    loop.run(uvkit::run_mode::nowait);

    std::size_t before = 0;
    for (long i = 0; i < total; ++i) {
        if (i == 0 || i == total / 2) {
            // Let the connections opened so far complete, then measure from here.
            target = i;
            if (i > 0) loop.run();
            before = mallinfo2().uordblks;
        }
        uvkit::tcp& c = clients.emplace_back(loop);
        c.connect(ep, [&, i](std::error_code ec) {
            BENCH_CHECK(!ec, "connect");
            clients[static_cast<std::size_t>(i)].read_start(on_read);
            ++connected;
            check_done();
        });
    }
    target = total;
    loop.run();
    BENCH_CHECK(connected == total && accepted == total, "every connection is open");
    const std::size_t after = mallinfo2().uordblks;

    clients.clear();
    conns.clear();
    server.close();
    loop.run();
    const double per_conn = static_cast<double>(after - before) / static_cast<double>(total - total / 2);
    std::printf("memory %ld ok bytes_per_connection=%.0f bytes_per_handle=%.0f\n", total, per_conn,
                per_conn / 2);
    return 0;
}
