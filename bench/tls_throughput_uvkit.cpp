// tls_throughput, uvkit callbacks: N MiB through tls_stream (TLS 1.3, TLS_AES_128_GCM_SHA256 forced
// on both ends) over 127.0.0.1, server and client in one loop. The client writes 64 KiB chunks
// (borrowed bytes) while write_queue_size() is below BENCH_TLS_QUEUE, refilling from each write's
// handler, then shutdown() (close_notify, FIN); the server's read_start() handler counts the bytes
// and closes at errc::eof (the client's close_notify). SO_SNDBUF/SO_RCVBUF are pinned to 256 KiB;
// the server sends no session tickets. The same work as tls_throughput_uv.c.
#include <uvkit/tcp.hpp>
#include <uvkit/tls.hpp>

#include <optional>
#include <string_view>
#include <vector>

#include "uvkit_bench.hpp"

namespace {

struct bench_state {
    uvkit::loop loop;
    uvkit::tls_context server_ctx = bench_tls_context(uvkit::tls_role::server);
    uvkit::tls_context client_ctx = bench_tls_context(uvkit::tls_role::client);
    uvkit::tcp server{loop};
    uvkit::tcp connecting{loop};
    std::optional<uvkit::tls_stream> conn;
    std::optional<uvkit::tls_stream> client;
    std::vector<char> chunk = std::vector<char>(BENCH_CHUNK, 'x');
    long long total_chunks = 0;
    long long issued = 0;
    long long completed = 0;
    long long received = 0;

    void write_chunk() {
        ++issued;
        client->write(std::string_view{chunk.data(), chunk.size()}, [this](std::error_code ec) {
            BENCH_CHECK(!ec, "write");
            ++completed;
            if (issued < total_chunks)
                fill();
            else if (completed == total_chunks)
                client->shutdown([this](std::error_code ec) {
                    BENCH_CHECK(!ec, "shutdown");
                    client->close();
                });
        });
    }

    void fill() {
        while (issued < total_chunks && client->write_queue_size() < BENCH_TLS_QUEUE) write_chunk();
    }

    void start() {
        server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
        pin_buffers(server);
        server.listen(128, [this](std::error_code ec) {
            BENCH_CHECK(!ec, "listen");
            uvkit::tcp t{loop};
            server.accept(t);
            conn.emplace(server_ctx, std::move(t));
            conn->handshake([](std::error_code ec) { BENCH_CHECK(!ec, "server handshake"); });
            conn->read_start([this](std::error_code ec, std::string_view data) {
                if (ec) {
                    BENCH_CHECK(ec == uvkit::errc::eof, "read");
                    conn->close();
                    server.close();
                    return;
                }
                received += static_cast<long long>(data.size());
            });
        });
        connecting.connect(server.local_endpoint(), [this](std::error_code ec) {
            BENCH_CHECK(!ec, "connect");
            pin_buffers(connecting);
            client.emplace(client_ctx, std::move(connecting));
            client->handshake([this](std::error_code ec) {
                BENCH_CHECK(!ec, "client handshake");
                BENCH_CHECK(client->cipher() == BENCH_TLS_SUITE, "the cipher suite");
                fill();
            });
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    const long mib = bench_count(argc, argv, "tls_throughput");
    bench_state b;
    b.total_chunks = static_cast<long long>(mib) * (1024 * 1024 / BENCH_CHUNK);
    b.start();
    b.loop.run();
    BENCH_CHECK(b.received == static_cast<long long>(mib) * 1024 * 1024, "every byte arrived");
    bench_ok("tls_throughput", mib);
    return 0;
}
