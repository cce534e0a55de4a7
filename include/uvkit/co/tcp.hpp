// uvkit/co/tcp.hpp: awaitable connect and accept.
//
//     uvkit::tcp c = co_await uvkit::connect(loop, ep);   // std::errc::connection_refused, ...
//
//     uvkit::tcp server{loop};
//     server.bind(ep);
//     server.listen(128);                                 // no handler: for async_accept()
//     uvkit::tcp client = co_await server.async_accept();
//
// Each has a throwing form and one taking a trailing std::error_code&.
//
// Cancellation: a cancelled connect closes its socket and completes with
// errc::canceled; a cancelled accept completes with errc::canceled and leaves
// the connection, if one arrives, for the next async_accept(). Closing the
// server completes a waiting accept with errc::canceled.
#pragma once

#include "uvkit/co/stream.hpp"
#include "uvkit/tcp.hpp"

namespace uvkit {

namespace detail {

class UVKIT_API connect_awaiter final : request_awaiter {
public:
    connect_awaiter(uvkit::loop& l, const endpoint& ep, std::error_code* ec_out) noexcept
        : request_awaiter(conn_, kind::connect, ec_out, &l), ep_(ep) {}
    using request_awaiter::await_ready;
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        conn_ = tcp{*loop_};
        return start(h, scope_of(h));
    }
    tcp await_resume();
    /// dump_tasks(): "connect tcp <target>".
    void describe(task_dump& d) const override;

private:
    void start_connect() noexcept override { handle_access::connect(conn_, ep_, nullptr, ec_, &req_); }
    endpoint ep_;
    tcp conn_;
};

}  // namespace detail

/// Connects a new tcp to `ep` (uv_tcp_connect); the result is the connected socket.
inline detail::connect_awaiter connect(uvkit::loop& l, const endpoint& ep) noexcept {
    return {l, ep, nullptr};
}
/// Non-throwing form: on failure `ec` is set and the result is an empty tcp.
inline detail::connect_awaiter connect(uvkit::loop& l, const endpoint& ep, std::error_code& ec) noexcept {
    return {l, ep, &ec};
}

inline detail::accept_awaiter<tcp> tcp::async_accept() noexcept { return {*this, nullptr}; }
inline detail::accept_awaiter<tcp> tcp::async_accept(std::error_code& ec) noexcept { return {*this, &ec}; }

}  // namespace uvkit
