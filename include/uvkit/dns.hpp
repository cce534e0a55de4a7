// uvkit/dns.hpp: name resolution (uv_getaddrinfo, uv_getnameinfo).
//
// What it is: the system resolver (getaddrinfo and getnameinfo, so
// /etc/hosts, DNS, and whatever nsswitch says), run on libuv's thread pool so
// that the loop never blocks:
//
//     auto req = uvkit::resolve(loop, "localhost", "8080",
//                               [&](std::error_code ec, std::vector<uvkit::endpoint> eps) {
//                                   if (ec) { std::cerr << ec.message() << '\n'; return; }
//                                   for (auto& ep : eps) std::cout << ep.to_string() << '\n';
//                               });
//
// Results: every IPv4/IPv6 address getaddrinfo returned, in its order
// (normally the preferred address first), with the service's port (0
// without a service). Addresses are not deduplicated: getaddrinfo returns one
// entry per socket type when the socket type is unspecified, so the hints
// default to socket_type::stream, which lists each address once. Choose
// socket_type::dgram for UDP services; socket_type::any gives libuv's raw
// list (the same address once per type).
//
// Requests and lifetime: resolve_request and the handler follow the rules in
// uvkit/work.hpp: the handler is called exactly once on the loop thread;
// cancel() works only while the lookup waits for a pool thread (a lookup
// already running cannot be stopped: uv_cancel says UV_EBUSY and the lookup
// completes normally); destroying a pending request object cancels it if it
// can and the handler still runs once (errc::canceled, or the result).
// Functions are [[nodiscard]]: keep the request, or detach() it.
//
// Errors: a failed start (empty host and service, bad hints, an empty
// endpoint, a NUL in the host or service, a host longer than 255 bytes:
// UV_EINVAL) throws std::system_error, or with the std::error_code& form is
// stored there; the handler then never runs. Over-long names never reach
// libuv (libuv 1.44.2 truncates them and resolves another name:
// CVE-2024-24806). Lookup failures arrive in the
// handler as libuv's UV_EAI_* codes in uvkit::error_category(): e.g. an
// unknown host is UV_EAI_NONAME, whose message() is "unknown node or
// service", and err_name() says "EAI_NONAME". A cancelled lookup gets
// errc::canceled (libuv reports UV_EAI_CANCELED; uvkit turns it into
// UV_ECANCELED so every cancelled request looks the same).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "uvkit/endpoint.hpp"
#include "uvkit/work.hpp"

namespace uvkit {

/// The longest host name resolve() and async_resolve() pass on, in bytes (RFC 1035).
inline constexpr std::size_t max_host_name = 255;

/// The socket type a lookup is for (addrinfo::ai_socktype).
enum class socket_type : int {
    any = 0,               ///< every type: each address once per type
    stream = SOCK_STREAM,  ///< TCP (the default)
    dgram = SOCK_DGRAM,    ///< UDP
};

/// What to look up (the addrinfo hints of getaddrinfo).
struct resolve_hints {
    /// AF_UNSPEC (both), AF_INET or AF_INET6.
    int family = AF_UNSPEC;
    socket_type socktype = socket_type::stream;
    /// A combination of the flags below (addrinfo::ai_flags).
    int flags = 0;

    /// The host must be a numeric address; no lookup is made (AI_NUMERICHOST).
    static constexpr int numeric_host = AI_NUMERICHOST;
    /// The service must be a port number (AI_NUMERICSERV).
    static constexpr int numeric_service = AI_NUMERICSERV;
    /// With an empty host: the wildcard address, for bind (AI_PASSIVE).
    static constexpr int passive = AI_PASSIVE;
    /// Only families the host has an address of (AI_ADDRCONFIG).
    static constexpr int address_config = AI_ADDRCONFIG;
#ifdef AI_V4MAPPED
    /// With AF_INET6: IPv4 addresses as IPv4-mapped IPv6 if there is no IPv6 one (AI_V4MAPPED).
    static constexpr int v4_mapped = AI_V4MAPPED;
#endif
};

/// Flags of resolve_name (getnameinfo's NI_*).
struct name_flags {
    /// The numeric address instead of a name (NI_NUMERICHOST).
    static constexpr int numeric_host = NI_NUMERICHOST;
    /// The port number instead of a service name (NI_NUMERICSERV).
    static constexpr int numeric_service = NI_NUMERICSERV;
    /// Fail (UV_EAI_NONAME) rather than return a numeric host (NI_NAMEREQD).
    static constexpr int name_required = NI_NAMEREQD;
    /// The service is a UDP one (NI_DGRAM).
    static constexpr int dgram = NI_DGRAM;
};

/// A pending resolve() or resolve_name(); see uvkit/work.hpp for the rules.
class resolve_request : public detail::pool_request {
public:
    resolve_request() noexcept = default;
    /// Internal: adopts a started request block.
    explicit resolve_request(detail::pool_op* op) noexcept : pool_request(op) {}
};

namespace detail {
using resolve_handler = unique_function<void(std::error_code, std::vector<endpoint>)>;
using name_handler = unique_function<void(std::error_code, std::string, std::string)>;

UVKIT_API resolve_request resolve_fn(uvkit::loop& l, std::string_view host, std::string_view service,
                                     const resolve_hints& hints, resolve_handler&& h,
                                     std::error_code& ec) noexcept;
UVKIT_API resolve_request resolve_name_fn(uvkit::loop& l, const endpoint& ep, int flags, name_handler&& h,
                                          std::error_code& ec) noexcept;
}  // namespace detail

/// Resolves `host` (a name or a numeric address; empty for the local or,
/// with `passive`, the wildcard address) and `service` (a port number or a
/// name from /etc/services; empty for port 0) with uv_getaddrinfo. Calls
/// `h(std::error_code, std::vector<uvkit::endpoint>)` exactly once.
/// Throws std::system_error if the lookup cannot start.
template <class F>
[[nodiscard]] resolve_request resolve(uvkit::loop& l, std::string_view host, std::string_view service, F&& h,
                                      const resolve_hints& hints = {}) {
    return detail::throwing("uv_getaddrinfo", [&](std::error_code& ec) {
        return detail::resolve_fn(l, host, service, hints, detail::resolve_handler(std::forward<F>(h)), ec);
    });
}
/// Non-throwing form: a failed start is stored in `ec`, and `h` never runs.
template <class F>
[[nodiscard]] resolve_request resolve(uvkit::loop& l, std::string_view host, std::string_view service, F&& h,
                                      const resolve_hints& hints, std::error_code& ec) noexcept {
    return detail::resolve_fn(l, host, service, hints, detail::resolve_handler(std::forward<F>(h)), ec);
}

/// Reverse lookup of `ep` (uv_getnameinfo): `h(std::error_code, std::string host,
/// std::string service)` is called exactly once. `flags` are name_flags.
/// Throws std::system_error if the lookup cannot start (an empty endpoint).
template <class F>
[[nodiscard]] resolve_request resolve_name(uvkit::loop& l, const endpoint& ep, F&& h, int flags = 0) {
    return detail::throwing("uv_getnameinfo", [&](std::error_code& ec) {
        return detail::resolve_name_fn(l, ep, flags, detail::name_handler(std::forward<F>(h)), ec);
    });
}
/// Non-throwing form.
template <class F>
[[nodiscard]] resolve_request resolve_name(uvkit::loop& l, const endpoint& ep, F&& h, int flags,
                                           std::error_code& ec) noexcept {
    return detail::resolve_name_fn(l, ep, flags, detail::name_handler(std::forward<F>(h)), ec);
}

}  // namespace uvkit
