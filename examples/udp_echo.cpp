// udp_echo: a UDP echo server. Every datagram comes back to its sender,
// until SIGINT or SIGTERM.
//
//     udp_echo [--host H] [--port P]      (defaults: 127.0.0.1, port 0)
//
// The first line on stdout is "listening on H:P" with the real port, so a
// script can start it with --port 0 and read the port it got.
//
// Exit status: 0 after SIGINT/SIGTERM, 2 for bad arguments, 1 if the address
// cannot be bound. Try it with:  echo hello | socat - UDP:127.0.0.1:PORT
#include <uvkit/uvkit.hpp>

#include <charconv>
#include <csignal>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>

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

void echo(uvkit::udp& socket, std::string_view data, const uvkit::endpoint& from) {
    // The error_code forms throughout: a throw in a handler would stop the
    // server, and one datagram that cannot be echoed is no reason to.
    std::error_code ec;
    // Fast path: straight to the kernel, no copy. `data` lives only during
    // the receive handler, so a datagram that has to wait is copied.
    if (!data.empty() && socket.try_send(data, from, ec) == data.size()) return;
    if (ec) return;
    socket.send(std::string{data}, from, nullptr, ec);
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

    uvkit::endpoint ep;
    try {
        ep = uvkit::endpoint{opt.host, opt.port};
    } catch (const std::invalid_argument&) {
        return usage(argv[0], "bad host '" + opt.host + "' (a numeric IPv4 or IPv6 address)");
    }

    try {
        uvkit::loop loop;
        uvkit::udp socket{loop};
        std::error_code ec;
        socket.bind(ep, 0, ec);
        if (ec) {
            std::cerr << argv[0] << ": cannot bind " << ep.to_string() << ": " << ec.message() << "\n";
            return 1;
        }
        socket.recv_start(
            [&socket](std::error_code recv_ec, std::string_view data, const uvkit::endpoint& from, unsigned) {
                // Errors are per datagram (e.g. an ICMP answer to an earlier echo): go on.
                if (!recv_ec) echo(socket, data, from);
            });

        // Graceful shutdown: closing every handle lets run() return.
        uvkit::signal sigint{loop};
        uvkit::signal sigterm{loop};
        auto stop = [&](int) {
            socket.close();
            sigint.close();
            sigterm.close();
        };
        sigint.start(SIGINT, stop);
        sigterm.start(SIGTERM, stop);

        std::cout << "listening on " << socket.local_endpoint().to_string() << std::endl;
        loop.run();
    } catch (const std::exception& e) {
        std::cerr << argv[0] << ": " << e.what() << "\n";
        return 1;
    }
    return 0;
}
