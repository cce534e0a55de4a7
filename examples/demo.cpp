// demo: uvkit in a few seconds, on loopback only. One loop, one thread:
// an echo server on 127.0.0.1 (a free port), ten clients that connect at once,
// each send a message of a different size and check that it comes back byte
// for byte, and timers that close the server afterwards and bound the run.
//
// Exit status: 0 if every check passed, 1 otherwise.
#include <uvkit/uvkit.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <iostream>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr int client_count = 10;

// The server: echoes each connection; when a client finishes sending, it
// finishes too (shutdown after the echoes, then close).
struct server {
    explicit server(uvkit::loop& l) : loop(l), listener(l) {}

    void start() {
        listener.bind(uvkit::endpoint::parse("127.0.0.1:0"));
        listener.listen(128, [this](std::error_code ec) {
            if (ec) return;
            uvkit::tcp& conn = connections.emplace_back(loop);
            listener.accept(conn);
            ++accepted;
            conn.read_start([&conn](std::error_code read_ec, std::string_view data) {
                if (read_ec == uvkit::errc::eof) {
                    conn.shutdown([&conn](std::error_code) { conn.close(); });
                } else if (read_ec) {
                    conn.close();
                } else {
                    conn.write(std::string{data});  // an owned copy: `data` is only valid now
                }
            });
        });
    }

    uvkit::loop& loop;
    uvkit::tcp listener;
    std::list<uvkit::tcp> connections;  // closed ones stay until the server goes: simple, and few
    int accepted = 0;
};

// A client: connect, send, shut down the sending side, read until EOF, compare.
struct client {
    client(uvkit::loop& l, int id) : socket(l), message(make_message(id)) {}

    static std::string make_message(int id) {
        // Client n sends n KiB of a pattern, so sizes differ and cross read chunks.
        std::string m;
        for (std::size_t i = 0; m.size() < static_cast<std::size_t>(id) * 1024; ++i)
            m += static_cast<char>('a' + (i * 7 + static_cast<std::size_t>(id)) % 26);
        return m;
    }

    template <class Done>
    void run(const uvkit::endpoint& ep, Done done) {
        socket.connect(ep, [this, done](std::error_code ec) {
            if (ec == uvkit::errc::canceled) return;  // the demo is being torn down
            if (ec) return finish("connect: " + ec.message(), done);
            socket.write(message, [](std::error_code) {});  // `message` outlives the write
            socket.shutdown([](std::error_code) {});
            socket.read_start([this, done](std::error_code read_ec, std::string_view data) {
                if (!read_ec) {
                    echoed.append(data);
                    return;
                }
                if (read_ec != uvkit::errc::eof) return finish("read: " + read_ec.message(), done);
                if (echoed != message)
                    return finish("echo differs: sent " + std::to_string(message.size()) + " bytes, got " +
                                      std::to_string(echoed.size()),
                                  done);
                finish("", done);
            });
        });
    }

    template <class Done>
    void finish(std::string why, Done done) {
        problem = std::move(why);
        ok = problem.empty();
        socket.close();
        done();
    }

    uvkit::tcp socket;
    std::string message;
    std::string echoed;
    std::string problem;
    bool ok = false;
};

}  // namespace

int main() {
    try {
        auto started = std::chrono::steady_clock::now();
        auto elapsed_ms = [&] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                         started)
                .count();
        };

        uvkit::loop loop;
        bool failed = false;

        std::cout << "uvkit demo: an echo server and " << client_count
                  << " clients on one loop, one thread\n";

        server srv{loop};
        srv.start();
        uvkit::endpoint ep = srv.listener.local_endpoint();
        std::cout << "server: listening on " << ep.to_string() << "\n";

        // A watchdog bounds the demo. It is unref'd: it does not keep the loop
        // alive by itself, so run() returns as soon as the real work is done.
        uvkit::timer watchdog{loop};
        watchdog.start(5s, [&] {
            std::cout << "watchdog: still running after 5 s, giving up\n";
            failed = true;
            loop.stop();
        });
        watchdog.unref();

        // Once every client is done, wait a moment on a timer, then close the server.
        uvkit::timer closer{loop};
        std::vector<std::unique_ptr<client>> clients;
        int finished = 0;
        auto on_client_done = [&finished, &closer, &srv, &elapsed_ms]() {
            if (++finished < client_count) return;
            std::cout << "clients: all " << client_count << " finished after " << elapsed_ms() << " ms\n";
            closer.start(100ms, [&srv, &elapsed_ms] {
                std::cout << "timer: fired 100 ms later (at " << elapsed_ms() << " ms): closing the server\n";
                srv.listener.close();
                srv.connections.clear();
            });
        };

        for (int id = 1; id <= client_count; ++id) {
            clients.push_back(std::make_unique<client>(loop, id));
            clients.back()->run(ep, [&on_client_done] { on_client_done(); });
        }
        std::cout << "clients: " << client_count << " connecting at once, sending 1 to " << client_count
                  << " KiB each\n";

        loop.run();

        int good = 0;
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < clients.size(); ++i) {
            if (clients[i]->ok) {
                ++good;
                bytes += clients[i]->echoed.size();
            } else {
                std::cout << "client " << i + 1 << ": FAILED: "
                          << (clients[i]->problem.empty() ? "never finished" : clients[i]->problem) << "\n";
            }
        }
        std::cout << "server: accepted " << srv.accepted << " connections\n";
        std::cout << "echo: " << good << " of " << client_count << " clients got their " << bytes
                  << " bytes back, byte for byte\n";
        if (srv.accepted != client_count || good != client_count) failed = true;
        std::cout << (failed ? "demo FAILED" : "demo ok") << " in " << elapsed_ms() << " ms" << std::endl;
        return failed ? 1 : 0;
    } catch (const std::exception& e) {
        std::cerr << "demo: " << e.what() << std::endl;
        return 1;
    }
}
