// co_chat: a line-based chat server. Every line a client sends goes to every
// other client, as "NAME: text" where NAME is the sender's address.
//
//     co_chat [--host H] [--port P] [--idle SECS] [--dump-on SIGUSR1]
//     (defaults: 127.0.0.1, port 0, 60 s, no dump)
//
// The first line on stdout is "listening on H:P"; then one line per client
// that joins ("join NAME") or leaves ("leave NAME (reason)"). Try it with two
// terminals running `nc 127.0.0.1 PORT`. Writing these lines never holds the
// server up: when stdout is a pipe nobody reads, past 64 KiB waiting the lines
// are dropped, and counted in a line "(N log lines dropped: ...)".
//
// Rules, and the piece of structured concurrency behind each:
// - A client that completes no line for SECS seconds gets "bye: idle
//   timeout" and is disconnected: every read runs under with_timeout, which
//   cancels the read when the deadline passes.
// - A line longer than 4 KiB gets "bye: line too long" and a disconnect
//   (async_read_until's limit).
// - Writes to a client never hold up anyone else: each client has an outbox
//   (a uvkit::channel of messages), drained in order by its own writer task. A client whose outbox grows
//   beyond 256 KiB, or that takes no bytes for 10 s, is a slow reader and is
//   cut off: cancelling its task group stops its reader and its writer.
// - A client that sends faster than the others read is held back instead of
//   getting them cut off: before each of its lines goes out, if another
//   client's outbox holds more than 128 KiB, its reader waits (a uvkit::event
//   the writers set) until every outbox is down to 64 KiB. A client that
//   keeps a sender waiting and takes no bytes for 2 s is a slow reader too.
// - SIGINT or SIGTERM cancels the group of connections: the accept loop and
//   every client stop, and the server exits 0.
// - With --dump-on SIGUSR1 (or SIGUSR2; POSIX only), that signal prints
//   uvkit::dump_tasks(): every task and what it waits on, to stderr, between
//   the lines "task dump:" and "end of task dump":
//       task (run): join 2 children
//         task: accept tcp 127.0.0.1:5000
//         task: join 2 children
//           task: with_timeout 60000 ms
//             task: read until tcp 127.0.0.1:40312
//           task: channel recv
//
// Exit status: 0 after SIGINT/SIGTERM, 2 for bad arguments, 1 if the address
// cannot be bound or listened on.
#include <uvkit/uvkit.hpp>

#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <deque>
#include <exception>
#include <iostream>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t max_line = 4096;          // bytes before the '\n'
constexpr std::size_t max_queued = 256 * 1024;  // a client's outbox, in bytes
constexpr std::chrono::milliseconds write_deadline = 10s;
// Backpressure on a sender (wait_for_readers): it waits while another client's
// outbox is above high_water, until all are at most low_water. Half the limit
// leaves room for what other senders add meanwhile. A client that holds it up
// and takes no bytes for stall_time is cut off: shorter than write_deadline,
// since every sender waits for it.
constexpr std::size_t high_water = max_queued / 2;
constexpr std::size_t low_water = max_queued / 4;
constexpr std::chrono::milliseconds stall_time = 2s;
constexpr std::chrono::milliseconds linger_time = 1s;  // for a client to close after our FIN

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::chrono::seconds idle = 60s;
    int dump_signal = 0;  // --dump-on: 0 for none
};

constexpr const char* usage_line =
    " [--host ADDRESS] [--port PORT] [--idle SECONDS] [--dump-on SIGUSR1|SIGUSR2]\n";

int usage(const char* argv0, std::string_view problem) {
    std::cerr << argv0 << ": " << problem << "\n"
              << "usage: " << argv0 << usage_line;
    return 2;
}

bool parse_number(std::string_view text, unsigned max, unsigned& out) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value > max) return false;
    out = value;
    return true;
}

using message = std::shared_ptr<const std::string>;  // one copy, however many readers

class room;

// A connected client. It lives in its session coroutine's frame, so its
// address is stable for as long as any of its tasks runs.
struct client {
    client(uvkit::loop& loop, uvkit::tcp s, std::string n)
        : socket(std::move(s)), name(std::move(n)), outbox(loop, max_queued), tasks(loop) {}
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    uvkit::tcp socket;
    std::string name;
    std::list<client*>::iterator seat;  // in room::members_, while in_room
    bool in_room = false;
    // Every message is at least one byte, so the byte limit is reached before
    // the channel is full: sending never waits.
    uvkit::channel<message> outbox;
    std::size_t queued = 0;                  // bytes in outbox and in the write in flight
    std::chrono::milliseconds last_write{};  // loop time its last write completed
    bool leaving = false;                    // takes no more messages
    bool dropped = false;                    // cut off: no goodbye, no lingering close
    uvkit::task_group tasks;                 // its reader and writer; last, so destroyed first
};

// The log on stdout, written without ever blocking the loop (a blocking write
// to a pipe nobody reads would stop the whole server): on a pipe or a
// terminal through a uvkit stream, and a line that finds more than 64 KiB
// still queued there is dropped and counted; anything else (a file) through
// std::cout.
class log_out {
public:
    explicit log_out(uvkit::loop& loop) : loop_(loop) {
        std::error_code ec;
        try {
            switch (uv_guess_handle(1)) {
                case UV_NAMED_PIPE: out_.emplace<uvkit::pipe>(loop).open(1, ec); break;
                case UV_TTY: out_.emplace<uvkit::tty>(loop, 1); break;
                default: return;
            }
        } catch (const std::system_error& e) {
            ec = e.code();
        }
        if (ec) out_.emplace<std::monostate>();  // std::cout, as for a file
    }

    void line(std::string text) {
        text += '\n';
        uvkit::stream* s = stream();
        if (!s) {
            std::cout << text << std::flush;
            return;
        }
        if (s->write_queue_size() > max_queued_log) {
            ++dropped_;
            return;
        }
        write(*s, dropped_count() + text);
    }

    // Before exit: what is still queued gets up to a second to go out.
    void finish() {
        uvkit::stream* s = stream();
        if (!s) return;
        if (dropped_ > 0) write(*s, dropped_count());
        if (s->write_queue_size() == 0) return;
        bool expired = false;
        uvkit::timer give_up{loop_};
        give_up.start(1s, [&] { expired = true; });
        while (!expired && s->write_queue_size() > 0) loop_.run(uvkit::run_mode::once);
    }

private:
    static constexpr std::size_t max_queued_log = 64 * 1024;
    // "(N log lines dropped: ...)\n" for the lines dropped since the last one, or "".
    std::string dropped_count() {
        if (dropped_ == 0) return {};
        return "(" + std::to_string(std::exchange(dropped_, 0)) +
               " log lines dropped: stdout was not read)\n";
    }
    static void write(uvkit::stream& s, std::string text) {
        std::error_code ec;
        s.write(std::move(text), nullptr, ec);  // an error (stdout gone) loses the line, nothing else
    }
    uvkit::stream* stream() noexcept {
        if (auto* p = std::get_if<uvkit::pipe>(&out_)) return p;
        if (auto* t = std::get_if<uvkit::tty>(&out_)) return t;
        return nullptr;
    }
    uvkit::loop& loop_;
    std::variant<std::monostate, uvkit::pipe, uvkit::tty> out_;
    std::size_t dropped_ = 0;
};

class room {
public:
    room(uvkit::loop& loop, log_out& log, std::chrono::milliseconds idle)
        : loop_(loop), log_(log), idle_(idle), drained_(loop) {}
    room(const room&) = delete;
    room& operator=(const room&) = delete;

    uvkit::loop& loop() const noexcept { return loop_; }
    std::chrono::milliseconds idle() const noexcept { return idle_; }

    void enter(client& c) {
        c.seat = members_.insert(members_.end(), &c);
        c.in_room = true;
        log_.line("join " + c.name);
    }

    // Idempotent: the first reason wins.
    void leave(client& c, std::string_view reason) {
        c.leaving = true;
        if (!c.in_room) return;
        members_.erase(c.seat);
        c.in_room = false;
        notify_drained();  // a sender waiting for its outbox need not wait any longer
        log_.line("leave " + c.name + " (" + std::string{reason} + ")");
    }

    // True if a client other than `from` has more than `mark` bytes queued.
    bool backlogged(const client& from, std::size_t mark) const {
        for (const client* c : members_)
            if (c != &from && c->queued > mark) return true;
        return false;
    }

    // Cuts off the clients other than `from` that are above high_water and
    // completed no write for stall_time.
    void drop_stalled(const client& from) {
        for (auto it = members_.begin(); it != members_.end();) {
            client& c = **it;
            ++it;  // drop() erases c's node
            if (&c != &from && c.queued > high_water && loop_.now() - c.last_write >= stall_time)
                drop(c, "slow reader");
        }
    }

    // Until no client other than `from` has more than low_water bytes queued.
    // The event may be set for another client's outbox: check again.
    uvkit::task<void> drained(const client& from) {
        while (backlogged(from, low_water)) {
            drained_.reset();
            co_await drained_.wait();
        }
    }

    // An outbox went down to low_water, or a client left.
    void notify_drained() noexcept { drained_.set(); }

    void broadcast(const client& from, std::string_view text) {
        auto msg = std::make_shared<const std::string>(from.name + ": " + std::string{text} + "\n");
        for (auto it = members_.begin(); it != members_.end();) {
            client& to = **it;
            ++it;  // send() may drop `to`, which erases its node
            if (&to != &from) send(to, msg);
        }
    }

    void send(client& c, message msg) {
        if (c.leaving) return;
        if (c.queued + msg->size() > max_queued) return drop(c, "slow reader");
        enqueue(c, std::move(msg));
    }

    // The client's last line: bypasses `leaving`, which the caller just set.
    void send_last(client& c, std::string text) {
        enqueue(c, std::make_shared<const std::string>(std::move(text)));
    }

    // Cuts a client off at once: its reader and writer are cancelled (a write
    // in flight closes the socket).
    void drop(client& c, std::string_view reason) {
        leave(c, reason);
        c.dropped = true;
        c.tasks.cancel();
    }

    void close() noexcept { closing_ = true; }
    bool closing() const noexcept { return closing_; }

private:
    void enqueue(client& c, message msg);

    uvkit::loop& loop_;
    log_out& log_;
    std::chrono::milliseconds idle_;
    std::list<client*> members_;
    uvkit::event drained_;  // wakes the senders waiting in drained()
    bool closing_ = false;
};

// Drains a client's outbox in order until it is closed and empty (the reader
// closes it when it ends) or the client is dropped. The only writer of its
// socket, so lines never interleave.
uvkit::task<void> write_all(room& r, client& c) {
    std::string_view failure;
    try {
        while (std::optional<message> msg = co_await c.outbox.recv()) {
            // *msg keeps the bytes alive while the write is in flight.
            co_await uvkit::with_timeout(r.loop(), write_deadline,
                                         c.socket.async_write(std::string_view(**msg)));
            std::size_t before = c.queued;
            c.queued -= (*msg)->size();
            c.last_write = r.loop().now();
            if (before > low_water && c.queued <= low_water) r.notify_drained();
        }
    } catch (const std::system_error& e) {
        if (e.code() == std::errc::timed_out)
            failure = "slow reader";
        else if (e.code() != uvkit::errc::canceled)
            failure = "write failed";
    }
    if (!failure.empty()) r.drop(c, failure);
}

void room::enqueue(client& c, message msg) {
    std::size_t n = msg->size();
    if (!c.outbox.try_send(msg)) return;  // closed: the client is leaving
    c.queued += n;
}

uvkit::task<std::size_t> read_line(uvkit::tcp& socket, std::string& buf) {
    co_return co_await socket.async_read_until(buf, "\n", max_line);
}

// Backpressure: a client's lines are broadcast as fast as it sends them
// (async_read_until returns at once while the buffer holds a line, so a single
// write of 20,000 short lines is broadcast without the writers running in
// between), and each outbox would pass max_queued, cutting off clients that
// read promptly. So the sender waits while another outbox is above
// high_water, and the writers catch up. The wait is not bounded by time
// (a client that reads, however slowly, is waited for) but by progress: every
// stall_time, the clients still holding it up that took no bytes meanwhile
// are cut off, since each of them holds up the whole room.
uvkit::task<void> wait_for_readers(room& r, const client& from) {
    while (r.backlogged(from, high_water)) {
        try {
            co_await uvkit::with_timeout(r.loop(), stall_time, r.drained(from));
        } catch (const std::system_error& e) {
            if (e.code() != std::errc::timed_out) throw;  // cancelled: read_all stops
            r.drop_stalled(from);
        }
    }
}

// Reads lines and hands them to the room, each under the idle deadline.
uvkit::task<void> read_all(room& r, client& c) {
    std::string buf;
    std::string_view reason;
    bool goodbye = false;  // tell the client why before disconnecting it
    for (;;) {
        std::size_t n = 0;
        try {
            n = co_await uvkit::with_timeout(r.loop(), r.idle(), read_line(c.socket, buf));
            co_await wait_for_readers(r, c);
        } catch (const std::system_error& e) {
            const std::error_code& ec = e.code();
            goodbye = ec == std::errc::timed_out || ec == std::errc::message_size;
            reason = ec == std::errc::timed_out      ? "idle timeout"
                     : ec == std::errc::message_size ? "line too long"
                     : ec == uvkit::errc::eof        ? "quit"
                     : ec == uvkit::errc::canceled   ? (r.closing() ? "server shutdown" : "cancelled")
                                                     : "read failed";
            break;
        }
        std::string_view line(buf.data(), n - 1);  // without the '\n'
        if (line.size() > max_line) {              // it came in one chunk with its '\n'
            goodbye = true;
            reason = "line too long";
            break;
        }
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        r.broadcast(c, line);
        buf.erase(0, n);
    }
    r.leave(c, reason);
    // Queued lines still go out (the writer drains the outbox), the goodbye last.
    if (goodbye) r.send_last(c, "bye: " + std::string{reason} + "\n");
    c.outbox.close();
}

uvkit::task<void> discard_input(uvkit::tcp& socket) {
    char buf[4096];
    std::error_code ec;
    while (co_await socket.async_read(std::span<char>(buf), ec) > 0) {
    }
}

uvkit::task<void> session(room& r, uvkit::tcp socket) {
    std::error_code ec;
    uvkit::endpoint peer = socket.peer_endpoint(ec);
    client c{r.loop(), std::move(socket), ec ? std::string{"?"} : peer.to_string()};
    r.enter(c);
    (void)c.tasks.spawn(read_all(r, c));
    (void)c.tasks.spawn(write_all(r, c));
    try {
        co_await c.tasks.join();  // the reader, and the writer once the outbox is empty
    } catch (const std::system_error& e) {
        if (e.code() != uvkit::errc::canceled) throw;
    }
    r.leave(c, "server shutdown");            // if the join was cancelled, before the reader got to it
    if (c.dropped || r.closing()) co_return;  // ~client closes the socket
    // A graceful close: FIN after the last line, then read (and drop) what the
    // client still sends until it closes too. Closing with unread input would
    // reset the connection, and the client could lose its "bye" line.
    co_await c.socket.async_shutdown(ec);
    if (ec) co_return;
    try {
        co_await uvkit::with_timeout(r.loop(), linger_time, discard_input(c.socket));
    } catch (const std::system_error&) {
        // The client did not close in time: closing it is all that is left.
    }
}

uvkit::task<void> accept_all(room& r, uvkit::tcp& listener, uvkit::task_group& connections) {
    for (;;) {
        std::error_code ec;
        uvkit::tcp conn = co_await listener.async_accept(ec);
        if (ec == uvkit::errc::canceled) co_return;  // shutting down
        if (ec) {
            std::cerr << "accept: " << ec.message() << "\n";
            continue;
        }
        (void)connections.spawn(session(r, std::move(conn)));
    }
}

uvkit::task<void> serve(uvkit::loop& loop, uvkit::tcp& listener, log_out& log, std::chrono::milliseconds idle,
                        int dump_signal) {
    room r{loop, log, idle};
    // The accept loop and every session: cancelling the group stops them all,
    // and join() returns once they are gone.
    uvkit::task_group connections{loop};

    uvkit::signal sigint{loop};
    uvkit::signal sigterm{loop};
    auto stop = [&](int) {
        r.close();
        connections.cancel();
        // Back to the default action: a second Ctrl-C ends a shutdown that hangs.
        sigint.stop();
        sigterm.stop();
    };
    sigint.start(SIGINT, stop);
    sigterm.start(SIGTERM, stop);
    uvkit::signal dump{loop};
    if (dump_signal != 0)
        dump.start(dump_signal, [&](int) {
            std::cerr << "task dump:\n" << uvkit::dump_tasks(loop) << "end of task dump" << std::endl;
        });

    log.line("listening on " + listener.local_endpoint().to_string());
    (void)connections.spawn(accept_all(r, listener, connections));
    co_await connections.join();
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::cout << "usage: " << argv[0] << usage_line;
            return 0;
        }
        if (arg != "--host" && arg != "--port" && arg != "--idle" && arg != "--dump-on")
            return usage(argv[0], "unknown argument '" + std::string{arg} + "'");
        if (i + 1 == argc) return usage(argv[0], std::string{arg} + " needs a value");
        std::string_view value = argv[++i];
        unsigned number = 0;
        if (arg == "--host") {
            opt.host = value;
        } else if (arg == "--port") {
            if (!parse_number(value, 65535, number))
                return usage(argv[0], "bad port '" + std::string{value} + "'");
            opt.port = static_cast<std::uint16_t>(number);
        } else if (arg == "--dump-on") {
#if defined(SIGUSR1) && defined(SIGUSR2)
            if (value == "SIGUSR1")
                opt.dump_signal = SIGUSR1;
            else if (value == "SIGUSR2")
                opt.dump_signal = SIGUSR2;
            else
                return usage(argv[0],
                             "bad --dump-on signal '" + std::string{value} + "' (SIGUSR1 or SIGUSR2)");
#else
            return usage(argv[0], "--dump-on needs SIGUSR1/SIGUSR2, which this platform does not have");
#endif
        } else {
            if (!parse_number(value, 24 * 3600, number) || number == 0)
                return usage(argv[0], "bad idle timeout '" + std::string{value} + "' (1 to 86400 seconds)");
            opt.idle = std::chrono::seconds{number};
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
        log_out log{loop};
        uvkit::run(loop, serve(loop, listener, log, opt.idle, opt.dump_signal));
        log.finish();
    } catch (const std::exception& e) {
        std::cerr << argv[0] << ": " << e.what() << "\n";
        return 1;
    }
}
