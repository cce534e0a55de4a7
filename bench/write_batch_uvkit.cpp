// write_batch, uvkit callbacks: N small (16-byte) borrowed writes queued at once, then shutdown;
// a sink in the same loop counts bytes until EOF.
#include <uvkit/tcp.hpp>

#include <string_view>

#include "bench.h"

int main(int argc, char** argv) {
    const long total = bench_count(argc, argv, "write_batch");
    long completed = 0;
    long long received = 0;
    uvkit::loop loop;
    uvkit::tcp server{loop};
    uvkit::tcp conn;
    uvkit::tcp client{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(128, [&](std::error_code ec) {
        BENCH_CHECK(!ec, "listen");
        conn = uvkit::tcp{loop};
        server.accept(conn);
        conn.read_start([&](std::error_code ec, std::string_view data) {
            if (ec) {
                BENCH_CHECK(ec == uvkit::errc::eof, "read");
                conn.close();
                server.close();
                return;
            }
            received += static_cast<long long>(data.size());
        });
    });
    client.connect(server.local_endpoint(), [&](std::error_code ec) {
        BENCH_CHECK(!ec, "connect");
        const std::string_view msg{BENCH_BATCH_MSG, BENCH_BATCH_LEN};
        for (long i = 0; i < total; ++i)
            client.write(msg, [&completed](std::error_code ec) {
                BENCH_CHECK(!ec, "write");
                ++completed;
            });
        client.shutdown([&](std::error_code ec) {
            BENCH_CHECK(!ec, "shutdown");
            client.close();
        });
    });
    loop.run();
    BENCH_CHECK(completed == total, "every write completed");
    BENCH_CHECK(received == static_cast<long long>(total) * BENCH_BATCH_LEN, "every byte arrived");
    bench_ok("write_batch", total);
    return 0;
}
