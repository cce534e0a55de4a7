// echo_server: a TCP echo server. Every byte a client sends comes back to it,
// for as many clients at once as the machine allows, until SIGINT or SIGTERM.
//
//     echo_server [--host H] [--port P]      (defaults: 127.0.0.1, port 0)
//
// The first line on stdout is "listening on H:P" with the real port, so a
// script can start it with --port 0 and read the port it got. SIGINT or
// SIGTERM stop it cleanly (exit status 0).
//
// Exit status: 2 for bad arguments, 1 if the address cannot be bound or
// listened on. Try it with:  printf 'hello\n' | nc -N 127.0.0.1 PORT
#include <uvkit/uvkit.hpp>

#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <list>
#include <string>
#include <string_view>
#include <system_error>

namespace {

// Stop reading from a client whose echoes pile up (it sends faster than it
// reads) and resume once the kernel took most of them: memory stays bounded.
constexpr std::size_t high_water = 1024 * 1024;
constexpr std::size_t low_water = 64 * 1024;

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

class echo_server {
public:
    explicit echo_server(uvkit::loop& loop) : loop_(loop), listener_(loop) {}

    // Handlers hold pointers into this object: close every connection and let
    // the loop run their close callbacks before the members go away.
    ~echo_server() {
        listener_.close();
        for (connection& c : connections_) forget(c);
        while (!connections_.empty()) loop_.run(uvkit::run_mode::once);
    }

    echo_server(const echo_server&) = delete;
    echo_server& operator=(const echo_server&) = delete;

    // Binds and listens; on failure `ec` is set and `what` names the step.
    void start(const uvkit::endpoint& ep, std::error_code& ec, const char*& what) {
        what = "bind";
        listener_.bind(ep, false, ec);
        if (ec) return;
        what = "listen";
        listener_.listen(
            128, [this](std::error_code accept_ec) { on_connection(accept_ec); }, ec);
    }

    uvkit::endpoint local_endpoint() const { return listener_.local_endpoint(); }

    // Graceful shutdown: stop accepting and close every connection; run()
    // returns once their close callbacks ran.
    void stop() {
        listener_.close();
        for (connection& c : connections_) forget(c);
    }

private:
    struct connection {
        uvkit::tcp socket;
        std::list<connection>::iterator self;
        bool open = true;      // false once closing: late handlers must ignore it
        bool reading = false;  // false while paused for backpressure
    };

    void on_connection(std::error_code ec) {
        if (ec) {
            // E.g. out of file descriptors: this one is lost, the server goes on.
            std::cerr << "accept: " << ec.message() << "\n";
            return;
        }
        connection& c = connections_.emplace_front(connection{uvkit::tcp{loop_}, {}});
        c.self = connections_.begin();
        listener_.accept(c.socket, ec);
        if (ec) {
            connections_.erase(c.self);
            return;
        }
        start_reading(c);
    }

    void start_reading(connection& c) {
        std::error_code ec;
        c.socket.read_start(
            [this, &c](std::error_code read_ec, std::string_view data) { on_read(c, read_ec, data); }, ec);
        if (ec) return forget(c);
        c.reading = true;
    }

    void on_read(connection& c, std::error_code ec, std::string_view data) {
        if (ec) return on_end(c, ec);
        // `data` lives only during this call: hand uvkit an owned copy. (The
        // error_code forms throughout: a throw in a handler would stop the server.)
        std::error_code write_ec;
        c.socket.write(
            std::string{data}, [this, &c](std::error_code done_ec) { on_written(c, done_ec); }, write_ec);
        if (write_ec) return forget(c);
        if (c.socket.write_queue_size() > high_water) {
            c.socket.read_stop();
            c.reading = false;
        }
    }

    void on_written(connection& c, std::error_code ec) {
        if (!c.open) return;
        if (ec) return forget(c);  // e.g. the client reset the connection
        if (!c.reading && c.socket.write_queue_size() < low_water) start_reading(c);
    }

    void on_end(connection& c, std::error_code ec) {
        c.reading = false;
        if (ec == uvkit::errc::eof) {
            // The client is done sending: send back what is queued, then FIN.
            std::error_code shutdown_ec;
            c.socket.shutdown([this, &c](std::error_code) { forget(c); }, shutdown_ec);
            if (!shutdown_ec) return;
        }
        forget(c);
    }

    // Closes the connection; its memory goes once libuv is done with it (after
    // the close callback, by which time every write handler has run).
    void forget(connection& c) {
        if (!c.open) return;
        c.open = false;
        c.socket.close([this, &c] { connections_.erase(c.self); });
    }

    uvkit::loop& loop_;
    uvkit::tcp listener_;
    std::list<connection> connections_;  // stable addresses: handlers hold &c
};

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
        echo_server server{loop};
        std::error_code ec;
        const char* what = "";
        server.start(ep, ec, what);
        if (ec) {
            std::cerr << argv[0] << ": cannot " << what << " " << ep.to_string() << ": " << ec.message()
                      << "\n";
            return 1;
        }
        // SIGINT/SIGTERM: stop accepting, close the connections, exit 0. (A
        // write to a client that left fails with broken_pipe: uvkit's loop
        // ignores SIGPIPE.)
        uvkit::signal sigint{loop}, sigterm{loop};
        auto shutdown = [&](int) {
            server.stop();
            sigint.close();
            sigterm.close();
        };
        sigint.start(SIGINT, shutdown);
        sigterm.start(SIGTERM, shutdown);
        // Only now: a test (or user) may signal as soon as it reads this line.
        std::cout << "listening on " << server.local_endpoint().to_string() << std::endl;
        loop.run();
    } catch (const std::exception& e) {
        std::cerr << argv[0] << ": " << e.what() << "\n";
        return 1;
    }
}
