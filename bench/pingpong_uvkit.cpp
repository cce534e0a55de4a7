// pingpong, uvkit callbacks: client and server in one loop over 127.0.0.1, TCP_NODELAY, a 5-byte
// message echoed N times. Reads use the loop's shared buffer; writes are borrowed bytes.
#include <uvkit/tcp.hpp>

#include <array>
#include <cstring>
#include <string_view>

#include "bench.h"

int main(int argc, char** argv) {
    const long total = bench_count(argc, argv, "pingpong");
    long pongs = 0;
    long received = 0;
    uvkit::loop loop;
    uvkit::tcp server{loop};
    uvkit::tcp conn;
    uvkit::tcp client{loop};
    std::array<char, 64> echo_buf{};  // one message is in flight at a time
    const std::string_view ping{BENCH_PING_MSG, BENCH_PING_LEN};
    auto written = [](std::error_code ec) { BENCH_CHECK(!ec, "write"); };

    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(128, [&](std::error_code ec) {
        BENCH_CHECK(!ec, "listen");
        conn = uvkit::tcp{loop};
        server.accept(conn);
        conn.set_nodelay(true);
        conn.read_start([&](std::error_code ec, std::string_view data) {
            if (ec) {
                BENCH_CHECK(ec == uvkit::errc::eof, "read");
                conn.close();
                server.close();
                return;
            }
            BENCH_CHECK(data.size() <= echo_buf.size(), "small message");
            std::memcpy(echo_buf.data(), data.data(), data.size());
            conn.write(std::string_view{echo_buf.data(), data.size()}, written);
        });
    });
    client.connect(server.local_endpoint(), [&](std::error_code ec) {
        BENCH_CHECK(!ec, "connect");
        client.set_nodelay(true);
        client.read_start([&](std::error_code ec, std::string_view data) {
            BENCH_CHECK(!ec, "read");
            received += static_cast<long>(data.size());
            while (received >= BENCH_PING_LEN) {
                received -= BENCH_PING_LEN;
                if (++pongs < total)
                    client.write(ping, written);
                else
                    client.close();
            }
        });
        client.write(ping, written);
    });
    loop.run();
    BENCH_CHECK(pongs == total, "N pongs");
    bench_ok("pingpong", total);
    return 0;
}
