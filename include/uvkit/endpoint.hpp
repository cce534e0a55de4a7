// uvkit/endpoint.hpp: an IP address and port (IPv4 or IPv6).
//
// What it is: a value type holding a sockaddr_in or sockaddr_in6, the thing
// libuv's bind/connect/send take. Text forms: "127.0.0.1:8080" and
// "[::1]:8080" (an IPv6 scope is accepted: "[fe80::1%eth0]:80"). Host names
// are not resolved here; numeric addresses only.
//
// Errors: parse() throws std::invalid_argument whose message names the text
// (empty text, no port, a port that is not a number in 0..65535, a host that
// is not an address); the std::error_code& form is noexcept and reports
// std::errc::invalid_argument.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "uvkit/export.hpp"

namespace uvkit {

class UVKIT_API endpoint {
public:
    /// An empty endpoint (family() == AF_UNSPEC).
    endpoint() noexcept;

    /// From an address and a port: `endpoint{"127.0.0.1", 80}`, `endpoint{"::1", 80}`.
    /// Throws std::invalid_argument if `address` is not a numeric IPv4/IPv6 address.
    endpoint(std::string_view address, std::uint16_t port);

    /// Copies a sockaddr of family AF_INET or AF_INET6; other families give an empty endpoint.
    static endpoint from(const sockaddr* sa) noexcept;

    /// Parses "A.B.C.D:port" or "[v6]:port". Throws std::invalid_argument naming the text.
    static endpoint parse(std::string_view text);
    /// Non-throwing parse: on bad text, `ec` is std::errc::invalid_argument and the result is empty.
    static endpoint parse(std::string_view text, std::error_code& ec) noexcept;

    /// The port in host byte order.
    std::uint16_t port() const noexcept;
    /// A copy with port `p` (the same address, IPv6 scope included): for many
    /// ports of one host without parsing its address each time. An empty
    /// endpoint stays empty.
    endpoint with_port(std::uint16_t p) const noexcept;
    /// The address without port or brackets ("::1", "127.0.0.1", "fe80::1%eth0"
    /// with its scope); "" if empty. parse() reads to_string() back to an equal endpoint.
    std::string address() const;
    /// "127.0.0.1:80" or "[::1]:80"; "" if empty.
    std::string to_string() const;
    /// AF_INET, AF_INET6, or AF_UNSPEC for an empty endpoint.
    int family() const noexcept;
    /// True for an IPv4 or IPv6 endpoint.
    explicit operator bool() const noexcept { return family() != AF_UNSPEC; }

    /// The socket address, for raw libuv calls.
    const sockaddr* data() const noexcept { return &addr_.sa; }
    /// The size of data() for its family.
    std::size_t size() const noexcept;

    friend bool operator==(const endpoint& a, const endpoint& b) noexcept;

private:
    union {
        sockaddr sa;
        sockaddr_in v4;
        sockaddr_in6 v6;
    } addr_;
};

}  // namespace uvkit
