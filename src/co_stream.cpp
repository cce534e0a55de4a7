#include <algorithm>
#include <cstring>

#include "handle_impl.hpp"
#include "uvkit/co/tcp.hpp"
#include "write_req.hpp"

namespace uvkit {

namespace detail {

namespace {

// Bytes kept for a stream while no coroutine waits to read them; beyond this
// reading pauses until a read takes them (then libuv reading, and its epoll
// registration, restart: the limit keeps that rare under a bulk stream).
constexpr std::size_t backlog_limit = 128 * 1024;

// A waiting read's buffer smaller than this is filled from the loop's buffer
// instead of in place: libuv reads again after filling a buffer completely,
// and one copy of a few bytes is cheaper than that extra read(2).
constexpr std::size_t in_place_min = 1024;

void on_co_read(co_stream_state* cs, std::error_code ec, std::string_view data) noexcept;

co_stream_state* co_of(uv_handle_t* h) noexcept {
    return static_cast<co_stream_state*>(static_cast<stream_state*>(h->data)->consumer);
}

// libuv's callbacks while coroutines read: straight to the waiting read, no
// type-erased handlers in between (on_co_read never throws). start_reading
// made the loop's buffer.
void co_alloc_cb(uv_handle_t* h, std::size_t, uv_buf_t* buf) noexcept {
    co_stream_state* cs = co_of(h);
    // In place, unless the stream is in bulk (the last read filled what it was
    // given) and the caller's buffer is smaller than the loop's: then one
    // read(2) fills the loop's buffer and the next reads take the rest from
    // the backlog, with no system call.
    std::span<char> span;
    if (read_waiter* w = cs->waiter; w && w->reads_in_place() && w->room().size() >= in_place_min &&
                                     (!cs->bulk || w->room().size() >= uvkit::loop::read_buffer_size))
        span = w->room();
    else
        span = {cs->st->owner->ready_read_buffer(), uvkit::loop::read_buffer_size};
    cs->offered = span.size();
    buf->base = span.data();
    buf->len = static_cast<decltype(buf->len)>(span.size());
}

void co_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    co_stream_state* cs = co_of(reinterpret_cast<uv_handle_t*>(s));
    if (nread > 0)
        on_co_read(cs, no_error(), std::string_view(buf->base, static_cast<std::size_t>(nread)));
    else if (nread < 0)
        on_co_read(cs, make_uv_error(static_cast<int>(nread)), std::string_view{});
    // 0 is EAGAIN: the buffer goes back unused.
}

void on_co_read(co_stream_state* cs, std::error_code ec, std::string_view data) noexcept {
    read_waiter* w = cs->waiter;
    if (ec) {
        // libuv stopped reading; the error or EOF goes to the reader, now or later.
        cs->reading = false;
        if (w)
            w->take_error(ec);
        else
            cs->backlog_error = ec;
    } else {
        cs->bulk = data.size() == cs->offered;
        std::size_t used = 0;
        if (w && w->reads_in_place() && !w->room().empty() && data.data() == w->room().data()) {
            w->filled_ += data.size();
            w->result_ = w->filled_;
            w->done_ = w->kind_ == read_waiter::kind::some || w->filled_ == w->dst_.size();
            used = data.size();
        } else if (w) {
            used = w->take(data.data(), data.size());
        }
        if (used < data.size()) {
            try {
                cs->keep(data.substr(used));
            } catch (...) {
                // Out of memory: the bytes are lost, so the stream fails rather than skip them.
                cs->stop_reading();
                cs->backlog_error = make_uv_error(UV_ENOMEM);
            }
        }
        if (!w && cs->kept().size() >= backlog_limit) cs->stop_reading();
    }
    if (w && w->done_) w->complete();
}

}  // namespace

co_stream_state* co_stream_state::make(stream_state* s) noexcept {
    auto* cs = pool_new<co_stream_state>(*s->owner, s);
    s->consumer = cs;
    return cs;
}

void co_stream_state::release() noexcept {
    // The state block goes away: its loop (if alive) is still its owner.
    pool_delete(st->owner, this);
}

void co_stream_state::keep(std::string_view data) {
    // What was taken goes first, once it is at least half of what is kept: no
    // memmove per read, and the kept bytes never take more than twice their size.
    if (backlog_pos > 0 && backlog_pos >= backlog.size() / 2) {
        backlog.erase(0, backlog_pos);
        backlog_pos = 0;
    }
    backlog.append(data);
}

void co_stream_state::consume(std::size_t n) noexcept {
    backlog_pos += n;
    if (backlog_pos == backlog.size()) {
        backlog.clear();
        backlog_pos = 0;
    }
}

void co_stream_state::start_reading(std::error_code& ec) noexcept {
    if (!st->owner->prepare_read_buffer()) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    // UV_EALREADY: a read_start() handler reads the stream; it has to read_stop() first.
    if (!set_error(ec, uv_read_start(st->stream(), &co_alloc_cb, &co_read_cb))) reading = true;
}

void co_stream_state::stop_reading() noexcept {
    if (!reading) return;
    reading = false;
    if (st->usable()) uv_read_stop(st->stream());
}

void co_stream_state::stop() noexcept {
    stop_reading();
    if (waiter) waiter->abort(make_error_code(errc::canceled));
    if (acceptor) acceptor->abort(make_error_code(errc::canceled));
}

bool co_stream_state::yield() noexcept {
    if (waiter || !kept().empty() || backlog_error) return false;
    stop_reading();
    return true;
}

void co_stream_state::ready(int status) noexcept {
    if (acceptor) acceptor->take_connection(status_code(status));
}

void read_waiter::abandon() noexcept {
    if (cs_->waiter == this) cs_->waiter = nullptr;
    forget();
}

std::size_t read_waiter::take(const char* p, std::size_t n) {
    switch (kind_) {
        case kind::chunk:
            out_->assign(p, n);
            done_ = true;
            return n;
        case kind::some:
        case kind::exactly: {
            std::size_t k = std::min(n, dst_.size() - filled_);
            std::memcpy(dst_.data() + filled_, p, k);
            filled_ += k;
            result_ = filled_;
            done_ = kind_ == kind::some ? filled_ > 0 : filled_ == dst_.size();
            return k;
        }
        case kind::until: {
            std::size_t from = out_->size() >= delim_.size() ? out_->size() - delim_.size() + 1 : 0;
            out_->append(p, n);
            std::size_t pos = delim_.empty() ? 0 : out_->find(delim_, from);
            if (pos != std::string::npos) {
                result_ = pos + delim_.size();
                done_ = true;
            } else if (out_->size() > max_) {
                ec_ = std::make_error_code(std::errc::message_size);
                done_ = true;
            }
            return n;
        }
    }
    return 0;
}

void read_waiter::take_error(std::error_code e) noexcept {
    done_ = true;
    if (e == errc::eof && (kind_ == kind::chunk || kind_ == kind::some)) return;  // "" / 0 at EOF
    ec_ = e;
}

bool read_waiter::start_checked(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    stream_state* st = handle_access::state(*stream_, ec_);
    if (!st) return false;
    cs_ = co_stream_state::of(st);
    if (!cs_) {
        ec_ = make_uv_error(UV_ENOMEM);
        return false;
    }
    if (cs_->waiter) {
        ec_ = make_uv_error(UV_EALREADY);
        return false;
    }
    if (kind_ == kind::some && dst_.empty()) return false;  // nothing to read into: 0 bytes
    if (kind_ == kind::until && !delim_.empty()) {
        // What a previous read_until left in the caller's buffer may already hold a line.
        if (std::size_t pos = out_->find(delim_); pos != std::string::npos) {
            result_ = pos + delim_.size();
            return false;
        }
    }
    if (std::string_view kept = cs_->kept(); !kept.empty()) {
        cs_->consume(take(kept.data(), kept.size()));
        if (done_) return false;
    }
    if (cs_->backlog_error) {
        take_error(std::exchange(cs_->backlog_error, {}));
        return false;
    }
    if (!cs_->reading) {
        cs_->start_reading(ec_);
        if (ec_) return false;
    }
    wait(h, scope);
    return true;
}

void read_waiter::complete() noexcept {
    cs_->waiter = nullptr;
    resume_now();
}

void read_waiter::abort(std::error_code e) noexcept {
    if (!pending_) return;
    cs_->waiter = nullptr;
    resume_soon(e);
}

namespace {
/// dump_tasks(): "tcp 127.0.0.1:5000" (the peer's address, or with `local` the
/// stream's own), "pipe <name>", "tty".
void describe_stream(task_dump& d, const stream_state* st, bool local) {
    uv_handle_t* h = st ? st->uvh : nullptr;
    if (!h || uv_is_closing(h)) {
        d << "stream (closing)";
        return;
    }
    switch (uv_handle_get_type(h)) {
        case UV_TCP: {
            d << "tcp";
            sockaddr_storage ss{};
            int len = sizeof ss;
            auto* t = reinterpret_cast<uv_tcp_t*>(h);
            auto* sa = reinterpret_cast<sockaddr*>(&ss);
            if ((local ? uv_tcp_getsockname(t, sa, &len) : uv_tcp_getpeername(t, sa, &len)) == 0)
                d << ' ' << endpoint::from(sa).to_string();
            return;
        }
        case UV_NAMED_PIPE: {
            d << "pipe";
            char buf[256];
            std::size_t n = sizeof buf;
            auto* p = reinterpret_cast<uv_pipe_t*>(h);
            if ((local ? uv_pipe_getsockname(p, buf, &n) : uv_pipe_getpeername(p, buf, &n)) == 0 && n > 0)
                d << ' ' << std::string_view(buf, n);
            return;
        }
        case UV_TTY: d << "tty"; return;
        default: d << "stream"; return;
    }
}
}  // namespace

void read_waiter::describe(task_dump& d) const {
    d << (kind_ == kind::until ? "read until " : "read ");
    describe_stream(d, cs_ ? cs_->st : nullptr, false);
}

void read_waiter::cancel() noexcept {
    if (!pending_) return;
    cs_->stop_reading();
    abort(make_error_code(errc::canceled));
}

// Requests -------------------------------------------------------------------

void request_awaiter::abandon() noexcept {
    // Suspended and destroyed: the request must not call back into this frame,
    // and libuv must not go on reading bytes that may live in it.
    req_->consumer = nullptr;
    forget();
    // The request is in flight, so the state block is alive (libuv completes
    // it before the close callback), whatever became of the C++ stream. For a
    // connect the stream is the derived awaiter's member, already closing.
    st_->close();
}

// Inline: both start paths of this file call it, and only they do.
inline bool request_awaiter::start_borrowed() noexcept {
    uv_buf_t b = make_buf(data_);
    int rc;
    write_req* r = start_write(st_, &b, 1, &on_write, rc);
    if (!r) [[unlikely]] {
        ec_ = make_uv_error(rc);
        return false;
    }
    r->consumer = this;
    req_ = r;
    return true;
}

bool request_awaiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    // The steady state of a bulk writer: borrowed bytes behind queued writes
    // (write_now() would leave them to uv_write too), no cancellation
    // requested: straight to the write. Everything else takes start_checked().
    auto* st = static_cast<stream_state*>(handle_access::state_block(*stream_));
    if (kind_ != kind::write || owned_ || (scope && scope->requested()) || !st || !st->open() ||
        st->stream()->write_queue_size == 0) [[unlikely]]
        return start_checked(h, scope);
    return start_queued(st, h, scope);
}

[[gnu::noinline]] bool request_awaiter::start_queued(stream_state* st, std::coroutine_handle<> h,
                                                     cancel_scope* scope) {
    st_ = st;
    if (!start_borrowed()) return false;
    suspend(h, scope, *st->owner);
    return true;
}

void request_awaiter::on_write(uv_write_t* req, int status) noexcept {
    auto* r = static_cast<write_req*>(req->data);
    // Borrowed bytes and no handler (owned writes complete through
    // write_req::on_write): nothing to reset but the consumer.
    auto* self = static_cast<request_awaiter*>(std::exchange(r->consumer, nullptr));
    write_req::recycle(r);
    if (self) self->request_done(status);
}

bool request_awaiter::start_checked(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    st_ = handle_access::usable_state(*stream_);
    switch (kind_) {
        case kind::write:
            if (!st_) {
                ec_ = make_uv_error(UV_EINVAL);
                return false;
            }
            if (write_now()) return false;
            if (!owned_) {
                if (!start_borrowed()) return false;
                suspend(h, scope, *st_->owner);
                return true;
            }
            handle_access::write_owned(*stream_, owned_, ec_, &req_);
            break;
        case kind::shutdown: handle_access::shutdown(*stream_, nullptr, ec_, &req_); break;
        case kind::connect: start_connect(); break;
    }
    if (ec_) return false;
    // The request completes in a later callback: it reports to us, with no handler.
    req_->consumer = this;
    suspend(h, scope, *st_->owner);
    return true;
}

bool request_awaiter::write_now() noexcept {
    // Behind queued writes (the steady state of a bulk writer): the usual way, at once.
    if (uv_stream_get_write_queue_size(st_->stream()) != 0) return false;
    co_stream_state* cs = co_stream_state::of(st_);
    if (!cs) return false;
    if (cs->sync_writes == co_stream_state::sync_write_limit) {
        cs->sync_writes = 0;  // this write goes through the loop
        return false;
    }
    std::string_view data = owned_ ? std::string_view(*owned_) : data_;
    uv_buf_t b = make_buf(data);
    // UV_EAGAIN (the kernel takes nothing now, or a connect is pending) and the
    // errors (the usual write reports them) leave the write to the usual way.
    int n = uv_try_write(st_->stream(), &b, 1);
    if (n <= 0) {
        cs->sync_writes = 0;
        return false;
    }
    if (static_cast<std::size_t>(n) == data.size()) {
        ++cs->sync_writes;
        return true;
    }
    // The rest, borrowed even from owned_: the awaiter outlives the request or,
    // destroyed first, closes the stream (abandon()), so libuv never reads it freed.
    data_ = data.substr(static_cast<std::size_t>(n));
    owned_ = nullptr;
    cs->sync_writes = 0;
    return false;
}

void request_awaiter::request_done(int status) noexcept {
    req_ = nullptr;
    ec_ = status_code(status);
    resume_now();
}

void request_awaiter::cancel() noexcept {
    // libuv cannot take back a request: closing the stream completes it with ECANCELED.
    st_->close();
}

void request_awaiter::describe(task_dump& d) const {
    switch (kind_) {
        case kind::write: d << "write "; break;
        case kind::shutdown: d << "shutdown "; break;
        case kind::connect: d << "connect "; break;
    }
    describe_stream(d, st_, false);
}

void connect_awaiter::describe(task_dump& d) const { d << "connect tcp " << ep_.to_string(); }

tcp connect_awaiter::await_resume() {
    deliver("uvkit::connect");
    if (ec_) return tcp{};
    return std::move(conn_);
}

// Accept ---------------------------------------------------------------------

accept_waiter::~accept_waiter() {
    if (!pending_) return;
    if (cs_->acceptor == this) cs_->acceptor = nullptr;
    forget();
}

bool accept_waiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    st_ = handle_access::state(*server_, ec_);
    if (!st_) return false;
    // Not listening (yet): the accept waits all the same, until listen() or close().
    listen_state* l = st_->listening();
    cs_ = co_stream_state::of(st_);
    if (!l || !cs_) {
        ec_ = make_uv_error(UV_ENOMEM);
        return false;
    }
    if (cs_->acceptor) {
        ec_ = make_uv_error(UV_EALREADY);
        return false;
    }
    if (l->accept_error) {
        ec_ = std::exchange(l->accept_error, {});
        return false;
    }
    if (l->pending_connections > 0) {
        accept_into(*st_->owner);
        return false;
    }
    suspend(h, scope, *st_->owner);
    cs_->acceptor = this;
    return true;
}

void accept_waiter::take_connection(std::error_code status) noexcept {
    cs_->acceptor = nullptr;
    if (status)
        ec_ = std::exchange(st_->listener->accept_error, {});
    else
        accept_into(*st_->owner);
    resume_now();
}

void accept_waiter::abort(std::error_code e) noexcept {
    if (!pending_) return;
    cs_->acceptor = nullptr;
    resume_soon(e);
}

void accept_waiter::describe(task_dump& d) const {
    d << "accept ";
    describe_stream(d, st_, true);
}

void accept_waiter::cancel() noexcept { abort(make_error_code(errc::canceled)); }

}  // namespace detail

}  // namespace uvkit
