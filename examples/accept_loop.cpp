// accept_loop: the article's mio program in uvkit. A listener on 127.0.0.1
// reports every connection it accepts and closes it, until SIGINT or SIGTERM
// (then it stops listening and exits 0).
//
//     accept_loop [--port P]      (default: port 0, a free port)
//
// mio hands the program a readiness event and the program calls accept();
// libuv does the polling and calls the listen handler once per pending
// connection, so the loop body below is the handler.
#include <uvkit/uvkit.hpp>

#include <charconv>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>

int main(int argc, char** argv) {
    std::uint16_t port = 0;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        unsigned value = 0;
        if (arg == "--port" && i + 1 < argc) {
            std::string_view text = argv[++i];
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (ec == std::errc{} && end == text.data() + text.size() && value <= 65535) {
                port = static_cast<std::uint16_t>(value);
                continue;
            }
        }
        std::cerr << "usage: " << argv[0] << " [--port PORT]\n";
        return 2;
    }

    try {
        uvkit::loop loop;
        uvkit::tcp listener{loop};
        listener.bind(uvkit::endpoint{"127.0.0.1", port});
        listener.listen(128, [&](std::error_code ec) {
            if (ec) {
                std::cerr << "accept: " << ec.message() << "\n";
                return;
            }
            uvkit::tcp stream{loop};
            // The error_code forms: a throw here would stop the loop, and the program.
            listener.accept(stream, ec);
            if (ec) {
                std::cerr << "accept: " << ec.message() << "\n";
                return;
            }
            uvkit::endpoint peer = stream.peer_endpoint(ec);  // fails if the peer already reset
            std::cout << "Accepted connection from " << (ec ? "? (" + ec.message() + ")" : peer.to_string())
                      << std::endl;
            // Handle the connection: here, `stream` goes out of scope and is closed.
        });
        uvkit::signal sigint{loop}, sigterm{loop};
        auto shutdown = [&](int) {
            listener.close();
            sigint.close();
            sigterm.close();
        };
        sigint.start(SIGINT, shutdown);
        sigterm.start(SIGTERM, shutdown);
        // Only now: a test (or user) may signal as soon as it reads this line.
        std::cout << "listening on " << listener.local_endpoint().to_string() << std::endl;
        loop.run();
    } catch (const std::system_error& e) {
        std::cerr << argv[0] << ": " << e.what() << "\n";
        return 1;
    }
}
