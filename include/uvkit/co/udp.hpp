// uvkit/co/udp.hpp: awaitable UDP receive and send.
//
// What it is: the coroutine forms of udp's receive and send, as members of
// uvkit::udp. Each has a throwing form and a form taking a trailing
// `std::error_code&` that stores the error and never throws:
//
//     char buf[1500];
//     uvkit::udp_datagram d = co_await u.async_recv(buf);
//     co_await u.async_send(std::string_view(buf, d.size), d.sender);
//
// Receiving: async_recv(buf) receives the next datagram straight into the
// caller's buffer (no copy, no allocation); a datagram larger than `buf` is
// cut and `partial` is set; an empty datagram has size 0. Receiving runs only
// while a coroutine waits: datagrams that arrive in between stay in the
// kernel's socket buffer (which may drop them when full, as UDP does). One
// receive may wait on a udp at a time, and not while recv_start() is
// receiving on it (UV_EALREADY); an empty `buf` fails with UV_ENOBUFS.
//
// Sending: async_send completes once libuv handed the datagram to the kernel;
// the bytes are borrowed and must stay alive until then. Send requests come
// from the udp's pool.
//
// Cancellation: a cancelled receive stops receiving and completes with
// errc::canceled, resumed from the loop (never from inside the cancelling
// call); the udp stays usable. A send cannot be taken back from libuv: a
// cancelled send closes the udp, and completes with errc::canceled once
// libuv reported it (from the loop's close phase), even if the datagram had
// already left. Closing or destroying the udp (or recv_stop()) completes
// a waiting receive with errc::canceled and pending sends likewise. Destroying
// a suspended task that waits on a receive stops receiving; one that waits on
// a send closes the udp, so that libuv never reads the freed bytes.
#pragma once

#include <coroutine>
#include <span>
#include <string_view>
#include <system_error>

#include "uvkit/co/operation.hpp"
#include "uvkit/endpoint.hpp"
#include "uvkit/udp.hpp"

namespace uvkit {

namespace detail {

/// A coroutine waiting for a datagram on a udp.
class udp_recv_awaiter;

/// The coroutine layer's part of one udp handle, its handle_consumer: made by
/// its first awaited receive, released with its state block. libuv receives
/// only while a receive waits, into that receive's buffer.
struct UVKIT_API co_udp_state final : handle_consumer {
    explicit co_udp_state(udp_state* s) noexcept : st(s) {}
    void stop() noexcept override;
    bool yield() noexcept override;
    void release() noexcept override;
    void stop_receiving() noexcept;

    udp_state* st;
    udp_recv_awaiter* waiter = nullptr;
    bool receiving = false;  // libuv receives for coroutines
};

class UVKIT_API udp_recv_awaiter final : public operation {
public:
    udp_recv_awaiter(udp& u, std::span<char> buf, std::error_code* ec_out) noexcept
        : operation(ec_out), udp_(&u), dst_(buf) {}
    ~udp_recv_awaiter() override;

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return start(h, scope_of(h));
    }
    udp_datagram await_resume() {
        deliver("uvkit::udp::async_recv");
        return result_;
    }

    /// A datagram or an error arrived: resumes now (from the receive callback).
    void complete(ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags) noexcept;
    /// Resumes soon, from the loop, with `e`.
    void abort(std::error_code e) noexcept;
    std::span<char> buffer() const noexcept { return dst_; }

private:
    bool start(std::coroutine_handle<> h, cancel_scope* scope);
    void cancel() noexcept override;
    /// dump_tasks(): "udp recv <local address>".
    void describe(task_dump& d) const override;

    udp* udp_;  // only until start(): the operation holds the state block
    std::span<char> dst_;
    udp_datagram result_;
    co_udp_state* cs_ = nullptr;
};

class UVKIT_API udp_send_awaiter final : public operation, request_consumer {
public:
    udp_send_awaiter(udp& u, std::string_view data, const endpoint* to, std::error_code* ec_out) noexcept
        : operation(ec_out), udp_(&u), data_(data) {
        if (to) {
            to_ = *to;
            has_to_ = true;
        }
    }
    ~udp_send_awaiter() override;

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return start(h, scope_of(h));
    }
    void await_resume() { deliver("uvkit::udp::async_send"); }

private:
    bool start(std::coroutine_handle<> h, cancel_scope* scope);
    void cancel() noexcept override;
    /// dump_tasks(): "udp send <to>".
    void describe(task_dump& d) const override;
    void request_done(int status) noexcept override;

    udp* udp_;  // only until start(): the operation holds the request (and so the state block)
    std::string_view data_;
    endpoint to_;
    bool has_to_ = false;
    udp_send_req* req_ = nullptr;
    bool cancelled_ = false;
};

}  // namespace detail

// The udp's coroutine members, declared in uvkit/udp.hpp.

inline detail::udp_recv_awaiter udp::async_recv(std::span<char> buf) noexcept {
    return {*this, buf, nullptr};
}
inline detail::udp_recv_awaiter udp::async_recv(std::span<char> buf, std::error_code& ec) noexcept {
    return {*this, buf, &ec};
}
inline detail::udp_send_awaiter udp::async_send(std::string_view data, const endpoint& to) noexcept {
    return {*this, data, &to, nullptr};
}
inline detail::udp_send_awaiter udp::async_send(std::string_view data, const endpoint& to,
                                                std::error_code& ec) noexcept {
    return {*this, data, &to, &ec};
}
inline detail::udp_send_awaiter udp::async_send(std::string_view data) noexcept {
    return {*this, data, nullptr, nullptr};
}
inline detail::udp_send_awaiter udp::async_send(std::string_view data, std::error_code& ec) noexcept {
    return {*this, data, nullptr, &ec};
}

}  // namespace uvkit
