// uvkit/tcp.hpp: a TCP socket (uv_tcp_t), client or server.
//
// What it is: a stream (see uvkit/stream.hpp for reading and writing) plus
// what is TCP's own: bind, connect, socket options, endpoints, adopting an
// existing socket, and closing with a reset.
//
//     uvkit::tcp server{loop};
//     server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
//     server.listen(128, [&](std::error_code ec) {
//         if (ec) return;
//         uvkit::tcp client{loop};
//         server.accept(client);
//         ...
//     });
//
// Lifetime: see uvkit/handle.hpp. Closing a tcp completes its pending
// connect, writes and shutdown (with errc::canceled unless they had already
// finished), before the close's on_closed handler runs.
//
// Errors: throwing and std::error_code& forms for every synchronous call;
// connect's handler gets e.g. std::errc::connection_refused.
#pragma once

#include <chrono>

#include "uvkit/endpoint.hpp"
#include "uvkit/stream.hpp"

namespace uvkit {

namespace detail {
struct UVKIT_API tcp_state final : stream_state {
    using stream_state::stream_state;
    uv_tcp_t h;  // not zeroed: uv_tcp_init initialises it
};
}  // namespace detail

class UVKIT_API tcp : public stream {
public:
    /// An empty tcp: every operation fails with UV_EINVAL until one is moved in.
    tcp() noexcept = default;
    /// Creates a TCP handle on `l` (uv_tcp_init); no socket exists until bind,
    /// connect or open. Throws std::system_error.
    explicit tcp(uvkit::loop& l);
    tcp(tcp&&) noexcept = default;
    tcp& operator=(tcp&&) noexcept = default;
    ~tcp() = default;

    /// Binds to a local endpoint (uv_tcp_bind); port 0 picks a free port, see
    /// local_endpoint(). `ipv6_only` sets UV_TCP_IPV6ONLY. Errors such as
    /// address_in_use may only show at listen() or connect(), as in libuv.
    void bind(const endpoint& ep, bool ipv6_only = false);
    void bind(const endpoint& ep, bool ipv6_only, std::error_code& ec) noexcept;

    /// Connects to `ep` (uv_tcp_connect); `h(ec)` is called exactly once, with
    /// an empty ec on success, e.g. std::errc::connection_refused, or
    /// errc::canceled if the handle was closed first.
    template <class F>
    void connect(const endpoint& ep, F&& h) {
        std::error_code ec;
        connect(ep, std::forward<F>(h), ec);
        if (ec) detail::throw_uv_error(ec.value(), "uv_tcp_connect");
    }
    template <class F>
    void connect(const endpoint& ep, F&& h, std::error_code& ec) noexcept {
        connect_fn(ep, detail::write_handler(std::forward<F>(h)), ec);
    }

    /// Adopts an existing, open socket (uv_tcp_open), e.g. one made by another library.
    void open(uv_os_sock_t sock);
    void open(uv_os_sock_t sock, std::error_code& ec) noexcept;

    /// TCP_NODELAY: disables Nagle's algorithm when true (uv_tcp_nodelay).
    void set_nodelay(bool enable);
    void set_nodelay(bool enable, std::error_code& ec) noexcept;

    /// SO_KEEPALIVE with the initial delay (uv_tcp_keepalive).
    void set_keepalive(bool enable, std::chrono::seconds delay = std::chrono::seconds(60));
    void set_keepalive(bool enable, std::chrono::seconds delay, std::error_code& ec) noexcept;

    /// Lets a listening socket on Windows accept in parallel (uv_tcp_simultaneous_accepts);
    /// no effect elsewhere.
    void set_simultaneous_accepts(bool enable);
    void set_simultaneous_accepts(bool enable, std::error_code& ec) noexcept;

    /// The bound address (uv_tcp_getsockname): the real port after binding port 0.
    endpoint local_endpoint() const;
    endpoint local_endpoint(std::error_code& ec) const noexcept;

    /// The connected peer's address (uv_tcp_getpeername).
    endpoint peer_endpoint() const;
    endpoint peer_endpoint(std::error_code& ec) const noexcept;

    /// Closes the connection with a RST instead of a FIN (uv_tcp_close_reset);
    /// the peer sees connection_reset. `on_closed` runs like close()'s. Fails
    /// (UV_EINVAL) on an empty or closing handle.
    template <class F = std::nullptr_t>
    void close_reset(F&& on_closed = nullptr) {
        std::error_code ec;
        close_reset(std::forward<F>(on_closed), ec);
        if (ec) detail::throw_uv_error(ec.value(), "uv_tcp_close_reset");
    }
    template <class F>
    void close_reset(F&& on_closed, std::error_code& ec) noexcept {
        close_reset_fn(detail::unique_function<void()>(std::forward<F>(on_closed)), ec);
    }

    /// The next connection on a server that listen(backlog) started (uvkit/co/tcp.hpp).
    detail::accept_awaiter<tcp> async_accept() noexcept;
    detail::accept_awaiter<tcp> async_accept(std::error_code& ec) noexcept;

    /// The libuv handle, or nullptr for an empty tcp.
    uv_tcp_t* raw() const noexcept;

private:
    friend struct detail::handle_access;
    template <class>
    friend class detail::accept_awaiter;
    /// A new, unconnected tcp to accept a connection of `server` into (async_accept).
    static tcp accepted_peer(const detail::stream_state&, uvkit::loop& l) { return tcp{l}; }
    void connect_fn(const endpoint& ep, detail::write_handler&& h, std::error_code& ec,
                    detail::request_base** started = nullptr) noexcept;
    void close_reset_fn(detail::unique_function<void()>&& on_closed, std::error_code& ec) noexcept;
};

}  // namespace uvkit
