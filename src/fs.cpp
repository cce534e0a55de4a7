#include "uvkit/fs.hpp"

#include <algorithm>
#include <climits>
#include <new>

#include "fs_impl.hpp"
#include "handle_impl.hpp"
#include "log.hpp"

namespace uvkit::detail {

namespace {

// An fs request lives in a block of the loop's block pool; the header in front
// of it tells operator delete (called by pool_op::finish) where the block goes.
struct alignas(__STDCPP_DEFAULT_NEW_ALIGNMENT__) block_header {
    block_pool* pool;
    unsigned cls;  // 0: too big for the pool, plain operator new
};

bool is_file_kind(fs_kind k) noexcept {
    switch (k) {
        case fs_kind::close:
        case fs_kind::read:
        case fs_kind::write:
        case fs_kind::fsync:
        case fs_kind::fdatasync:
        case fs_kind::ftruncate:
        case fs_kind::fstat:
        case fs_kind::fchmod:
        case fs_kind::futime:
        case fs_kind::sendfile: return true;
        default: return false;
    }
}

/// What every fs request holds; fs_op<R> adds the handler for its result type.
struct fs_op_base : pool_op {
    explicit fs_op_base(uvkit::loop& l) noexcept : pool_op(l) {}
    ~fs_op_base() override;

    static void* operator new(std::size_t n, uvkit::loop& l) {
        const std::size_t total = sizeof(block_header) + n;
        unsigned cls = static_cast<unsigned>((total + block_pool::granule - 1) / block_pool::granule);
        void* mem;
        if (cls > block_pool::classes) {
            cls = 0;
            mem = ::operator new(total);
        } else {
            mem = take_block(l.blocks(), cls);
        }
        auto* h = ::new (mem) block_header{&l.blocks(), cls};
        return h + 1;
    }
    static void operator delete(void* p) noexcept {
        auto* h = static_cast<block_header*>(p) - 1;
        block_pool* pool = h->pool;
        const unsigned cls = h->cls;
        if (cls == 0)
            ::operator delete(h);
        else
            give_block(pool, h, cls);
    }
    static void operator delete(void* p, uvkit::loop&) noexcept { operator delete(p); }

    // Not zeroed: every uv_fs_* call initialises what it uses, and nothing reads it before.
    uv_fs_t req;
    fs_kind kind{};
    bool issued = false;            // the uv_fs_* call was made: uv_fs_req_cleanup
    bool done = false;              // libuv called back
    file_state* file = nullptr;     // counted in file->inflight
    file_state* pre = nullptr;      // open, mkstemp: the block the new file gets
    file_state* closing = nullptr;  // close: the block freed once closed
    std::string owned;              // an owned write's bytes
};

/// Closes `fd` synchronously on a private loop (when the file's own loop is gone).
void close_without_loop(uv_file fd) noexcept {
    if (fd < 0) return;
    uv_loop_t tmp;
    if (uv_loop_init(&tmp) != 0) {
        UVKIT_LOG(warn, "uvkit::file: cannot close descriptor {} (no loop)", fd);
        return;
    }
    uv_fs_t r;
    uv_fs_close(&tmp, &r, fd, nullptr);
    uv_fs_req_cleanup(&r);
    uv_loop_close(&tmp);
}

/// Closes `s->fd` synchronously on its (live) loop and frees `s`: the last
/// resort when no close request can be allocated.
void close_now(file_state* s) noexcept {
    uv_fs_t r;
    uv_fs_close(s->owner->raw(), &r, s->fd, nullptr);
    uv_fs_req_cleanup(&r);
    s->fd = -1;
    handle_state::release(s);
}

void on_fs(uv_fs_t* r) noexcept {
    auto* op = static_cast<fs_op_base*>(static_cast<pool_op*>(r->data));
    op->done = true;
    const int status = r->result < 0 ? static_cast<int>(r->result) : 0;
    pool_op::finish(op, status);
}

file_stat::time_point to_time(const uv_timespec_t& t) noexcept {
    using namespace std::chrono;
    return file_stat::time_point(
        duration_cast<system_clock::duration>(seconds(t.tv_sec) + nanoseconds(t.tv_nsec)));
}

}  // namespace

file_stat to_file_stat(const uv_stat_t& s) noexcept {
    file_stat r;
    r.dev = s.st_dev;
    r.mode = s.st_mode;
    r.nlink = s.st_nlink;
    r.uid = s.st_uid;
    r.gid = s.st_gid;
    r.rdev = s.st_rdev;
    r.ino = s.st_ino;
    r.size = s.st_size;
    r.blksize = s.st_blksize;
    r.blocks = s.st_blocks;
    r.flags = s.st_flags;
    r.gen = s.st_gen;
    r.atime = to_time(s.st_atim);
    r.mtime = to_time(s.st_mtim);
    r.ctime = to_time(s.st_ctim);
    r.birthtime = to_time(s.st_birthtim);
    return r;
}

namespace {

/// Hands the new descriptor to the block prepared for it.
uvkit::file adopt_new(fs_op_base& op) noexcept {
    file_state* s = std::exchange(op.pre, nullptr);
    s->fd = static_cast<uv_file>(op.req.result);
    s->link();
    return uvkit::file(s);
}

template <class R>
R result_of(fs_op_base& op);

template <>
std::size_t result_of<std::size_t>(fs_op_base& op) {
    return static_cast<std::size_t>(op.req.result);
}
template <>
file_stat result_of<file_stat>(fs_op_base& op) {
    return to_file_stat(op.req.statbuf);
}
template <>
std::string result_of<std::string>(fs_op_base& op) {
    if (op.kind == fs_kind::mkdtemp) return op.req.path ? std::string(op.req.path) : std::string();
    return op.req.ptr ? std::string(static_cast<const char*>(op.req.ptr)) : std::string();
}
template <>
std::vector<dir_entry> result_of<std::vector<dir_entry>>(fs_op_base& op) {
    std::vector<dir_entry> out;
    uv_dirent_t ent;
    while (uv_fs_scandir_next(&op.req, &ent) == 0)
        out.push_back(dir_entry{std::string(ent.name), static_cast<entry_type>(ent.type)});
    return out;
}
template <>
fs_stats result_of<fs_stats>(fs_op_base& op) {
    fs_stats r;
    if (const auto* s = static_cast<const uv_statfs_t*>(op.req.ptr)) {
        r.type = s->f_type;
        r.bsize = s->f_bsize;
        r.blocks = s->f_blocks;
        r.bfree = s->f_bfree;
        r.bavail = s->f_bavail;
        r.files = s->f_files;
        r.ffree = s->f_ffree;
    }
    return r;
}
template <>
uvkit::file result_of<uvkit::file>(fs_op_base& op) {
    return adopt_new(op);
}
template <>
temp_file result_of<temp_file>(fs_op_base& op) {
    std::string path =
        op.req.path ? std::string(op.req.path) : std::string();  // may throw: the file not yet adopted
    return temp_file{adopt_new(op), std::move(path)};
}

template <class R>
struct fs_op final : fs_op_base {
    using fs_op_base::fs_op_base;
    void complete(int status) override {
        if constexpr (std::is_void_v<R>) {
            if (cb) cb(status_code(status));
        } else {
            if (status < 0) {
                if (cb) cb(make_uv_error(status), R{});
            } else {
                R r = result_of<R>(*this);
                if (cb) cb(no_error(), std::move(r));
            }
        }
    }
    typename fs_handler_of<R>::type cb;
};

fs_op_base::~fs_op_base() {
    if (pre) {
        if (done && req.result >= 0) {
            // Opened, but nobody took the file (an abandoned await, a handler
            // that threw first): close it the usual way.
            uvkit::file f = adopt_new(*this);
        } else {
            delete pre;
        }
    }
    if (issued) uv_fs_req_cleanup(&req);
    if (file) file->op_done();
    if (closing) {
        closing->fd = -1;
        closing->close_op = nullptr;
        handle_state::release(closing);
    }
}

int issue(uv_loop_t* l, fs_op_base* op, const fs_call& c, const char* p1, const char* p2,
          uv_file fd) noexcept {
    uv_fs_t* r = &op->req;
    switch (c.kind) {
        case fs_kind::open: return uv_fs_open(l, r, p1, c.flags, c.mode, on_fs);
        case fs_kind::close: return uv_fs_close(l, r, fd, on_fs);
        case fs_kind::read: {
            uv_buf_t b = uv_buf_init(c.buf.data(),
                                     static_cast<unsigned>(std::min<std::size_t>(c.buf.size(), INT_MAX)));
            return uv_fs_read(l, r, fd, &b, 1, c.offset, on_fs);
        }
        case fs_kind::write: {
            std::string_view d = c.owned ? std::string_view(op->owned) : c.data;
            uv_buf_t b = uv_buf_init(const_cast<char*>(d.data()),
                                     static_cast<unsigned>(std::min<std::size_t>(d.size(), INT_MAX)));
            return uv_fs_write(l, r, fd, &b, 1, c.offset, on_fs);
        }
        case fs_kind::fsync: return uv_fs_fsync(l, r, fd, on_fs);
        case fs_kind::fdatasync: return uv_fs_fdatasync(l, r, fd, on_fs);
        case fs_kind::ftruncate: return uv_fs_ftruncate(l, r, fd, c.length, on_fs);
        case fs_kind::fstat: return uv_fs_fstat(l, r, fd, on_fs);
        case fs_kind::fchmod: return uv_fs_fchmod(l, r, fd, c.mode, on_fs);
        case fs_kind::futime: return uv_fs_futime(l, r, fd, c.atime, c.mtime, on_fs);
        case fs_kind::sendfile:
            return uv_fs_sendfile(l, r, c.out, fd, c.offset, static_cast<std::size_t>(c.length), on_fs);
        case fs_kind::stat: return uv_fs_stat(l, r, p1, on_fs);
        case fs_kind::lstat: return uv_fs_lstat(l, r, p1, on_fs);
        case fs_kind::rename: return uv_fs_rename(l, r, p1, p2, on_fs);
        case fs_kind::unlink: return uv_fs_unlink(l, r, p1, on_fs);
        case fs_kind::mkdir: return uv_fs_mkdir(l, r, p1, c.mode, on_fs);
        case fs_kind::mkdtemp: return uv_fs_mkdtemp(l, r, p1, on_fs);
        case fs_kind::mkstemp: return uv_fs_mkstemp(l, r, p1, on_fs);
        case fs_kind::rmdir: return uv_fs_rmdir(l, r, p1, on_fs);
        case fs_kind::scandir: return uv_fs_scandir(l, r, p1, 0, on_fs);
        case fs_kind::copyfile: return uv_fs_copyfile(l, r, p1, p2, c.flags, on_fs);
        case fs_kind::link: return uv_fs_link(l, r, p1, p2, on_fs);
        case fs_kind::symlink: return uv_fs_symlink(l, r, p1, p2, c.flags, on_fs);
        case fs_kind::readlink: return uv_fs_readlink(l, r, p1, on_fs);
        case fs_kind::realpath: return uv_fs_realpath(l, r, p1, on_fs);
        case fs_kind::chmod: return uv_fs_chmod(l, r, p1, c.mode, on_fs);
        case fs_kind::chown: return uv_fs_chown(l, r, p1, c.uid, c.gid, on_fs);
        case fs_kind::lchown: return uv_fs_lchown(l, r, p1, c.uid, c.gid, on_fs);
        case fs_kind::utime: return uv_fs_utime(l, r, p1, c.atime, c.mtime, on_fs);
        case fs_kind::access: return uv_fs_access(l, r, p1, c.flags, on_fs);
        case fs_kind::statfs: return uv_fs_statfs(l, r, p1, on_fs);
    }
    return UV_EINVAL;
}

template <class R, class H>
fs_request start(const fs_call& c, H&& h, std::error_code& ec) noexcept {
    uvkit::loop* l = c.loop;
    file_state* f = nullptr;
    uv_file fd = -1;
    if (is_file_kind(c.kind)) {
        f = c.file;
        if (!f || !f->owner || f->released || f->fd < 0) {
            ec = make_uv_error(UV_EINVAL);
            return {};
        }
        l = f->owner;
        fd = f->fd;
    }
    if (!l) {
        ec = make_uv_error(UV_EINVAL);
        return {};
    }
    // libuv takes C strings: a NUL inside would silently cut the path short.
    if (c.path.find('\0') != std::string_view::npos || c.path2.find('\0') != std::string_view::npos) {
        ec = make_uv_error(UV_EINVAL);
        return {};
    }
    if (c.out_error) {
        ec = make_uv_error(c.out_error);
        return {};
    }
    if (!pool_op::ready(*l)) {  // the loop's registry of thread-pool requests
        ec = make_uv_error(UV_ENOMEM);
        return {};
    }
    fs_op<R>* op;
    try {
        std::string p1, p2;  // NUL-terminated copies; libuv copies them again during the call
        if (!c.path.empty()) p1.assign(c.path);
        if (!c.path2.empty()) p2.assign(c.path2);
        op = new (*l) fs_op<R>(*l);
        op->kind = c.kind;
        op->cb = std::move(h);
        if (c.owned) op->owned = std::move(*c.owned);
        if (c.kind == fs_kind::open || c.kind == fs_kind::mkstemp) {
            op->pre = new (std::nothrow) file_state(*l);
            if (!op->pre) {
                if (c.owned) *c.owned = std::move(op->owned);
                delete op;
                ec = make_uv_error(UV_ENOMEM);
                return {};
            }
        }
        op->req.data = static_cast<pool_op*>(op);
        op->issued = true;
        const int rc = issue(l->raw(), op, c, p1.c_str(), p2.c_str(), fd);
        if (rc < 0) {
            if (c.owned) *c.owned = std::move(op->owned);  // not taken: the caller keeps its bytes
            delete op;
            ec = make_uv_error(rc);
            return {};
        }
    } catch (const std::bad_alloc&) {
        ec = make_uv_error(UV_ENOMEM);
        return {};
    }
    if (f) {
        op->file = f;
        ++f->inflight;
    }
    op->started(reinterpret_cast<uv_req_t*>(&op->req));
    ec = no_error();
    return fs_request(op);
}

/// Issues the close that `s` waits for (its operations in flight are done).
void issue_close(file_state* s) noexcept {
    auto* op = static_cast<fs_op<void>*>(s->close_op);
    const int rc = uv_fs_close(s->owner->raw(), &op->req, s->fd, on_fs);
    if (rc < 0) {
        // Not queued (libuv only refuses bad arguments): close here.
        uv_fs_req_cleanup(&op->req);
        op->issued = false;
        uv_fs_t r;
        const int sync_rc = uv_fs_close(s->owner->raw(), &r, s->fd, nullptr);
        uv_fs_req_cleanup(&r);
        pool_op::finish(op, sync_rc < 0 ? sync_rc : 0);  // frees s
    }
}

/// Starts closing `s` (the file object let go of it) with `h` for the result.
bool request_close(file_state* s, fs_void_handler&& h, std::error_code& ec) noexcept {
    s->released = true;
    if (s->fd < 0) {
        handle_state::release(s);
        ec = no_error();
        return true;
    }
    uvkit::loop& l = *s->owner;
    if (!pool_op::ready(l)) {
        ec = make_uv_error(UV_ENOMEM);
        return false;
    }
    fs_op<void>* op;
    try {
        op = new (l) fs_op<void>(l);
    } catch (const std::bad_alloc&) {
        ec = make_uv_error(UV_ENOMEM);
        return false;
    }
    op->kind = fs_kind::close;
    op->cb = std::move(h);
    op->closing = s;
    op->issued = true;
    op->req.data = static_cast<pool_op*>(op);
    op->started(reinterpret_cast<uv_req_t*>(&op->req));
    // A close is never cancelled (the descriptor would leak): no uv_req_t to uv_cancel.
    static_cast<pool_op*>(op)->req = nullptr;
    s->close_op = op;
    if (s->inflight == 0) issue_close(s);
    ec = no_error();
    return true;
}

/// The destructor's close: never throws, never blocks unless out of memory.
void release_file(file_state* s) noexcept {
    if (!s->owner) {
        // The loop is gone (and with it every request): close here.
        close_without_loop(s->fd);
        s->fd = -1;
        handle_state::release(s);
        return;
    }
    std::error_code ec;
    if (request_close(s, nullptr, ec)) return;
    // Out of memory: close synchronously once nothing uses the descriptor.
    if (s->inflight == 0) close_now(s);
    // else op_done() tries again.
}

}  // namespace

void file_state::link() noexcept {
#ifndef UVKIT_NO_BLOCK_POOL
    keeps_io = true;
#endif
    next = owner->closed_handles();
    if (next) next->prev = this;
    owner->closed_handles() = this;
}

void file_state::last_op_done() noexcept {
    if (close_op)
        issue_close(this);
    else
        release_file(this);
}

file_state::~file_state() {
    // Only the spare is left: the others completed before the block could go.
    while (io_ops) delete io_ops;
}

bool file_state::cancel_requests() noexcept {
    bool in_flight = false;
    for (pool_op* op = io_ops; op; op = op->next) {
        if (op == spare_io) continue;
        op->cancel();
        in_flight = true;
    }
    return in_flight;
}

fs_request fs_start(const fs_call& c, fs_void_handler&& h, std::error_code& ec) noexcept {
    return start<void>(c, std::move(h), ec);
}
fs_request fs_start(const fs_call& c, fs_handler<std::size_t>&& h, std::error_code& ec) noexcept {
    return start<std::size_t>(c, std::move(h), ec);
}
fs_request fs_start(const fs_call& c, fs_handler<file_stat>&& h, std::error_code& ec) noexcept {
    return start<file_stat>(c, std::move(h), ec);
}
fs_request fs_start(const fs_call& c, fs_handler<std::string>&& h, std::error_code& ec) noexcept {
    return start<std::string>(c, std::move(h), ec);
}
fs_request fs_start(const fs_call& c, fs_handler<std::vector<dir_entry>>&& h, std::error_code& ec) noexcept {
    return start<std::vector<dir_entry>>(c, std::move(h), ec);
}
fs_request fs_start(const fs_call& c, fs_handler<fs_stats>&& h, std::error_code& ec) noexcept {
    return start<fs_stats>(c, std::move(h), ec);
}
fs_request fs_start(const fs_call& c, fs_handler<file>&& h, std::error_code& ec) noexcept {
    return start<file>(c, std::move(h), ec);
}
fs_request fs_start(const fs_call& c, fs_handler<temp_file>&& h, std::error_code& ec) noexcept {
    return start<temp_file>(c, std::move(h), ec);
}

}  // namespace uvkit::detail

namespace uvkit {

file file::adopt(uvkit::loop& l, uv_file fd) {
    if (fd < 0) detail::throw_uv_error(UV_EBADF, "uvkit::file::adopt");
    auto* s = new detail::file_state(l);
    s->fd = fd;
    s->link();
    return file(s);
}

void file::release() noexcept {
    if (detail::file_state* s = std::exchange(state_, nullptr)) detail::release_file(s);
}

void file::close(void_handler h) {
    std::error_code ec;
    close(std::move(h), ec);
    if (ec) throw std::system_error(ec, "uvkit::file::close");
}

void file::close(void_handler h, std::error_code& ec) noexcept {
    if (!state_ || !state_->owner || state_->fd < 0) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    if (detail::request_close(state_, std::move(h), ec)) state_ = nullptr;
}

uvkit::loop& file::get_loop() const {
    if (!state_ || !state_->owner) detail::throw_uv_error(UV_EINVAL, "uvkit::file::get_loop");
    return *state_->owner;
}

detail::fs_call file::sendfile_call(stream& out, std::int64_t offset, std::size_t length) const noexcept {
    detail::fs_call c = call(detail::fs_kind::sendfile);
    c.offset = offset;
    c.length = static_cast<std::int64_t>(length);
#ifdef _WIN32
    (void)out;
    c.out_error = UV_ENOTSUP;
#else
    uv_os_fd_t fd;
    if (!out.raw_handle() || out.closing() || uv_fileno(out.raw_handle(), &fd) != 0)
        c.out_error = UV_EBADF;
    else
        c.out = fd;
#endif
    return c;
}

}  // namespace uvkit
