// throughput, standalone Asio callbacks: N MiB written in 64 KiB chunks to a sink in the same
// io_context that counts bytes until EOF; SO_SNDBUF/SO_RCVBUF pinned to 256 KiB. Asio allows one
// async_write in flight per socket (it has no write queue), so the writer keeps one chunk in flight
// instead of 16: the same bytes in the same chunk sizes, Asio's way.
#define ASIO_STANDALONE
#include <asio.hpp>

#include <vector>

#include "bench.h"

using asio::ip::tcp;

namespace {

struct bench_state {
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    tcp::socket conn{io};
    tcp::socket client{io};
    std::vector<char> read_buf = std::vector<char>(64 * 1024);
    std::vector<char> chunk = std::vector<char>(BENCH_CHUNK, 'x');
    long long total_chunks = 0;
    long long written = 0;
    long long received = 0;

    template <class S>
    static void pin_buffers(S& s) {
        s.set_option(asio::socket_base::send_buffer_size(BENCH_SOCKBUF));
        s.set_option(asio::socket_base::receive_buffer_size(BENCH_SOCKBUF));
    }

    void sink_read() {
        conn.async_read_some(asio::buffer(read_buf), [this](const std::error_code& ec, std::size_t n) {
            if (ec) {
                BENCH_CHECK(ec == asio::error::eof, "read");
                conn.close();
                acceptor.close();
                return;
            }
            received += static_cast<long long>(n);
            sink_read();
        });
    }

    void write_chunk() {
        asio::async_write(client, asio::buffer(chunk), [this](const std::error_code& ec, std::size_t) {
            BENCH_CHECK(!ec, "write");
            if (++written < total_chunks) {
                write_chunk();
            } else {
                client.shutdown(tcp::socket::shutdown_send);
                client.close();
            }
        });
    }

    void start() {
        tcp::endpoint ep(asio::ip::address_v4::loopback(), 0);
        acceptor.open(ep.protocol());
        acceptor.bind(ep);
        pin_buffers(acceptor);
        acceptor.listen(128);
        acceptor.async_accept(conn, [this](const std::error_code& ec) {
            BENCH_CHECK(!ec, "accept");
            sink_read();
        });
        client.async_connect(acceptor.local_endpoint(), [this](const std::error_code& ec) {
            BENCH_CHECK(!ec, "connect");
            pin_buffers(client);
            write_chunk();
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    const long mib = bench_count(argc, argv, "throughput");
    bench_state b;
    b.total_chunks = static_cast<long long>(mib) * (1024 * 1024 / BENCH_CHUNK);
    b.start();
    b.io.run();
    BENCH_CHECK(b.received == static_cast<long long>(mib) * 1024 * 1024, "every byte arrived");
    bench_ok("throughput", mib);
    return 0;
}
