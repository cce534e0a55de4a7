// tls_throughput, uvkit coroutines: N MiB through tls_stream (TLS 1.3, TLS_AES_128_GCM_SHA256
// forced on both ends) over 127.0.0.1, server and client in one loop. BENCH_TLS_WRITERS writer
// tasks co_await async_write of 64 KiB chunks (borrowed bytes) on one connection, then
// async_shutdown (close_notify, FIN); a sink task co_awaits async_read(span) and counts the bytes
// until 0 (the client's close_notify). SO_SNDBUF/SO_RCVBUF are pinned to 256 KiB; the server
// sends no session tickets. The same work as tls_throughput_uv.c.
#include <uvkit/co.hpp>
#include <uvkit/co/tls.hpp>
#include <uvkit/tcp.hpp>
#include <uvkit/tls.hpp>

#include <span>
#include <string_view>
#include <vector>

#include "uvkit_bench.hpp"

namespace {

std::vector<char> read_buf(64 * 1024);
std::vector<char> chunk(BENCH_CHUNK, 'x');

uvkit::task<void> sink(uvkit::tcp& server, const uvkit::tls_context& ctx, long long& received) {
    uvkit::tls_stream t{ctx, co_await server.async_accept()};
    co_await t.async_handshake();
    for (;;) {
        std::size_t n = co_await t.async_read(std::span<char>{read_buf});
        if (n == 0) break;
        received += static_cast<long long>(n);
    }
    t.close();
    server.close();
}

uvkit::task<void> writer(uvkit::tls_stream& t, long long chunks) {
    for (long long i = 0; i < chunks; ++i)
        co_await t.async_write(std::string_view{chunk.data(), chunk.size()});
}

uvkit::task<void> source(uvkit::loop& loop, const uvkit::tls_context& ctx, uvkit::endpoint ep,
                         long long total_chunks) {
    uvkit::tcp c = co_await uvkit::connect(loop, ep);
    pin_buffers(c);
    uvkit::tls_stream t{ctx, std::move(c)};
    co_await t.async_handshake();
    BENCH_CHECK(t.cipher() == BENCH_TLS_SUITE, "the cipher suite");
    uvkit::task_group writers{loop};
    for (int i = 0; i < BENCH_TLS_WRITERS; ++i)
        writers.spawn(
            writer(t, total_chunks / BENCH_TLS_WRITERS + (i < total_chunks % BENCH_TLS_WRITERS ? 1 : 0)));
    co_await writers.join();
    co_await t.async_shutdown();
    t.close();
}

}  // namespace

int main(int argc, char** argv) {
    const long mib = bench_count(argc, argv, "tls_throughput");
    uvkit::loop loop;
    const uvkit::tls_context server_ctx = bench_tls_context(uvkit::tls_role::server);
    const uvkit::tls_context client_ctx = bench_tls_context(uvkit::tls_role::client);
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    pin_buffers(server);
    server.listen(128);
    long long received = 0;
    uvkit::spawn(loop, sink(server, server_ctx, received)).detach();
    uvkit::run(loop, source(loop, client_ctx, server.local_endpoint(),
                            static_cast<long long>(mib) * (1024 * 1024 / BENCH_CHUNK)));
    loop.run();  // the sink reads to the close_notify
    BENCH_CHECK(received == static_cast<long long>(mib) * 1024 * 1024, "every byte arrived");
    bench_ok("tls_throughput", mib);
    return 0;
}
