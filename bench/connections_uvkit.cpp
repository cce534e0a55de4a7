// connections, uvkit callbacks: N connect/accept/close cycles over 127.0.0.1 in one loop. The
// next cycle starts once both the client and the accepted socket are closed.
#include <uvkit/tcp.hpp>

#include "bench.h"

namespace {

struct bench_state {
    uvkit::loop loop;
    uvkit::tcp server{loop};
    uvkit::tcp client;
    uvkit::endpoint ep;
    long total = 0;
    long cycles = 0;
    int closed_this_cycle = 0;

    void closed_one() {
        if (++closed_this_cycle < 2) return;
        closed_this_cycle = 0;
        if (++cycles < total)
            start_cycle();
        else
            server.close();
    }

    void start_cycle() {
        client = uvkit::tcp{loop};
        client.connect(ep, [this](std::error_code ec) {
            BENCH_CHECK(!ec, "connect");
            client.close([this] { closed_one(); });
        });
    }

    void start() {
        server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
        server.listen(128, [this](std::error_code ec) {
            BENCH_CHECK(!ec, "listen");
            uvkit::tcp conn{loop};
            server.accept(conn);
            conn.close([this] { closed_one(); });
        });
        ep = server.local_endpoint();
        start_cycle();
    }
};

}  // namespace

int main(int argc, char** argv) {
    bench_state b;
    b.total = bench_count(argc, argv, "connections");
    b.start();
    b.loop.run();
    BENCH_CHECK(b.cycles == b.total, "N cycles");
    bench_ok("connections", b.total);
    return 0;
}
