// pingpong, standalone Asio C++20 coroutines (asio::awaitable): an echo coroutine and a client
// coroutine in one io_context over 127.0.0.1, TCP_NODELAY, a 5-byte message echoed N times.
#define ASIO_STANDALONE
#include <asio.hpp>

#include <array>
#include <exception>

#include "bench.h"

using asio::ip::tcp;

namespace {

std::array<char, 64 * 1024> server_buf;

asio::awaitable<void> echo(tcp::acceptor& acceptor) {
    tcp::socket conn = co_await acceptor.async_accept(asio::use_awaitable);
    conn.set_option(tcp::no_delay(true));
    for (;;) {
        std::error_code ec;
        std::size_t n = co_await conn.async_read_some(asio::buffer(server_buf),
                                                      asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            BENCH_CHECK(ec == asio::error::eof, "server read");
            break;
        }
        co_await asio::async_write(conn, asio::buffer(server_buf.data(), n), asio::use_awaitable);
    }
    acceptor.close();
}

asio::awaitable<long> client(tcp::endpoint ep, long total) {
    tcp::socket c{co_await asio::this_coro::executor};
    co_await c.async_connect(ep, asio::use_awaitable);
    c.set_option(tcp::no_delay(true));
    std::array<char, BENCH_PING_LEN> buf;
    long pongs = 0;
    for (long i = 0; i < total; ++i) {
        co_await asio::async_write(c, asio::buffer(BENCH_PING_MSG, BENCH_PING_LEN), asio::use_awaitable);
        co_await asio::async_read(c, asio::buffer(buf), asio::use_awaitable);
        ++pongs;
    }
    co_return pongs;
}

}  // namespace

int main(int argc, char** argv) {
    const long total = bench_count(argc, argv, "pingpong");
    asio::io_context io{1};
    tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
    long pongs = -1;
    asio::co_spawn(io, echo(acceptor), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    asio::co_spawn(io, client(acceptor.local_endpoint(), total), [&](std::exception_ptr e, long n) {
        if (e) std::rethrow_exception(e);
        pongs = n;
    });
    io.run();
    BENCH_CHECK(pongs == total, "N pongs");
    bench_ok("pingpong", total);
    return 0;
}
