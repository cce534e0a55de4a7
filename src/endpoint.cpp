#include "uvkit/endpoint.hpp"

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace uvkit {

endpoint::endpoint() noexcept {
    std::memset(&addr_, 0, sizeof addr_);
    addr_.sa.sa_family = AF_UNSPEC;
}

namespace {

bool build(endpoint& out, std::string_view host, std::uint16_t port, bool v6_only) {
    // uv_ip*_addr take NUL-terminated strings; addresses with a scope fit in 64 bytes.
    char buf[64];
    if (host.empty() || host.size() >= sizeof buf) return false;
    std::memcpy(buf, host.data(), host.size());
    buf[host.size()] = '\0';
    // Room for either family: from() reads as many bytes as the family says, and GCC (mingw-w64)
    // cannot see that a sockaddr_in never says AF_INET6.
    sockaddr_in6 storage{};
    if (!v6_only) {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
        if (host.find(':') == std::string_view::npos && uv_ip4_addr(buf, port, v4) == 0) {
            out = endpoint::from(reinterpret_cast<const sockaddr*>(&storage));
            return true;
        }
        storage = sockaddr_in6{};
    }
    if (uv_ip6_addr(buf, port, &storage) == 0) {
        out = endpoint::from(reinterpret_cast<const sockaddr*>(&storage));
        return true;
    }
    return false;
}

bool parse_port(std::string_view s, std::uint16_t& port) {
    if (s.empty() || s.size() > 5) return false;
    unsigned v = 0;
    auto [p, err] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (err != std::errc{} || p != s.data() + s.size() || v > 65535) return false;
    port = static_cast<std::uint16_t>(v);
    return true;
}

}  // namespace

endpoint::endpoint(std::string_view address, std::uint16_t port) : endpoint() {
    if (!build(*this, address, port, false))
        throw std::invalid_argument("uvkit::endpoint: not an IP address: '" + std::string(address) + "'");
}

endpoint endpoint::from(const sockaddr* sa) noexcept {
    endpoint e;
    if (!sa) return e;
    if (sa->sa_family == AF_INET)
        std::memcpy(&e.addr_.v4, sa, sizeof(sockaddr_in));
    else if (sa->sa_family == AF_INET6)
        std::memcpy(&e.addr_.v6, sa, sizeof(sockaddr_in6));
    return e;
}

endpoint endpoint::parse(std::string_view text, std::error_code& ec) noexcept {
    endpoint e;
    ec = std::make_error_code(std::errc::invalid_argument);
    std::string_view host, port_text;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return e;
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return e;
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        // An unbracketed IPv6 address ("::1:80") is ambiguous: refuse it.
        if (host.find(':') != std::string_view::npos) return e;
    }
    std::uint16_t port = 0;
    if (!parse_port(port_text, port)) return e;
    bool bracketed = !text.empty() && text.front() == '[';
    if (!build(e, host, port, bracketed)) return endpoint{};
    ec.clear();
    return e;
}

endpoint endpoint::parse(std::string_view text) {
    std::error_code ec;
    endpoint e = parse(text, ec);
    if (ec)
        throw std::invalid_argument(
            "uvkit::endpoint::parse: expected 'A.B.C.D:PORT' or '[IPv6]:PORT', got '" + std::string(text) +
            "'");
    return e;
}

endpoint endpoint::with_port(std::uint16_t p) const noexcept {
    endpoint e = *this;
    switch (e.addr_.sa.sa_family) {
        case AF_INET: e.addr_.v4.sin_port = htons(p); break;
        case AF_INET6: e.addr_.v6.sin6_port = htons(p); break;
        default: break;
    }
    return e;
}

std::uint16_t endpoint::port() const noexcept {
    switch (addr_.sa.sa_family) {
        case AF_INET: return ntohs(addr_.v4.sin_port);
        case AF_INET6: return ntohs(addr_.v6.sin6_port);
        default: return 0;
    }
}

std::string endpoint::address() const {
    char buf[UV_IF_NAMESIZE + 64] = {};
    switch (addr_.sa.sa_family) {
        case AF_INET: uv_ip4_name(&addr_.v4, buf, sizeof buf); break;
        case AF_INET6: uv_ip6_name(&addr_.v6, buf, sizeof buf); break;
        default: return {};
    }
    std::string text = buf;
    if (addr_.sa.sa_family == AF_INET6 && addr_.v6.sin6_scope_id != 0) {
        // The scope as parse() reads it back: the interface name on Unix, its number on Windows.
        char zone[UV_IF_NAMESIZE] = {};
        std::size_t len = sizeof zone;
        text += '%';
        if (uv_if_indextoiid(addr_.v6.sin6_scope_id, zone, &len) == 0) {
            text.append(zone, len);
        } else {
            text += std::to_string(addr_.v6.sin6_scope_id);  // no such interface (any more)
        }
    }
    return text;
}

std::string endpoint::to_string() const {
    switch (addr_.sa.sa_family) {
        case AF_INET: return address() + ':' + std::to_string(port());
        case AF_INET6: return '[' + address() + "]:" + std::to_string(port());
        default: return {};
    }
}

int endpoint::family() const noexcept { return addr_.sa.sa_family; }

std::size_t endpoint::size() const noexcept {
    switch (addr_.sa.sa_family) {
        case AF_INET: return sizeof(sockaddr_in);
        case AF_INET6: return sizeof(sockaddr_in6);
        default: return 0;
    }
}

bool operator==(const endpoint& a, const endpoint& b) noexcept {
    if (a.family() != b.family()) return false;
    switch (a.family()) {
        case AF_INET:
            return a.addr_.v4.sin_port == b.addr_.v4.sin_port &&
                   std::memcmp(&a.addr_.v4.sin_addr, &b.addr_.v4.sin_addr, sizeof(in_addr)) == 0;
        case AF_INET6:
            return a.addr_.v6.sin6_port == b.addr_.v6.sin6_port &&
                   a.addr_.v6.sin6_scope_id == b.addr_.v6.sin6_scope_id &&
                   std::memcmp(&a.addr_.v6.sin6_addr, &b.addr_.v6.sin6_addr, sizeof(in6_addr)) == 0;
        default: return true;
    }
}

}  // namespace uvkit
