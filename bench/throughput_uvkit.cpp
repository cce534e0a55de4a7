// throughput, uvkit callbacks: N MiB written in 64 KiB chunks (borrowed bytes), 16 writes in
// flight, to a sink in the same loop that counts bytes until EOF. SO_SNDBUF/SO_RCVBUF are pinned
// to 256 KiB (the accepted socket inherits the listener's).
#include <uvkit/tcp.hpp>

#include <string_view>
#include <vector>

#include "uvkit_bench.hpp"

namespace {

struct bench_state {
    uvkit::loop loop;
    uvkit::tcp server{loop};
    uvkit::tcp conn;
    uvkit::tcp client{loop};
    std::vector<char> chunk = std::vector<char>(BENCH_CHUNK, 'x');
    long long total_chunks = 0;
    long long issued = 0;
    long long completed = 0;
    long long received = 0;

    void write_chunk() {
        ++issued;
        client.write(std::string_view{chunk.data(), chunk.size()}, [this](std::error_code ec) {
            BENCH_CHECK(!ec, "write");
            ++completed;
            if (issued < total_chunks)
                write_chunk();
            else if (completed == total_chunks)
                client.shutdown([this](std::error_code ec) {
                    BENCH_CHECK(!ec, "shutdown");
                    client.close();
                });
        });
    }

    void start() {
        server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
        pin_buffers(server);
        server.listen(128, [this](std::error_code ec) {
            BENCH_CHECK(!ec, "listen");
            conn = uvkit::tcp{loop};
            server.accept(conn);
            conn.read_start([this](std::error_code ec, std::string_view data) {
                if (ec) {
                    BENCH_CHECK(ec == uvkit::errc::eof, "read");
                    conn.close();
                    server.close();
                    return;
                }
                received += static_cast<long long>(data.size());
            });
        });
        client.connect(server.local_endpoint(), [this](std::error_code ec) {
            BENCH_CHECK(!ec, "connect");
            pin_buffers(client);
            for (int i = 0; i < BENCH_IN_FLIGHT && issued < total_chunks; ++i) write_chunk();
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    const long mib = bench_count(argc, argv, "throughput");
    bench_state b;
    b.total_chunks = static_cast<long long>(mib) * (1024 * 1024 / BENCH_CHUNK);
    b.start();
    b.loop.run();
    BENCH_CHECK(b.received == static_cast<long long>(mib) * 1024 * 1024, "every byte arrived");
    bench_ok("throughput", mib);
    return 0;
}
