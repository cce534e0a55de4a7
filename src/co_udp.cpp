#include <algorithm>
#include <cstring>

#include "handle_impl.hpp"
#include "uvkit/co/udp.hpp"

namespace uvkit {

namespace detail {

// The udp handle's consumer -----------------------------------------------------

namespace {
co_udp_state* co_of(uv_handle_t* h) noexcept {
    return static_cast<co_udp_state*>(static_cast<udp_state*>(h->data)->consumer);
}

// libuv's callbacks while coroutines receive. Receiving with nobody waiting
// does not last past the callback that completed the last receive (a datagram
// read then is dropped): the loop's buffer, that the receive made, takes it.
void co_alloc_cb(uv_handle_t* h, std::size_t, uv_buf_t* buf) noexcept {
    co_udp_state* cs = co_of(h);
    std::span<char> span{cs->st->owner->ready_read_buffer(), uvkit::loop::read_buffer_size};
    if (udp_recv_awaiter* w = cs->waiter) span = w->buffer();
    buf->base = span.data();
    buf->len = static_cast<decltype(buf->len)>(span.size());
}

void co_recv_cb(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                unsigned flags) noexcept {
    co_udp_state* cs = co_of(reinterpret_cast<uv_handle_t*>(h));
    // Nothing (more) to read: the buffer goes back unused. With an address,
    // nread 0 is an empty datagram and is delivered.
    if (nread == 0 && addr == nullptr) return;
    if (udp_recv_awaiter* w = cs->waiter) w->complete(nread, buf, addr, flags);
    // Receive only while a coroutine waits: if the one just resumed did not
    // ask for the next datagram, leave it in the kernel.
    if (!cs->waiter) cs->stop_receiving();
}
}  // namespace

void co_udp_state::stop_receiving() noexcept {
    if (!receiving) return;
    receiving = false;
    if (st->usable()) uv_udp_recv_stop(&st->h);
}

void co_udp_state::stop() noexcept {
    stop_receiving();
    if (waiter) waiter->abort(make_error_code(errc::canceled));
}

bool co_udp_state::yield() noexcept {
    if (waiter) return false;
    stop_receiving();
    return true;
}

void co_udp_state::release() noexcept { pool_delete(st->owner, this); }

// Receive ---------------------------------------------------------------------

udp_recv_awaiter::~udp_recv_awaiter() {
    if (!pending_) return;
    // Destroyed while suspended: nothing may be received into the freed buffer.
    if (cs_->waiter == this) cs_->waiter = nullptr;
    forget();
    cs_->stop_receiving();
}

bool udp_recv_awaiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    udp_state* st = udp_->get<udp_state>(ec_);
    if (!st) return false;
    if (!st->consumer) {
        st->consumer = pool_new<co_udp_state>(*st->owner, st);
        if (!st->consumer) {
            ec_ = make_uv_error(UV_ENOMEM);
            return false;
        }
    }
    cs_ = static_cast<co_udp_state*>(st->consumer);
    if (cs_->waiter) {
        ec_ = make_uv_error(UV_EALREADY);
        return false;
    }
    if (dst_.empty()) {
        ec_ = make_uv_error(UV_ENOBUFS);
        return false;
    }
    if (!cs_->receiving) {
        if (!st->owner->prepare_read_buffer()) {
            ec_ = make_uv_error(UV_ENOMEM);
            return false;
        }
        // UV_EALREADY when recv_start() is receiving: one reader at a time.
        if (set_error(ec_, uv_udp_recv_start(&st->h, &co_alloc_cb, &co_recv_cb))) return false;
        cs_->receiving = true;
    }
    suspend(h, scope, *st->owner);
    cs_->waiter = this;
    return true;
}

void udp_recv_awaiter::complete(ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                                unsigned flags) noexcept {
    if (nread < 0) {
        ec_ = make_uv_error(static_cast<int>(nread));
    } else {
        auto n = static_cast<std::size_t>(nread);
        if (buf->base != dst_.data()) {
            // Not our buffer (cannot happen while we wait, but never lose bytes silently).
            std::size_t k = std::min(n, dst_.size());
            if (k) std::memcpy(dst_.data(), buf->base, k);
            if (k < n) flags |= UV_UDP_PARTIAL;
            n = k;
        }
        result_.size = n;
        result_.sender = addr ? endpoint::from(addr) : endpoint{};
        result_.partial = (flags & UV_UDP_PARTIAL) != 0;
    }
    cs_->waiter = nullptr;
    resume_now();
}

void udp_recv_awaiter::abort(std::error_code e) noexcept {
    if (!pending_) return;
    cs_->waiter = nullptr;
    resume_soon(e);
}

void udp_recv_awaiter::describe(task_dump& d) const {
    d << "udp recv";
    uv_handle_t* h = cs_ && cs_->st ? cs_->st->uvh : nullptr;
    if (!h || uv_is_closing(h)) return;
    sockaddr_storage ss{};
    int len = sizeof ss;
    auto* sa = reinterpret_cast<sockaddr*>(&ss);
    if (uv_udp_getsockname(reinterpret_cast<uv_udp_t*>(h), sa, &len) == 0)
        d << ' ' << endpoint::from(sa).to_string();
}

void udp_recv_awaiter::cancel() noexcept {
    if (!pending_) return;
    // stop() aborts us: resumed from the loop, with errc::canceled.
    cs_->stop();
}

// Send ------------------------------------------------------------------------

udp_send_awaiter::~udp_send_awaiter() {
    if (!req_) return;
    // Suspended and destroyed: the request must not call back into this
    // frame, and libuv must not go on reading bytes that may live in it.
    req_->consumer = nullptr;
    forget();
    // Through the state block, not the udp object: that may have been moved.
    // The request is pending, so its state block is alive.
    req_->st->close();
}

bool udp_send_awaiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    udp_->send_fn(data_, nullptr, has_to_ ? &to_ : nullptr, nullptr, ec_, &req_);
    if (ec_) return false;
    req_->consumer = this;  // completes in a later callback
    suspend(h, scope, *req_->st->owner);
    return true;
}

void udp_send_awaiter::request_done(int status) noexcept {
    req_ = nullptr;
    // Cancelled: the datagram may have left before the close, but the
    // caller asked to give up, and the udp is closed now.
    ec_ = cancelled_ ? make_error_code(errc::canceled) : status_code(status);
    resume_now();
}

void udp_send_awaiter::describe(task_dump& d) const {
    d << "udp send";
    if (has_to_) d << ' ' << to_.to_string();
}

void udp_send_awaiter::cancel() noexcept {
    // libuv cannot take back a send: closing the udp completes it with
    // ECANCELED, from the loop's close phase.
    if (!req_) return;
    cancelled_ = true;
    req_->st->close();
}

}  // namespace detail

}  // namespace uvkit
