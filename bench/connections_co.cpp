// connections, uvkit coroutines: N connect/accept/close cycles over 127.0.0.1 in one loop: a
// client task connects and closes, a server task accepts and closes, one cycle after the other.
#include <uvkit/co.hpp>
#include <uvkit/tcp.hpp>

#include "bench.h"

namespace {

uvkit::task<void> acceptor(uvkit::tcp& server, long total, long& accepted) {
    for (long i = 0; i < total; ++i) {
        uvkit::tcp conn = co_await server.async_accept();
        ++accepted;
    }  // each accepted connection is closed as it goes out of scope
    server.close();
}

uvkit::task<long> connector(uvkit::loop& loop, uvkit::endpoint ep, long total) {
    long cycles = 0;
    for (long i = 0; i < total; ++i) {
        uvkit::tcp c = co_await uvkit::connect(loop, ep);
        ++cycles;
    }
    co_return cycles;
}

}  // namespace

int main(int argc, char** argv) {
    const long total = bench_count(argc, argv, "connections");
    uvkit::loop loop;
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(128);
    long accepted = 0;
    uvkit::spawn(loop, acceptor(server, total, accepted)).detach();
    long cycles = uvkit::run(loop, connector(loop, server.local_endpoint(), total));
    loop.run();
    BENCH_CHECK(cycles == total && accepted == total, "N cycles");
    bench_ok("connections", total);
    return 0;
}
