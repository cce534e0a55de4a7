// uvproxy: a TCP port forwarder. Every connection to LISTEN gets a connection
// of its own to TARGET, and bytes flow both ways until both sides are done.
//
//     uvproxy [OPTIONS] LISTEN TARGET        e.g.  uvproxy 127.0.0.1:0 127.0.0.1:8000
//
// LISTEN is a numeric HOST:PORT ("[::1]:8080" for IPv6; port 0 picks a free
// one). TARGET is HOST:PORT too; a host name is resolved once, at startup.
// The first line on stdout is "listening on H:P" with the real port.
//
// What a forwarder has to get right, and how this one does it:
// - Backpressure: while more than --high-water bytes wait to be written to
//   one side, the proxy stops reading from the other; it reads again once
//   they drained to --low-water. Memory stays bounded however slow a reader.
// - Half-close: end of stream from one side becomes a shutdown (FIN) of the
//   other side's write direction, after what was queued for it. The
//   connection is closed once both directions ended, or at once on an error.
// - Idle timeout: a connection with no traffic either way for
//   --idle-timeout seconds is closed.
// - Connection limit: beyond --max-conns, a new connection is accepted and
//   closed at once (one line on stderr), so its client sees the end right
//   away instead of waiting in the kernel's backlog.
// - A TARGET that refuses: the client's connection is closed, one line goes
//   to stderr, the proxy goes on.
//
// SIGINT or SIGTERM stop it: no new connections, every connection closed,
// exit status 0. Exit status 2 for bad arguments, 1 if LISTEN cannot be bound
// or listened on or TARGET's host cannot be resolved.
//
// Callbacks rather than coroutines: a connection is two sockets, a timer and
// a few flags, and the water marks are "stop reading here, start again
// there", which read_stop()/read_start() and write_queue_size() say directly.
#include <uvkit/uvkit.hpp>

#include <charconv>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iostream>
#include <list>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

struct options {
    std::size_t high_water = 1024 * 1024;
    std::size_t low_water = 256 * 1024;
    std::chrono::seconds idle_timeout{300};  // 0: never
    std::size_t max_conns = 400;             // 0: no limit; each takes two descriptors (ulimit -n)
};

constexpr std::string_view usage_line = "usage: uvproxy [OPTIONS] LISTEN TARGET";

constexpr std::string_view help_text =
    "Forwards every TCP connection to LISTEN (numeric HOST:PORT, port 0 picks one)\n"
    "to TARGET (HOST:PORT, resolved once at startup).\n"
    "  --high-water BYTES   stop reading one side while more than BYTES wait to be\n"
    "                       written to the other (default 1M; K and M suffixes)\n"
    "  --low-water BYTES    read again once they drained to BYTES (default 256K)\n"
    "  --idle-timeout SECS  close a connection idle for SECS seconds, 0: never (default 300)\n"
    "  --max-conns N        connections at once, 0: no limit (default 400); beyond it a\n"
    "                       new connection is accepted and closed at once\n";

// Bad arguments: one line on stderr, exit status 2.
int usage(std::string_view problem) {
    std::cerr << "uvproxy: " << problem << "; " << usage_line << " (see --help)\n";
    return 2;
}

bool parse_number(std::string_view text, std::size_t& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
}

// "65536", "64K", "1M".
bool parse_size(std::string_view text, std::size_t& out) {
    std::size_t unit = 1;
    if (!text.empty() && (text.back() == 'K' || text.back() == 'k')) unit = 1024;
    if (!text.empty() && (text.back() == 'M' || text.back() == 'm')) unit = 1024 * 1024;
    if (unit != 1) text.remove_suffix(1);
    if (!parse_number(text, out) || out > SIZE_MAX / unit) return false;
    out *= unit;
    return true;
}

// Splits "host:port" or "[v6]:port" at the last colon, for a TARGET that
// endpoint::parse() did not take (a host name).
bool split_host_port(std::string_view text, std::string& host, std::string& port) {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
    std::size_t value = 0;
    if (!parse_number(text.substr(colon + 1), value) || value == 0 || value > 65535) return false;
    host = text.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    port = text.substr(colon + 1);
    return true;
}

class proxy {
public:
    proxy(uvkit::loop& loop, const options& opt, const uvkit::endpoint& target)
        : loop_(loop), opt_(opt), target_(target), listener_(loop) {}

    // Handlers hold pointers into this object: close every connection and let
    // the loop run their close callbacks before the members go away.
    ~proxy() {
        stop();
        while (!connections_.empty()) loop_.run(uvkit::run_mode::once);
    }

    proxy(const proxy&) = delete;
    proxy& operator=(const proxy&) = delete;

    // Binds and listens; on failure `ec` is set and `what` names the step.
    void start(const uvkit::endpoint& ep, std::error_code& ec, const char*& what) {
        what = "bind to";
        listener_.bind(ep, false, ec);
        if (ec) return;
        what = "listen on";
        listener_.listen(
            511, [this](std::error_code accept_ec) { on_connection(accept_ec); }, ec);
    }

    uvkit::endpoint local_endpoint() const { return listener_.local_endpoint(); }

    // Graceful shutdown: stop accepting and close every connection; run()
    // returns once their close callbacks ran.
    void stop() {
        listener_.close();
        for (connection& c : connections_) close(c);
    }

private:
    // One end of a connection: the client's socket or the target's.
    struct side {
        uvkit::tcp socket;
        bool reading = false;     // read_start() is in effect: not paused, not at end of stream
        bool eof = false;         // it sent its FIN: nothing more comes from it
        bool write_done = false;  // our FIN to it went out, after everything queued for it
    };

    struct connection {
        explicit connection(uvkit::loop& l) : client{uvkit::tcp{l}}, target{uvkit::tcp{l}}, idle{l} {}
        side client;
        side target;
        uvkit::timer idle;
        std::list<connection>::iterator self;
        bool open = true;      // false once closing: late handlers must ignore it
        int handles_open = 3;  // client, target, idle: freed when all three closed
    };

    static side& other(connection& c, side& s) { return &s == &c.client ? c.target : c.client; }

    void on_connection(std::error_code ec) {
        if (ec) {
            // E.g. out of file descriptors: this one is lost, the proxy goes on.
            std::cerr << "uvproxy: accept: " << ec.message() << "\n";
            return;
        }
        if (opt_.max_conns != 0 && open_count_ >= opt_.max_conns) return refuse();

        connection& c = connections_.emplace_front(loop_);
        c.self = connections_.begin();
        ++open_count_;
        listener_.accept(c.client.socket, ec);
        if (ec) return close(c);
        if (opt_.idle_timeout.count() > 0) {
            // Repeating, so that touch()'s again() restarts it; it never repeats:
            // its first expiry closes the connection.
            c.idle.start(opt_.idle_timeout, opt_.idle_timeout, [this, &c] { close(c); });
        }
        // The client is not read until the target answered: what it sends
        // meanwhile waits in the kernel.
        c.target.socket.connect(
            target_, [this, &c](std::error_code connect_ec) { on_connected(c, connect_ec); }, ec);
        if (ec) return connect_failed(c, ec);
    }

    // Over the connection limit: accept and close, so the client learns at once.
    void refuse() {
        uvkit::tcp extra{loop_};
        std::error_code ec;
        listener_.accept(extra, ec);
        if (ec) return;
        std::cerr << "uvproxy: " << opt_.max_conns << " connections open: closing the one from "
                  << extra.peer_endpoint(ec).to_string() << "\n";
    }  // ~tcp closes it

    void on_connected(connection& c, std::error_code ec) {
        if (!c.open) return;  // closed while connecting (errc::canceled)
        if (ec) return connect_failed(c, ec);
        // Forward small writes as they come: no Nagle delay added by the proxy.
        c.client.socket.set_nodelay(true, ec);
        c.target.socket.set_nodelay(true, ec);
        start_reading(c, c.client);
        start_reading(c, c.target);
    }

    void connect_failed(connection& c, std::error_code ec) {
        std::error_code peer_ec;
        std::cerr << "uvproxy: connect to " << target_.to_string() << ": " << ec.message()
                  << "; closing the connection from " << c.client.socket.peer_endpoint(peer_ec).to_string()
                  << "\n";
        close(c);
    }

    void start_reading(connection& c, side& from) {
        std::error_code ec;
        from.socket.read_start([this, &c, &from](std::error_code read_ec,
                                                 std::string_view data) { on_read(c, from, read_ec, data); },
                               ec);
        if (ec) return close(c);
        from.reading = true;
    }

    void on_read(connection& c, side& from, std::error_code ec, std::string_view data) {
        side& to = other(c, from);
        if (ec == uvkit::errc::eof) {
            from.reading = false;
            from.eof = true;
            touch(c);
            return finish_writing(c, to);
        }
        if (ec) return close(c);  // e.g. a reset: nothing sensible to pass on
        touch(c);

        // Most chunks go straight to the kernel; only what it does not take
        // now is copied and queued. (try_write never overtakes queued bytes:
        // it takes nothing while the queue is not empty.)
        std::size_t sent = to.socket.try_write(data, ec);
        if (ec) return close(c);
        if (sent == data.size()) return;
        to.socket.write(
            std::string{data.substr(sent)},
            [this, &c, &to](std::error_code write_ec) { on_written(c, to, write_ec); }, ec);
        if (ec) return close(c);
        if (to.socket.write_queue_size() > opt_.high_water) {
            from.socket.read_stop();
            from.reading = false;
        }
    }

    void on_written(connection& c, side& to, std::error_code ec) {
        if (!c.open) return;
        if (ec) return close(c);  // e.g. the peer reset the connection
        touch(c);
        side& from = other(c, to);
        if (!from.reading && !from.eof && to.socket.write_queue_size() <= opt_.low_water)
            start_reading(c, from);
    }

    // `from` ended: FIN to `to` once the bytes queued for it are written.
    void finish_writing(connection& c, side& to) {
        std::error_code ec;
        to.socket.shutdown(
            [this, &c, &to](std::error_code shutdown_ec) {
                if (!c.open) return;
                if (shutdown_ec) return close(c);
                to.write_done = true;
                if (c.client.write_done && c.target.write_done) close(c);  // both directions ended
            },
            ec);
        if (ec) close(c);
    }

    void touch(connection& c) {
        std::error_code ec;
        if (opt_.idle_timeout.count() > 0) c.idle.again(ec);
    }

    // Closes the connection (queued bytes are dropped); its memory goes once
    // libuv is done with all three handles (by then every handler has run).
    void close(connection& c) {
        if (!c.open) return;
        c.open = false;
        --open_count_;
        auto closed = [this, &c] {
            if (--c.handles_open == 0) connections_.erase(c.self);
        };
        c.idle.close(closed);
        c.client.socket.close(closed);
        c.target.socket.close(closed);
    }

    uvkit::loop& loop_;
    options opt_;
    uvkit::endpoint target_;
    uvkit::tcp listener_;
    std::list<connection> connections_;  // stable addresses: handlers hold &c
    std::size_t open_count_ = 0;         // connections not yet closing
};

}  // namespace

int main(int argc, char** argv) {
    options opt;
    std::vector<std::string_view> addresses;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::cout << usage_line << "\n" << help_text;
            return 0;
        }
        if (arg.size() < 2 || arg.substr(0, 2) != "--") {
            addresses.push_back(arg);
            continue;
        }
        if (arg != "--high-water" && arg != "--low-water" && arg != "--idle-timeout" && arg != "--max-conns")
            return usage("unknown option '" + std::string{arg} + "'");
        if (i + 1 == argc) return usage(std::string{arg} + " needs a value");
        std::string_view value = argv[++i];
        bool ok = false;
        if (arg == "--high-water") {
            ok = parse_size(value, opt.high_water);
        } else if (arg == "--low-water") {
            ok = parse_size(value, opt.low_water);
        } else if (arg == "--max-conns") {
            ok = parse_number(value, opt.max_conns);
        } else {
            std::size_t secs = 0;
            ok = parse_number(value, secs) && secs <= 365 * 24 * 3600;  // a year: plenty, and no overflow
            opt.idle_timeout = std::chrono::seconds(secs);
        }
        if (!ok) return usage("bad value '" + std::string{value} + "' for " + std::string{arg});
    }
    if (addresses.size() != 2)
        return usage("expected LISTEN and TARGET, got " + std::to_string(addresses.size()) + " address(es)");
    if (opt.low_water > opt.high_water) return usage("--low-water must not exceed --high-water");

    std::error_code ec;
    const auto listen_ep = uvkit::endpoint::parse(addresses[0], ec);
    if (ec)
        return usage("bad LISTEN '" + std::string{addresses[0]} +
                     "' (numeric HOST:PORT, e.g. 127.0.0.1:8080)");
    auto target = uvkit::endpoint::parse(addresses[1], ec);
    std::string target_host, target_port;
    if (ec && !split_host_port(addresses[1], target_host, target_port))
        return usage("bad TARGET '" + std::string{addresses[1]} + "' (HOST:PORT, e.g. 127.0.0.1:8000)");
    if (!ec && target.port() == 0) return usage("TARGET needs a port other than 0");

    try {
        uvkit::loop loop;
        if (!target_host.empty()) {
            // A host name: resolved once, here; the first address is used.
            std::error_code resolve_ec;
            auto req = uvkit::resolve(loop, target_host, target_port,
                                      [&](std::error_code e, std::vector<uvkit::endpoint> eps) {
                                          resolve_ec = e;
                                          if (!e && !eps.empty()) target = eps.front();
                                      });
            loop.run();
            if (resolve_ec || !target) {
                std::cerr << "uvproxy: cannot resolve " << target_host << ": "
                          << (resolve_ec ? resolve_ec.message() : "no address") << "\n";
                return 1;
            }
        }

        proxy server{loop, opt, target};
        const char* what = "";
        server.start(listen_ep, ec, what);
        if (ec) {
            std::cerr << "uvproxy: cannot " << what << " " << listen_ep.to_string() << ": " << ec.message()
                      << "\n";
            return 1;
        }

        // SIGINT/SIGTERM: stop accepting, close the connections, exit 0.
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
        std::cerr << "uvproxy: " << e.what() << "\n";
        return 1;
    }
}
