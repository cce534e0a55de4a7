#include "uvkit/tcp.hpp"

#include <memory>

#include "request.hpp"

namespace uvkit {

using detail::tcp_state;

tcp::tcp(uvkit::loop& l) : stream(detail::create_state<tcp_state>(l, "uv_tcp_init", &uv_tcp_init)) {}

uv_tcp_t* tcp::raw() const noexcept { return state_ ? &static_cast<tcp_state*>(state_)->h : nullptr; }

void tcp::bind(const endpoint& ep, bool ipv6_only, std::error_code& ec) noexcept {
    auto* s = get<tcp_state>(ec);
    if (!s) return;
    if (!ep) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    detail::set_error(ec,
                      uv_tcp_bind(&s->h, ep.data(), ipv6_only ? static_cast<unsigned>(UV_TCP_IPV6ONLY) : 0u));
}

void tcp::bind(const endpoint& ep, bool ipv6_only) {
    detail::throwing("uv_tcp_bind", [&](std::error_code& ec) { bind(ep, ipv6_only, ec); });
}

void tcp::connect_fn(const endpoint& ep, detail::write_handler&& h, std::error_code& ec,
                     detail::request_base** started) noexcept {
    auto* s = get<tcp_state>(ec);
    if (!s) return;
    if (!ep) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    auto* r = detail::connect_request::make(*s->owner);
    if (!r) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    if (detail::set_error(ec, uv_tcp_connect(&r->req, &s->h, ep.data(), &detail::connect_request::done))) {
        detail::connect_request::free(r);
        return;
    }
    r->cb = std::move(h);
    if (started) *started = r;
}

void tcp::open(uv_os_sock_t sock, std::error_code& ec) noexcept {
    if (auto* s = get<tcp_state>(ec)) detail::set_error(ec, uv_tcp_open(&s->h, sock));
}

void tcp::open(uv_os_sock_t sock) {
    detail::throwing("uv_tcp_open", [&](std::error_code& ec) { open(sock, ec); });
}

void tcp::set_nodelay(bool enable, std::error_code& ec) noexcept {
    if (auto* s = get<tcp_state>(ec)) detail::set_error(ec, uv_tcp_nodelay(&s->h, enable ? 1 : 0));
}

void tcp::set_nodelay(bool enable) {
    detail::throwing("uv_tcp_nodelay", [&](std::error_code& ec) { set_nodelay(enable, ec); });
}

void tcp::set_keepalive(bool enable, std::chrono::seconds delay, std::error_code& ec) noexcept {
    auto* s = get<tcp_state>(ec);
    if (!s) return;
    if (enable && delay.count() < 1) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    detail::set_error(ec, uv_tcp_keepalive(&s->h, enable ? 1 : 0, static_cast<unsigned>(delay.count())));
}

void tcp::set_keepalive(bool enable, std::chrono::seconds delay) {
    detail::throwing("uv_tcp_keepalive", [&](std::error_code& ec) { set_keepalive(enable, delay, ec); });
}

void tcp::set_simultaneous_accepts(bool enable, std::error_code& ec) noexcept {
    if (auto* s = get<tcp_state>(ec))
        detail::set_error(ec, uv_tcp_simultaneous_accepts(&s->h, enable ? 1 : 0));
}

void tcp::set_simultaneous_accepts(bool enable) {
    detail::throwing("uv_tcp_simultaneous_accepts",
                     [&](std::error_code& ec) { set_simultaneous_accepts(enable, ec); });
}

endpoint tcp::local_endpoint(std::error_code& ec) const noexcept {
    auto* s = get<tcp_state>(ec);
    return s ? detail::name_of(&s->h, &uv_tcp_getsockname, ec) : endpoint{};
}

endpoint tcp::local_endpoint() const {
    endpoint e;
    detail::throwing("uv_tcp_getsockname", [&](std::error_code& ec) { e = local_endpoint(ec); });
    return e;
}

endpoint tcp::peer_endpoint(std::error_code& ec) const noexcept {
    auto* s = get<tcp_state>(ec);
    return s ? detail::name_of(&s->h, &uv_tcp_getpeername, ec) : endpoint{};
}

endpoint tcp::peer_endpoint() const {
    endpoint e;
    detail::throwing("uv_tcp_getpeername", [&](std::error_code& ec) { e = peer_endpoint(ec); });
    return e;
}

void tcp::close_reset_fn(detail::unique_function<void()>&& on_closed, std::error_code& ec) noexcept {
    auto* s = get<tcp_state>(ec);
    if (!s) return;
    s->on_closed = std::move(on_closed);
    int rc = uv_tcp_close_reset(&s->h, &detail::handle_state::close_cb);
    if (detail::set_error(ec, rc))
        s->on_closed = nullptr;
    else {
        s->closing = true;
        s->on_closing();
    }
}

}  // namespace uvkit
