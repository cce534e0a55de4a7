// uvhttpd: a small HTTP/1.1 server: a fixed /hello, and static files from a
// directory, with keep-alive and pipelining, on one loop or on N loops on N
// threads sharing one port.
//
//     uvhttpd [--host H] [--port P] [--threads N] [--dir D] [--idle SECS]
//             [--header-timeout SECS] [--body-timeout SECS] [--max-conns N]
//             [--max-requests N] [--balance pass|shared] [--stats]
//             [--cert FILE --key FILE]
//
// --cert and --key (when uvkit was built with TLS): HTTPS instead of HTTP,
// over uvkit::tls_stream, offering ALPN "http/1.1". The handshake must end
// within the header timeout. Bodies are then read and encrypted in user space
// (no sendfile).
//
// Defaults: 127.0.0.1, port 0, 1 thread, no directory (only /hello), idle
// 10 s, header timeout 10 s, body timeout 30 s, 4096 connections, 1000
// requests per connection, pass. The first line on stdout is
// "listening on H:P" with the real port.
//
// What it serves:
// - GET or HEAD /hello: "Hello, world!\n" as text/plain.
// - GET or HEAD of a file below --dir, with a Content-Type from the
//   extension, as nginx serves a static site (README: the comparison):
//   - Last-Modified and ETag ("mtime-size" in hex, as nginx); If-None-Match
//     (weak comparison, "*") or else If-Modified-Since (the file not newer
//     than the date, RFC 9110) -> 304 without a body;
//   - Accept-Ranges: bytes; one Range of GET (a-b, a-, -n) -> 206 with
//     Content-Range, an unsatisfiable or malformed one -> 416 with
//     "Content-Range: bytes */SIZE"; If-Range (a strong ETag match or the
//     exact date) or else the whole file; several ranges -> 200 with the
//     whole file (no multipart/byteranges: RFC 9110 lets a server ignore Range);
//   - a directory: "/dir" -> 301 to "/dir/" (the query kept), "/dir/" -> its
//     index.html, or 403 without one; "/file/" -> 404; "." and ".." segments
//     are resolved first (http::target_path), so "/sub/../x" is "/x".
//   Files are opened and read on libuv's thread pool with libuv's own
//   synchronous uv_fs_* calls, behind lookup() and file_reader: the checks,
//   the open, the fstat and the first 256 KiB are one pool trip (a small
//   file needs no other); the rest streams 256 KiB at a time, each chunk
//   written before the next one is read: a large file never sits in memory
//   and a slow client holds up only its own connection. Files up to 64 KiB
//   read whole are kept in memory (per thread, at most 1024 of them and
//   16 MiB); a request for one costs one stat on the loop thread, no pool
//   trip, and any change to the file (inode, size, mtime, ctime) or a
//   failing stat sends the request the pool way again (small_file_cache).
// - "Expect: 100-continue" with a body to come: "100 Continue", then the
//   body is read (and dropped) and answered; if the request is refused anyway
//   (405), the answer comes at once and the connection closes after it.
// - Any other method: 405 with "Allow: GET, HEAD".
// - A target that could leave --dir (".." above the root, also as "%2e%2e",
//   "//", '\\', ':', NUL, an encoded '/'): 403, whether or not what it names exists (see
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
// from one buffer and answered in order: every complete request received is
// answered before the next read, and the answers are collected and written
// together (one write for a burst of small ones, at most 256 KiB queued). After --max-requests
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
// Under TLS the 503 is sent over TLS, as any other answer: the extra
// connection gets its handshake (within --header-timeout), the 503 right
// after it, close_notify and FIN; a plaintext 503 would be garbage to a TLS
// client. A handshake costs more than a write, so at most 64 such refusals
// run at a time (all threads together); a connection beyond those is closed
// at once, without a byte (the client sees its handshake cut off).
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
// Out of file descriptors (EMFILE, ENFILE): the listener (of that worker, in
// shared mode) stops accepting for 100 ms, with one line on stderr
// ("accept: too many open files: not accepting for 100 ms"), and then
// accepts again; the connections waiting meanwhile stay in the backlog. At
// startup the soft limit on descriptors (RLIMIT_NOFILE) is raised to the hard
// one (POSIX).
//
// Exit status: 0 after SIGINT/SIGTERM (connections are cut, the server
// stops), 2 for bad arguments, 1 if the address cannot be bound or listened
// on. Try it with:  curl -v http://127.0.0.1:PORT/hello
#include <uvkit/uvkit.hpp>

#include <sys/stat.h>
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
#include <functional>
#include <iostream>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http_request.hpp"
#ifndef _WIN32
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#endif
#ifdef UVKIT_HAVE_TLS
#include <uvkit/co/tls.hpp>
#endif

using namespace std::chrono_literals;

namespace {

constexpr std::size_t read_size = 16 * 1024;             // one socket read, in the connection's frame
constexpr std::size_t file_chunk = 256 * 1024;           // one file read on the pool
constexpr std::uint64_t sendfile_min = 256 * 1024;       // bodies from this size on go through sendfile
constexpr std::size_t sendfile_chunk = 4 * 1024 * 1024;  // at most this much per sendfile call
constexpr std::size_t flush_size =
    256 * 1024;  // answers queued beyond this are written before the next request
constexpr std::chrono::milliseconds linger_time = 1s;
constexpr unsigned max_tls_refusals = 64;  // TLS handshakes at a time for a 503 beyond --max-conns
constexpr int backlog = 511;
constexpr std::chrono::milliseconds accept_pause = 100ms;  // no accepting this long when out of fds
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
    std::string cert, key;  // both given: HTTPS
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
    mutable std::atomic<unsigned> open{0};      // connections being served, all workers
    mutable std::atomic<unsigned> refusing{0};  // TLS connections beyond max_conns getting their 503
#ifdef UVKIT_HAVE_TLS
    uvkit::tls_context tls;  // empty: plain HTTP
#endif
};

struct worker_stats {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> connections{0};
};

constexpr std::string_view usage_text =
    "[--host ADDRESS] [--port PORT] [--threads N] [--dir DIR] [--idle SECONDS]\n"
    "       [--header-timeout SECONDS] [--body-timeout SECONDS] [--max-conns N]\n"
    "       [--max-requests N] [--balance pass|shared] [--stats] [--cert FILE --key FILE]\n";

constexpr std::string_view help_text =
    "\n"
    "--cert FILE --key FILE: HTTPS (ALPN http/1.1), the handshake within --header-timeout.\n"
    "--max-conns N: beyond N open connections (all threads), a new one gets\n"
    "  \"503 Service Unavailable\" with \"Connection: close\" and is closed. Under TLS\n"
    "  the 503 comes over TLS after the handshake; at most 64 such refusals run at a\n"
    "  time, and a connection beyond them is closed at once without a byte.\n";

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
        case 100: return "Continue";
        case 200: return "OK";
        case 206: return "Partial Content";
        case 301: return "Moved Permanently";
        case 304: return "Not Modified";
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 416: return "Range Not Satisfiable";
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
    thread_local std::string text;
    auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    if (now != cached || text.empty()) {
        text = http::format_http_date(now.time_since_epoch().count());
        cached = now;
    }
    return text;
}

void append_number(std::string& out, std::uint64_t n) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    out.append(digits, end);
}

// Appends the status line and the fields every response has; `length` < 0:
// no Content-Type or Content-Length (a 100 or a 304).
void append_head_start(std::string& h, int status, std::string_view type, std::int64_t length) {
    h += "HTTP/1.1 ";
    append_number(h, static_cast<std::uint64_t>(status));
    h += ' ';
    h += reason(status);
    h += "\r\nServer: uvhttpd\r\nDate: ";
    h += http_date();
    if (length >= 0) {
        h += "\r\nContent-Type: ";
        h += type;
        h += "\r\nContent-Length: ";
        append_number(h, static_cast<std::uint64_t>(length));
    }
    h += "\r\n";
}

void append_connection(std::string& h, bool keep_alive, int minor) {
    if (!keep_alive)
        h += "Connection: close\r\n";
    else if (minor == 0)
        h += "Connection: keep-alive\r\n";  // HTTP/1.0 closes unless told otherwise
}

// The status line and header fields of a response, up to the empty line, appended to `out`.
void append_head(std::string& out, int status, std::string_view type, std::uint64_t length, bool keep_alive,
                 int minor, std::string_view extra = {}) {
    append_head_start(out, status, type, static_cast<std::int64_t>(length));
    append_connection(out, keep_alive, minor);
    out += extra;
    out += "\r\n";
}

// A short text/plain answer for an error status, appended to `out`.
void append_error(std::string& out, int status, bool keep_alive, int minor, bool head_only,
                  std::string_view extra = {}) {
    std::string body = std::to_string(status) + " " + std::string{reason(status)} + "\n";
    append_head(out, status, "text/plain; charset=utf-8", body.size(), keep_alive, minor, extra);
    if (!head_only) out += body;
}

std::string error_response(int status, bool keep_alive, int minor, bool head_only,
                           std::string_view extra = {}) {
    std::string r;
    append_error(r, status, keep_alive, minor, head_only, extra);
    return r;
}

// ---------------------------------------------------------------- files
//
// Everything uvhttpd asks of the file system is in this section, behind
// lookup() and file_reader (both run on libuv's thread pool): a file layer
// of the library can replace them without touching the connection. They use
// libuv's own file calls in their synchronous form (no callback: the call
// runs on the calling thread, here a pool thread), which are portable and
// take an offset (pread), so a range needs no seek.

// An open file, closed when the last owner lets go (on whichever thread).
class file_reader {
public:
    explicit file_reader(uv_file fd) noexcept : fd_(fd) {}
    file_reader(const file_reader&) = delete;
    file_reader& operator=(const file_reader&) = delete;
    ~file_reader() {
        if (fd_ < 0) return;
        uv_fs_t req;
        uv_fs_close(nullptr, &req, fd_, nullptr);
        uv_fs_req_cleanup(&req);
    }
    // Hands the descriptor over (to a uvkit::file); this reader then closes nothing.
    uv_file release() noexcept { return std::exchange(fd_, -1); }

    // Reads `n` bytes at `offset` into `out` (resized to what was read).
    // Blocks: call it on the pool. False on an error.
    bool read(std::uint64_t offset, std::size_t n, std::string& out) const {
        out.resize(n);
        std::size_t have = 0;
        while (have < n) {
            uv_buf_t b = uv_buf_init(out.data() + have, static_cast<unsigned>(n - have));
            uv_fs_t req;
            int r = uv_fs_read(nullptr, &req, fd_, &b, 1, static_cast<std::int64_t>(offset + have), nullptr);
            uv_fs_req_cleanup(&req);
            if (r < 0) return false;
            if (r == 0) break;  // the end: the file is shorter than it was
            have += static_cast<std::size_t>(r);
        }
        out.resize(have);
        return true;
    }

private:
    uv_file fd_;
};

// What a request names, as lookup() found it.
struct found_file {
    int status = 404;  // 200, or 301 (a directory named without its '/'), 403, 404
    std::uint64_t size = 0;
    std::int64_t mtime = 0;  // seconds since 1970
    std::string name;        // the file name, for the Content-Type
    // The first bytes asked for (at most `first_bytes` from `offset`), read
    // in the same pool trip as the open: a small file needs no second one.
    std::string head_bytes;
    // Open while more than `head_bytes` is to be sent; else closed already.
    std::shared_ptr<file_reader> file;
    std::string real;  // the path opened (every link resolved), for the small-file cache
    uv_stat_t st{};    // what fstat said of the open file
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

// The real path of `base`/`rel` (every link resolved) into `real`: 0 if it
// lies below `root`, 404 if it does not exist, 403 if it lies outside.
// `root` and `base` (root or a directory below it) are canonical; `rel` is
// '/'-separated without ".", ".." or empty segments (target_path's promise).
int resolve_inside(const std::filesystem::path& root, const std::filesystem::path& base, std::string_view rel,
                   std::filesystem::path& real) {
    namespace fs = std::filesystem;
    fs::path p = base;
#ifndef _WIN32
    // If no component below `base` is a symbolic link, base/rel is already
    // its own real path: one lstat per component of `rel`, where realpath()
    // costs a readlink per component of the whole path (and each of those
    // walks the path again). Any link, anywhere below `base`, takes the
    // realpath() way. (Not on Windows, where std::filesystem does not see
    // every kind of link: there it is always realpath.)
    bool link = false;
    for (std::string_view rest = rel; !rest.empty() && !link;) {
        const std::size_t slash = rest.find('/');
        p /= fs::path(std::string(rest.substr(0, slash)));
        std::error_code ec;
        const fs::file_type type = fs::symlink_status(p, ec).type();
        if (ec || type == fs::file_type::not_found) return 404;
        link = type == fs::file_type::symlink;
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    }
    if (!link) {
        real = std::move(p);
        return 0;
    }
    p = base;
#endif
    if (!rel.empty()) p /= fs::path(std::string(rel));
    std::error_code ec;
    real = fs::canonical(p, ec);
    if (ec) return 404;  // missing, a dangling link, a loop of links
    return inside(root, real) ? 0 : 403;
}

enum class open_result { file, directory, missing, forbidden };

// Opens `path` and reads its type, size and time from the open file (no
// window between the stat and the open).
open_result open_and_stat(const std::filesystem::path& path, uv_file& fd, uv_stat_t& st) {
    uv_fs_t req;
    const std::string name = path.string();
    int r = uv_fs_open(nullptr, &req, name.c_str(), UV_FS_O_RDONLY, 0, nullptr);
    uv_fs_req_cleanup(&req);
    if (r < 0) {
        // Windows opens no directory this way; anywhere: not readable.
        std::error_code ec;
        if (std::filesystem::is_directory(path, ec)) return open_result::directory;
        return r == UV_ENOENT ? open_result::missing : open_result::forbidden;
    }
    fd = r;
    r = uv_fs_fstat(nullptr, &req, fd, nullptr);
    st = req.statbuf;
    uv_fs_req_cleanup(&req);
    if (r < 0 || (st.st_mode & S_IFMT) != S_IFREG) {
        uv_fs_close(nullptr, &req, fd, nullptr);
        uv_fs_req_cleanup(&req);
        if (r == 0 && (st.st_mode & S_IFMT) == S_IFDIR) return open_result::directory;
        return open_result::missing;  // a socket, a device...: nothing to serve
    }
    return open_result::file;
}

// Runs on a pool thread: the checks, the open and the first read, which may
// block on the disk. `rel` and `directory` are target_path()'s; the first
// `first_bytes` bytes from `offset` are read into head_bytes (clamped to the file).
found_file lookup(const std::filesystem::path& root, const std::string& rel, bool directory,
                  std::uint64_t offset, std::size_t first_bytes) {
    namespace fs = std::filesystem;
    found_file f;
    // The name whose extension gives the type: the last segment, or the index's.
    std::string_view named = std::string_view(rel).substr(rel.rfind('/') + 1);
    fs::path full;
    if (int status = resolve_inside(root, root, rel, full)) {
        f.status = status;
        return f;
    }
    uv_file fd = -1;
    uv_stat_t st{};
    open_result what = open_and_stat(full, fd, st);
    if (what == open_result::directory) {
        if (!directory) {  // "/dir": relative links in it need "/dir/"
            f.status = 301;
            return f;
        }
        named = "index.html";
        const fs::path dir = full;
        if (int status = resolve_inside(root, dir, "index.html", full)) {
            f.status = status == 404 ? 403 : status;  // no index: a listing, which is not served
            return f;
        }
        what = open_and_stat(full, fd, st);
        if (what == open_result::directory) what = open_result::forbidden;
    } else if (what == open_result::file && directory) {
        what = open_result::missing;  // "/a.txt/": no directory of that name
        uv_fs_t req;
        uv_fs_close(nullptr, &req, fd, nullptr);
        uv_fs_req_cleanup(&req);
    }
    if (what != open_result::file) {
        f.status = what == open_result::forbidden ? 403 : 404;
        return f;
    }
    auto file = std::make_shared<file_reader>(fd);
    f.real = full.string();
    f.st = st;
    f.size = st.st_size;
    f.mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec);
    f.name = std::string(named);
    f.status = 200;
    if (offset < f.size) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(first_bytes, f.size - offset));
        if (!file->read(offset, n, f.head_bytes)) {
            f.status = 403;  // there, but not readable
            return f;
        }
        if (offset == 0 && f.head_bytes.size() == f.size) return f;  // all of it: closed on return
    }
    f.file = std::move(file);
    return f;
}

// Small files, kept whole in memory per thread (each loop has its own), as
// nginx's open_file_cache keeps what it opened: a request for a cached file
// needs no pool trip, only one stat of the path on the loop thread (a few
// microseconds on a local disk, what nginx's own open does) to see that the
// file is still the one read: same inode, size, mtime and ctime (a chmod
// changes ctime, so a file made unreadable is not served from memory). Any
// difference, or a stat that fails, drops the entry and the request takes
// the pool way, which looks the name up again (links, "..", permissions)
// and caches what it read. Only whole files up to `max_size` are kept; at
// most `max_entries` and `max_bytes`, beyond which an arbitrary entry goes.
class small_file_cache {
public:
    static constexpr std::size_t max_size = 64 * 1024;
    static constexpr std::size_t max_entries = 1024;
    static constexpr std::size_t max_bytes = 16 * 1024 * 1024;

    // The file `key` names, if cached and unchanged: status 200, all its bytes in head_bytes.
    bool find(const std::string& key, found_file& f) {
        auto it = entries_.find(key);
        if (it == entries_.end()) return false;
        uv_fs_t req;
        int r = uv_fs_stat(nullptr, &req, it->second.real.c_str(), nullptr);
        const uv_stat_t now = req.statbuf;
        uv_fs_req_cleanup(&req);
        if (r != 0 || !same(now, it->second.st)) {
            drop(it);
            return false;
        }
        const found_file& e = it->second;
        f.status = 200;
        f.size = e.size;
        f.mtime = e.mtime;
        f.name = e.name;
        f.head_bytes = e.head_bytes;
        return true;
    }
    // Keeps `f` if it is a whole small file (read from 0, every byte there).
    void keep(const std::string& key, const found_file& f) {
        if (f.status != 200 || f.file || f.size > max_size || f.head_bytes.size() != f.size) return;
        if (auto it = entries_.find(key); it != entries_.end()) drop(it);
        while (!entries_.empty() && (entries_.size() >= max_entries || bytes_ + f.size > max_bytes))
            drop(entries_.begin());
        found_file& e = entries_[key];
        e.status = 200;
        e.size = f.size;
        e.mtime = f.mtime;
        e.name = f.name;
        e.head_bytes = f.head_bytes;
        e.real = f.real;
        e.st = f.st;
        bytes_ += e.size;
    }

private:
    static bool same(const uv_stat_t& a, const uv_stat_t& b) {
        return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == b.st_size &&
               a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
               a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec &&
               (a.st_mode & S_IFMT) == S_IFREG;
    }
    void drop(std::unordered_map<std::string, found_file>::iterator it) {
        bytes_ -= it->second.size;
        entries_.erase(it);
    }
    std::unordered_map<std::string, found_file> entries_;
    std::size_t bytes_ = 0;
};

small_file_cache& file_cache() {
    thread_local small_file_cache cache;
    return cache;
}

// The validator nginx sends too: the time and the size, in hex.
std::string entity_tag(std::int64_t mtime, std::uint64_t size) {
    char text[48];
    std::snprintf(text, sizeof text, "\"%llx-%llx\"", static_cast<unsigned long long>(mtime),
                  static_cast<unsigned long long>(size));
    return text;
}

// ---------------------------------------------------------------- a connection

// One client. Its state is the coroutine's frame; the loop's task_group owns it.
// `S`: uvkit::tcp, or uvkit::tls_stream for HTTPS (the same reads, writes,
// shutdown and close; sendfile only for tcp).
template <class S>
class connection {
public:
    connection(uvkit::loop& loop, const config& cfg, worker_stats& stats, S socket)
        : loop_(loop), cfg_(cfg), stats_(stats), socket_(std::move(socket)), deadline_(loop) {}

    // `refused`: a connection beyond --max-conns; it gets the 503 with
    // "Connection: close" at once, without a request being read, then FIN
    // (and close_notify) and the linger, so that the client's request does
    // not turn the close into a reset.
    uvkit::task<void> serve(bool refused = false) {
        if (refused) {
            append_error(out_, 503, false, 1, false);
            if (co_await flush()) co_await linger();
            co_return;
        }
        // One timer holds every deadline: re-armed before each read and
        // write with the idle timeout, cut short by the head's or the body's
        // deadline. When it fires, the socket is closed, which completes the
        // waiting operation with errc::canceled: cheaper than a with_timeout
        // per read.
        //
        // Pipelining: every complete request in `in` is answered before the
        // next read, and the answers are collected in out_ and written
        // together (one write for a burst of small answers), in order.
        std::string in;  // received, not yet answered: bounded by the header limit and one read
        unsigned served = 0;
        std::chrono::milliseconds head_until{0};  // loop time; 0: no request head begun
        for (;;) {
            http::parse_result r = http::parse_request(in, cfg_.limits);
            if (r.state == http::parse_state::need_more && r.head_size == 0) {
                // Nothing more to answer until more arrives: what is queued goes out first.
                if (!co_await flush()) co_return;
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
                append_error(out_, r.status, false, 1, false);
                if (co_await flush()) co_await linger();
                co_return;
            }
            head_until = std::chrono::milliseconds{0};
            ++served;
            stats_.requests.fetch_add(1, std::memory_order_relaxed);
            bool keep = r.req.keep_alive && served < cfg_.max_requests;
            std::string next;  // bytes after a dropped body: the next request's
            if (r.state == http::parse_state::need_more) {
                // The head is in, the body is not: it is dropped as it
                // arrives, not kept (`in` and with it r.req stay as they are).
                // A client that sent "Expect: 100-continue" waits for a word
                // before it sends the body: 100 Continue if the request is
                // one that is served; else the final answer right away, and
                // the connection closes (the body never comes).
                const std::string_view* expect = r.req.find("expect");
                bool body_comes = true;
                if (expect && r.req.minor == 1 && http::iequals(*expect, "100-continue")) {
                    if (http::method_status(r.req.method) != 0) {
                        keep = body_comes = false;
                    } else {
                        out_ += "HTTP/1.1 100 Continue\r\n\r\n";
                        if (!co_await flush()) co_return;
                    }
                }
                if (body_comes) {
                    const std::size_t have = in.size() - r.head_size;
                    if (!co_await drop_body(r.body_length - have, next)) co_return;
                    r.consumed = in.size();
                }
            }
            bool ok = co_await respond(r.req, keep);  // r.req points into `in`
            if (!ok) co_return;
            if (!keep) {
                if (co_await flush()) co_await linger();
                co_return;
            }
            in.erase(0, r.consumed);
            in += next;
            if (out_.size() >= flush_size && !co_await flush()) co_return;
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

    // Writes what out_ holds under the idle deadline and empties it (its
    // capacity stays for the next answers); false if the connection is gone.
    uvkit::task<bool> flush() {
        if (out_.empty()) co_return true;
        arm();
        std::error_code ec;
        co_await socket_.async_write(std::string_view(out_), ec);
        out_.clear();
        if (out_.capacity() > 4 * flush_size) out_.shrink_to_fit();  // after a large first chunk
        co_return !ec;
    }

    // Queues the answer to `req` in out_ (a large file is written from here
    // on, after what was queued before it). False if the connection is gone.
    uvkit::task<bool> respond(const http::request& req, bool keep) {
        const bool head_only = req.method == "HEAD";
        if (http::method_status(req.method) != 0) {
            std::string extra = "Allow: " + std::string{http::allowed_methods} + "\r\n";
            append_error(out_, 405, keep, req.minor, head_only, extra);
            co_return true;
        }
        http::path_result p = http::target_path(req.target);
        if (p.status != 0) {
            append_error(out_, p.status, keep, req.minor, head_only);
            co_return true;
        }
        if (p.path == "hello" && !p.directory) {
            append_head(out_, 200, "text/plain; charset=utf-8", hello_body.size(), keep, req.minor);
            if (!head_only) out_ += hello_body;
            co_return true;
        }
        if (cfg_.root.empty()) {
            append_error(out_, 404, keep, req.minor, head_only);
            co_return true;
        }

        // A Range is read from the start of the range: its first chunk comes
        // with the open. Whether the range applies (If-Range) is known only
        // after the open; if not, the file is read again from 0, which costs
        // one more trip in that rare case only.
        const std::string_view* range_field = head_only ? nullptr : req.find("range");
        std::uint64_t guess = 0;
        std::size_t want = file_chunk;
        if (range_field) {
            // Parsed against a size beyond any file: a plain "a-b" or "a-"
            // gives its start (and "a-b" its length); a suffix "-n" starts
            // near that size, so it is read from 0 instead (all of a small
            // file, which holds its end).
            constexpr std::uint64_t huge = std::uint64_t{1} << 62;
            http::range_result any = http::parse_range(*range_field, huge);
            if (any.kind == http::range_result::single && any.first < huge / 2) {
                guess = any.first;
                want =
                    static_cast<std::size_t>(std::min<std::uint64_t>(file_chunk, any.last - any.first + 1));
            }
        }
        // A cached small file holds every byte: the answer is cut from it at any offset.
        std::string key = p.path + (p.directory ? "/" : "");
        found_file f;
        if (file_cache().find(key, f)) {
            guess = 0;
        } else {
            // Named, not written inside the co_await: GCC 12 destroys twice a
            // lambda with captured objects there (README, "compiler pitfalls").
            // A read from 0 of the first chunk takes a small file whole: only such reads are cached.
            auto open = [root = cfg_.root, rel = std::move(p.path), dir = p.directory, guess, want] {
                return lookup(root, rel, dir, guess, want);
            };
            std::error_code ec;
            f = co_await uvkit::async_work(loop_, std::move(open), ec);
            if (ec) co_return false;  // cancelled: shutting down
            if (guess == 0 && want == file_chunk) file_cache().keep(key, f);
        }
        if (f.status == 301) {
            std::string extra = "Location: " + http::encode_path(http::target_path(req.target).path) + "/" +
                                std::string{p.query} + "\r\n";
            append_error(out_, 301, keep, req.minor, head_only, extra);
            co_return true;
        }
        if (f.status != 200) {
            append_error(out_, f.status, keep, req.minor, head_only);
            co_return true;
        }

        const std::string etag = entity_tag(f.mtime, f.size);
        const std::string modified = http::format_http_date(f.mtime);
        std::string validators = "Last-Modified: " + modified + "\r\nETag: " + etag + "\r\n";
        if (not_modified(req, etag, f.mtime)) {
            append_head_start(out_, 304, {}, -1);
            append_connection(out_, keep, req.minor);
            out_ += validators;
            out_ += "\r\n";
            co_return true;
        }
        std::uint64_t first = 0, length = f.size;
        int status = 200;
        if (range_field && range_applies(req, etag, f.mtime)) {
            http::range_result rr = http::parse_range(*range_field, f.size);
            if (rr.kind == http::range_result::unsatisfiable) {
                std::string extra = "Content-Range: bytes */" + std::to_string(f.size) + "\r\n";
                append_error(out_, 416, keep, req.minor, false, extra);
                co_return true;
            }
            if (rr.kind == http::range_result::single) {
                status = 206;
                first = rr.first;
                length = rr.last - rr.first + 1;
                validators += "Content-Range: bytes " + std::to_string(rr.first) + "-" +
                              std::to_string(rr.last) + "/" + std::to_string(f.size) + "\r\n";
            }
        }
        if (status == 200) validators += "Accept-Ranges: bytes\r\n";
        append_head(out_, status, content_type(f.name), length, keep, req.minor, validators);
        if (head_only || length == 0) co_return true;

        // What the open read covers bytes guess.. of the file: the answer's
        // first bytes if they lie in there.
        std::string_view have;
        if (first >= guess && first - guess < f.head_bytes.size())
            have = std::string_view(f.head_bytes)
                       .substr(static_cast<std::size_t>(first - guess),
                               static_cast<std::size_t>(std::min<std::uint64_t>(length, file_chunk)));
        if (have.size() == length) {  // all of it: queued with the head
            out_ += have;
            co_return true;
        }
        // Without the open file, all of it was read and is less than fstat
        // said: the promised length cannot be sent.
        if (!f.file) co_return false;
        out_ += have;
        co_return co_await send_file(std::move(f.file), first + have.size(), length - have.size());
    }

    // RFC 9110, 13.2.2: If-None-Match decides if present, else If-Modified-Since.
    static bool not_modified(const http::request& req, std::string_view etag, std::int64_t mtime) {
        if (const std::string_view* inm = req.find("if-none-match")) return http::etag_listed(*inm, etag);
        std::int64_t since = 0;
        if (const std::string_view* ims = req.find("if-modified-since");
            ims && http::parse_http_date(*ims, since))
            return mtime <= since;
        return false;
    }

    // If-Range: the range is sent only if the representation is the one the
    // client has (a strong match of the ETag, or exactly its date).
    static bool range_applies(const http::request& req, std::string_view etag, std::int64_t mtime) {
        const std::string_view* v = req.find("if-range");
        if (!v) return true;
        if (!v->empty() && (v->front() == '"' || v->substr(0, 2) == "W/")) return *v == etag;
        std::int64_t date = 0;
        return http::parse_http_date(*v, date) && date == mtime;
    }

    // Writes out_ and then `size` bytes of `file` from `offset`, one chunk
    // read on the pool, then written, then the next: at most one chunk in
    // memory, and a client that reads slowly slows down only its own reads.
    // The work function owns what it touches (shared_ptrs), so a cancelled
    // await never leaves it with dangling pointers.
    uvkit::task<bool> send_file(std::shared_ptr<file_reader> file, std::uint64_t offset, std::uint64_t size) {
        if (!co_await flush()) co_return false;
        // A big body is read through uvkit::file, and goes through sendfile(2)
        // (uvkit::file::async_sendfile) where libuv does that: the bytes never enter user space.
        // sendfile writes past the stream's queue, so only while that is empty (flush() waited for
        // it); a full socket buffer (EAGAIN) sends one chunk the ordinary way, whose completed
        // write is the wait for the client, and then sendfile goes on. libuv before 1.45 tries
        // copy_file_range first and, for a socket, falls back to copying 8 KiB at a time on the
        // pool: measured here at 0.6x the read/write path, so there it is not used.
        if constexpr (std::is_same_v<S, uvkit::tcp>) {
            if (size >= sendfile_min && file.use_count() == 1) {
                std::error_code ec;
                uvkit::file f = uvkit::file::adopt(loop_, file->release());
                bool sendfile_ok = uv_version() >= 0x012d00;
                std::unique_ptr<char[]> chunk;  // the ordinary way's buffer, made on first use
                while (size > 0) {
                    std::size_t n = 0;
                    if (sendfile_ok && socket_.write_queue_size() == 0) {
                        auto want = static_cast<std::size_t>(std::min<std::uint64_t>(size, sendfile_chunk));
                        n = co_await f.async_sendfile(socket_, static_cast<std::int64_t>(offset), want, ec);
                        if (ec == std::errc::resource_unavailable_try_again) {
                            ec.clear();
                            n = 0;
                        } else if (ec) {
                            // Not supported here (a stream destination on Windows): read and write.
                            sendfile_ok = false;
                            if (ec != std::errc::not_supported && ec != uvkit::make_uv_error(UV_ENOTSUP))
                                co_return false;
                            ec.clear();
                        }
                    }
                    if (n == 0) {
                        // The ordinary way, one chunk: read it, then write it and wait for the write.
                        if (!chunk) chunk = std::make_unique_for_overwrite<char[]>(file_chunk);
                        auto want = static_cast<std::size_t>(std::min<std::uint64_t>(size, file_chunk));
                        n = co_await f.async_read(std::span<char>(chunk.get(), want),
                                                  static_cast<std::int64_t>(offset), ec);
                        if (ec || n == 0) co_return false;  // the file shrank: the client must see the end
                        arm();
                        co_await socket_.async_write(std::string_view(chunk.get(), n), ec);
                        if (ec) co_return false;
                    } else {
                        arm();
                    }
                    size -= n;
                    offset += n;
                }
                co_return true;
            }
        }
        auto chunk = std::make_shared<std::string>();
        while (size > 0) {
            std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, file_chunk));
            auto read_chunk = [file, chunk, offset, n] {  // named: see respond()
                return file->read(offset, n, *chunk) && chunk->size() == n;
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
            offset += n;
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
    S socket_;
    uvkit::timer deadline_;
    std::string out_;  // answers queued, not yet written
    std::array<char, read_size> buf_;
};
// A connection beyond --max-conns: a 503, FIN, closed. The answer is small
// enough for the socket's buffer, so this takes no time and no read buffer.
uvkit::task<void> refuse(uvkit::tcp socket) {
    std::error_code ec;
    co_await socket.async_write(error_response(503, false, 1, false), ec);
    if (!ec) co_await socket.async_shutdown(ec);
}

// Takes one back from a counter when the frame goes, however it ends
// (cancelled at shutdown too).
struct counted {
    std::atomic<unsigned>& n;
    ~counted() { n.fetch_sub(1, std::memory_order_relaxed); }
};

#ifdef UVKIT_HAVE_TLS
// The server side of the handshake, within the header timeout. False if it
// failed (the alert was sent), timed out, or the server is shutting down.
uvkit::task<bool> handshake(uvkit::loop& loop, const config& cfg, uvkit::tls_stream& t) {
    try {
        co_await uvkit::with_timeout(loop, cfg.header_timeout, t.async_handshake());
    } catch (const std::system_error&) {
        co_return false;
    }
    co_return true;
}

// A TLS connection beyond --max-conns: the 503 over TLS, for at most
// max_tls_refusals at a time; beyond them, closed at once.
uvkit::task<void> refuse_tls(uvkit::loop& loop, const config& cfg, worker_stats& stats, uvkit::tcp socket) {
    if (cfg.refusing.fetch_add(1, std::memory_order_relaxed) >= max_tls_refusals) {
        cfg.refusing.fetch_sub(1, std::memory_order_relaxed);
        co_return;  // `socket` is closed as the frame goes
    }
    counted guard{cfg.refusing};
    std::error_code ec;
    uvkit::tls_stream t{cfg.tls, std::move(socket), ec};
    if (ec || !co_await handshake(loop, cfg, t)) co_return;
    connection<uvkit::tls_stream> c{loop, cfg, stats, std::move(t)};
    co_await c.serve(true);
}
#endif

uvkit::task<void> serve_connection(uvkit::loop& loop, const config& cfg, worker_stats& stats,
                                   uvkit::tcp socket) {
    if (cfg.open.fetch_add(1, std::memory_order_relaxed) >= cfg.max_conns) {
        cfg.open.fetch_sub(1, std::memory_order_relaxed);
#ifdef UVKIT_HAVE_TLS
        if (cfg.tls) {
            co_await refuse_tls(loop, cfg, stats, std::move(socket));
            co_return;
        }
#endif
        co_await refuse(std::move(socket));
        co_return;
    }
    counted guard{cfg.open};
    stats.connections.fetch_add(1, std::memory_order_relaxed);
    std::error_code ec;
    socket.set_nodelay(true, ec);  // responses are small writes: no Nagle delay
#ifdef UVKIT_HAVE_TLS
    if (cfg.tls) {
        uvkit::tls_stream t{cfg.tls, std::move(socket), ec};
        if (ec) co_return;
        if (!co_await handshake(loop, cfg, t)) co_return;  // in time, or the client is closed
        connection<uvkit::tls_stream> c{loop, cfg, stats, std::move(t)};
        co_await c.serve();
        co_return;
    }
#endif
    connection<uvkit::tcp> c{loop, cfg, stats, std::move(socket)};
    co_await c.serve();
}

// ---------------------------------------------------------------- out of file descriptors

// An accept that fails with EMFILE or ENFILE stops accepting on that listener
// for accept_pause (logged once), so that connections can end and free some;
// then it accepts again. Retrying at once frees nothing: after a failed accept
// libuv's accept loop (uv__server_io) tries again at once, without polling,
// for as long as the descriptors are out. Its way out, one spare descriptor
// per loop, fails when another thread (a worker, the thread pool) takes the
// number it freed first; then that loop never returns to poll: no connection
// closes, no signal is seen, and it spins. Only closing the listening handle
// ends that loop, so on POSIX the handle is closed for the pause and made
// anew from a second descriptor of the socket kept for this (the socket and
// its backlog stay meanwhile). Windows has no such loop: the pause alone.
bool out_of_fds(std::error_code ec) {
    return ec == uvkit::make_uv_error(UV_EMFILE) || ec == uvkit::make_uv_error(UV_ENFILE);
}

#ifndef _WIN32
// A second descriptor of a listening socket, taken while descriptors are
// free; none if not `wanted`.
struct spare_fd {
    int fd = -1;
    explicit spare_fd(const uvkit::tcp& listener, bool wanted = true) {
        uv_os_fd_t f;
        if (wanted && listener.raw() && uv_fileno(reinterpret_cast<uv_handle_t*>(listener.raw()), &f) == 0)
            fd = ::fcntl(f, F_DUPFD_CLOEXEC, 0);
    }
    spare_fd(const spare_fd&) = delete;
    spare_fd& operator=(const spare_fd&) = delete;
    ~spare_fd() {
        if (fd >= 0) ::close(fd);
    }
};

// A handle on a new descriptor of `spare`'s socket, not yet listening; an
// empty tcp if no descriptor is free yet.
uvkit::tcp reopen(uvkit::loop& loop, const spare_fd& spare) {
    uvkit::tcp t{loop};  // first: if it throws, no descriptor is left behind
    int fd = ::fcntl(spare.fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return {};
    std::error_code ec;
    t.open(fd, ec);
    if (ec) {
        ::close(fd);
        return {};
    }
    return t;
}
#endif

void log_accept_pause(std::error_code ec) {
    std::cerr << "accept: " << ec.message() << ": not accepting for " << accept_pause.count() << " ms\n";
}

uvkit::task<void> accept_all(uvkit::loop& loop, const config& cfg, worker_stats& stats, uvkit::tcp& listener,
                             uvkit::task_group& connections) {
#ifndef _WIN32
    spare_fd spare{listener};
#endif
    for (;;) {
        std::error_code ec;
        uvkit::tcp conn = co_await listener.async_accept(ec);
        if (ec == uvkit::errc::canceled) co_return;  // shutting down
        if (out_of_fds(ec)) {
            log_accept_pause(ec);
#ifndef _WIN32
            if (spare.fd >= 0) {
                listener.close();  // ends libuv's accept loop (see out_of_fds)
                do {
                    co_await uvkit::sleep(loop, accept_pause, ec);
                    if (ec) co_return;  // cancelled: shutting down
                    listener = reopen(loop, spare);
                } while (!listener.raw());  // still out of descriptors: pause again
                listener.listen(backlog, ec);
                if (ec) {
                    std::cerr << "listen: " << ec.message() << "\n";
                    co_return;
                }
                continue;
            }
#endif
            co_await uvkit::sleep(loop, accept_pause, ec);
            if (ec) co_return;
            continue;
        }
        if (ec) {
            // Another failure: this one is lost, the server goes on.
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
    // Out of file descriptors in pass mode (this loop accepts): a pause, as
    // in accept_all(), ended by `resume` (closed on SIGINT/SIGTERM). In shared
    // mode this loop accepts only until every worker has the socket.
    uvkit::timer resume{loop};
#ifndef _WIN32
    spare_fd spare{listener, opt.mode == balance::pass};
#endif
    bool paused = false;
    std::function<void()> listen_again;
    auto pass = [&](std::error_code ec) {
        if (ec && out_of_fds(ec) && opt.mode == balance::pass) {
            if (paused) return;
            paused = true;
            log_accept_pause(ec);
#ifndef _WIN32
            if (spare.fd >= 0) listener.close();  // ends libuv's accept loop (see out_of_fds)
#endif
            resume.start(accept_pause, [&] { listen_again(); });
            return;
        }
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

    listen_again = [&] {
#ifndef _WIN32
        if (listener.closing()) {
            listener = reopen(loop, spare);
            std::error_code lec;
            if (listener.raw()) listener.listen(backlog, pass, lec);
            if (!listener.raw() || lec) {  // still out of descriptors: pause again
                resume.start(accept_pause, [&] { listen_again(); });
                return;
            }
        }
#endif
        paused = false;
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
        resume.close();
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
            std::cout << "usage: " << argv[0] << " " << usage_text << help_text;
            return 0;
        }
        if (arg == "--stats") {
            opt.stats = true;
            continue;
        }
        if (arg != "--host" && arg != "--port" && arg != "--threads" && arg != "--dir" && arg != "--idle" &&
            arg != "--header-timeout" && arg != "--body-timeout" && arg != "--max-conns" &&
            arg != "--max-requests" && arg != "--balance" && arg != "--cert" && arg != "--key")
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
        } else if (arg == "--cert" || arg == "--key") {
            if (value.empty()) return usage(argv[0], std::string{arg} + " needs a file");
            (arg == "--cert" ? opt.cert : opt.key) = value;
        } else if (value == "pass" || value == "shared") {
            opt.mode = value == "pass" ? balance::pass : balance::shared;
        } else {
            return usage(argv[0], "bad balance '" + std::string{value} + "' (pass or shared)");
        }
    }

#ifndef _WIN32
    // Every descriptor the hard limit allows: the soft one is often 1024,
    // below the default --max-conns (each connection takes one, two while a
    // file is read), and running out makes accepting pause (accept_all()).
    if (rlimit rl; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
#endif

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
    if (opt.cert.empty() != opt.key.empty()) return usage(argv[0], "--cert and --key go together");
    if (!opt.cert.empty()) {
#ifdef UVKIT_HAVE_TLS
        std::error_code ec;
        cfg.tls = uvkit::tls_context{uvkit::tls_role::server, ec};
        std::string problem;
        if (!ec) cfg.tls.use_certificate_chain_file(opt.cert, ec);
        if (ec) problem = "cannot use the certificate " + opt.cert + ": " + ec.message();
        if (!ec) cfg.tls.use_private_key_file(opt.key, ec);
        if (ec && problem.empty()) problem = "cannot use the key " + opt.key + ": " + ec.message();
        const std::string alpn[] = {"http/1.1"};
        if (!ec) cfg.tls.set_alpn(std::span<const std::string>(alpn), ec);
        if (ec && problem.empty()) problem = "cannot set up TLS: " + ec.message();
        if (!problem.empty()) {
            std::cerr << argv[0] << ": " << problem << "\n";
            return 1;
        }
#else
        return usage(argv[0], "--cert/--key: this uvhttpd was built without TLS support");
#endif
    }

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
