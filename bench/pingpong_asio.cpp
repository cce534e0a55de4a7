// pingpong, standalone Asio callbacks: client and server in one io_context over 127.0.0.1,
// TCP_NODELAY, a 5-byte message echoed N times. Asio reads on demand: the server reads, echoes,
// then reads again.
#define ASIO_STANDALONE
#include <asio.hpp>

#include <array>

#include "bench.h"

using asio::ip::tcp;

namespace {

struct bench_state {
    asio::io_context io{1};
    tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
    tcp::socket conn{io};
    tcp::socket client{io};
    std::array<char, 64 * 1024> server_buf{};
    std::array<char, BENCH_PING_LEN> client_buf{};
    long total = 0;
    long pongs = 0;

    void server_read() {
        conn.async_read_some(asio::buffer(server_buf), [this](const std::error_code& ec, std::size_t n) {
            if (ec) {
                BENCH_CHECK(ec == asio::error::eof, "server read");
                conn.close();
                acceptor.close();
                return;
            }
            asio::async_write(conn, asio::buffer(server_buf.data(), n),
                              [this](const std::error_code& ec, std::size_t) {
                                  BENCH_CHECK(!ec, "server write");
                                  server_read();
                              });
        });
    }

    void ping() {
        asio::async_write(client, asio::buffer(BENCH_PING_MSG, BENCH_PING_LEN),
                          [](const std::error_code& ec, std::size_t) { BENCH_CHECK(!ec, "client write"); });
        asio::async_read(client, asio::buffer(client_buf), [this](const std::error_code& ec, std::size_t) {
            BENCH_CHECK(!ec, "client read");
            if (++pongs < total)
                ping();
            else
                client.close();
        });
    }

    void start() {
        acceptor.async_accept(conn, [this](const std::error_code& ec) {
            BENCH_CHECK(!ec, "accept");
            conn.set_option(tcp::no_delay(true));
            server_read();
        });
        client.async_connect(acceptor.local_endpoint(), [this](const std::error_code& ec) {
            BENCH_CHECK(!ec, "connect");
            client.set_option(tcp::no_delay(true));
            ping();
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    bench_state b;
    b.total = bench_count(argc, argv, "pingpong");
    b.start();
    b.io.run();
    BENCH_CHECK(b.pongs == b.total, "N pongs");
    bench_ok("pingpong", b.total);
    return 0;
}
