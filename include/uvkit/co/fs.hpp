// uvkit/co/fs.hpp: co_await on files and paths (uvkit/fs.hpp).
//
//     uvkit::file f = co_await uvkit::fs::async_open(loop, path, UV_FS_O_RDONLY, 0);
//     char buf[65536];
//     for (std::int64_t off = 0;;) {
//         std::size_t n = co_await f.async_read(std::span<char>(buf), off);   // 0 at end of file
//         if (n == 0) break;
//         off += static_cast<std::int64_t>(n);
//     }
//     uvkit::file_stat st = co_await uvkit::fs::async_stat(loop, path);
//
// Results: the operation's value (bytes read or written, a file_stat, a path,
// the entries of a directory, a file); errors throw std::system_error, or, in
// the forms taking a trailing std::error_code&, are stored there and the value
// is value-initialised (0, an empty file, ...). A bad argument (an empty file,
// a path with an embedded NUL) completes the co_await at once with UV_EINVAL.
//
// Cancellation (a cancel scope: when_any, with_timeout, task_group, ...)
// calls uv_cancel: a request still queued completes with errc::canceled; one
// that a pool thread already runs completes normally and its result is
// delivered. The cancelled await is resumed by the loop, never from inside the
// cancelling call.
//
// Destroying a suspended task cancels its request if it is still queued; a
// request already running completes on its own and no longer touches the
// frame. Its buffer is the exception: a read still running writes into it, a
// write still running reads from it. A task that may be destroyed while it
// waits (rather than cancelled, which always waits) must keep its buffer
// outside the frame (a member, a heap block that outlives the task).
//
// The awaitable is co_awaited in the expression that made it: it copies the
// paths, but borrows buffers and data.
//
// One operation: a block from the loop's pool, nothing else; an awaited read
// or borrowed write reuses the request its file kept from the last one (no
// allocation in steady state for reads and writes).
#pragma once

#include <coroutine>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "uvkit/co/work.hpp"
#include "uvkit/fs.hpp"
#include "uvkit/fs_event.hpp"
#include "uvkit/fs_poll.hpp"

namespace uvkit {

namespace detail {

/// The await of one fs request (see the header comment).
template <class R>
class fs_awaiter final : pool_awaiter {
public:
    fs_awaiter(const fs_call& c, const char* what, std::error_code* ec_out) noexcept
        : pool_awaiter(ec_out, c.file ? c.file->owner : c.loop), call_(c), what_(what) {
        if (!c.path.empty() || !c.path2.empty()) {
            try {
                path_.assign(c.path);
                path2_.assign(c.path2);
                call_.path = path_;
                call_.path2 = path2_;
            } catch (const std::bad_alloc&) {
                oom_ = true;
            }
        }
    }

    /// A write of owned bytes: kept here, then moved into the request when it starts.
    fs_awaiter(const fs_call& c, std::string&& owned, const char* what, std::error_code* ec_out) noexcept
        : fs_awaiter(c, what, ec_out) {
        owned_ = std::move(owned);
        call_.data = owned_;
        call_.owned = &owned_;
    }

    using pool_awaiter::await_ready;
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        cancel_scope* scope = scope_of(h);
        if (!admit(scope)) return false;
        if (oom_) {
            ec_ = make_uv_error(UV_ENOMEM);
            return false;
        }
        fs_request r = fs_start(call_, handler(), ec_);
        if (ec_) return false;
        suspend(r, h, scope);
        return true;
    }
    R await_resume() {
        deliver(what_);
        if constexpr (!std::is_void_v<R>) return std::move(result_);
    }
    /// dump_tasks(): "fs read <path>" (the call's name, its path if it has one).
    void describe(task_dump& d) const override {
        d.name(what_);
        if (!path_.empty()) d << ' ' << path_;
    }

private:
    typename fs_handler_of<R>::type handler() noexcept {
        if constexpr (std::is_void_v<R>) {
            return [this](std::error_code ec) {
                ec_ = ec;
                finish();
            };
        } else {
            return [this](std::error_code ec, R r) {
                ec_ = ec;
                result_ = std::move(r);
                finish();
            };
        }
    }

    struct nothing {};
    fs_call call_;
    const char* what_;
    std::string path_, path2_;
    std::string owned_;
    [[no_unique_address]] std::conditional_t<std::is_void_v<R>, nothing, R> result_{};
    bool oom_ = false;
};

/// The await of a read into the caller's buffer or a borrowed write: the
/// steady state of a file loop, so the request reports to the awaiter, with
/// no handler and no copy of the call in between.
class UVKIT_API file_io_awaiter final : pool_awaiter {
public:
    // No loop: the request's own completion resumes it (see pool_awaiter::suspend).
    file_io_awaiter(const fs_io& io, std::error_code* ec_out) noexcept : pool_awaiter(ec_out), io_(io) {}

    using pool_awaiter::await_ready;
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return start(h, scope_of(h));
    }
    /// The bytes read (0 at the end of the file) or written.
    std::size_t await_resume() {
        if (ec_out_ || ec_) [[unlikely]]
            deliver(what());
        return result_;
    }
    /// dump_tasks(): "file read" / "file write".
    void describe(task_dump& d) const override { d.name(what()); }

private:
    bool start(std::coroutine_handle<> h, cancel_scope* scope) noexcept {
        if (!admit(scope)) return false;
        pool_op* op = fs_start_io(io_, this, ec_);
        if (!op) return false;
        suspend(op, h, scope);
        return true;
    }
    friend void on_fs_io<file_io_awaiter>(uv_fs_t*) noexcept;
    /// The request's result (on_fs_io): resumes the coroutine.
    static void request_done(void* self, int result) noexcept {
        auto* a = static_cast<file_io_awaiter*>(self);
        if (result < 0) [[unlikely]]
            a->ec_ = make_uv_error(result);
        else
            a->result_ = static_cast<std::size_t>(result);
        a->finish();
    }
    const char* what() const noexcept {
        return io_.kind == fs_kind::read ? "uvkit::file::async_read" : "uvkit::file::async_write";
    }

    fs_io io_;
    std::size_t result_ = 0;
};

/// The await of a watcher's next queued event (fs_event, fs_poll). A queued
/// event completes it at once, without suspending.
template <class Record>
class watch_awaiter final : public operation, handle_consumer {
public:
    watch_awaiter(handle_state* s, event_queue<Record>* q, uvkit::loop* l, std::error_code* ec_out,
                  const char* what) noexcept
        : operation(ec_out, l), s_(s), q_(q), what_(what) {}
    ~watch_awaiter() override {
        if (!pending_) return;
        unhook();
        forget();
    }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        cancel_scope* scope = scope_of(h);
        if (!admit(scope)) return false;
        if (!q_) {
            ec_ = make_uv_error(UV_EINVAL);
            return false;
        }
        if (!q_->items.empty()) {
            take();
            return false;
        }
        if (s_->consumer) {
            ec_ = make_uv_error(UV_EALREADY);
            return false;
        }
        suspend(h, scope, *loop_);
        s_->consumer = this;
        return true;
    }
    Record await_resume() {
        deliver(what_);
        return std::move(rec_);
    }
    /// dump_tasks(): "fs_event next" / "fs_poll next".
    void describe(task_dump& d) const override { d.name(what_); }

private:
    void take() {
        rec_ = std::move(q_->items.front());
        q_->items.pop_front();
        ec_ = rec_.ec;
    }
    void unhook() noexcept {
        if (s_ && s_->consumer == this) s_->consumer = nullptr;
    }
    // The watcher's consumer while waiting: an event was queued, or the watcher closes or stops.
    void ready(int) noexcept override {
        unhook();
        take();
        resume_now();
    }
    void stop() noexcept override {
        unhook();
        q_ = nullptr;
        resume_soon(make_error_code(errc::canceled));
    }
    void cancel() noexcept override {
        unhook();
        resume_soon(make_error_code(errc::canceled));
    }

    handle_state* s_;
    event_queue<Record>* q_;
    const char* what_;
    Record rec_{};
};

template <class Traits, class State>
watch_awaiter<typename Traits::record> path_watcher<Traits, State>::async_next() noexcept {
    return async_next_into(nullptr);
}
template <class Traits, class State>
watch_awaiter<typename Traits::record> path_watcher<Traits, State>::async_next(std::error_code& ec) noexcept {
    return async_next_into(&ec);
}
template <class Traits, class State>
watch_awaiter<typename Traits::record> path_watcher<Traits, State>::async_next_into(
    std::error_code* ec) const noexcept {
    State* s = queued_state();
    if (!s) return {nullptr, nullptr, nullptr, ec, Traits::next_name};
    return {s, &s->queue, s->owner, ec, Traits::next_name};
}

}  // namespace detail

inline detail::file_io_awaiter file::async_read(std::span<char> buf, std::int64_t offset) noexcept {
    return {{state_, buf.data(), buf.size(), offset, detail::fs_kind::read}, nullptr};
}
inline detail::file_io_awaiter file::async_read(std::span<char> buf, std::int64_t offset,
                                                std::error_code& ec) noexcept {
    return {{state_, buf.data(), buf.size(), offset, detail::fs_kind::read}, &ec};
}
inline detail::file_io_awaiter file::async_write(std::string_view data, std::int64_t offset) noexcept {
    return {{state_, const_cast<char*>(data.data()), data.size(), offset, detail::fs_kind::write}, nullptr};
}
inline detail::file_io_awaiter file::async_write(std::string_view data, std::int64_t offset,
                                                 std::error_code& ec) noexcept {
    return {{state_, const_cast<char*>(data.data()), data.size(), offset, detail::fs_kind::write}, &ec};
}
template <class S, class>
inline detail::fs_awaiter<std::size_t> file::async_write(S&& data, std::int64_t offset) noexcept {
    return {write_call({}, nullptr, offset), std::move(data), "uvkit::file::async_write", nullptr};
}
template <class S, class>
inline detail::fs_awaiter<std::size_t> file::async_write(S&& data, std::int64_t offset,
                                                         std::error_code& ec) noexcept {
    return {write_call({}, nullptr, offset), std::move(data), "uvkit::file::async_write", &ec};
}
inline detail::fs_awaiter<void> file::async_sync() noexcept {
    return {call(detail::fs_kind::fsync), "uvkit::file::async_sync", nullptr};
}
inline detail::fs_awaiter<void> file::async_sync(std::error_code& ec) noexcept {
    return {call(detail::fs_kind::fsync), "uvkit::file::async_sync", &ec};
}
inline detail::fs_awaiter<void> file::async_datasync() noexcept {
    return {call(detail::fs_kind::fdatasync), "uvkit::file::async_datasync", nullptr};
}
inline detail::fs_awaiter<void> file::async_datasync(std::error_code& ec) noexcept {
    return {call(detail::fs_kind::fdatasync), "uvkit::file::async_datasync", &ec};
}
inline detail::fs_awaiter<void> file::async_truncate(std::int64_t size) noexcept {
    return {truncate_call(size), "uvkit::file::async_truncate", nullptr};
}
inline detail::fs_awaiter<void> file::async_truncate(std::int64_t size, std::error_code& ec) noexcept {
    return {truncate_call(size), "uvkit::file::async_truncate", &ec};
}
inline detail::fs_awaiter<file_stat> file::async_stat() noexcept {
    return {call(detail::fs_kind::fstat), "uvkit::file::async_stat", nullptr};
}
inline detail::fs_awaiter<file_stat> file::async_stat(std::error_code& ec) noexcept {
    return {call(detail::fs_kind::fstat), "uvkit::file::async_stat", &ec};
}
inline detail::fs_awaiter<void> file::async_chmod(int mode) noexcept {
    return {chmod_call(mode), "uvkit::file::async_chmod", nullptr};
}
inline detail::fs_awaiter<void> file::async_chmod(int mode, std::error_code& ec) noexcept {
    return {chmod_call(mode), "uvkit::file::async_chmod", &ec};
}
inline detail::fs_awaiter<void> file::async_utime(file_stat::time_point atime,
                                                  file_stat::time_point mtime) noexcept {
    return {utime_call(atime, mtime), "uvkit::file::async_utime", nullptr};
}
inline detail::fs_awaiter<void> file::async_utime(file_stat::time_point atime, file_stat::time_point mtime,
                                                  std::error_code& ec) noexcept {
    return {utime_call(atime, mtime), "uvkit::file::async_utime", &ec};
}
inline detail::fs_awaiter<std::size_t> file::async_sendfile(stream& out, std::int64_t offset,
                                                            std::size_t length) noexcept {
    return {sendfile_call(out, offset, length), "uvkit::file::async_sendfile", nullptr};
}
inline detail::fs_awaiter<std::size_t> file::async_sendfile(stream& out, std::int64_t offset,
                                                            std::size_t length,
                                                            std::error_code& ec) noexcept {
    return {sendfile_call(out, offset, length), "uvkit::file::async_sendfile", &ec};
}
inline detail::fs_awaiter<std::size_t> file::async_sendfile(file& out, std::int64_t offset,
                                                            std::size_t length) noexcept {
    return {sendfile_call(out, offset, length), "uvkit::file::async_sendfile", nullptr};
}
inline detail::fs_awaiter<std::size_t> file::async_sendfile(file& out, std::int64_t offset,
                                                            std::size_t length,
                                                            std::error_code& ec) noexcept {
    return {sendfile_call(out, offset, length), "uvkit::file::async_sendfile", &ec};
}

namespace fs {

/// Opens `path` (uv_fs_open): co_await gives the file.
inline detail::fs_awaiter<file> async_open(uvkit::loop& l, std::string_view path, int flags, int mode) {
    return {file::open_call(l, path, flags, mode), "uvkit::fs::async_open", nullptr};
}
inline detail::fs_awaiter<file> async_open(uvkit::loop& l, std::string_view path, int flags, int mode,
                                           std::error_code& ec) {
    return {file::open_call(l, path, flags, mode), "uvkit::fs::async_open", &ec};
}

// Stamps out the two coroutine forms of one path operation (see uvkit/fs.hpp for each).
#define UVKIT_FS_CO_OP(name, kind, R, params, setup)                                                \
    inline uvkit::detail::fs_awaiter<R> async_##name(uvkit::loop& l, params) {                      \
        uvkit::detail::fs_call c = detail_calls::path_call(uvkit::detail::fs_kind::kind, l, {});    \
        setup;                                                                                      \
        return {c, "uvkit::fs::async_" #name, nullptr};                                             \
    }                                                                                               \
    inline uvkit::detail::fs_awaiter<R> async_##name(uvkit::loop& l, params, std::error_code& ec) { \
        uvkit::detail::fs_call c = detail_calls::path_call(uvkit::detail::fs_kind::kind, l, {});    \
        setup;                                                                                      \
        return {c, "uvkit::fs::async_" #name, &ec};                                                 \
    }
#define UVKIT_FS_COMMA ,

UVKIT_FS_CO_OP(stat, stat, file_stat, std::string_view path, c.path = path)
UVKIT_FS_CO_OP(lstat, lstat, file_stat, std::string_view path, c.path = path)
UVKIT_FS_CO_OP(rename, rename, void, std::string_view from UVKIT_FS_COMMA std::string_view to, c.path = from;
               c.path2 = to)
UVKIT_FS_CO_OP(unlink, unlink, void, std::string_view path, c.path = path)
UVKIT_FS_CO_OP(mkdir, mkdir, void, std::string_view path UVKIT_FS_COMMA int mode, c.path = path;
               c.mode = mode)
UVKIT_FS_CO_OP(mkdtemp, mkdtemp, std::string, std::string_view tmpl, c.path = tmpl)
UVKIT_FS_CO_OP(mkstemp, mkstemp, temp_file, std::string_view tmpl, c.path = tmpl)
UVKIT_FS_CO_OP(rmdir, rmdir, void, std::string_view path, c.path = path)
UVKIT_FS_CO_OP(scandir, scandir, std::vector<dir_entry>, std::string_view path, c.path = path)
UVKIT_FS_CO_OP(copyfile, copyfile, void,
               std::string_view from UVKIT_FS_COMMA std::string_view to UVKIT_FS_COMMA int flags,
               c.path = from;
               c.path2 = to; c.flags = flags)
UVKIT_FS_CO_OP(link, link, void, std::string_view from UVKIT_FS_COMMA std::string_view to, c.path = from;
               c.path2 = to)
UVKIT_FS_CO_OP(symlink, symlink, void,
               std::string_view target UVKIT_FS_COMMA std::string_view link_path UVKIT_FS_COMMA int flags,
               c.path = target;
               c.path2 = link_path; c.flags = flags)
UVKIT_FS_CO_OP(readlink, readlink, std::string, std::string_view path, c.path = path)
UVKIT_FS_CO_OP(realpath, realpath, std::string, std::string_view path, c.path = path)
UVKIT_FS_CO_OP(chmod, chmod, void, std::string_view path UVKIT_FS_COMMA int mode, c.path = path;
               c.mode = mode)
UVKIT_FS_CO_OP(chown, chown, void,
               std::string_view path UVKIT_FS_COMMA uv_uid_t uid UVKIT_FS_COMMA uv_gid_t gid, c.path = path;
               c.uid = uid; c.gid = gid)
UVKIT_FS_CO_OP(lchown, lchown, void,
               std::string_view path UVKIT_FS_COMMA uv_uid_t uid UVKIT_FS_COMMA uv_gid_t gid, c.path = path;
               c.uid = uid; c.gid = gid)
UVKIT_FS_CO_OP(utime, utime, void,
               std::string_view path UVKIT_FS_COMMA file_stat::time_point atime UVKIT_FS_COMMA
                   file_stat::time_point mtime,
               c.path = path;
               c.atime = uvkit::detail::fs_seconds(atime); c.mtime = uvkit::detail::fs_seconds(mtime))
UVKIT_FS_CO_OP(access, access, void, std::string_view path UVKIT_FS_COMMA int mode, c.path = path;
               c.flags = mode)
UVKIT_FS_CO_OP(statfs, statfs, fs_stats, std::string_view path, c.path = path)

#undef UVKIT_FS_CO_OP
#undef UVKIT_FS_COMMA

}  // namespace fs

}  // namespace uvkit
