#include "uvkit/udp.hpp"

#include <array>
#include <cstring>
#include <new>

#include "handle_impl.hpp"

namespace uvkit {

namespace detail {

udp_state::~udp_state() {
    while (udp_send_req* r = pool) {
        pool = r->next;
        delete r;
    }
}

udp_send_req* udp_state::acquire() {
    if (udp_send_req* r = pool) {
        pool = r->next;
        --pool_size;
        r->next = nullptr;
        return r;
    }
    auto* r = new udp_send_req;
    r->owner = owner;
    r->st = this;
    r->req.data = r;
    return r;
}

void udp_state::release(udp_send_req* r) noexcept {
    r->cb = nullptr;
    r->consumer = nullptr;
    // A pooled request must not keep the bytes: swapping frees them, assigning "" would not.
    std::string().swap(r->owned);
    if (pool_size >= pool_limit) {
        delete r;
        return;
    }
    r->next = pool;
    pool = r;
    ++pool_size;
}

void udp_state::send_cb(uv_udp_send_t* req, int status) noexcept {
    auto* r = static_cast<udp_send_req*>(req->data);
    // libuv completes every send (ECANCELED when closing) before the close
    // callback, so the state block is still alive here.
    r->complete(status);
    r->st->release(r);
}

void udp_state::alloc_cb(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf) noexcept {
    auto* s = static_cast<udp_state*>(h->data);
    buf->base = nullptr;
    buf->len = 0;
    try {
        std::span<char> span;
        if (s->provider) {
            span = s->provider(suggested);
        } else {
            // recv_start made the loop's buffer before it installed this callback.
            span = {s->owner->ready_read_buffer(), uvkit::loop::read_buffer_size};
        }
        buf->base = span.data();
        buf->len = static_cast<decltype(buf->len)>(span.size());
    } catch (...) {
        // libuv reports an empty buffer to recv_cb as UV_ENOBUFS.
        s->fail(std::current_exception());
        buf->base = nullptr;
        buf->len = 0;
    }
}

void udp_state::recv_cb(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                        unsigned flags) noexcept {
    auto* s = state_of<udp_state>(h);
    // Nothing (more) to read: the buffer goes back unused. With an address,
    // nread 0 is an empty datagram and is delivered.
    if (nread == 0 && addr == nullptr) return;
    guarded(s, [&] {
        if (nread < 0) {
            s->on_recv(make_uv_error(static_cast<int>(nread)), std::string_view{}, endpoint{}, 0u);
        } else {
            const endpoint from = addr ? endpoint::from(addr) : endpoint{};
            s->on_recv(no_error(), std::string_view(buf->base, static_cast<std::size_t>(nread)), from, flags);
        }
    });
}

namespace {

/// A NUL-terminated copy of a short string for libuv's char* arguments
/// (addresses and interface names are far shorter than this).
class c_str {
public:
    explicit c_str(std::string_view s) noexcept {
        ok_ = s.size() < buf_.size() && s.find('\0') == std::string_view::npos;
        if (!ok_) return;
        std::memcpy(buf_.data(), s.data(), s.size());
        buf_[s.size()] = '\0';
    }
    bool ok() const noexcept { return ok_; }
    /// The string, or nullptr for "" (libuv's "let the system choose").
    const char* get_or_null() const noexcept { return buf_[0] ? buf_.data() : nullptr; }
    const char* get() const noexcept { return buf_.data(); }

private:
    std::array<char, 256> buf_{};
    bool ok_ = false;
};

}  // namespace

}  // namespace detail

using detail::udp_send_req;
using detail::udp_state;

udp::udp(uvkit::loop& l) : handle(detail::create_state<udp_state>(l, "uv_udp_init", &uv_udp_init)) {}

udp::udp(uvkit::loop& l, int family)
    : handle([&] {
          // uv_udp_init_ex takes the family in its low byte; refuse anything
          // that is not a plain IPv4/IPv6 family rather than pass flags through.
          if (family != AF_INET && family != AF_INET6) detail::throw_uv_error(UV_EINVAL, "uv_udp_init_ex");
          return detail::create_state<udp_state>(l, "uv_udp_init_ex", &uv_udp_init_ex,
                                                 static_cast<unsigned>(family));
      }()) {
    static_cast<udp_state*>(state_)->family = family;
}

namespace {
// What the kernel would refuse for a destination, known before queuing:
// libuv 1.44 sends a turn's queued datagrams with one sendmmsg and gives the
// first one's error to all of them, so a bad one queued would take good ones
// down with it. Port 0 is no destination, and an IPv4 socket cannot send to
// an IPv6 address. (An IPv6 socket may reach IPv4 addresses on some systems,
// e.g. Linux without IPV6_V6ONLY: that is left to the kernel.)
int check_destination(const udp_state* s, const endpoint& to) noexcept {
    if (!to || to.port() == 0) return UV_EINVAL;
    if (s->family == AF_INET && to.family() != AF_INET) return UV_EINVAL;
    return 0;
}
}  // namespace

uv_udp_t* udp::raw() const noexcept { return state_ ? &static_cast<udp_state*>(state_)->h : nullptr; }

void udp::bind(const endpoint& ep, unsigned flags, std::error_code& ec) noexcept {
    auto* s = get<udp_state>(ec);
    if (!s) return;
    if (!ep || (flags & ~static_cast<unsigned>(ipv6only | reuseaddr)) != 0) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    if (!detail::set_error(ec, uv_udp_bind(&s->h, ep.data(), flags))) s->family = ep.family();
}

void udp::bind(const endpoint& ep, unsigned flags) {
    detail::throwing("uv_udp_bind", [&](std::error_code& ec) { bind(ep, flags, ec); });
}

void udp::connect(const endpoint& ep, std::error_code& ec) noexcept {
    auto* s = get<udp_state>(ec);
    if (!s) return;
    if (!ep) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    if (detail::set_error(ec, uv_udp_connect(&s->h, ep.data()))) return;
    if (s->family == AF_UNSPEC) s->family = ep.family();  // connect binds an unbound socket
}

void udp::connect(const endpoint& ep) {
    detail::throwing("uv_udp_connect", [&](std::error_code& ec) { connect(ep, ec); });
}

void udp::disconnect(std::error_code& ec) noexcept {
    if (auto* s = get<udp_state>(ec)) detail::set_error(ec, uv_udp_connect(&s->h, nullptr));
}

void udp::disconnect() {
    detail::throwing("uv_udp_connect", [&](std::error_code& ec) { disconnect(ec); });
}

void udp::open(uv_os_sock_t sock, std::error_code& ec) noexcept {
    auto* s = get<udp_state>(ec);
    if (!s || detail::set_error(ec, uv_udp_open(&s->h, sock))) return;
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_udp_getsockname(&s->h, reinterpret_cast<sockaddr*>(&ss), &len) == 0 &&
        (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
        s->family = ss.ss_family;
}

void udp::open(uv_os_sock_t sock) {
    detail::throwing("uv_udp_open", [&](std::error_code& ec) { open(sock, ec); });
}

void udp::send_fn(std::string_view data, std::string* owned, const endpoint* to, detail::udp_send_handler&& h,
                  std::error_code& ec, detail::udp_send_req** started) noexcept {
    auto* s = get<udp_state>(ec);
    if (!s) return;
    if (to) {
        if (int rc = check_destination(s, *to)) {
            ec = make_uv_error(rc);
            return;
        }
    }
    udp_send_req* r;
    try {
        r = s->acquire();
    } catch (...) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    if (owned) {
        r->owned = std::move(*owned);
        data = r->owned;
    }
    uv_buf_t b = detail::make_buf(data);
    int rc = uv_udp_send(&r->req, &s->h, &b, 1, to ? to->data() : nullptr, &udp_state::send_cb);
    if (rc < 0) {
        // The handler must not run; an owned string goes back to the caller.
        if (owned) *owned = std::move(r->owned);
        s->release(r);
        ec = make_uv_error(rc);
        return;
    }
    r->cb = std::move(h);
    if (started) *started = r;
    if (to && s->family == AF_UNSPEC) s->family = to->family();  // libuv bound the socket for it
    ec.clear();
}

std::size_t udp::try_send_fn(std::string_view data, const endpoint* to, std::error_code& ec) noexcept {
    auto* s = get<udp_state>(ec);
    if (!s) return 0;
    if (to) {
        if (int rc = check_destination(s, *to)) {
            ec = make_uv_error(rc);
            return 0;
        }
    }
    uv_buf_t b = detail::make_buf(data);
    int rc = uv_udp_try_send(&s->h, &b, 1, to ? to->data() : nullptr);
    if (rc >= 0 && to && s->family == AF_UNSPEC) s->family = to->family();
    if (rc == UV_EAGAIN) return 0;
    if (detail::set_error(ec, rc)) return 0;
    return static_cast<std::size_t>(rc);
}

std::size_t udp::try_send(std::string_view data, const endpoint& to, std::error_code& ec) noexcept {
    return try_send_fn(data, &to, ec);
}

std::size_t udp::try_send(std::string_view data, const endpoint& to) {
    std::size_t n = 0;
    detail::throwing("uv_udp_try_send", [&](std::error_code& ec) { n = try_send_fn(data, &to, ec); });
    return n;
}

std::size_t udp::try_send(std::string_view data, std::error_code& ec) noexcept {
    return try_send_fn(data, nullptr, ec);
}

std::size_t udp::try_send(std::string_view data) {
    std::size_t n = 0;
    detail::throwing("uv_udp_try_send", [&](std::error_code& ec) { n = try_send_fn(data, nullptr, ec); });
    return n;
}

void udp::recv_start_fn(detail::udp_recv_handler&& h, std::error_code& ec) noexcept {
    auto* s = get<udp_state>(ec);
    if (!s) return;
    // Receiving for coroutines: the handler takes over unless a receive waits.
    if (s->consumer && !s->consumer->yield()) {
        ec = make_uv_error(UV_EALREADY);
        return;
    }
    if (!s->owner->prepare_read_buffer()) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    int rc = uv_udp_recv_start(&s->h, &udp_state::alloc_cb, &udp_state::recv_cb);
    // Already receiving: the handler is replaced all the same.
    if (rc == UV_EALREADY) rc = 0;
    if (detail::set_error(ec, rc)) return;
    s->on_recv.set(std::move(h));
}

void udp::recv_start_fn(detail::udp_recv_handler&& h) {
    detail::throwing("uv_udp_recv_start", [&](std::error_code& ec) { recv_start_fn(std::move(h), ec); });
}

void udp::recv_stop() noexcept {
    if (!usable()) return;
    auto* s = static_cast<udp_state*>(state_);
    uv_udp_recv_stop(&s->h);
    if (s->consumer) s->consumer->stop();
}

void udp::set_provider_fn(detail::unique_function<std::span<char>(std::size_t)>&& f) {
    detail::throwing("uvkit::udp::set_buffer_provider", [&](std::error_code& ec) {
        if (auto* s = get<udp_state>(ec)) s->provider = std::move(f);
    });
}

void udp::set_broadcast(bool on, std::error_code& ec) noexcept {
    if (auto* s = get<udp_state>(ec)) detail::set_error(ec, uv_udp_set_broadcast(&s->h, on ? 1 : 0));
}

void udp::set_broadcast(bool on) {
    detail::throwing("uv_udp_set_broadcast", [&](std::error_code& ec) { set_broadcast(on, ec); });
}

void udp::set_ttl(int ttl, std::error_code& ec) noexcept {
    if (auto* s = get<udp_state>(ec)) detail::set_error(ec, uv_udp_set_ttl(&s->h, ttl));
}

void udp::set_ttl(int ttl) {
    detail::throwing("uv_udp_set_ttl", [&](std::error_code& ec) { set_ttl(ttl, ec); });
}

void udp::set_multicast_loop(bool on, std::error_code& ec) noexcept {
    if (auto* s = get<udp_state>(ec)) detail::set_error(ec, uv_udp_set_multicast_loop(&s->h, on ? 1 : 0));
}

void udp::set_multicast_loop(bool on) {
    detail::throwing("uv_udp_set_multicast_loop", [&](std::error_code& ec) { set_multicast_loop(on, ec); });
}

void udp::set_multicast_ttl(int ttl, std::error_code& ec) noexcept {
    if (auto* s = get<udp_state>(ec)) detail::set_error(ec, uv_udp_set_multicast_ttl(&s->h, ttl));
}

void udp::set_multicast_ttl(int ttl) {
    detail::throwing("uv_udp_set_multicast_ttl", [&](std::error_code& ec) { set_multicast_ttl(ttl, ec); });
}

void udp::set_multicast_interface(std::string_view interface_addr, std::error_code& ec) noexcept {
    auto* s = get<udp_state>(ec);
    if (!s) return;
    detail::c_str iface(interface_addr);
    if (!iface.ok()) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    detail::set_error(ec, uv_udp_set_multicast_interface(&s->h, iface.get_or_null()));
}

void udp::set_multicast_interface(std::string_view interface_addr) {
    detail::throwing("uv_udp_set_multicast_interface",
                     [&](std::error_code& ec) { set_multicast_interface(interface_addr, ec); });
}

void udp::set_membership(std::string_view group, std::string_view interface_addr, membership m,
                         std::error_code& ec) noexcept {
    auto* s = get<udp_state>(ec);
    if (!s) return;
    detail::c_str g(group);
    detail::c_str iface(interface_addr);
    if (!g.ok() || !iface.ok()) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    detail::set_error(
        ec, uv_udp_set_membership(&s->h, g.get(), iface.get_or_null(), static_cast<uv_membership>(m)));
}

void udp::set_membership(std::string_view group, std::string_view interface_addr, membership m) {
    detail::throwing("uv_udp_set_membership",
                     [&](std::error_code& ec) { set_membership(group, interface_addr, m, ec); });
}

void udp::set_source_membership(std::string_view group, std::string_view interface_addr,
                                std::string_view source, membership m, std::error_code& ec) noexcept {
    auto* s = get<udp_state>(ec);
    if (!s) return;
    detail::c_str g(group);
    detail::c_str iface(interface_addr);
    detail::c_str src(source);
    if (!g.ok() || !iface.ok() || !src.ok()) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    detail::set_error(ec, uv_udp_set_source_membership(&s->h, g.get(), iface.get_or_null(), src.get(),
                                                       static_cast<uv_membership>(m)));
}

void udp::set_source_membership(std::string_view group, std::string_view interface_addr,
                                std::string_view source, membership m) {
    detail::throwing("uv_udp_set_source_membership", [&](std::error_code& ec) {
        set_source_membership(group, interface_addr, source, m, ec);
    });
}

std::size_t udp::send_queue_size() const noexcept {
    return usable() ? uv_udp_get_send_queue_size(&static_cast<udp_state*>(state_)->h) : 0;
}

std::size_t udp::send_queue_count() const noexcept {
    return usable() ? uv_udp_get_send_queue_count(&static_cast<udp_state*>(state_)->h) : 0;
}

endpoint udp::local_endpoint(std::error_code& ec) const noexcept {
    auto* s = get<udp_state>(ec);
    return s ? detail::name_of(&s->h, &uv_udp_getsockname, ec) : endpoint{};
}

endpoint udp::local_endpoint() const {
    endpoint e;
    detail::throwing("uv_udp_getsockname", [&](std::error_code& ec) { e = local_endpoint(ec); });
    return e;
}

endpoint udp::peer_endpoint(std::error_code& ec) const noexcept {
    auto* s = get<udp_state>(ec);
    return s ? detail::name_of(&s->h, &uv_udp_getpeername, ec) : endpoint{};
}

endpoint udp::peer_endpoint() const {
    endpoint e;
    detail::throwing("uv_udp_getpeername", [&](std::error_code& ec) { e = peer_endpoint(ec); });
    return e;
}

}  // namespace uvkit
