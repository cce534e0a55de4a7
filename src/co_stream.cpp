#include <algorithm>
#include <cstring>

#include "uvkit/co/tcp.hpp"

namespace uvkit {

namespace detail {

namespace {

// Bytes kept for a stream while no coroutine waits to read them; beyond this
// reading pauses until a read takes them.
constexpr std::size_t backlog_limit = 64 * 1024;

void on_co_read(stream_state* st, std::error_code ec, std::string_view data) noexcept;

// A waiting read's buffer smaller than this is filled from the loop's buffer
// instead of in place: libuv reads again after filling a buffer completely,
// and one copy of a few bytes is cheaper than that extra read(2).
constexpr std::size_t in_place_min = 1024;

// start_co_reading made the loop's buffer, so this never throws.
std::span<char> co_buffer(stream_state* st, std::size_t) noexcept {
    if (read_waiter* w = st->waiter; w && w->reads_in_place() && w->room().size() >= in_place_min)
        return w->room();
    return {st->owner->ready_read_buffer(), uvkit::loop::read_buffer_size};
}

// libuv's callbacks while coroutines read: straight to the waiting read, no
// type-erased handlers in between (on_co_read never throws).
void co_alloc_cb(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf) noexcept {
    std::span<char> span = co_buffer(static_cast<stream_state*>(h->data), suggested);
    buf->base = span.data();
    buf->len = static_cast<decltype(buf->len)>(span.size());
}

void co_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* st = static_cast<stream_state*>(s->data);
    if (nread > 0)
        on_co_read(st, no_error(), std::string_view(buf->base, static_cast<std::size_t>(nread)));
    else if (nread < 0)
        on_co_read(st, make_uv_error(static_cast<int>(nread)), std::string_view{});
    // 0 is EAGAIN: the buffer goes back unused.
}

void start_co_reading(stream_state* st, std::error_code& ec) noexcept {
    if (!st->owner->prepare_read_buffer()) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    // Also installed as the stream's handlers, for a read_start() with uvkit's
    // own callbacks that would follow.
    st->provider = [st](std::size_t suggested) { return co_buffer(st, suggested); };
    st->on_read.set([st](std::error_code e, std::string_view data) { on_co_read(st, e, data); });
    int rc = uv_read_start(st->stream(), &co_alloc_cb, &co_read_cb);
    if (rc == UV_EALREADY) rc = 0;
    if (!set_error(ec, rc)) st->co_reading = true;
}

void on_co_read(stream_state* st, std::error_code ec, std::string_view data) noexcept {
    read_waiter* w = st->waiter;
    if (ec) {
        // libuv stopped reading; the error or EOF goes to the reader, now or later.
        st->co_reading = false;
        if (w)
            w->take_error(ec);
        else
            st->backlog_error = ec;
    } else if (w) {
        std::size_t used = 0;
        if (w->reads_in_place() && !w->room().empty() && data.data() == w->room().data()) {
            w->filled_ += data.size();
            w->result_ = w->filled_;
            w->done_ = w->kind_ == read_waiter::kind::some || w->filled_ == w->dst_.size();
            used = data.size();
        } else {
            used = w->take(data.data(), data.size());
        }
        if (used < data.size()) st->backlog.append(data.substr(used));
    } else {
        st->backlog.append(data);
    }
    if (!w && st->backlog.size() >= backlog_limit && st->co_reading) {
        uv_read_stop(st->stream());
        st->co_reading = false;
    }
    if (w && w->done_) w->complete();
}

}  // namespace

void read_waiter::abandon() noexcept {
    if (st_->waiter == this) st_->waiter = nullptr;
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

bool read_waiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    // The steady state of a reading loop: nothing kept from before, the stream
    // already reading, no cancellation requested. Everything else takes start_checked().
    stream_state* st = co_access::usable_state(*stream_);
    if ((scope && scope->requested()) || !st || st->waiter || !st->co_reading || !st->backlog.empty() ||
        st->backlog_error || kind_ == kind::until || (kind_ != kind::chunk && dst_.empty())) [[unlikely]]
        return start_checked(h, scope);
    st_ = st;
    wait(h, scope);
    return true;
}

bool read_waiter::start_checked(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    st_ = co_access::state(*stream_, ec_);
    if (!st_) return false;
    if (st_->waiter) {
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
    if (!st_->backlog.empty()) {
        std::size_t used = take(st_->backlog.data(), st_->backlog.size());
        st_->backlog.erase(0, used);
        if (done_) return false;
    }
    if (st_->backlog_error) {
        take_error(std::exchange(st_->backlog_error, {}));
        return false;
    }
    if (!st_->co_reading) {
        start_co_reading(st_, ec_);
        if (ec_) return false;
    }
    wait(h, scope);
    return true;
}

void read_waiter::wait(std::coroutine_handle<> h, cancel_scope* scope) {
    suspend(h, scope, *st_->owner);
    st_->waiter = this;
}

void read_waiter::complete() noexcept {
    st_->waiter = nullptr;
    resume_now();
}

void read_waiter::abort(std::error_code e) noexcept {
    if (!pending_) return;
    st_->waiter = nullptr;
    resume_soon(e);
}

void read_waiter::cancel() noexcept {
    if (!pending_) return;
    if (st_->co_reading) {
        uv_read_stop(st_->stream());
        st_->co_reading = false;
    }
    abort(make_error_code(errc::canceled));
}

// Requests -------------------------------------------------------------------

void request_awaiter::abandon() noexcept {
    // Suspended and destroyed: the request must not call back into this frame,
    // and libuv must not go on reading bytes that may live in it.
    req_->cb = nullptr;
    forget();
    // The request is in flight, so the state block is alive (libuv completes
    // it before the close callback), whatever became of the C++ stream. For a
    // connect the stream is the derived awaiter's member, already closing.
    st_->close();
}

bool request_awaiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    st_ = co_access::usable_state(*stream_);
    write_handler done = [this](std::error_code e) {
        req_ = nullptr;
        ec_ = e;
        resume_now();
    };
    switch (kind_) {
        case kind::write:
            co_access::write(*stream_, data_, has_owned_ ? &owned_ : nullptr, std::move(done), ec_, &req_);
            break;
        case kind::shutdown: co_access::shutdown(*stream_, std::move(done), ec_, &req_); break;
        case kind::connect: start_connect(std::move(done)); break;
    }
    if (ec_) return false;
    suspend(h, scope, *st_->owner);
    return true;
}

void request_awaiter::cancel() noexcept {
    // libuv cannot take back a request: closing the stream completes it with ECANCELED.
    st_->close();
}

tcp connect_awaiter::await_resume() {
    deliver("uvkit::connect");
    if (ec_) return tcp{};
    return std::move(conn_);
}

// Accept ---------------------------------------------------------------------

namespace {
void on_co_connection(listen_state* l, std::error_code status) noexcept {
    if (accept_waiter* w = l->acceptor) {
        w->take_connection(status);
    } else if (status) {
        l->accept_error = status;
    } else {
        ++l->pending_connections;
    }
}
}  // namespace

accept_waiter::~accept_waiter() {
    if (!pending_) return;
    if (st_->listener->acceptor == this) st_->listener->acceptor = nullptr;
    forget();
}

bool accept_waiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    st_ = co_access::state(*server_, ec_);
    if (!st_) return false;
    // Not listening (yet): the accept waits all the same, until listen() or close().
    listen_state* l = st_->listening();
    if (!l) {
        ec_ = make_uv_error(UV_ENOMEM);
        return false;
    }
    if (l->acceptor) {
        ec_ = make_uv_error(UV_EALREADY);
        return false;
    }
    if (l->accept_error) {
        ec_ = std::exchange(l->accept_error, {});
        return false;
    }
    if (l->pending_connections > 0) {
        --l->pending_connections;
        accept_into(*st_->owner);
        return false;
    }
    suspend(h, scope, *st_->owner);
    l->acceptor = this;
    return true;
}

void accept_waiter::take_connection(std::error_code status) noexcept {
    st_->listener->acceptor = nullptr;
    ec_ = status;
    if (!ec_) accept_into(*st_->owner);
    resume_now();
}

void accept_waiter::abort(std::error_code e) noexcept {
    if (!pending_) return;
    st_->listener->acceptor = nullptr;
    resume_soon(e);
}

void accept_waiter::cancel() noexcept { abort(make_error_code(errc::canceled)); }

void stream_state::on_closing() noexcept {
    if (waiter) waiter->abort(make_error_code(errc::canceled));
    if (listener && listener->acceptor) listener->acceptor->abort(make_error_code(errc::canceled));
}

}  // namespace detail

void stream::listen(int backlog, std::error_code& ec) noexcept {
    auto* s = detail::co_access::state(*this, ec);
    if (!s) return;
    stream::listen(
        backlog, [s](std::error_code status) { detail::on_co_connection(s->listener.get(), status); }, ec);
}

void stream::listen(int backlog) {
    std::error_code ec;
    listen(backlog, ec);
    if (ec) throw std::system_error(ec, "uv_listen");
}

}  // namespace uvkit
