#include <algorithm>
#include <cstring>

#include "uvkit/co/udp.hpp"

namespace uvkit {

namespace detail {

// The udp_state side ----------------------------------------------------------

std::span<char> udp_state::co_buffer(udp_state* s) noexcept {
    if (udp_recv_awaiter* w = s->waiter) return w->dst_;
    // Receiving with nobody waiting does not last past the callback that
    // completed the last receive; a datagram read now is dropped. The receive
    // that started it made the loop's buffer.
    return {s->owner->ready_read_buffer(), uvkit::loop::read_buffer_size};
}

void udp_state::co_recv(udp_state* s, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                        unsigned flags) noexcept {
    if (udp_recv_awaiter* w = s->waiter) w->complete(nread, buf, addr, flags);
    // Receive only while a coroutine waits: if the one just resumed did not
    // ask for the next datagram, leave it in the kernel.
    if (!s->waiter) s->stop_co_receiving();
}

void udp_state::stop_co_receiving() noexcept {
    if (co_receiving) {
        co_receiving = false;
        if (usable()) uv_udp_recv_stop(&h);
    }
    if (waiter) waiter->abort(make_error_code(errc::canceled));
}

void udp_state::on_closing() noexcept {
    co_receiving = false;
    if (waiter) waiter->abort(make_error_code(errc::canceled));
}

// Receive ---------------------------------------------------------------------

udp_recv_awaiter::~udp_recv_awaiter() {
    if (!pending_) return;
    // Destroyed while suspended: nothing may be received into the freed buffer.
    if (st_->waiter == this) st_->waiter = nullptr;
    forget();
    st_->stop_co_receiving();
}

bool udp_recv_awaiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    st_ = udp_->get<udp_state>(ec_);
    if (!st_) return false;
    if (st_->waiter) {
        ec_ = make_uv_error(UV_EALREADY);
        return false;
    }
    if (dst_.empty()) {
        ec_ = make_uv_error(UV_ENOBUFS);
        return false;
    }
    if (!st_->co_receiving) {
        if (!st_->owner->prepare_read_buffer()) {
            ec_ = make_uv_error(UV_ENOMEM);
            return false;
        }
        // UV_EALREADY when recv_start() is receiving: one reader at a time.
        if (set_error(ec_, uv_udp_recv_start(&st_->h, &udp_state::alloc_cb, &udp_state::recv_cb)))
            return false;
        st_->co_receiving = true;
    }
    suspend(h, scope, *st_->owner);
    st_->waiter = this;
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
    st_->waiter = nullptr;
    resume_now();
}

void udp_recv_awaiter::abort(std::error_code e) noexcept {
    if (!pending_) return;
    st_->waiter = nullptr;
    resume_soon(e);
}

void udp_recv_awaiter::cancel() noexcept {
    if (!pending_) return;
    // stop_co_receiving() aborts us: resumed from the loop, with errc::canceled.
    st_->stop_co_receiving();
}

// Send ------------------------------------------------------------------------

udp_send_awaiter::~udp_send_awaiter() {
    if (!req_) return;
    // Suspended and destroyed: the request must not call back into this
    // frame, and libuv must not go on reading bytes that may live in it.
    req_->cb = nullptr;
    forget();
    // Through the state block, not the udp object: that may have been moved.
    // The request is pending, so its state block is alive.
    req_->st->close();
}

bool udp_send_awaiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    udp_send_handler done = [this](std::error_code e) {
        req_ = nullptr;
        // Cancelled: the datagram may have left before the close, but the
        // caller asked to give up, and the udp is closed now.
        ec_ = cancelled_ ? make_error_code(errc::canceled) : e;
        resume_now();
    };
    udp_->send_fn(data_, nullptr, has_to_ ? &to_ : nullptr, std::move(done), ec_, &req_);
    if (ec_) return false;
    suspend(h, scope, *req_->st->owner);
    return true;
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
