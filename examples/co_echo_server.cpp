// co_echo_server: echo_server written with coroutines. Every byte a client
// sends comes back to it, for as many clients at once as the machine allows,
// until SIGINT or SIGTERM: then it stops accepting, cancels every connection
// and exits 0.
//
//     co_echo_server [--host H] [--port P]      (defaults: 127.0.0.1, port 0)
//
// The first line on stdout is "listening on H:P" with the real port, so a
// script can start it with --port 0 and read the port it got.
//
// Exit status: 0 after SIGINT/SIGTERM, 2 for bad arguments, 1 if the address
// cannot be bound or listened on. Try it with:
//     printf 'hello\n' | nc -N 127.0.0.1 PORT
//
// Compare with echo_server.cpp: there a connection is a struct, a list node
// and four handlers that pass it around; here it is one coroutine whose
// locals are the connection's state. Backpressure needs no code: a client's
// next read is awaited only once its echo was written.
#include <uvkit/uvkit.hpp>

#include <charconv>
#include <csignal>
#include <cstdint>
#include <exception>
#include <iostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
};

int usage(const char* argv0, std::string_view problem) {
    std::cerr << argv0 << ": " << problem << "\n"
              << "usage: " << argv0 << " [--host ADDRESS] [--port PORT]\n";
    return 2;
}

bool parse_port(std::string_view text, std::uint16_t& port) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value > 65535) return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

// One connection. The error_code forms throughout: a connection that fails
// (a reset, a cancellation on shutdown) simply ends, and an exception would
// cancel the whole task_group.
uvkit::task<void> echo(uvkit::tcp client) {
    // One buffer per connection, allocated once: no allocation per read.
    // 256 KiB, as asyncio reads: a bulk stream moves in few large reads and
    // writes, and an idle
    // connection costs no more than its frame holds anyway.
    std::vector<char> buf(256 * 1024);
    std::error_code ec;
    while (std::size_t n = co_await client.async_read(std::span<char>(buf), ec)) {  // 0 at EOF
        co_await client.async_write(std::string_view(buf.data(), n), ec);
        if (ec) co_return;
    }
    // The client is done sending: FIN after the last echo. (Not after an
    // error or a cancellation: then the socket is simply closed.)
    if (!ec) co_await client.async_shutdown(ec);
}  // ~tcp closes the connection

uvkit::task<void> accept_all(uvkit::tcp& listener, uvkit::task_group& connections) {
    for (;;) {
        std::error_code ec;
        uvkit::tcp client = co_await listener.async_accept(ec);
        if (ec == uvkit::errc::canceled) co_return;  // shutting down
        if (ec) {
            // E.g. out of file descriptors: this one is lost, the server goes on.
            std::cerr << "accept: " << ec.message() << "\n";
            continue;
        }
        connections.spawn(echo(std::move(client)));
    }
}

uvkit::task<void> serve(uvkit::loop& loop, uvkit::tcp& listener) {
    // The accept loop and every connection are children of one group:
    // cancelling it stops accepting and ends every connection, and join()
    // returns once all of them are gone.
    uvkit::task_group connections{loop};

    uvkit::signal sigint{loop};
    uvkit::signal sigterm{loop};
    auto stop = [&](int) {
        connections.cancel();
        // Back to the default action: a second Ctrl-C ends a shutdown that hangs.
        sigint.stop();
        sigterm.stop();
    };
    sigint.start(SIGINT, stop);
    sigterm.start(SIGTERM, stop);

    std::cout << "listening on " << listener.local_endpoint().to_string() << std::endl;
    connections.spawn(accept_all(listener, connections));
    co_await connections.join();
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::cout << "usage: " << argv[0] << " [--host ADDRESS] [--port PORT]\n";
            return 0;
        }
        if (arg != "--host" && arg != "--port")
            return usage(argv[0], "unknown argument '" + std::string{arg} + "'");
        if (i + 1 == argc) return usage(argv[0], std::string{arg} + " needs a value");
        std::string_view value = argv[++i];
        if (arg == "--host") {
            opt.host = value;
        } else if (!parse_port(value, opt.port)) {
            return usage(argv[0], "bad port '" + std::string{value} + "'");
        }
    }

#ifdef SIGPIPE
    // A write to a client that already left raises SIGPIPE, which kills the
    // process by default; ignored, the write fails with EPIPE instead.
    std::signal(SIGPIPE, SIG_IGN);
#endif

    uvkit::endpoint ep;
    try {
        ep = uvkit::endpoint{opt.host, opt.port};
    } catch (const std::invalid_argument&) {
        return usage(argv[0], "bad host '" + opt.host + "' (a numeric IPv4 or IPv6 address)");
    }

    try {
        uvkit::loop loop;
        uvkit::tcp listener{loop};
        std::error_code ec;
        const char* what = "bind";
        listener.bind(ep, false, ec);
        if (!ec) {
            what = "listen";
            listener.listen(128, ec);  // no handler: connections are taken by async_accept()
        }
        if (ec) {
            std::cerr << argv[0] << ": cannot " << what << " " << ep.to_string() << ": " << ec.message()
                      << "\n";
            return 1;
        }
        uvkit::run(loop, serve(loop, listener));
    } catch (const std::exception& e) {
        std::cerr << argv[0] << ": " << e.what() << "\n";
        return 1;
    }
}
