// uvhttpd: a small HTTP/1.1 server: a fixed /hello, and static files from a
// directory, with keep-alive and pipelining, on one loop or on N loops on N
// threads sharing one port.
//
//     uvhttpd [--host H] [--port P] [--threads N] [--dir D] [--idle SECS]
//             [--header-timeout SECS] [--body-timeout SECS] [--max-conns N]
//             [--max-requests N] [--balance pass|shared] [--stats]
//
// Defaults: 127.0.0.1, port 0, 1 thread, no directory (only /hello), idle
// 10 s, header timeout 10 s, body timeout 30 s, 4096 connections, 1000
// requests per connection, pass. The first line on stdout is
// "listening on H:P" with the real port.
//
// What it serves:
// - GET or HEAD /hello: "Hello, world!\n" as text/plain.
// - GET or HEAD of a file below --dir (a directory means its index.html),
//   with a Content-Type from the extension. Files are read on libuv's thread
//   pool with std::ifstream, 256 KiB at a time, and each chunk is written
//   before the next one is read: a large file never sits in memory and a
//   slow client holds up only its own connection. (uvkit wraps no file
//   system API, and std::ifstream on the pool is portable and blocks nobody
//   but a pool thread; a libuv uv_fs_read would do the same work on the same
//   pool.)
// - Any other method: 405 with "Allow: GET, HEAD".
// - A target that could leave --dir ("..", "%2e%2e", "//", '\', ':', NUL,
//   an encoded '/'): 403, whether or not what it names exists (see
//   http::target_path). A name that is not there: 404.
// - Symbolic links inside --dir are followed only as far as --dir: the real
//   path of what a request names (every link resolved) must lie below the
//   real path of --dir, else 403. The file opened is that real path. (A link
//   replaced between the check and the open is not caught: whoever can write
//   into --dir can serve what they like anyway.)
// - Requests the parser refuses (http_request.hpp): 400, 413 (Content-Length
//   beyond 1 MiB), 414, 431 (header block beyond 8 KiB or 100 fields), 501
//   (Transfer-Encoding), 505; the connection is closed after the answer.
//
// Connections: HTTP/1.1 keeps the connection unless "Connection: close";
// HTTP/1.0 only with "Connection: keep-alive". Pipelined requests are read
// from one buffer and answered in order, one at a time. After --max-requests
// answers, or a close, the server sends FIN after the last response and
// drains what the client still sends for up to 1 s (closing with unread
// input would reset the connection and could destroy the answer). A
// connection that sends nothing, or takes none of the response, for --idle
// seconds is closed without an answer.
//
// Slow and greedy clients: the whole head of a request (request line to the
// empty line) must arrive within --header-timeout seconds of its first byte,
// however the bytes trickle in, and the whole body within --body-timeout
// seconds of the head; else the connection is closed without an answer. A
// body is never kept: no method served here takes one, so its bytes are
// dropped as they arrive (the answer follows the last one), and what a
// connection buffers is bounded by the header limit and one 16 KiB read.
// Beyond --max-conns open connections (all threads together), a new one is
// answered "503 Service Unavailable" with "Connection: close" and closed.
//
// Threads (--threads N > 1): the main loop binds and listens, N worker loops
// on N threads serve, and each worker gets its connections over an IPC pipe
// (uvkit::pipe, handle passing, portable across libuv's platforms; libuv 1.44
// has no portable SO_REUSEPORT):
// - pass (default): the main loop accepts every connection and passes it to
//   the workers in turn, round-robin;
// - shared: the main loop passes the listening socket itself to every worker
//   and each accepts on it; the kernel decides who gets which connection.
// The README has the measured balance of both (--stats prints the requests
// and connections of each worker when the server stops).
//
// Exit status: 0 after SIGINT/SIGTERM (connections are cut, the server
// stops), 2 for bad arguments, 1 if the address cannot be bound or listened
// on. Try it with:  curl -v http://127.0.0.1:PORT/hello
#include <uvkit/uvkit.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "http_request.hpp"

using namespace std::chrono_literals;

namespace {

constexpr std::size_t read_size = 16 * 1024;    // one socket read, in the connection's frame
constexpr std::size_t file_chunk = 256 * 1024;  // one file read on the pool
constexpr std::chrono::milliseconds linger_time = 1s;
constexpr int backlog = 511;
constexpr std::string_view hello_body = "Hello, world!\n";

enum class balance { pass, shared };

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    unsigned threads = 1;
    std::string dir;  // empty: no files, only /hello
    std::chrono::seconds idle = 10s;
    std::chrono::seconds header_timeout = 10s;
    std::chrono::seconds body_timeout = 30s;
    unsigned max_conns = 4096;
    unsigned max_requests = 1000;
    balance mode = balance::pass;
    bool stats = false;
};

// What every connection of every worker reads, never writes.
// What every connection of every worker reads; only `open` is written (atomically).
struct config {
    std::filesystem::path root;  // empty: no files; else canonical (no links, no "..")
    http::limits limits;
    std::chrono::milliseconds idle{};
    std::chrono::milliseconds header_timeout{};
    std::chrono::milliseconds body_timeout{};
    unsigned max_requests = 0;
    unsigned max_conns = 0;
    mutable std::atomic<unsigned> open{0};  // connections being served, all workers
};

struct worker_stats {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> connections{0};
};

constexpr std::string_view usage_text =
    "[--host ADDRESS] [--port PORT] [--threads N] [--dir DIR] [--idle SECONDS]\n"
    "       [--header-timeout SECONDS] [--body-timeout SECONDS] [--max-conns N]\n"
    "       [--max-requests N] [--balance pass|shared] [--stats]\n";

int usage(const char* argv0, std::string_view problem) {
    std::cerr << argv0 << ": " << problem << "\n"
              << "usage: " << argv0 << " " << usage_text;
    return 2;
}

bool parse_number(std::string_view text, unsigned min, unsigned max, unsigned& out) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) return false;
    out = value;
    return true;
}

// ---------------------------------------------------------------- responses

std::string_view reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 431: return "Request Header Fields Too Large";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Internal Server Error";
    }
}

std::string_view content_type(std::string_view path) {
    static constexpr std::pair<std::string_view, std::string_view> types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".svg", "image/svg+xml"},
        {".ico", "image/x-icon"},
        {".pdf", "application/pdf"},
        {".wasm", "application/wasm"},
    };
    std::size_t slash = path.rfind('/');
    std::size_t dot = path.rfind('.');
    if (dot != std::string_view::npos && (slash == std::string_view::npos || dot > slash)) {
        std::string_view ext = path.substr(dot);
        for (const auto& [e, type] : types)
            if (http::iequals(ext, e)) return type;
    }
    return "application/octet-stream";
}

// The Date header's value (an origin server with a clock must send one),
// formatted once a second per thread.
std::string_view http_date() {
    thread_local std::chrono::sys_seconds cached{};
    thread_local char text[32] = "";
    auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    if (now != cached) {
        static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        auto day = std::chrono::floor<std::chrono::days>(now);
        std::chrono::year_month_day ymd{day};
        std::chrono::hh_mm_ss hms{now - day};
        std::snprintf(text, sizeof text, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                      days[std::chrono::weekday{day}.c_encoding()], static_cast<unsigned>(ymd.day()),
                      months[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                      static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                      static_cast<int>(hms.seconds().count()));
        cached = now;
    }
    return text;
}

// The status line and header fields of a response, up to the empty line.
std::string response_head(int status, std::string_view type, std::uint64_t length, bool keep_alive, int minor,
                          std::string_view extra = {}) {
    std::string h;
    h.reserve(192);
    h += "HTTP/1.1 ";
    h += std::to_string(status);
    h += ' ';
    h += reason(status);
    h += "\r\nServer: uvhttpd\r\nDate: ";
    h += http_date();
    h += "\r\nContent-Type: ";
    h += type;
    h += "\r\nContent-Length: ";
    h += std::to_string(length);
    h += "\r\n";
    if (!keep_alive)
        h += "Connection: close\r\n";
    else if (minor == 0)
        h += "Connection: keep-alive\r\n";  // HTTP/1.0 closes unless told otherwise
    h += extra;
    h += "\r\n";
    return h;
}

// A short text/plain answer for an error status.
std::string error_response(int status, bool keep_alive, int minor, bool head_only,
                           std::string_view extra = {}) {
    std::string body = std::to_string(status) + " " + std::string{reason(status)} + "\n";
    std::string r = response_head(status, "text/plain; charset=utf-8", body.size(), keep_alive, minor, extra);
    if (!head_only) r += body;
    return r;
}

// ---------------------------------------------------------------- a connection

// A file opened on the pool, or why not.
struct opened_file {
    int status = 404;
    std::uint64_t size = 0;
    std::shared_ptr<std::ifstream> in;
    std::string name;  // for the Content-Type
};

// True if `real` is `root` or lies below it; both canonical.
bool inside(const std::filesystem::path& root, const std::filesystem::path& real) {
    auto r = root.begin();
    for (auto p = real.begin(); r != root.end(); ++r, ++p) {
        if (p == real.end()) return false;
        // The root's last component may be empty (a trailing '/'): it matches anything.
        if (r->empty() && std::next(r) == root.end()) return true;
        if (*r != *p) return false;
    }
    return true;
}

// The real path of `p` (every link resolved) into `real`: 0 if it lies below
// `root` (canonical), 404 if it does not exist, 403 if it lies outside.
int resolve_inside(const std::filesystem::path& root, const std::filesystem::path& p,
                   std::filesystem::path& real) {
    std::error_code ec;
    real = std::filesystem::canonical(p, ec);
    if (ec) return 404;  // missing, a dangling link, a loop of links
    return inside(root, real) ? 0 : 403;
}

// Runs on a pool thread: the checks and the open, which may block on the disk.
opened_file open_file(const std::filesystem::path& root, const std::string& rel) {
    namespace fs = std::filesystem;
    opened_file f;
    std::error_code ec;
    fs::path named = rel.empty() ? root : root / fs::path(rel);  // its extension gives the type
    fs::path full;
    if (int status = resolve_inside(root, named, full)) {
        f.status = status;
        return f;
    }
    fs::file_status st = fs::status(full, ec);
    if (!ec && fs::is_directory(st)) {
        named = "index.html";
        if (int status = resolve_inside(root, full / named, full)) {
            f.status = status;
            return f;
        }
        st = fs::status(full, ec);
    }
    if (ec || !fs::is_regular_file(st)) return f;  // missing, or a socket, a device...
    std::uint64_t size = fs::file_size(full, ec);
    if (ec) return f;
    auto in = std::make_shared<std::ifstream>(full, std::ios::binary);
    if (!in->is_open()) {
        f.status = 403;  // there, but not readable
        return f;
    }
    f.status = 200;
    f.size = size;
    f.in = std::move(in);
    f.name = named.filename().string();
    return f;
}

// One client. Its state is the coroutine's frame; the loop's task_group owns it.
class connection {
public:
    connection(uvkit::loop& loop, const config& cfg, worker_stats& stats, uvkit::tcp socket)
        : loop_(loop), cfg_(cfg), stats_(stats), socket_(std::move(socket)), deadline_(loop) {}

    uvkit::task<void> serve() {
        // One timer holds every deadline: re-armed before each read and
        // write with the idle timeout, cut short by the head's or the body's
        // deadline. When it fires, the socket is closed, which completes the
        // waiting operation with errc::canceled: cheaper than a with_timeout
        // per read.
        std::string in;  // received, not yet answered: bounded by the header limit and one read
        unsigned served = 0;
        std::chrono::milliseconds head_until{0};  // loop time; 0: no request head begun
        for (;;) {
            http::parse_result r = http::parse_request(in, cfg_.limits);
            if (r.state == http::parse_state::need_more && r.head_size == 0) {
                // Waiting for (the rest of) a head. Its deadline counts from
                // its first byte and is not moved by the bytes that follow.
                if (!in.empty() && head_until.count() == 0) head_until = loop_.now() + cfg_.header_timeout;
                arm(head_until);
                std::error_code ec;
                std::size_t n = co_await socket_.async_read(std::span<char>(buf_), ec);
                if (ec || n == 0) co_return;  // EOF, reset, a timeout or shutdown
                in.append(buf_.data(), n);
                continue;
            }
            if (r.state == http::parse_state::error) {
                // The rest of the stream cannot be trusted: answer, then close.
                if (co_await send(error_response(r.status, false, 1, false))) co_await linger();
                co_return;
            }
            head_until = std::chrono::milliseconds{0};
            std::string next;  // bytes after a dropped body: the next request's
            if (r.state == http::parse_state::need_more) {
                // The head is in, the body is not: it is dropped as it
                // arrives, not kept (`in` and with it r.req stay as they are).
                const std::size_t have = in.size() - r.head_size;
                if (!co_await drop_body(r.body_length - have, next)) co_return;
                r.consumed = in.size();
            }
            ++served;
            stats_.requests.fetch_add(1, std::memory_order_relaxed);
            bool keep = r.req.keep_alive && served < cfg_.max_requests;
            bool ok = co_await respond(r.req, keep);  // r.req points into `in`
            if (!ok) co_return;
            if (!keep) {
                co_await linger();
                co_return;
            }
            in.erase(0, r.consumed);
            in += next;
        }
    }

private:
    // (Re)arms the deadline: --idle from now, but never past `until` (loop
    // time; 0: no such limit).
    void arm(std::chrono::milliseconds until = std::chrono::milliseconds{0}) {
        std::chrono::milliseconds t = cfg_.idle;
        if (until.count() != 0) {
            const std::chrono::milliseconds now = loop_.now();
            t = std::min(t, until > now ? until - now : std::chrono::milliseconds{0});
        }
        std::error_code ec;
        deadline_.start(
            t, [this] { socket_.close(); }, ec);
    }

    // Reads and drops `left` bytes of a body within --body-timeout; what
    // arrives after them goes to `next`. False if the connection is gone.
    uvkit::task<bool> drop_body(std::size_t left, std::string& next) {
        const std::chrono::milliseconds until = loop_.now() + cfg_.body_timeout;
        while (left > 0) {
            arm(until);
            std::error_code ec;
            std::size_t n = co_await socket_.async_read(std::span<char>(buf_), ec);
            if (ec || n == 0) co_return false;
            const std::size_t body = std::min(n, left);
            left -= body;
            next.append(buf_.data() + body, n - body);
        }
        co_return true;
    }

    // Writes `bytes` (owned) under the idle deadline; false if the connection is gone.
    uvkit::task<bool> send(std::string bytes) {
        arm();
        std::error_code ec;
        co_await socket_.async_write(std::move(bytes), ec);
        co_return !ec;
    }

    uvkit::task<bool> respond(const http::request& req, bool keep) {
        const bool head_only = req.method == "HEAD";
        if (http::method_status(req.method) != 0) {
            std::string extra = "Allow: " + std::string{http::allowed_methods} + "\r\n";
            co_return co_await send(error_response(405, keep, req.minor, head_only, extra));
        }
        http::path_result p = http::target_path(req.target);
        if (p.status != 0) co_return co_await send(error_response(p.status, keep, req.minor, head_only));
        if (p.path == "hello") {
            std::string r =
                response_head(200, "text/plain; charset=utf-8", hello_body.size(), keep, req.minor);
            if (!head_only) r += hello_body;
            co_return co_await send(std::move(r));
        }
        if (cfg_.root.empty()) co_return co_await send(error_response(404, keep, req.minor, head_only));

        // Named, not written inside the co_await: GCC 12 destroys twice a
        // lambda with captured objects there (README, "compiler pitfalls").
        auto open = [root = cfg_.root, rel = std::move(p.path)] { return open_file(root, rel); };
        std::error_code ec;
        opened_file f = co_await uvkit::async_work(loop_, std::move(open), ec);
        if (ec) co_return false;  // cancelled: shutting down
        if (f.status != 200) co_return co_await send(error_response(f.status, keep, req.minor, head_only));
        if (!co_await send(response_head(200, content_type(f.name), f.size, keep, req.minor)))
            co_return false;
        if (head_only) co_return true;
        co_return co_await send_file(std::move(f.in), f.size);
    }

    // Streams `size` bytes of `in`, one chunk read on the pool, then written,
    // then the next: at most one chunk in memory, and a client that reads
    // slowly slows down only its own reads. The work function owns what it
    // touches (shared_ptrs), so a cancelled await never leaves it with
    // dangling pointers.
    uvkit::task<bool> send_file(std::shared_ptr<std::ifstream> in, std::uint64_t size) {
        auto chunk = std::make_shared<std::string>();
        while (size > 0) {
            std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, file_chunk));
            auto read_chunk = [in, chunk, n] {  // named: see respond()
                chunk->resize(n);
                in->read(chunk->data(), static_cast<std::streamsize>(n));
                return in->gcount() == static_cast<std::streamsize>(n);
            };
            std::error_code ec;
            bool read = co_await uvkit::async_work(loop_, std::move(read_chunk), ec);
            // A file that shrank cannot give the promised Content-Length: the
            // client must see the connection end rather than a short body.
            if (ec || !read) co_return false;
            arm();
            co_await socket_.async_write(std::string_view(*chunk), ec);
            if (ec) co_return false;
            size -= n;
        }
        co_return true;
    }

    // FIN after the last response, then read and drop what the client still
    // sends until it closes, for at most linger_time.
    uvkit::task<void> linger() {
        std::error_code ec;
        co_await socket_.async_shutdown(ec);
        if (ec) co_return;
        deadline_.start(
            linger_time, [this] { socket_.close(); }, ec);
        while (!ec && co_await socket_.async_read(std::span<char>(buf_), ec) > 0) {
        }
    }

    uvkit::loop& loop_;
    const config& cfg_;
    worker_stats& stats_;
    uvkit::tcp socket_;
    uvkit::timer deadline_;
    std::array<char, read_size> buf_;
};

// A connection beyond --max-conns: a 503, FIN, closed. The answer is small
// enough for the socket's buffer, so this takes no time and no read buffer.
uvkit::task<void> refuse(uvkit::tcp socket) {
    std::error_code ec;
    co_await socket.async_write(error_response(503, false, 1, false), ec);
    if (!ec) co_await socket.async_shutdown(ec);
}

uvkit::task<void> serve_connection(uvkit::loop& loop, const config& cfg, worker_stats& stats,
                                   uvkit::tcp socket) {
    if (cfg.open.fetch_add(1, std::memory_order_relaxed) >= cfg.max_conns) {
        cfg.open.fetch_sub(1, std::memory_order_relaxed);
        co_await refuse(std::move(socket));
        co_return;
    }
    // Counted until the frame goes, however it ends (cancelled at shutdown too).
    struct counted {
        const config& cfg;
        ~counted() { cfg.open.fetch_sub(1, std::memory_order_relaxed); }
    } guard{cfg};
    stats.connections.fetch_add(1, std::memory_order_relaxed);
    std::error_code ec;
    socket.set_nodelay(true, ec);  // responses are small writes: no Nagle delay
    connection c{loop, cfg, stats, std::move(socket)};
    co_await c.serve();
}

uvkit::task<void> accept_all(uvkit::loop& loop, const config& cfg, worker_stats& stats, uvkit::tcp& listener,
                             uvkit::task_group& connections) {
    for (;;) {
        std::error_code ec;
        uvkit::tcp conn = co_await listener.async_accept(ec);
        if (ec == uvkit::errc::canceled) co_return;  // shutting down
        if (ec) {
            // E.g. out of file descriptors: this one is lost, the server goes on.
            std::cerr << "accept: " << ec.message() << "\n";
            continue;
        }
        connections.spawn(serve_connection(loop, cfg, stats, std::move(conn)));
    }
}

// ---------------------------------------------------------------- one loop

uvkit::task<void> serve_single(uvkit::loop& loop, const config& cfg, worker_stats& stats,
                               uvkit::tcp& listener) {
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
    // Only now: a test (or user) may signal as soon as it reads this line.
    std::cout << "listening on " << listener.local_endpoint().to_string() << std::endl;
    connections.spawn(accept_all(loop, cfg, stats, listener, connections));
    co_await connections.join();
}

// ---------------------------------------------------------------- N loops

// A worker's loop: takes what the main loop sends over `ipc` (connections, or
// the listening socket to accept on) and serves it; ends when the main loop
// closes its end of the pipe.
uvkit::task<void> worker_receive(uvkit::loop& loop, const config& cfg, worker_stats& stats, balance mode,
                                 uvkit::pipe& ipc, uvkit::tcp& listener, uvkit::task_group& connections) {
    std::array<char, 64> bytes;  // one byte comes with each handle
    std::error_code ec;
    // In shared mode the listening socket is the first handle on the pipe
    // (the main loop sends it before anything else); any after it are
    // connections the main loop accepted before it closed its copy.
    bool want_listener = mode == balance::shared;
    while (co_await ipc.async_read(std::span<char>(bytes), ec) > 0) {  // 0 at EOF
        while (ipc.pending_count() > 0) {
            uvkit::tcp t{loop};
            std::error_code aec;
            ipc.accept(t, aec);
            if (aec) {
                std::cerr << "worker: cannot take a socket: " << aec.message() << "\n";
                break;
            }
            if (want_listener) {
                want_listener = false;
                listener = std::move(t);
                listener.listen(backlog, aec);
                if (aec) {
                    std::cerr << "worker: listen: " << aec.message() << "\n";
                    continue;
                }
                connections.spawn(accept_all(loop, cfg, stats, listener, connections));
            } else {
                connections.spawn(serve_connection(loop, cfg, stats, std::move(t)));
            }
        }
    }
    connections.cancel();  // the main loop is shutting down
}

uvkit::task<void> worker_task(uvkit::loop& loop, const config& cfg, worker_stats& stats, balance mode,
                              uv_file fd) {
    uvkit::pipe ipc{loop, true};
    ipc.open(fd);
    uvkit::tcp listener;  // before the group: it outlives the accept loop
    uvkit::task_group connections{loop};
    connections.spawn(worker_receive(loop, cfg, stats, mode, ipc, listener, connections));
    co_await connections.join();
}

void worker_main(uv_file fd, const config& cfg, worker_stats& stats, balance mode) {
    try {
        uvkit::loop loop;
        uvkit::run(loop, worker_task(loop, cfg, stats, mode, fd));
    } catch (const std::exception& e) {
        std::cerr << "worker: " << e.what() << "\n";
    }
}

struct worker {
    uvkit::pipe ipc;  // the main loop's end
    std::thread thread;
    std::unique_ptr<worker_stats> stats = std::make_unique<worker_stats>();
};

// The main loop of --threads N: starts the workers, hands out connections
// (pass) or the listening socket (shared), and on SIGINT/SIGTERM closes the
// pipes, which stops every worker. A failed listen is left in `ec`.
void serve_threads(uvkit::loop& loop, const config& cfg, const options& opt, uvkit::tcp& listener,
                   std::vector<worker>& workers, std::error_code& ec) {
    // Each connection stays open on this side until its handle was sent.
    std::list<uvkit::tcp> in_flight;
    std::size_t next = 0;
    auto pass = [&](std::error_code ec) {
        if (ec) {
            std::cerr << "accept: " << ec.message() << "\n";
            return;
        }
        auto it = in_flight.emplace(in_flight.end(), loop);
        listener.accept(*it, ec);
        if (!ec) {
            workers[next++ % workers.size()].ipc.write(
                "c", *it, [&in_flight, it](std::error_code) { in_flight.erase(it); }, ec);
            if (!ec) return;
        }
        in_flight.erase(it);
    };

    listener.listen(backlog, pass, ec);
    if (ec) return;

    for (unsigned i = 0; i < opt.threads; ++i) {
        uv_file fds[2];
#ifdef _WIN32  // a pipe cannot adopt a SOCKET there: a named pipe pair instead
        if (int err = uv_pipe(fds, UV_NONBLOCK_PIPE, UV_NONBLOCK_PIPE); err < 0)
            throw std::system_error(uvkit::make_uv_error(err), "uv_pipe");
#else
        if (int err = uv_socketpair(SOCK_STREAM, 0, fds, 0, 0); err < 0)
            throw std::system_error(uvkit::make_uv_error(err), "uv_socketpair");
#endif
        worker& w = workers.emplace_back();
        w.ipc = uvkit::pipe{loop, true};
        w.ipc.open(fds[0]);
        w.thread = std::thread(worker_main, fds[1], std::cref(cfg), std::ref(*w.stats), opt.mode);
    }

    if (opt.mode == balance::shared) {
        // Every worker gets the listening socket; this loop's copy is closed
        // once all have it (until then, the connections it accepts are passed).
        auto sent = std::make_shared<std::size_t>(0);
        for (worker& w : workers)
            w.ipc.write("l", listener, [&, sent](std::error_code) {
                if (++*sent == workers.size()) listener.close();
            });
    }

    uvkit::signal sigint{loop}, sigterm{loop};
    auto stop = [&](int) {
        listener.close();
        for (worker& w : workers) w.ipc.close();  // EOF on the worker's side: it stops
        sigint.close();
        sigterm.close();
    };
    sigint.start(SIGINT, stop);
    sigterm.start(SIGTERM, stop);
    // Only now: a test (or user) may signal as soon as it reads this line.
    std::cout << "listening on " << listener.local_endpoint().to_string() << std::endl;
    loop.run();
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::cout << "usage: " << argv[0] << " " << usage_text;
            return 0;
        }
        if (arg == "--stats") {
            opt.stats = true;
            continue;
        }
        if (arg != "--host" && arg != "--port" && arg != "--threads" && arg != "--dir" && arg != "--idle" &&
            arg != "--header-timeout" && arg != "--body-timeout" && arg != "--max-conns" &&
            arg != "--max-requests" && arg != "--balance")
            return usage(argv[0], "unknown argument '" + std::string{arg} + "'");
        if (i + 1 == argc) return usage(argv[0], std::string{arg} + " needs a value");
        std::string_view value = argv[++i];
        unsigned n = 0;
        if (arg == "--host") {
            opt.host = value;
        } else if (arg == "--port") {
            if (!parse_number(value, 0, 65535, n))
                return usage(argv[0], "bad port '" + std::string{value} + "'");
            opt.port = static_cast<std::uint16_t>(n);
        } else if (arg == "--threads") {
            if (!parse_number(value, 1, 64, n))
                return usage(argv[0], "bad thread count '" + std::string{value} + "' (1 to 64)");
            opt.threads = n;
        } else if (arg == "--dir") {
            std::error_code ec;
            if (value.empty() || !std::filesystem::is_directory(value, ec))
                return usage(argv[0], "'" + std::string{value} + "' is not a directory");
            opt.dir = value;
        } else if (arg == "--idle") {
            if (!parse_number(value, 1, 24 * 3600, n))
                return usage(argv[0], "bad idle timeout '" + std::string{value} + "' (1 to 86400 seconds)");
            opt.idle = std::chrono::seconds{n};
        } else if (arg == "--header-timeout" || arg == "--body-timeout") {
            if (!parse_number(value, 1, 24 * 3600, n))
                return usage(argv[0], "bad " + std::string{arg.substr(2)} + " '" + std::string{value} +
                                          "' (1 to 86400 seconds)");
            (arg == "--header-timeout" ? opt.header_timeout : opt.body_timeout) = std::chrono::seconds{n};
        } else if (arg == "--max-conns") {
            if (!parse_number(value, 1, 1000000, n))
                return usage(argv[0], "bad connection count '" + std::string{value} + "' (1 to 1000000)");
            opt.max_conns = n;
        } else if (arg == "--max-requests") {
            if (!parse_number(value, 1, 1000000000, n))
                return usage(argv[0], "bad request count '" + std::string{value} + "'");
            opt.max_requests = n;
        } else if (value == "pass" || value == "shared") {
            opt.mode = value == "pass" ? balance::pass : balance::shared;
        } else {
            return usage(argv[0], "bad balance '" + std::string{value} + "' (pass or shared)");
        }
    }

#ifdef SIGPIPE
    // A write to a client that already left raises SIGPIPE, which kills the
    // process by default; ignored (in every thread), the write fails with EPIPE.
    std::signal(SIGPIPE, SIG_IGN);
#endif

    uvkit::endpoint ep;
    try {
        ep = uvkit::endpoint{opt.host, opt.port};
    } catch (const std::invalid_argument&) {
        return usage(argv[0], "bad host '" + opt.host + "' (a numeric IPv4 or IPv6 address)");
    }

    config cfg;
    if (!opt.dir.empty()) {
        std::error_code ec;
        cfg.root = std::filesystem::canonical(opt.dir, ec);
        if (ec) return usage(argv[0], "'" + opt.dir + "': " + ec.message());
    }
    cfg.idle = opt.idle;
    cfg.header_timeout = opt.header_timeout;
    cfg.body_timeout = opt.body_timeout;
    cfg.max_conns = opt.max_conns;
    cfg.max_requests = opt.max_requests;

    std::vector<worker> workers;  // outlives the loop: ~loop stops the workers, then they are joined
    worker_stats single;
    int status = 0;
    try {
        uvkit::loop loop;
        uvkit::tcp listener{loop};
        std::error_code ec;
        listener.bind(ep, false, ec);
        const char* what = "bind";
        if (!ec && opt.threads == 1) {
            what = "listen";
            listener.listen(backlog, ec);  // no handler: connections are taken by async_accept()
            if (!ec) {
                uvkit::run(loop, serve_single(loop, cfg, single, listener));
            }
        } else if (!ec) {
            what = "listen";
            serve_threads(loop, cfg, opt, listener, workers, ec);
        }
        if (ec) {
            std::cerr << argv[0] << ": cannot " << what << " " << ep.to_string() << ": " << ec.message()
                      << "\n";
            status = 1;
        }
        // ~loop closes the worker pipes if they are still open: every worker stops.
    } catch (const std::exception& e) {
        std::cerr << argv[0] << ": " << e.what() << "\n";
        status = 1;
    }
    for (worker& w : workers)
        if (w.thread.joinable()) w.thread.join();

    if (opt.stats) {
        if (workers.empty())
            std::cout << "worker 0: " << single.requests << " requests, " << single.connections
                      << " connections" << std::endl;
        for (std::size_t i = 0; i < workers.size(); ++i)
            std::cout << "worker " << i << ": " << workers[i].stats->requests << " requests, "
                      << workers[i].stats->connections << " connections" << std::endl;
    }
    return status;
}
