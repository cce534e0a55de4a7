// uvkit/udp.hpp: a UDP socket (uv_udp_t).
//
// What it is: datagrams to and from endpoints: bind (port 0 picks a free
// one), optionally connect to fix the peer, send, receive, and the socket
// options libuv offers (broadcast, TTL, multicast).
//
//     uvkit::udp u{loop};
//     u.bind(uvkit::endpoint::parse("127.0.0.1:0"));
//     u.recv_start([&](std::error_code ec, std::string_view data, const uvkit::endpoint& from,
//                      unsigned flags) {
//         if (!ec) u.send(std::string(data), from);   // echo: owned bytes, no handler
//     });
//
// Receiving: recv_start(h) calls `h(ec, data, sender, flags)` once per
// datagram. `data` points into a buffer that is only valid during the call
// (by default one 64 KiB buffer per loop, shared with streams: receiving
// allocates nothing); set_buffer_provider() supplies your own. A datagram
// larger than the buffer is cut and `flags & udp::partial` is set. An empty
// datagram is delivered with empty data and its sender. A receive error
// arrives with an empty sender; receiving goes on (UDP errors are per
// datagram, e.g. connection_refused after sending to a closed port).
//
// Sending: every send's handler is called exactly once, on the loop thread,
// after the datagram was handed to the kernel, or with errc::canceled if the
// udp was closed first. If starting a send fails, the handler is never called
// and the error is thrown (or stored in `ec`). Borrowed bytes (string_view)
// must stay alive until the handler ran; owned bytes (std::string&&) are kept
// by uvkit and the handler is optional. Send requests come from a pool kept
// by the udp: a warm udp's sends do not allocate. A udp that was not bound
// is bound to the wildcard address and a free port by its first send (libuv).
//
// Lifetime: see uvkit/handle.hpp. Closing a udp completes its pending sends
// with errc::canceled. Handlers may stop, move, close or destroy their udp.
// Coroutine forms (async_recv, async_send): uvkit/co/udp.hpp.
//
// Functions: bind, connect, disconnect, open, send, try_send, recv_start,
// recv_stop, set_buffer_provider, set_broadcast, set_ttl,
// set_multicast_loop, set_multicast_ttl, set_multicast_interface,
// set_membership (join_group, leave_group), set_source_membership,
// set_recv_buffer_size, recv_buffer_size, set_send_buffer_size,
// send_buffer_size, send_queue_size, send_queue_count, local_endpoint,
// peer_endpoint, raw.
//
// Errors: throwing and std::error_code& forms for every synchronous call;
// operations on an empty, closing or closed udp fail with UV_EINVAL. Sending
// to an endpoint on a connected udp fails with UV_EISCONN, sending without
// one on an unconnected udp with UV_EDESTADDRREQ; a datagram too large for
// the network reaches the send handler as std::errc::message_size.
// Destinations that cannot work are refused synchronously with UV_EINVAL,
// before anything is queued: an empty endpoint, port 0, an IPv6 address
// from an IPv4 socket (bound, connected, opened, created with AF_INET, or
// sent from before). This matters beyond the one datagram: libuv 1.44 sends
// the datagrams queued in one loop turn with one sendmmsg(2) and reports its
// first failure to every datagram of the batch, so a bad destination queued
// would fail the good datagrams queued with it. Errors only the kernel can
// see (unreachable networks, message_size, an IPv4 address from an IPv6-only
// socket) still arrive in the send handlers and can, for that reason, reach
// the other datagrams of the same turn too; send from separate turns, or
// check each send's handler, where that matters. Socket
// options need a socket: set them after bind, connect or open, or create the
// udp with a family (otherwise UV_EBADF).
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "uvkit/endpoint.hpp"
#include "uvkit/handle.hpp"

namespace uvkit {

class udp;

namespace detail {
class udp_recv_awaiter;
class udp_send_awaiter;
struct udp_state;

using udp_send_handler = write_handler;
using udp_recv_handler = unique_function<void(std::error_code, std::string_view, const endpoint&, unsigned)>;

/// A send handler: callable with a std::error_code, or nullptr for none.
template <class F>
concept send_handler_for = std::is_null_pointer_v<std::decay_t<F>> || std::is_invocable_v < std::decay_t<F>
&, std::error_code > ;

template <class S>
concept owned_string = std::is_same_v<S, std::string>;

/// A uv_udp_send_t with its handler and, for owned sends, the bytes; recycled
/// through the udp's pool.
struct udp_send_req : request_base {
    uv_udp_send_t req{};
    std::string owned;
    udp_state* st = nullptr;
    udp_send_req* next = nullptr;
};

struct UVKIT_API udp_state final : handle_state {
    using handle_state::handle_state;
    ~udp_state() override;

    uv_udp_t h{};
    handler_slot<void(std::error_code, std::string_view, const endpoint&, unsigned)> on_recv;
    unique_function<std::span<char>(std::size_t)> provider;

    // Finished send requests kept for reuse (at most pool_limit).
    udp_send_req* pool = nullptr;
    std::size_t pool_size = 0;
    static constexpr std::size_t pool_limit = 1024;

    // The socket's family once uvkit knows it (udp(l, family), bind, connect,
    // open, the first send); AF_UNSPEC before. Sends to another family are
    // refused before they are queued.
    int family = AF_UNSPEC;

    udp_send_req* acquire();
    void release(udp_send_req* r) noexcept;

    static void alloc_cb(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf) noexcept;
    static void recv_cb(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                        unsigned flags) noexcept;
    static void send_cb(uv_udp_send_t* req, int status) noexcept;
};
}  // namespace detail

/// What co_await udp::async_recv(buf) returns.
struct udp_datagram {
    std::size_t size = 0;  ///< bytes stored in the buffer
    endpoint sender;       ///< where the datagram came from
    bool partial = false;  ///< the datagram was larger than the buffer and was cut
};

class UVKIT_API udp : public handle {
public:
    /// bind() flags; combine with `|`.
    enum bind_flag : unsigned {
        ipv6only = UV_UDP_IPV6ONLY,    ///< an IPv6 socket that does not also take IPv4
        reuseaddr = UV_UDP_REUSEADDR,  ///< SO_REUSEADDR (SO_REUSEPORT on BSDs): share the port
    };
    /// Receive handler flags.
    enum recv_flag : unsigned {
        partial = UV_UDP_PARTIAL,  ///< the datagram did not fit the buffer; the rest was dropped
    };
    /// set_membership()'s operation.
    enum class membership { leave = UV_LEAVE_GROUP, join = UV_JOIN_GROUP };

    /// An empty udp: every operation fails with UV_EINVAL until one is moved in.
    udp() noexcept = default;
    /// Creates a UDP handle on `l` (uv_udp_init); the socket is created by
    /// bind, connect, the first send, or open. Throws std::system_error.
    explicit udp(uvkit::loop& l);
    /// Creates a UDP handle with its socket of `family` (AF_INET, AF_INET6)
    /// made at once (uv_udp_init_ex), so that options can be set before
    /// bind. Throws std::system_error (UV_EINVAL for another family).
    udp(uvkit::loop& l, int family);
    udp(udp&&) noexcept = default;
    udp& operator=(udp&&) noexcept = default;
    ~udp() = default;

    /// Binds to a local endpoint (uv_udp_bind); port 0 picks a free port, see
    /// local_endpoint(). `flags`: udp::ipv6only, udp::reuseaddr.
    void bind(const endpoint& ep, unsigned flags = 0);
    void bind(const endpoint& ep, unsigned flags, std::error_code& ec) noexcept;

    /// Fixes the peer (uv_udp_connect): sends without an endpoint go there,
    /// and only its datagrams are received. Binds first if needed.
    void connect(const endpoint& ep);
    void connect(const endpoint& ep, std::error_code& ec) noexcept;
    /// Undoes connect() (uv_udp_connect with NULL). UV_ENOTCONN if not connected.
    void disconnect();
    void disconnect(std::error_code& ec) noexcept;

    /// Adopts an existing socket (uv_udp_open), e.g. one made by another library.
    void open(uv_os_sock_t sock);
    void open(uv_os_sock_t sock, std::error_code& ec) noexcept;

    /// Sends borrowed bytes to `to` (uv_udp_send); `data` must stay alive until `h(ec)` ran.
    template <class F>
    requires detail::send_handler_for<F>
    void send(std::string_view data, const endpoint& to, F&& h) {
        std::error_code ec;
        send(data, to, std::forward<F>(h), ec);
        if (ec) detail::throw_uv_error(ec.value(), "uv_udp_send");
    }
    template <class F>
    requires detail::send_handler_for<F>
    void send(std::string_view data, const endpoint& to, F&& h, std::error_code& ec) noexcept {
        send_fn(data, nullptr, &to, detail::udp_send_handler(std::forward<F>(h)), ec);
    }
    /// Sends owned bytes to `to`: the string is moved into the request and
    /// freed after the send completed. The handler is optional.
    template <class S, class F = std::nullptr_t>
    requires detail::owned_string<S> && detail::send_handler_for<F>
    void send(S&& data, const endpoint& to, F&& h = nullptr) {
        std::error_code ec;
        send(std::move(data), to, std::forward<F>(h), ec);
        if (ec) detail::throw_uv_error(ec.value(), "uv_udp_send");
    }
    template <class S, class F>
    requires detail::owned_string<S> && detail::send_handler_for<F>
    void send(S&& data, const endpoint& to, F&& h, std::error_code& ec) noexcept {
        send_fn({}, &data, &to, detail::udp_send_handler(std::forward<F>(h)), ec);
    }
    /// Sends borrowed bytes to the connected peer (uv_udp_send with no address).
    template <class F>
    requires detail::send_handler_for<F>
    void send(std::string_view data, F&& h) {
        std::error_code ec;
        send(data, std::forward<F>(h), ec);
        if (ec) detail::throw_uv_error(ec.value(), "uv_udp_send");
    }
    template <class F>
    requires detail::send_handler_for<F>
    void send(std::string_view data, F&& h, std::error_code& ec) noexcept {
        send_fn(data, nullptr, nullptr, detail::udp_send_handler(std::forward<F>(h)), ec);
    }
    /// Sends owned bytes to the connected peer. The handler is optional.
    template <class S, class F = std::nullptr_t>
    requires detail::owned_string<S> && detail::send_handler_for<F>
    void send(S&& data, F&& h = nullptr) {
        std::error_code ec;
        send(std::move(data), std::forward<F>(h), ec);
        if (ec) detail::throw_uv_error(ec.value(), "uv_udp_send");
    }
    template <class S, class F>
    requires detail::owned_string<S> && detail::send_handler_for<F>
    void send(S&& data, F&& h, std::error_code& ec) noexcept {
        send_fn({}, &data, nullptr, detail::udp_send_handler(std::forward<F>(h)), ec);
    }

    /// Sends a datagram now without queueing (uv_udp_try_send). Returns its
    /// size; 0 if it would block, or while earlier send()s are still queued
    /// (they complete in the next loop iteration), or if the datagram was empty.
    std::size_t try_send(std::string_view data, const endpoint& to);
    std::size_t try_send(std::string_view data, const endpoint& to, std::error_code& ec) noexcept;
    /// The same to the connected peer.
    std::size_t try_send(std::string_view data);
    std::size_t try_send(std::string_view data, std::error_code& ec) noexcept;

    /// Calls `h(std::error_code, std::string_view data, const endpoint& sender,
    /// unsigned flags)` for every datagram received (uv_udp_recv_start). Binds
    /// to the wildcard address first if needed. Replaces any previous handler.
    /// UV_EALREADY while an async_recv() waits on this udp.
    template <class F>
    void recv_start(F&& h) {
        recv_start_fn(detail::udp_recv_handler(std::forward<F>(h)));
    }
    template <class F>
    void recv_start(F&& h, std::error_code& ec) noexcept {
        recv_start_fn(detail::udp_recv_handler(std::forward<F>(h)), ec);
    }

    /// Stops receiving (uv_udp_recv_stop); a waiting async_recv completes
    /// with errc::canceled. No-op when not receiving or empty.
    void recv_stop() noexcept;

    /// Supplies the buffers datagrams are received into: `f(suggested_size)`
    /// returns a std::span<char> that stays valid until the receive handler
    /// returned. An empty span makes the handler get std::errc::no_buffer_space.
    /// Pass nullptr to return to the loop's shared buffer.
    template <class F>
    void set_buffer_provider(F&& f) {
        set_provider_fn(detail::unique_function<std::span<char>(std::size_t)>(std::forward<F>(f)));
    }

    /// SO_BROADCAST (uv_udp_set_broadcast).
    void set_broadcast(bool on);
    void set_broadcast(bool on, std::error_code& ec) noexcept;
    /// The unicast time to live, 1..255 (uv_udp_set_ttl).
    void set_ttl(int ttl);
    void set_ttl(int ttl, std::error_code& ec) noexcept;
    /// Whether multicast datagrams loop back to this host (uv_udp_set_multicast_loop).
    void set_multicast_loop(bool on);
    void set_multicast_loop(bool on, std::error_code& ec) noexcept;
    /// The multicast time to live, 1..255 (uv_udp_set_multicast_ttl).
    void set_multicast_ttl(int ttl);
    void set_multicast_ttl(int ttl, std::error_code& ec) noexcept;
    /// The interface multicast is sent from, by its address; "" for the
    /// system's default (uv_udp_set_multicast_interface).
    void set_multicast_interface(std::string_view interface_addr);
    void set_multicast_interface(std::string_view interface_addr, std::error_code& ec) noexcept;
    /// Joins or leaves the multicast group `group` on the interface with
    /// address `interface_addr` ("" lets the system choose) (uv_udp_set_membership).
    void set_membership(std::string_view group, std::string_view interface_addr, membership m);
    void set_membership(std::string_view group, std::string_view interface_addr, membership m,
                        std::error_code& ec) noexcept;
    /// set_membership(group, interface_addr, membership::join).
    void join_group(std::string_view group, std::string_view interface_addr = {}) {
        set_membership(group, interface_addr, membership::join);
    }
    /// set_membership(group, interface_addr, membership::leave).
    void leave_group(std::string_view group, std::string_view interface_addr = {}) {
        set_membership(group, interface_addr, membership::leave);
    }
    /// Source-specific multicast: datagrams to `group` from `source` only
    /// (uv_udp_set_source_membership).
    void set_source_membership(std::string_view group, std::string_view interface_addr,
                               std::string_view source, membership m);
    void set_source_membership(std::string_view group, std::string_view interface_addr,
                               std::string_view source, membership m, std::error_code& ec) noexcept;

    // Socket buffer sizes (handle.hpp): SO_RCVBUF and SO_SNDBUF.
    using handle::recv_buffer_size;
    using handle::send_buffer_size;
    using handle::set_recv_buffer_size;
    using handle::set_send_buffer_size;

    /// Bytes waiting to be sent (uv_udp_get_send_queue_size); 0 when empty.
    std::size_t send_queue_size() const noexcept;
    /// Send requests waiting (uv_udp_get_send_queue_count); 0 when empty.
    std::size_t send_queue_count() const noexcept;

    /// The bound address (uv_udp_getsockname): the real port after binding port 0.
    endpoint local_endpoint() const;
    endpoint local_endpoint(std::error_code& ec) const noexcept;
    /// The connected peer (uv_udp_getpeername); UV_ENOTCONN if not connected.
    endpoint peer_endpoint() const;
    endpoint peer_endpoint(std::error_code& ec) const noexcept;

    // Coroutine operations (uvkit/co/udp.hpp has the rules). Each is awaited
    // once; the forms with std::error_code& never throw.

    /// The next datagram, received into `buf` (no allocation).
    detail::udp_recv_awaiter async_recv(std::span<char> buf) noexcept;
    detail::udp_recv_awaiter async_recv(std::span<char> buf, std::error_code& ec) noexcept;
    /// Sends borrowed bytes to `to`; they must stay alive until the co_await completed.
    detail::udp_send_awaiter async_send(std::string_view data, const endpoint& to) noexcept;
    detail::udp_send_awaiter async_send(std::string_view data, const endpoint& to,
                                        std::error_code& ec) noexcept;
    /// Sends borrowed bytes to the connected peer.
    detail::udp_send_awaiter async_send(std::string_view data) noexcept;
    detail::udp_send_awaiter async_send(std::string_view data, std::error_code& ec) noexcept;

    /// The libuv handle, or nullptr for an empty udp.
    uv_udp_t* raw() const noexcept;

private:
    friend class detail::udp_recv_awaiter;
    friend class detail::udp_send_awaiter;
    void send_fn(std::string_view data, std::string* owned, const endpoint* to, detail::udp_send_handler&& h,
                 std::error_code& ec, detail::udp_send_req** started = nullptr) noexcept;
    void recv_start_fn(detail::udp_recv_handler&& h);
    void recv_start_fn(detail::udp_recv_handler&& h, std::error_code& ec) noexcept;
    void set_provider_fn(detail::unique_function<std::span<char>(std::size_t)>&& f);
    std::size_t try_send_fn(std::string_view data, const endpoint* to, std::error_code& ec) noexcept;
};

}  // namespace uvkit
