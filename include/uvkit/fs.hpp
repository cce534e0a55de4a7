// uvkit/fs.hpp: files and file system requests (uv_fs_*).
//
// What it is: `uvkit::file`, a move-only RAII open file, and the operations on
// paths (uvkit::fs::stat, rename, mkdir, scandir, copyfile, ...). Every
// operation runs on libuv's thread pool and completes on the loop thread.
//
//     uvkit::file::open(loop, "log.txt", UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_APPEND, 0644,
//                       [&](std::error_code ec, uvkit::file f) { ... });
//     f.read(std::span<char>(buf), offset, [&](std::error_code ec, std::size_t n) { ... });  // n == 0: EOF
//     uvkit::fs::stat(loop, "log.txt", [&](std::error_code ec, uvkit::file_stat st) { ... });
//
// The coroutine forms (uvkit/co/fs.hpp) read the same: `co_await f.async_read(buf, offset)`,
// `co_await uvkit::fs::async_stat(loop, path)`; they throw std::system_error, or store the
// error in a trailing std::error_code& argument.
//
// Requests: each callback form returns an `fs_request`.
// - The handler is called exactly once, on the loop thread, with the result and
//   a std::error_code (empty on success), unless starting failed: then the call
//   throws std::system_error (or the std::error_code& form stores the error) and
//   the handler never runs. A path with an embedded NUL fails to start with
//   UV_EINVAL (it is never truncated); so does an operation on an empty or
//   closed file.
// - cancel() (uv_cancel) succeeds while the request waits in the pool's queue:
//   the handler then gets errc::canceled (from the loop, never inside cancel()).
//   Once a pool thread runs it, it completes normally.
// - Destroying an fs_request does *not* cancel it (a dropped request object
//   must never lose a write): the request runs on and its handler still runs.
// - Requests come from the loop's block pool: in steady state a read or a
//   write allocates nothing (a path operation copies its path, as libuv does).
//
// Buffers: read() fills the caller's std::span<char>, which must stay valid until
// the handler ran. write(std::string_view) borrows the bytes (keep them alive
// until the handler ran); write(std::string&&) owns them. An offset of -1 means
// the file's current position.
//
// Lifetime: destroying (or closing, or assigning over) a `file` never blocks
// the loop thread: the descriptor is closed by an asynchronous uv_fs_close once
// the operations already started on it completed (they run to their end and
// their handlers run: no write already started is lost). A `file` whose loop
// was destroyed is empty for its operations (UV_EINVAL) and closes its
// descriptor synchronously when destroyed (there is no loop to do it on).
// Destroying the loop cancels queued requests and waits for the running ones.
//
// Errors: results arrive as std::error_code from uvkit::error_category(); they
// compare equal to std::errc (`ec == std::errc::no_such_file_or_directory`).
#pragma once

#include <uv.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvkit/detail/function.hpp"
#include "uvkit/error.hpp"
#include "uvkit/export.hpp"
#include "uvkit/handle.hpp"
#include "uvkit/loop.hpp"
#include "uvkit/stream.hpp"
#include "uvkit/work.hpp"

namespace uvkit {

/// What uv_fs_stat reports (uv_stat_t), with std::chrono times.
struct file_stat {
    using time_point = std::chrono::system_clock::time_point;
    std::uint64_t dev = 0, mode = 0, nlink = 0, uid = 0, gid = 0, rdev = 0, ino = 0, size = 0;
    std::uint64_t blksize = 0, blocks = 0, flags = 0, gen = 0;
    time_point atime{}, mtime{}, ctime{}, birthtime{};

    bool is_regular() const noexcept { return (mode & S_IFMT) == S_IFREG; }
    bool is_directory() const noexcept { return (mode & S_IFMT) == S_IFDIR; }
    bool is_symlink() const noexcept {
#ifdef S_IFLNK
        return (mode & S_IFMT) == S_IFLNK;
#else
        return false;
#endif
    }
    /// The permission bits (mode & 07777).
    unsigned permissions() const noexcept { return static_cast<unsigned>(mode & 07777); }
};

/// The type of a directory entry (uv_dirent_type_t).
enum class entry_type {
    unknown = UV_DIRENT_UNKNOWN,
    file = UV_DIRENT_FILE,
    directory = UV_DIRENT_DIR,
    symlink = UV_DIRENT_LINK,
    fifo = UV_DIRENT_FIFO,
    socket = UV_DIRENT_SOCKET,
    char_device = UV_DIRENT_CHAR,
    block_device = UV_DIRENT_BLOCK,
};

/// One entry of a directory listing (uv_dirent_t): its name (not a path) and type.
struct dir_entry {
    std::string name;
    entry_type type = entry_type::unknown;
    friend bool operator==(const dir_entry&, const dir_entry&) = default;
};

/// What uv_fs_statfs reports (uv_statfs_t).
struct fs_stats {
    std::uint64_t type = 0, bsize = 0, blocks = 0, bfree = 0, bavail = 0, files = 0, ffree = 0;
};

class file;
struct temp_file;

namespace detail {

/// The state block of an open file: the descriptor, and the count of
/// operations in flight on it (the descriptor is closed once that drops to 0
/// and the file object let go). It sits on the loop's list of closed handle
/// blocks, which is how it learns that its loop is gone (owner becomes null).
struct UVKIT_API file_state final : handle_state {
    explicit file_state(uvkit::loop& l) noexcept : handle_state(l) { uv_closed = true; }
    ~file_state() override;
    uv_file fd = -1;
    unsigned inflight = 0;
    bool released = false;        // the file object let go: close when inflight is 0
    bool keeps_io = false;        // link() sets it, but under AddressSanitizer (see spare_io)
    pool_op* close_op = nullptr;  // a close waiting for the operations in flight
    pool_op* io_ops = nullptr;    // fs_start_io's requests made for this file: in flight, or spare_io
    pool_op* spare_io = nullptr;  // the finished one of io_ops kept for the next read or write

    /// Links the block into its loop (once it holds a descriptor).
    void link() noexcept;
    /// ~loop: cancels the reads and writes of io_ops in flight; true while any is.
    bool cancel_requests() noexcept override;
    /// An operation on it ended; may start the waiting close.
    void op_done() noexcept {
        if (--inflight == 0 && released) [[unlikely]]
            last_op_done();
    }

private:
    void last_op_done() noexcept;
};

/// Every file system operation, as data: what to call and with what. One
/// initiation (fs_start) serves the callback and the coroutine forms.
enum class fs_kind : unsigned char {
    open,
    close,
    read,
    write,
    fsync,
    fdatasync,
    ftruncate,
    fstat,
    fchmod,
    futime,
    sendfile,
    stat,
    lstat,
    rename,
    unlink,
    mkdir,
    mkdtemp,
    mkstemp,
    rmdir,
    scandir,
    copyfile,
    link,
    symlink,
    readlink,
    realpath,
    chmod,
    chown,
    lchown,
    utime,
    access,
    statfs,
};

struct fs_call {
    fs_kind kind{};
    uvkit::loop* loop = nullptr;   // path operations
    file_state* file = nullptr;    // file operations (null: empty file, UV_EINVAL)
    std::string_view path, path2;  // copied by the start
    std::span<char> buf;           // read
    std::string_view data;         // write (borrowed unless `owned`)
    std::string* owned = nullptr;  // write: moved into the request
    std::int64_t offset = -1;
    std::int64_t length = 0;  // ftruncate, sendfile
    int flags = 0;            // open, copyfile, symlink, access (mode)
    int mode = 0;             // open, mkdir, chmod
    double atime = 0, mtime = 0;
    uv_uid_t uid{};
    uv_gid_t gid{};
    uv_file out = -1;   // sendfile's destination
    int out_error = 0;  // sendfile: the destination was not usable
};

template <class R>
using fs_handler = unique_function<void(std::error_code, R)>;
using fs_void_handler = unique_function<void(std::error_code)>;

template <class R>
struct fs_handler_of {
    using type = fs_handler<R>;
};
template <>
struct fs_handler_of<void> {
    using type = fs_void_handler;
};

/// Seconds since the epoch, as libuv's utime calls take them.
inline double fs_seconds(std::chrono::system_clock::time_point t) noexcept {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace detail

/// A started file system request (see the header comment): cancel() while it
/// is queued; destroying it lets the request run on.
class UVKIT_API fs_request : public detail::pool_request {
public:
    fs_request() noexcept = default;
    explicit fs_request(detail::pool_op* op) noexcept : pool_request(op) {}
    fs_request(fs_request&&) noexcept = default;
    fs_request& operator=(fs_request&& o) noexcept {
        if (this != &o) {
            detach();
            pool_request::operator=(std::move(o));
        }
        return *this;
    }
    ~fs_request() { detach(); }
};

namespace detail {
/// Starts `c` with the handler for its result type. On failure, `ec` is set and `h` never runs.
UVKIT_API fs_request fs_start(const fs_call& c, fs_void_handler&& h, std::error_code& ec) noexcept;
UVKIT_API fs_request fs_start(const fs_call& c, fs_handler<std::size_t>&& h, std::error_code& ec) noexcept;
UVKIT_API fs_request fs_start(const fs_call& c, fs_handler<file_stat>&& h, std::error_code& ec) noexcept;
UVKIT_API fs_request fs_start(const fs_call& c, fs_handler<std::string>&& h, std::error_code& ec) noexcept;
UVKIT_API fs_request fs_start(const fs_call& c, fs_handler<std::vector<dir_entry>>&& h,
                              std::error_code& ec) noexcept;
UVKIT_API fs_request fs_start(const fs_call& c, fs_handler<fs_stats>&& h, std::error_code& ec) noexcept;
UVKIT_API fs_request fs_start(const fs_call& c, fs_handler<file>&& h, std::error_code& ec) noexcept;

/// The throwing callback form: starts `c`, throws std::system_error naming `what`.
template <class H>
fs_request fs_start_or_throw(const fs_call& c, H&& h, const char* what) {
    std::error_code ec;
    fs_request r = fs_start(c, std::forward<H>(h), ec);
    if (ec) throw std::system_error(ec, what);
    return r;
}

/// A read into [data, data+size) or a borrowed write of it at `offset` on `file`.
struct fs_io {
    file_state* file;
    char* data;
    std::size_t size;
    std::int64_t offset;
    fs_kind kind;  // fs_kind::read or fs_kind::write
};

/// A read or a borrowed write whose completion goes to a consumer (fs_start_io):
/// the steady state of a file loop, so none of the general fs request's
/// machinery. Plain heap memory, not the loop's block pool: a finished one
/// stays with its file (file_state::spare_io) for the next, and a file may
/// outlive its loop. It is on its file's list (file_state::io_ops, through
/// pool_op's links), not in the loop's registry: nothing to link per read, and
/// ~loop still finds it (handle_state::cancel_requests).
struct UVKIT_API fs_io_op final : pool_op {
    fs_io_op(uvkit::loop& l, file_state* f) noexcept : pool_op(l), file(f) {
        pool_op::req = reinterpret_cast<uv_req_t*>(&req);
        req.data = static_cast<pool_op*>(this);
        next = f->io_ops;
        if (next) next->prev = this;
        f->io_ops = this;
    }
    ~fs_io_op() override {
        if (prev)
            prev->next = next;
        else
            file->io_ops = next;
        if (next) next->prev = prev;
    }
    /// Never called: an fs_io_op completes through on_fs_io, never through pool_op::finish.
    void complete(int) override {}
    uv_fs_t req;         // uv_fs_read/uv_fs_write initialise it (but data)
    void* to = nullptr;  // the consumer
    file_state* file;
};

/// The completion of a request that fs_start_io<C> started: delivers the bytes
/// moved or the libuv error to the consumer (C::request_done(to, result)), then
/// keeps the request for the file's next read or write. A template, inline:
/// the delivery is a direct call, once per read or write.
template <class C>
void on_fs_io(uv_fs_t* r) noexcept {
    auto* op = static_cast<fs_io_op*>(static_cast<pool_op*>(r->data));
    // At most INT_MAX bytes were asked for (fs_start_io), so the result fits.
    const int result = static_cast<int>(r->result);
    uv_fs_req_cleanup(r);
    file_state* f = op->file;  // alive while the request counts in f->inflight
    if (!op->silenced) {
        // The awaiter (pool_awaiter::suspend set the slot before the loop ran
        // again) no longer has a request; an abandoned one already let go.
        *op->slot = nullptr;
        C::request_done(op->to, result);
    }
    // Kept for the file's next read or write, unless the delivery started one
    // that took the spare, or under AddressSanitizer (freed, as pooled blocks are).
    if (f->spare_io || !f->keeps_io)
        delete op;
    else
        f->spare_io = op;
    f->op_done();
}

/// The lean start of `io` (a read or a write), for the coroutine forms: no
/// handler, the completion calls C::request_done(c, result). On failure `ec`
/// is set, nothing started, and the result is nullptr; else the started
/// request's block. Inline: every awaited file read or write runs it.
template <class C>
inline pool_op* fs_start_io(const fs_io& io, C* c, std::error_code& ec) noexcept {
    file_state* f = io.file;
    // A file object's block holds a descriptor until it is released.
    if (!f || !f->owner || f->released) [[unlikely]] {
        ec = make_uv_error(UV_EINVAL);
        return nullptr;
    }
    uvkit::loop& l = *f->owner;
    // The loop's registry: ~loop waits for this request through its shutdown.
    if (!pool_op::ready(l)) [[unlikely]] {
        ec = make_uv_error(UV_ENOMEM);
        return nullptr;
    }
    fs_io_op* op = static_cast<fs_io_op*>(std::exchange(f->spare_io, nullptr));
    if (op) {
        op->canceled = op->silenced = false;
    } else if (!(op = new (std::nothrow) fs_io_op(l, f))) {
        // The first of this file, or the one beside another in flight.
        ec = make_uv_error(UV_ENOMEM);
        return nullptr;
    }
    uv_buf_t b;
    b.base = io.data;
    b.len = static_cast<decltype(b.len)>(std::min<std::size_t>(io.size, INT_MAX));
    const int rc = io.kind == fs_kind::read
                       ? uv_fs_read(l.raw(), &op->req, f->fd, &b, 1, io.offset, &on_fs_io<C>)
                       : uv_fs_write(l.raw(), &op->req, f->fd, &b, 1, io.offset, &on_fs_io<C>);
    if (rc < 0) [[unlikely]] {
        uv_fs_req_cleanup(&op->req);
        delete op;
        ec = make_uv_error(rc);
        return nullptr;
    }
    op->to = c;
    ++f->inflight;
    return op;
}

template <class R>
class fs_awaiter;
class file_io_awaiter;
}  // namespace detail

/// A move-only open file (uv_file). Closes on destruction, asynchronously.
class UVKIT_API file {
public:
    using size_handler = detail::fs_handler<std::size_t>;
    using void_handler = detail::fs_void_handler;
    using stat_handler = detail::fs_handler<file_stat>;
    using open_handler = detail::fs_handler<file>;

    /// An empty file: its operations fail with UV_EINVAL.
    file() noexcept = default;
    file(file&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
    /// Closes this file (as the destructor does), then takes `o`'s.
    file& operator=(file&& o) noexcept {
        if (this != &o) {
            release();
            state_ = std::exchange(o.state_, nullptr);
        }
        return *this;
    }
    file(const file&) = delete;
    file& operator=(const file&) = delete;
    /// Closes the descriptor asynchronously (uv_fs_close) once the operations in
    /// flight completed; never blocks the loop thread; never throws.
    ~file() { release(); }

    /// Opens `path` (uv_fs_open); `flags` are UV_FS_O_* (UV_FS_O_RDONLY, ...),
    /// `mode` the permissions of a created file. `h(ec, file)`.
    static fs_request open(uvkit::loop& l, std::string_view path, int flags, int mode, open_handler h) {
        return detail::fs_start_or_throw(open_call(l, path, flags, mode), std::move(h), "uvkit::file::open");
    }
    static fs_request open(uvkit::loop& l, std::string_view path, int flags, int mode, open_handler h,
                           std::error_code& ec) noexcept {
        return detail::fs_start(open_call(l, path, flags, mode), std::move(h), ec);
    }
    /// Takes ownership of an open descriptor (closes it when destroyed). Throws
    /// std::system_error (UV_EBADF) for a negative descriptor.
    static file adopt(uvkit::loop& l, uv_file fd);

    /// Reads up to buf.size() bytes at `offset` (-1: the current position) into
    /// `buf` (uv_fs_read). `h(ec, n)`: n == 0 at end of file.
    fs_request read(std::span<char> buf, std::int64_t offset, size_handler h) {
        return detail::fs_start_or_throw(read_call(buf, offset), std::move(h), "uvkit::file::read");
    }
    fs_request read(std::span<char> buf, std::int64_t offset, size_handler h, std::error_code& ec) noexcept {
        return detail::fs_start(read_call(buf, offset), std::move(h), ec);
    }
    /// Writes borrowed bytes at `offset` (-1: the current position; with
    /// UV_FS_O_APPEND, the end) (uv_fs_write). `h(ec, n)`.
    fs_request write(std::string_view data, std::int64_t offset, size_handler h) {
        return detail::fs_start_or_throw(write_call(data, nullptr, offset), std::move(h),
                                         "uvkit::file::write");
    }
    fs_request write(std::string_view data, std::int64_t offset, size_handler h,
                     std::error_code& ec) noexcept {
        return detail::fs_start(write_call(data, nullptr, offset), std::move(h), ec);
    }
    /// Writes owned bytes (a std::string moved in; uvkit keeps it until the handler ran).
    template <class S, class = std::enable_if_t<detail::is_owned_string<S>>>
    fs_request write(S&& data, std::int64_t offset, size_handler h) {
        return detail::fs_start_or_throw(write_call(data, &data, offset), std::move(h), "uvkit::file::write");
    }
    template <class S, class = std::enable_if_t<detail::is_owned_string<S>>>
    fs_request write(S&& data, std::int64_t offset, size_handler h, std::error_code& ec) noexcept {
        return detail::fs_start(write_call(data, &data, offset), std::move(h), ec);
    }
    /// Flushes data and metadata to the disk (uv_fs_fsync).
    fs_request sync(void_handler h) {
        return start_void(detail::fs_kind::fsync, std::move(h), "uvkit::file::sync");
    }
    fs_request sync(void_handler h, std::error_code& ec) noexcept {
        return detail::fs_start(call(detail::fs_kind::fsync), std::move(h), ec);
    }
    /// Flushes the data (uv_fs_fdatasync).
    fs_request datasync(void_handler h) {
        return start_void(detail::fs_kind::fdatasync, std::move(h), "uvkit::file::datasync");
    }
    fs_request datasync(void_handler h, std::error_code& ec) noexcept {
        return detail::fs_start(call(detail::fs_kind::fdatasync), std::move(h), ec);
    }
    /// Sets the size (uv_fs_ftruncate).
    fs_request truncate(std::int64_t size, void_handler h) {
        return detail::fs_start_or_throw(truncate_call(size), std::move(h), "uvkit::file::truncate");
    }
    fs_request truncate(std::int64_t size, void_handler h, std::error_code& ec) noexcept {
        return detail::fs_start(truncate_call(size), std::move(h), ec);
    }
    /// The file's status (uv_fs_fstat).
    fs_request stat(stat_handler h) {
        return detail::fs_start_or_throw(call(detail::fs_kind::fstat), std::move(h), "uvkit::file::stat");
    }
    fs_request stat(stat_handler h, std::error_code& ec) noexcept {
        return detail::fs_start(call(detail::fs_kind::fstat), std::move(h), ec);
    }
    /// Changes the permissions (uv_fs_fchmod).
    fs_request chmod(int mode, void_handler h) {
        return detail::fs_start_or_throw(chmod_call(mode), std::move(h), "uvkit::file::chmod");
    }
    fs_request chmod(int mode, void_handler h, std::error_code& ec) noexcept {
        return detail::fs_start(chmod_call(mode), std::move(h), ec);
    }
    /// Sets the access and modification times (uv_fs_futime).
    fs_request utime(file_stat::time_point atime, file_stat::time_point mtime, void_handler h) {
        return detail::fs_start_or_throw(utime_call(atime, mtime), std::move(h), "uvkit::file::utime");
    }
    fs_request utime(file_stat::time_point atime, file_stat::time_point mtime, void_handler h,
                     std::error_code& ec) noexcept {
        return detail::fs_start(utime_call(atime, mtime), std::move(h), ec);
    }
    /// Copies up to `length` bytes from `offset` of this file to `out`
    /// (uv_fs_sendfile; the kernel's sendfile where it has one). `h(ec, n)`
    /// with the count sent, which may be short. To a stream, the bytes bypass
    /// the stream's write queue: start it only when write_queue_size() is 0. A
    /// non-blocking socket whose buffer is full reports UV_EAGAIN
    /// (`ec == std::errc::resource_unavailable_try_again`); fall back to
    /// read() + the stream's write (whose completion is the backpressure).
    /// On Windows a stream destination fails with UV_ENOTSUP.
    fs_request sendfile(stream& out, std::int64_t offset, std::size_t length, size_handler h) {
        return detail::fs_start_or_throw(sendfile_call(out, offset, length), std::move(h),
                                         "uvkit::file::sendfile");
    }
    fs_request sendfile(stream& out, std::int64_t offset, std::size_t length, size_handler h,
                        std::error_code& ec) noexcept {
        return detail::fs_start(sendfile_call(out, offset, length), std::move(h), ec);
    }
    fs_request sendfile(file& out, std::int64_t offset, std::size_t length, size_handler h) {
        return detail::fs_start_or_throw(sendfile_call(out, offset, length), std::move(h),
                                         "uvkit::file::sendfile");
    }
    fs_request sendfile(file& out, std::int64_t offset, std::size_t length, size_handler h,
                        std::error_code& ec) noexcept {
        return detail::fs_start(sendfile_call(out, offset, length), std::move(h), ec);
    }

    /// Closes the file now (as the destructor does): the object becomes empty.
    void close() noexcept { release(); }
    /// Closes the file and calls `h(ec)` with uv_fs_close's result once it is
    /// closed (after the operations in flight completed). The object becomes
    /// empty. Throws (UV_EINVAL for an empty file; h then never runs).
    void close(void_handler h);
    void close(void_handler h, std::error_code& ec) noexcept;

    // Coroutine forms (uvkit/co/fs.hpp): same arguments, no handler.
    detail::file_io_awaiter async_read(std::span<char> buf, std::int64_t offset = -1) noexcept;
    detail::file_io_awaiter async_read(std::span<char> buf, std::int64_t offset,
                                       std::error_code& ec) noexcept;
    detail::file_io_awaiter async_write(std::string_view data, std::int64_t offset = -1) noexcept;
    detail::file_io_awaiter async_write(std::string_view data, std::int64_t offset,
                                        std::error_code& ec) noexcept;
    /// Owned bytes (a std::string moved in): the request keeps them, so even a task
    /// destroyed while the write runs leaves it nothing freed to read.
    template <class S, class = std::enable_if_t<detail::is_owned_string<S>>>
    detail::fs_awaiter<std::size_t> async_write(S&& data, std::int64_t offset = -1) noexcept;
    template <class S, class = std::enable_if_t<detail::is_owned_string<S>>>
    detail::fs_awaiter<std::size_t> async_write(S&& data, std::int64_t offset, std::error_code& ec) noexcept;
    detail::fs_awaiter<void> async_sync() noexcept;
    detail::fs_awaiter<void> async_sync(std::error_code& ec) noexcept;
    detail::fs_awaiter<void> async_datasync() noexcept;
    detail::fs_awaiter<void> async_datasync(std::error_code& ec) noexcept;
    detail::fs_awaiter<void> async_truncate(std::int64_t size) noexcept;
    detail::fs_awaiter<void> async_truncate(std::int64_t size, std::error_code& ec) noexcept;
    detail::fs_awaiter<file_stat> async_stat() noexcept;
    detail::fs_awaiter<file_stat> async_stat(std::error_code& ec) noexcept;
    detail::fs_awaiter<void> async_chmod(int mode) noexcept;
    detail::fs_awaiter<void> async_chmod(int mode, std::error_code& ec) noexcept;
    detail::fs_awaiter<void> async_utime(file_stat::time_point atime, file_stat::time_point mtime) noexcept;
    detail::fs_awaiter<void> async_utime(file_stat::time_point atime, file_stat::time_point mtime,
                                         std::error_code& ec) noexcept;
    detail::fs_awaiter<std::size_t> async_sendfile(stream& out, std::int64_t offset,
                                                   std::size_t length) noexcept;
    detail::fs_awaiter<std::size_t> async_sendfile(stream& out, std::int64_t offset, std::size_t length,
                                                   std::error_code& ec) noexcept;
    detail::fs_awaiter<std::size_t> async_sendfile(file& out, std::int64_t offset,
                                                   std::size_t length) noexcept;
    detail::fs_awaiter<std::size_t> async_sendfile(file& out, std::int64_t offset, std::size_t length,
                                                   std::error_code& ec) noexcept;

    /// True while the file holds a descriptor on a live loop.
    bool is_open() const noexcept { return state_ && state_->owner && state_->fd >= 0; }
    explicit operator bool() const noexcept { return is_open(); }
    /// The descriptor (uv_file), or -1 for an empty file.
    uv_file fd() const noexcept { return state_ ? state_->fd : -1; }
    /// The loop; throws std::system_error (UV_EINVAL) if empty or the loop is gone.
    uvkit::loop& get_loop() const;

    /// Internal: a file holding `s` (open's result).
    explicit file(detail::file_state* s) noexcept : state_(s) {}
    /// Internal: the operation descriptions, shared with the coroutine forms.
    static detail::fs_call open_call(uvkit::loop& l, std::string_view path, int flags, int mode) noexcept {
        detail::fs_call c;
        c.kind = detail::fs_kind::open;
        c.loop = &l;
        c.path = path;
        c.flags = flags;
        c.mode = mode;
        return c;
    }
    detail::fs_call call(detail::fs_kind k) const noexcept {
        detail::fs_call c;
        c.kind = k;
        c.file = state_;
        return c;
    }
    detail::fs_call read_call(std::span<char> buf, std::int64_t offset) const noexcept {
        detail::fs_call c = call(detail::fs_kind::read);
        c.buf = buf;
        c.offset = offset;
        return c;
    }
    detail::fs_call write_call(std::string_view data, std::string* owned,
                               std::int64_t offset) const noexcept {
        detail::fs_call c = call(detail::fs_kind::write);
        c.data = data;
        c.owned = owned;
        c.offset = offset;
        return c;
    }
    detail::fs_call truncate_call(std::int64_t size) const noexcept {
        detail::fs_call c = call(detail::fs_kind::ftruncate);
        c.length = size;
        return c;
    }
    detail::fs_call chmod_call(int mode) const noexcept {
        detail::fs_call c = call(detail::fs_kind::fchmod);
        c.mode = mode;
        return c;
    }
    detail::fs_call utime_call(file_stat::time_point a, file_stat::time_point m) const noexcept {
        detail::fs_call c = call(detail::fs_kind::futime);
        c.atime = detail::fs_seconds(a);
        c.mtime = detail::fs_seconds(m);
        return c;
    }
    detail::fs_call sendfile_call(stream& out, std::int64_t offset, std::size_t length) const noexcept;
    detail::fs_call sendfile_call(file& out, std::int64_t offset, std::size_t length) const noexcept {
        detail::fs_call c = call(detail::fs_kind::sendfile);
        c.offset = offset;
        c.length = static_cast<std::int64_t>(length);
        c.out = out.fd();
        if (!out.is_open()) c.out_error = UV_EBADF;
        return c;
    }

private:
    fs_request start_void(detail::fs_kind k, void_handler&& h, const char* what) {
        return detail::fs_start_or_throw(call(k), std::move(h), what);
    }
    void release() noexcept;

    detail::file_state* state_ = nullptr;
};

/// A file made by fs::mkstemp: the open file and the path it was given.
struct temp_file {
    uvkit::file file;
    std::string path;
};

namespace detail {
UVKIT_API fs_request fs_start(const fs_call& c, fs_handler<temp_file>&& h, std::error_code& ec) noexcept;
}  // namespace detail

/// Operations on paths. Each takes the loop, its arguments and a handler; the
/// form with a trailing std::error_code& stores a start error instead of
/// throwing it. Coroutine forms in uvkit/co/fs.hpp: fs::async_<name>(loop, args...).
namespace fs {

using void_handler = detail::fs_void_handler;
using stat_handler = detail::fs_handler<file_stat>;
using string_handler = detail::fs_handler<std::string>;
using entries_handler = detail::fs_handler<std::vector<dir_entry>>;
using statfs_handler = detail::fs_handler<fs_stats>;
using temp_file_handler = detail::fs_handler<temp_file>;

namespace detail_calls {
inline uvkit::detail::fs_call path_call(uvkit::detail::fs_kind k, uvkit::loop& l, std::string_view p,
                                        std::string_view p2 = {}) noexcept {
    uvkit::detail::fs_call c;
    c.kind = k;
    c.loop = &l;
    c.path = p;
    c.path2 = p2;
    return c;
}
}  // namespace detail_calls

// Stamps out the two callback forms of one path operation.
#define UVKIT_FS_PATH_OP(name, kind, Handler, params, setup)                                     \
    inline fs_request name(uvkit::loop& l, params, Handler h) {                                  \
        uvkit::detail::fs_call c = detail_calls::path_call(uvkit::detail::fs_kind::kind, l, {}); \
        setup;                                                                                   \
        return uvkit::detail::fs_start_or_throw(c, std::move(h), "uvkit::fs::" #name);           \
    }                                                                                            \
    inline fs_request name(uvkit::loop& l, params, Handler h, std::error_code& ec) noexcept {    \
        uvkit::detail::fs_call c = detail_calls::path_call(uvkit::detail::fs_kind::kind, l, {}); \
        setup;                                                                                   \
        return uvkit::detail::fs_start(c, std::move(h), ec);                                     \
    }
#define UVKIT_FS_COMMA ,

/// The status of `path`, following symlinks (uv_fs_stat).
UVKIT_FS_PATH_OP(stat, stat, stat_handler, std::string_view path, c.path = path)
/// The status of `path` itself, not following a final symlink (uv_fs_lstat).
UVKIT_FS_PATH_OP(lstat, lstat, stat_handler, std::string_view path, c.path = path)
/// Renames `from` to `to`, replacing `to` (uv_fs_rename).
UVKIT_FS_PATH_OP(rename, rename, void_handler, std::string_view from UVKIT_FS_COMMA std::string_view to,
                 c.path = from;
                 c.path2 = to)
/// Removes a file (uv_fs_unlink).
UVKIT_FS_PATH_OP(unlink, unlink, void_handler, std::string_view path, c.path = path)
/// Makes a directory with permissions `mode` (uv_fs_mkdir).
UVKIT_FS_PATH_OP(mkdir, mkdir, void_handler, std::string_view path UVKIT_FS_COMMA int mode, c.path = path;
                 c.mode = mode)
/// Makes a unique directory from `tmpl`, which ends in "XXXXXX"; `h(ec, path)` (uv_fs_mkdtemp).
UVKIT_FS_PATH_OP(mkdtemp, mkdtemp, string_handler, std::string_view tmpl, c.path = tmpl)
/// Makes and opens a unique file from `tmpl` ("...XXXXXX"); `h(ec, temp_file)` (uv_fs_mkstemp).
UVKIT_FS_PATH_OP(mkstemp, mkstemp, temp_file_handler, std::string_view tmpl, c.path = tmpl)
/// Removes an empty directory (uv_fs_rmdir).
UVKIT_FS_PATH_OP(rmdir, rmdir, void_handler, std::string_view path, c.path = path)
/// Lists a directory, without "." and ".."; `h(ec, entries)` (uv_fs_scandir).
UVKIT_FS_PATH_OP(scandir, scandir, entries_handler, std::string_view path, c.path = path)
/// Copies a file; `flags`: UV_FS_COPYFILE_EXCL, _FICLONE, _FICLONE_FORCE (uv_fs_copyfile).
UVKIT_FS_PATH_OP(copyfile, copyfile, void_handler,
                 std::string_view from UVKIT_FS_COMMA std::string_view to UVKIT_FS_COMMA int flags,
                 c.path = from;
                 c.path2 = to; c.flags = flags)
/// Makes a hard link `to` of `from` (uv_fs_link).
UVKIT_FS_PATH_OP(link, link, void_handler, std::string_view from UVKIT_FS_COMMA std::string_view to,
                 c.path = from;
                 c.path2 = to)
/// Makes a symlink `link_path` pointing to `target`; flags: UV_FS_SYMLINK_DIR,
/// UV_FS_SYMLINK_JUNCTION (Windows) (uv_fs_symlink).
UVKIT_FS_PATH_OP(symlink, symlink, void_handler,
                 std::string_view target UVKIT_FS_COMMA std::string_view link_path UVKIT_FS_COMMA int flags,
                 c.path = target;
                 c.path2 = link_path; c.flags = flags)
/// The target of a symlink (uv_fs_readlink).
UVKIT_FS_PATH_OP(readlink, readlink, string_handler, std::string_view path, c.path = path)
/// The canonical absolute path (uv_fs_realpath).
UVKIT_FS_PATH_OP(realpath, realpath, string_handler, std::string_view path, c.path = path)
/// Changes permissions (uv_fs_chmod).
UVKIT_FS_PATH_OP(chmod, chmod, void_handler, std::string_view path UVKIT_FS_COMMA int mode, c.path = path;
                 c.mode = mode)
/// Changes owner and group (uv_fs_chown; no effect on Windows).
UVKIT_FS_PATH_OP(chown, chown, void_handler,
                 std::string_view path UVKIT_FS_COMMA uv_uid_t uid UVKIT_FS_COMMA uv_gid_t gid, c.path = path;
                 c.uid = uid; c.gid = gid)
/// chown of a symlink itself (uv_fs_lchown).
UVKIT_FS_PATH_OP(lchown, lchown, void_handler,
                 std::string_view path UVKIT_FS_COMMA uv_uid_t uid UVKIT_FS_COMMA uv_gid_t gid, c.path = path;
                 c.uid = uid; c.gid = gid)
/// Sets access and modification times (uv_fs_utime).
UVKIT_FS_PATH_OP(utime, utime, void_handler,
                 std::string_view path UVKIT_FS_COMMA file_stat::time_point atime UVKIT_FS_COMMA
                     file_stat::time_point mtime,
                 c.path = path;
                 c.atime = uvkit::detail::fs_seconds(atime); c.mtime = uvkit::detail::fs_seconds(mtime))
/// Checks access; `mode`: F_OK or R_OK | W_OK | X_OK (uv_fs_access).
UVKIT_FS_PATH_OP(access, access, void_handler, std::string_view path UVKIT_FS_COMMA int mode, c.path = path;
                 c.flags = mode)
/// File system statistics (uv_fs_statfs).
UVKIT_FS_PATH_OP(statfs, statfs, statfs_handler, std::string_view path, c.path = path)

#undef UVKIT_FS_PATH_OP
#undef UVKIT_FS_COMMA

}  // namespace fs

}  // namespace uvkit
