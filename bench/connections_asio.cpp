// connections, standalone Asio callbacks: N connect/accept/close cycles over 127.0.0.1 in one
// io_context. The next cycle starts once both the connect and the accept completed (Asio closes
// synchronously).
#define ASIO_STANDALONE
#include <asio.hpp>

#include <optional>

#include "bench.h"

using asio::ip::tcp;

namespace {

struct bench_state {
    asio::io_context io{1};
    tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
    tcp::endpoint ep = acceptor.local_endpoint();
    std::optional<tcp::socket> client;
    long total = 0;
    long cycles = 0;
    int done_this_cycle = 0;

    void done_one() {
        if (++done_this_cycle < 2) return;
        done_this_cycle = 0;
        if (++cycles < total)
            start_cycle();
        else
            acceptor.close();
    }

    void start_cycle() {
        acceptor.async_accept([this](const std::error_code& ec, tcp::socket conn) {
            BENCH_CHECK(!ec, "accept");
            conn.close();
            done_one();
        });
        client.emplace(io);
        client->async_connect(ep, [this](const std::error_code& ec) {
            BENCH_CHECK(!ec, "connect");
            client->close();
            done_one();
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    bench_state b;
    b.total = bench_count(argc, argv, "connections");
    b.start_cycle();
    b.io.run();
    BENCH_CHECK(b.cycles == b.total, "N cycles");
    bench_ok("connections", b.total);
    return 0;
}
