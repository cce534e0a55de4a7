// uvcat: netcat for TCP and UDP, with coroutines.
//
//     uvcat [-u] [-w SECS] HOST PORT                      connect
//     uvcat -l [-k] [-u] [-p PORT] [-w SECS] [HOST]       listen (default 127.0.0.1, port 0)
//     uvcat --tls [--cafile F] [--insecure] [-w SECS] HOST PORT    TLS client
//     uvcat -l --tls --cert C --key K [-k] [-p PORT] [-w SECS] [HOST]  TLS server
//
// It copies stdin to the peer and the peer to stdout, both at once. When
// stdin ends, the socket's write side is shut down (a half-close: the peer
// sees end of stream and can still answer); uvcat ends when both directions
// are done: stdin reached its end and the peer closed its side. With -l it
// prints "listening on H:P" on stderr, serves one connection and exits; -k
// keeps listening and serves connections one after another (stdin goes to
// the first ones until it ends; later ones get an immediate half-close).
//
// UDP (-u): every chunk read from stdin is one datagram; every datagram
// received goes to stdout. UDP has no end of stream, so a UDP session ends
// only with -w (SECS without a datagram either way: exit 0) or a signal. With
// -l -u the sender of the first datagram becomes the peer (and the only one
// heard from).
//
// -w SECS: a connect that takes longer fails, and so does a TCP connection on
// which nothing moves either way for SECS (as with nc, it never limits how
// long -l waits for a peer).
//
// Backpressure: each direction is a loop "read a chunk, await its write":
// nothing more is read from stdin until the socket took the last chunk, nor
// from the socket until stdout took it. What libuv reads ahead on a stream
// while its coroutine is busy is bounded (64 KiB, then reading pauses).
//
// stdin and stdout may be pipes, sockets, terminals or files. libuv has
// stream handles for the first three (uv_guess_handle says which); a regular
// file (or a device such as /dev/null) has none, because it is always
// "ready". Those are read and written in 64 KiB chunks through uvkit::file
// (uv_fs_read/uv_fs_write on the thread pool), so the loop never blocks and
// the code stays portable.
//
// Closed standard streams (`uvcat ... <&- >&-`): before anything else, a
// closed fd 0, 1 or 2 gets /dev/null opened onto it, so that none of the
// descriptors the loop opens (its signal pipe, the socket) can become
// "stdout" by taking the lowest free number. A closed stdin is then an empty
// one: nothing to send, the write side is shut down at once. A closed stdout
// is refused before anything connects or listens (exit 1, one line): the
// peer's data would have nowhere to go. (POSIX only; on Windows a closed
// stream fails at its first use.)
//
// TLS (--tls, when uvkit was built with TLS): the same copies over a
// uvkit::tls_stream. The client verifies the server's certificate (the
// system's CA store, or --cafile) and that it is for HOST, and sends HOST as
// SNI; --insecure accepts any certificate. The server needs --cert and --key.
// At the end of stdin uvcat sends close_notify, then shuts its write side
// down; a peer that closes without close_notify is reported as a truncation
// (exit 1). A failed handshake is one line on stderr and exit 1 (with -k,
// the listener goes on with the next peer). Without TLS support, --tls is a
// bad argument (exit 2).
//
// Exit status: 0 when done or after SIGINT/SIGTERM; 1 with one line on
// stderr when the network fails (cannot resolve, connect, bind; reset;
// timeout) or stdout is closed; 2 with one line for bad arguments.
#include <uvkit/uvkit.hpp>
#ifdef UVKIT_HAVE_TLS
#include <uvkit/co/tls.hpp>
#endif

#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#endif

using namespace std::chrono_literals;

namespace {

constexpr std::size_t stream_chunk = 64 * 1024;
constexpr std::size_t datagram_max = 16 * 1024;  // a stdin chunk sent as one UDP datagram
constexpr std::size_t datagram_buffer = 64 * 1024;
// The kernel's receive buffer asked for on a UDP socket: datagrams that
// arrive while uvcat writes the last one to stdout wait there, and a burst
// that overflows it is lost. 4 MiB holds 200 ms of a 20 MiB/s stream; the
// kernel may grant less (Linux: up to net.core.rmem_max).
constexpr int udp_receive_buffer = 4 * 1024 * 1024;

const char* const usage_text =
    "usage: uvcat [-u] [-w SECS] HOST PORT\n"
    "       uvcat -l [-k] [-u] [-p PORT] [-w SECS] [HOST]\n"
    "       uvcat --tls [--cafile FILE] [--insecure] [-w SECS] HOST PORT\n"
    "       uvcat -l --tls --cert FILE --key FILE [-k] [-p PORT] [-w SECS] [HOST]\n"
    "\n"
    "Copies stdin to a TCP (or UDP) peer and the peer to stdout.\n"
    "  HOST PORT  connect to HOST (a name or address) on PORT (1-65535)\n"
    "  -l         listen on HOST (default 127.0.0.1) and serve one peer; prints\n"
    "             'listening on H:P' on stderr\n"
    "  -p PORT    the port to listen on (default 0: any free port)\n"
    "  -k         with -l: keep listening, serve peers one after another (TCP only)\n"
    "  -u         UDP: one datagram per chunk of stdin; with -l the first sender is the peer\n"
    "  -w SECS    give up a connect after SECS seconds, and a connection idle for\n"
    "             SECS seconds (exit 1; with -u, end quietly with exit 0)\n"
    "  --tls      TLS over TCP (if uvcat was built with TLS); a client verifies the\n"
    "             server's certificate and that it is for HOST (sent as SNI)\n"
    "  --cafile F client: trust the CA certificates in PEM file F (default: the system's)\n"
    "  --insecure client: accept any certificate (no verification)\n"
    "  --cert F   server: the certificate chain, PEM, leaf first\n"
    "  --key F    server: the private key, PEM\n"
    "  -h, --help this text\n"
    "\n"
    "At the end of stdin the socket's write side is shut down; uvcat exits once\n"
    "the peer closed its side too. A closed stdin is an empty one. Exit status: 0 done\n"
    "or SIGINT/SIGTERM, 1 network failure or a closed stdout, 2 bad arguments.\n";

struct options {
    bool listen = false;
    bool keep = false;
    bool udp = false;
    std::string host;
    std::uint16_t port = 0;
    bool port_given = false;
    std::chrono::milliseconds wait{0};  // 0: no -w
    bool tls = false;
    bool insecure = false;
    std::string cafile, cert, key;  // "" if not given
#ifdef UVKIT_HAVE_TLS
    uvkit::tls_context tls_ctx;  // made from the above by main() when --tls
#endif
};

bool parse_number(std::string_view text, unsigned min, unsigned max, unsigned& out) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min || value > max)
        return false;
    out = value;
    return true;
}

// Fills `opt` from the command line; returns the problem, or "" if there is none.
std::string parse_args(int argc, char** argv, options& opt) {
    std::vector<std::string_view> operands;
    bool options_done = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (options_done || arg.size() < 2 || arg[0] != '-') {
            operands.push_back(arg);
            continue;
        }
        if (arg == "--") {
            options_done = true;
            continue;
        }
        if (arg.starts_with("--")) {
            // Long options: --tls, --insecure, and --cafile/--cert/--key with a value (F or =F).
            std::string_view name = arg.substr(0, arg.find('='));
            if (name == "--tls" || name == "--insecure") {
                if (name.size() != arg.size()) return std::string{name} + " takes no value";
                (name == "--tls" ? opt.tls : opt.insecure) = true;
                continue;
            }
            std::string* file = name == "--cafile" ? &opt.cafile
                                : name == "--cert" ? &opt.cert
                                : name == "--key"  ? &opt.key
                                                   : nullptr;
            if (!file) return "unknown option '" + std::string{arg} + "'";
            if (name.size() != arg.size()) {
                *file = arg.substr(name.size() + 1);
            } else {
                if (i + 1 == argc) return std::string{name} + " needs a file";
                *file = argv[++i];
            }
            if (file->empty()) return std::string{name} + " needs a file";
            continue;
        }
        // A bundle of one-letter options, getopt style: -lku, -p8080, -p 8080.
        for (std::size_t j = 1; j < arg.size(); ++j) {
            char letter = arg[j];
            if (letter == 'l') {
                opt.listen = true;
            } else if (letter == 'k') {
                opt.keep = true;
            } else if (letter == 'u') {
                opt.udp = true;
            } else if (letter == 'p' || letter == 'w') {
                std::string_view value = arg.substr(j + 1);
                if (value.empty()) {
                    if (i + 1 == argc) return std::string{"-"} + letter + " needs a value";
                    value = argv[++i];
                }
                unsigned n = 0;
                if (letter == 'p') {
                    if (!parse_number(value, 0, 65535, n))
                        return "bad port '" + std::string{value} + "' (0 to 65535)";
                    opt.port = static_cast<std::uint16_t>(n);
                    opt.port_given = true;
                } else {
                    if (!parse_number(value, 1, 86400, n))
                        return "bad timeout '" + std::string{value} + "' (1 to 86400 seconds)";
                    opt.wait = std::chrono::seconds{n};
                }
                break;  // the value used up the rest of the bundle
            } else {
                return std::string{"unknown option '-"} + letter + "'";
            }
        }
    }

    if (opt.listen) {
        if (opt.keep && opt.udp) return "-k works with TCP only";
        if (operands.size() > 1) return "too many arguments: with -l, give the port with -p";
        opt.host = operands.empty() ? "127.0.0.1" : std::string{operands[0]};
    } else {
        if (opt.keep) return "-k needs -l";
        if (opt.port_given) return "-p needs -l (a client's port is its second argument)";
        if (operands.size() != 2) return "need HOST and PORT (or -l to listen)";
        opt.host = operands[0];
        unsigned n = 0;
        if (!parse_number(operands[1], 1, 65535, n))
            return "bad port '" + std::string{operands[1]} + "' (1 to 65535)";
        opt.port = static_cast<std::uint16_t>(n);
    }
    if (opt.host.empty()) return "empty host";
    if (!opt.tls && (opt.insecure || !opt.cafile.empty() || !opt.cert.empty() || !opt.key.empty()))
        return "--cafile, --insecure, --cert and --key need --tls";
    if (opt.tls) {
#ifndef UVKIT_HAVE_TLS
        return "--tls: this uvcat was built without TLS support (uvkit -Dtls=disabled or no OpenSSL 3)";
#endif
        if (opt.udp) return "--tls works with TCP only";
        if (opt.listen) {
            if (opt.cert.empty() || opt.key.empty()) return "-l --tls needs --cert and --key";
            if (opt.insecure || !opt.cafile.empty()) return "--cafile and --insecure are for a TLS client";
        } else {
            if (!opt.cert.empty() || !opt.key.empty()) return "--cert and --key are for a TLS server (-l)";
            if (opt.insecure && !opt.cafile.empty()) return "--insecure and --cafile: choose one";
        }
    }
    return "";
}

// ------------------------------------------------------------ stdin, stdout

// stdin or stdout, whatever it is: a libuv stream when there is one (a pipe,
// a socket, a terminal), else a uvkit::file (its reads and writes run on the thread pool).
class stdio_end {
public:
    stdio_end(uvkit::loop& loop, uv_file fd) {
        switch (uv_guess_handle(fd)) {
            case UV_TTY:
                tty_ = uvkit::tty{loop, fd};
                stream_ = &tty_;
                break;
            case UV_NAMED_PIPE:  // a pipe or a Unix socket
            case UV_TCP:         // a socket, as from inetd; uv_pipe_open takes any stream socket on Unix
                pipe_ = uvkit::pipe{loop};
                pipe_.open(fd);
                stream_ = &pipe_;
                break;
            case UV_FILE:  // a regular file or a device (/dev/null)
                file_ = uvkit::file::adopt(loop, fd);
                break;
            default:  // closed, or a UDP socket: no bytes to read, nowhere to write
                break;
        }
    }
    stdio_end(const stdio_end&) = delete;
    stdio_end& operator=(const stdio_end&) = delete;

    // Reads at least one byte; 0 at the end. Throws std::system_error.
    uvkit::task<std::size_t> read(std::span<char> buf) {
        if (stream_) co_return co_await stream_->async_read(buf);
        if (!file_) co_return 0;
        co_return co_await file_.async_read(buf, -1);  // -1: at the current position, as read(2)
    }

    // Writes all of `data`, which must stay alive until done. Throws std::system_error.
    uvkit::task<void> write(std::string_view data) {
        if (stream_) {
            co_await stream_->async_write(data);
        } else if (file_) {
            while (!data.empty()) data.remove_prefix(co_await file_.async_write(data, -1));
        } else {
            throw std::system_error(uvkit::make_uv_error(UV_EBADF), "stdout");
        }
    }

    bool ended = false;  // stdin reached its end (with -k: in an earlier session)

private:
    uvkit::pipe pipe_;
    uvkit::tty tty_;
    uvkit::stream* stream_ = nullptr;
    uvkit::file file_;  // closes the descriptor when uvcat is done with it
};

// ------------------------------------------------------------ one session

// One peer: up to three tasks (stdin -> peer, peer -> stdout, the idle
// watchdog) and how it ended.
struct session {
    session(uvkit::loop& l, stdio_end& in_, stdio_end& out_, std::string peer_name,
            std::chrono::milliseconds idle_)
        : loop(l),
          in(in_),
          out(out_),
          peer(std::move(peer_name)),
          idle(idle_),
          tasks(l),
          last_active(l.now()) {}

    uvkit::loop& loop;
    stdio_end& in;
    stdio_end& out;
    std::string peer;
    std::chrono::milliseconds idle;
    uvkit::task_group tasks;
    std::chrono::milliseconds last_active;
    int copies = 2;           // directions still running
    std::string failure;      // the first error, "" if none
    bool idle_ended = false;  // the watchdog ended it

    void touch() { last_active = loop.now(); }

    void fail(const std::string& what, const std::error_code& ec) {
        if (failure.empty()) failure = what + ": " + ec.message();
        tasks.cancel();
    }

    // A direction finished: once both did, the watchdog has nothing to guard.
    void copy_done() {
        if (--copies == 0) tasks.cancel();
    }

    // Runs the copies (and the watchdog) until they end.
    uvkit::task<void> run(uvkit::task<void> up, uvkit::task<void> down);
};

uvkit::task<void> watchdog(session& s) {
    for (;;) {
        auto quiet = s.loop.now() - s.last_active;
        if (quiet >= s.idle) {
            s.idle_ended = true;
            s.tasks.cancel();
            co_return;
        }
        std::error_code ec;
        co_await uvkit::sleep(s.loop, s.idle - quiet, ec);
        if (ec) co_return;  // cancelled: the session is over
    }
}

uvkit::task<void> session::run(uvkit::task<void> up, uvkit::task<void> down) {
    tasks.spawn(std::move(up));
    tasks.spawn(std::move(down));
    if (idle > 0ms) tasks.spawn(watchdog(*this));
    std::error_code ec;
    co_await tasks.join(ec);  // a signal cancels us: the children stop first
}

// Each copy notes which step failed, for the one-line message.
// `S`: uvkit::tcp, or uvkit::tls_stream (the same async_read/write/shutdown).
template <class S>
uvkit::task<void> tcp_upload(session& s, S& sock) {
    std::vector<char> buf(stream_chunk);
    std::string step = "read stdin";
    try {
        while (!s.in.ended) {
            step = "read stdin";
            std::size_t n = co_await s.in.read(buf);
            if (n == 0) {
                s.in.ended = true;
                break;
            }
            s.touch();
            step = "send to " + s.peer;
            co_await sock.async_write(std::string_view(buf.data(), n));
            s.touch();
        }
        step = "shut down the connection to " + s.peer;
        co_await sock.async_shutdown();
    } catch (const std::system_error& e) {
        if (e.code() != uvkit::errc::canceled) s.fail(step, e.code());
    }
    s.copy_done();
}

template <class S>
uvkit::task<void> tcp_download(session& s, S& sock) {
    std::vector<char> buf(stream_chunk);
    std::string step;
    try {
        for (;;) {
            step = "receive from " + s.peer;
            std::size_t n = co_await sock.async_read(buf);
            if (n == 0) break;  // the peer shut down its side
            s.touch();
            step = "write stdout";
            co_await s.out.write(std::string_view(buf.data(), n));
            s.touch();
        }
    } catch (const std::system_error& e) {
        if (e.code() != uvkit::errc::canceled) s.fail(step, e.code());
    }
    s.copy_done();
}

uvkit::task<void> udp_upload(session& s, uvkit::udp& sock) {
    std::vector<char> buf(datagram_max);
    std::string step;
    try {
        while (!s.in.ended) {
            step = "read stdin";
            std::size_t n = co_await s.in.read(buf);
            if (n == 0) {
                s.in.ended = true;
                break;
            }
            s.touch();
            step = "send to " + s.peer;
            co_await sock.async_send(std::string_view(buf.data(), n));  // to the connected peer
            s.touch();
        }
    } catch (const std::system_error& e) {
        if (e.code() != uvkit::errc::canceled) s.fail(step, e.code());
    }
    s.copy_done();
}

// Asks for a large kernel receive buffer on `sock` (which must have its
// socket, i.e. be bound or connected). A refusal is no error: the default
// buffer still works, it only loses more under bursts.
void grow_receive_buffer(uvkit::udp& sock) {
    std::error_code ec;
    // Linux reports twice what it granted; asking only when the reported size is smaller
    // keeps a system default that is larger already.
    if (sock.recv_buffer_size(ec) < udp_receive_buffer && !ec)
        sock.set_recv_buffer_size(udp_receive_buffer, ec);
}

// Receives datagrams until the session ends; `first`, if not empty, is one
// that arrived before (the one that chose the peer with -l).
uvkit::task<void> udp_download(session& s, uvkit::udp& sock, std::string first) {
    std::vector<char> buf(datagram_buffer);
    std::string step = "write stdout";
    try {
        if (!first.empty()) co_await s.out.write(first);
        for (;;) {
            step = "receive from " + s.peer;  // e.g. connection refused: an ICMP answer to our send
            uvkit::udp_datagram d = co_await sock.async_recv(buf);
            s.touch();
            step = "write stdout";
            co_await s.out.write(std::string_view(buf.data(), d.size));
            s.touch();
        }
    } catch (const std::system_error& e) {
        if (e.code() != uvkit::errc::canceled) s.fail(step, e.code());
    }
    s.copy_done();
}

// ------------------------------------------------------------ the modes

// What a mode tells main: the exit status and, for 1, why.
struct outcome {
    int status = 0;
    std::string message;
};

outcome failed(std::string message) { return {1, std::move(message)}; }

uvkit::task<std::vector<uvkit::endpoint>> lookup(uvkit::loop& loop, const options& opt, std::error_code& ec) {
    uvkit::resolve_hints hints;
    hints.socktype = opt.udp ? uvkit::socket_type::dgram : uvkit::socket_type::stream;
    co_return co_await uvkit::async_resolve(loop, opt.host, std::to_string(opt.port), hints, ec);
}

outcome from_session(const session& s, const options& opt) {
    if (!s.failure.empty()) return failed(s.failure);
    if (s.idle_ended && !opt.udp)
        return failed("no data from or to " + s.peer + " for " +
                      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(opt.wait).count()) +
                      " s");
    return {};
}

#ifdef UVKIT_HAVE_TLS
// The TLS configuration the options ask for: "" if done, else the problem.
std::string make_tls_context(options& opt) {
    std::error_code ec;
    if (opt.listen) {
        opt.tls_ctx = uvkit::tls_context{uvkit::tls_role::server, ec};
        if (!ec) opt.tls_ctx.use_certificate_chain_file(opt.cert, ec);
        if (ec) return "cannot use the certificate " + opt.cert + ": " + ec.message();
        opt.tls_ctx.use_private_key_file(opt.key, ec);
        if (ec) return "cannot use the key " + opt.key + ": " + ec.message();
        return "";
    }
    opt.tls_ctx = uvkit::tls_context{uvkit::tls_role::client, ec};
    if (ec) return "cannot set up TLS: " + ec.message();
    if (opt.insecure) {
        opt.tls_ctx.set_verify_peer(false);
    } else if (!opt.cafile.empty()) {
        opt.tls_ctx.load_verify_file(opt.cafile, ec);
        if (ec) return "cannot use the CA file " + opt.cafile + ": " + ec.message();
    } else {
        opt.tls_ctx.set_default_verify_paths(ec);
        if (ec) return "cannot load the system's CA certificates: " + ec.message();
    }
    return "";
}

// The handshake, bounded by -w like a connect.
uvkit::task<std::error_code> tls_handshake(uvkit::loop& loop, const options& opt, uvkit::tls_stream& t) {
    std::error_code ec;
    if (opt.wait > 0ms) {
        try {
            co_await uvkit::with_timeout(loop, opt.wait, t.async_handshake());
        } catch (const std::system_error& e) {
            ec = e.code();
        }
    } else {
        co_await t.async_handshake(ec);
    }
    co_return ec;
}
#endif

// One TCP peer: the copies both ways, over TLS first with --tls (a client
// verifies `opt.host`). `peer` names the peer's address in messages.
uvkit::task<outcome> converse(uvkit::loop& loop, const options& opt, stdio_end& in, stdio_end& out,
                              uvkit::tcp conn, std::string peer) {
#ifdef UVKIT_HAVE_TLS
    if (opt.tls) {
        std::error_code ec;
        uvkit::tls_stream t{opt.tls_ctx, std::move(conn), ec};
        if (!ec && !opt.listen) {
            t.set_hostname(opt.host, ec);  // SNI, and the name the certificate must be for
            if (opt.insecure) t.set_verify_hostname(false);
        }
        if (!ec) ec = co_await tls_handshake(loop, opt, t);
        if (ec == uvkit::errc::canceled) co_return outcome{};  // a signal
        if (ec) co_return failed("TLS handshake with " + peer + " failed: " + ec.message());
        session s{loop, in, out, peer, opt.wait};
        co_await s.run(tcp_upload(s, t), tcp_download(s, t));
        co_return from_session(s, opt);
    }
#endif
    session s{loop, in, out, peer, opt.wait};
    co_await s.run(tcp_upload(s, conn), tcp_download(s, conn));
    co_return from_session(s, opt);
}

uvkit::task<outcome> tcp_client(uvkit::loop& loop, const options& opt, stdio_end& in, stdio_end& out) {
    std::error_code ec;
    std::vector<uvkit::endpoint> eps = co_await lookup(loop, opt, ec);
    if (ec) co_return failed("cannot resolve " + opt.host + ": " + ec.message());

    // Every address in the resolver's order, until one answers.
    uvkit::tcp sock;
    std::string target = opt.host + " port " + std::to_string(opt.port);
    std::string peer;
    for (const uvkit::endpoint& ep : eps) {
        peer = ep.to_string();
        ec.clear();
        if (opt.wait > 0ms) {
            try {
                sock = co_await uvkit::with_timeout(loop, opt.wait, uvkit::connect(loop, ep));
            } catch (const std::system_error& e) {
                ec = e.code();
            }
        } else {
            sock = co_await uvkit::connect(loop, ep, ec);
        }
        if (ec == uvkit::errc::canceled) co_return outcome{};  // a signal
        if (!ec) break;
    }
    if (ec) co_return failed("cannot connect to " + target + ": " + ec.message());
    co_return co_await converse(loop, opt, in, out, std::move(sock), peer);
}

uvkit::task<outcome> udp_client(uvkit::loop& loop, const options& opt, stdio_end& in, stdio_end& out) {
    std::error_code ec;
    std::vector<uvkit::endpoint> eps = co_await lookup(loop, opt, ec);
    if (ec) co_return failed("cannot resolve " + opt.host + ": " + ec.message());
    uvkit::udp sock{loop};
    sock.connect(eps.front(), ec);  // fixes the peer: only its datagrams are received
    if (ec) co_return failed("cannot use " + eps.front().to_string() + ": " + ec.message());
    grow_receive_buffer(sock);

    session s{loop, in, out, eps.front().to_string(), opt.wait};
    co_await s.run(udp_upload(s, sock), udp_download(s, sock, ""));
    co_return from_session(s, opt);
}

// The address to bind: HOST resolved for listening.
uvkit::task<outcome> local_address(uvkit::loop& loop, const options& opt, uvkit::endpoint& ep) {
    std::error_code ec;
    std::vector<uvkit::endpoint> eps = co_await lookup(loop, opt, ec);
    if (ec) co_return failed("cannot resolve " + opt.host + ": " + ec.message());
    ep = eps.front();
    co_return outcome{};
}

uvkit::task<outcome> tcp_server(uvkit::loop& loop, const options& opt, stdio_end& in, stdio_end& out) {
    uvkit::endpoint ep;
    outcome o = co_await local_address(loop, opt, ep);
    if (o.status) co_return o;
    uvkit::tcp listener{loop};
    std::error_code ec;
    listener.bind(ep, false, ec);
    if (!ec) listener.listen(16, ec);  // no handler: connections are taken by async_accept()
    if (ec) co_return failed("cannot listen on " + ep.to_string() + ": " + ec.message());
    std::cerr << "listening on " << listener.local_endpoint().to_string() << std::endl;

    for (;;) {
        uvkit::tcp conn = co_await listener.async_accept(ec);
        if (ec == uvkit::errc::canceled) co_return outcome{};  // a signal
        if (ec) co_return failed("accept: " + ec.message());
        if (!opt.keep) listener.close();  // one peer: later ones are refused

        std::error_code peer_ec;
        uvkit::endpoint peer = conn.peer_endpoint(peer_ec);
        // The name apart: GCC 12 mishandles a ?: temporary inside a co_await expression.
        std::string name = peer_ec ? std::string{"the peer"} : peer.to_string();
        o = co_await converse(loop, opt, in, out, std::move(conn), std::move(name));
        if (!opt.keep) co_return o;
        if (o.status) std::cerr << "uvcat: " << o.message << std::endl;  // and serve the next one
    }
}

uvkit::task<outcome> udp_server(uvkit::loop& loop, const options& opt, stdio_end& in, stdio_end& out) {
    uvkit::endpoint ep;
    outcome o = co_await local_address(loop, opt, ep);
    if (o.status) co_return o;
    uvkit::udp sock{loop};
    std::error_code ec;
    sock.bind(ep, 0, ec);
    if (ec) co_return failed("cannot bind " + ep.to_string() + ": " + ec.message());
    grow_receive_buffer(sock);
    std::cerr << "listening on " << sock.local_endpoint().to_string() << std::endl;

    // The first datagram names the peer.
    std::vector<char> buf(datagram_buffer);
    uvkit::udp_datagram d = co_await sock.async_recv(buf, ec);
    if (ec == uvkit::errc::canceled) co_return outcome{};
    if (ec) co_return failed("receive: " + ec.message());
    sock.connect(d.sender, ec);
    if (ec) co_return failed("cannot answer " + d.sender.to_string() + ": " + ec.message());

    session s{loop, in, out, d.sender.to_string(), opt.wait};
    co_await s.run(udp_upload(s, sock), udp_download(s, sock, std::string(buf.data(), d.size)));
    co_return from_session(s, opt);
}

uvkit::task<void> run_mode(uvkit::loop& loop, const options& opt, stdio_end& in, stdio_end& out,
                           outcome& result) {
    // Plain ifs: GCC 12 mishandles a task chosen by ?: inside co_await.
    if (opt.listen && opt.udp)
        result = co_await udp_server(loop, opt, in, out);
    else if (opt.listen)
        result = co_await tcp_server(loop, opt, in, out);
    else if (opt.udp)
        result = co_await udp_client(loop, opt, in, out);
    else
        result = co_await tcp_client(loop, opt, in, out);
}

// The whole program: the mode under a task group that SIGINT/SIGTERM cancel.
uvkit::task<outcome> uvcat(uvkit::loop& loop, const options& opt) {
    stdio_end in{loop, 0};
    stdio_end out{loop, 1};
    outcome result;
    bool stopping = false;

    uvkit::task_group everything{loop};
    uvkit::signal sigint{loop};
    uvkit::signal sigterm{loop};
    auto stop = [&](int) {
        stopping = true;
        everything.cancel();
        // Back to the default action: a second signal ends a shutdown that hangs.
        sigint.stop();
        sigterm.stop();
    };
    sigint.start(SIGINT, stop);
    sigterm.start(SIGTERM, stop);

    everything.spawn(run_mode(loop, opt, in, out, result));
    std::error_code ec;
    co_await everything.join(ec);
    if (stopping) co_return outcome{};
    co_return result;
}

// Opens /dev/null onto each of fds 0-2 that is closed; returns which were
// (bit fd set). In order from 0, so open() takes exactly the closed number.
unsigned reserve_standard_fds() {
    unsigned closed = 0;
#if defined(__unix__) || defined(__APPLE__)
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        closed |= 1u << fd;
        int got = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (got != fd) {  // cannot happen unless another thread opens files now
            if (got >= 0) ::close(got);
            std::_Exit(1);
        }
    }
#endif
    return closed;
}

}  // namespace

int main(int argc, char** argv) {
    const unsigned closed_fds = reserve_standard_fds();  // before anything opens a descriptor
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::cout << usage_text;
            return 0;
        }
        if (arg == "--") break;
    }
    options opt;
    if (std::string problem = parse_args(argc, argv, opt); !problem.empty()) {
        std::cerr << "uvcat: " << problem << "; see uvcat --help\n";
        return 2;
    }

    if (closed_fds & 2u) {
        std::cerr << "uvcat: stdout is closed: nowhere to write what the peer sends\n";
        return 1;
    }

#ifdef UVKIT_HAVE_TLS
    if (opt.tls) {
        if (std::string problem = make_tls_context(opt); !problem.empty()) {
            std::cerr << "uvcat: " << problem << "\n";
            return 1;
        }
    }
#endif

#ifdef SIGPIPE
    // Writing to a peer (or a stdout pipe) that is gone raises SIGPIPE, which
    // kills the process by default; ignored, the write fails with EPIPE and
    // uvcat says so.
    std::signal(SIGPIPE, SIG_IGN);
#endif

    try {
        uvkit::loop loop;
        outcome o = uvkit::run(loop, uvcat(loop, opt));
        if (o.status) std::cerr << "uvcat: " << o.message << "\n";
        return o.status;
    } catch (const std::exception& e) {
        std::cerr << "uvcat: " << e.what() << "\n";
        return 1;
    }
}
