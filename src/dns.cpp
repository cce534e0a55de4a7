#include "uvkit/dns.hpp"

#include <new>
#include <string>

namespace uvkit::detail {

namespace {

// libuv reports a cancelled lookup as UV_EAI_CANCELED; every other cancelled
// uvkit request says UV_ECANCELED, so that `ec == errc::canceled` always works.
int normalise(int status) noexcept { return status == UV_EAI_CANCELED ? UV_ECANCELED : status; }

struct getaddrinfo_op final : pool_op {
    using pool_op::pool_op;
    void complete(int status) override {
        std::vector<endpoint> eps;
        if (status >= 0) {
            for (const addrinfo* ai = res; ai; ai = ai->ai_next) {
                endpoint ep = endpoint::from(ai->ai_addr);
                if (ep) eps.push_back(ep);
            }
        }
        free_result();
        cb(status_code(normalise(status)), std::move(eps));
    }
    void free_result() noexcept {
        if (res) uv_freeaddrinfo(std::exchange(res, nullptr));
    }
    ~getaddrinfo_op() override { free_result(); }

    uv_getaddrinfo_t req{};
    addrinfo* res = nullptr;
    resolve_handler cb;
};

void on_getaddrinfo(uv_getaddrinfo_t* r, int status, addrinfo* res) noexcept {
    auto* op = static_cast<getaddrinfo_op*>(static_cast<pool_op*>(r->data));
    op->res = res;  // freed by the op even if its handler never runs
    pool_op::finish(op, status);
}

struct getnameinfo_op final : pool_op {
    using pool_op::pool_op;
    void complete(int status) override {
        if (status < 0)
            cb(make_uv_error(normalise(status)), std::string{}, std::string{});
        else
            cb(std::error_code{}, std::move(host), std::move(service));
    }

    uv_getnameinfo_t req{};
    std::string host, service;
    name_handler cb;
};

void on_getnameinfo(uv_getnameinfo_t* r, int status, const char* host, const char* service) noexcept {
    auto* op = static_cast<getnameinfo_op*>(static_cast<pool_op*>(r->data));
    if (status >= 0) {
        try {
            op->host = host ? host : "";
            op->service = service ? service : "";
        } catch (...) {
            status = UV_ENOMEM;
        }
    }
    pool_op::finish(op, status);
}

constexpr int known_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE | AI_ADDRCONFIG
#ifdef AI_V4MAPPED
                            | AI_V4MAPPED
#endif
#ifdef AI_ALL
                            | AI_ALL
#endif
    ;

// Checked here, so that bad hints fail at the call, not later in the handler.
int check_hints(const resolve_hints& h) noexcept {
    if (h.family != AF_UNSPEC && h.family != AF_INET && h.family != AF_INET6) return UV_EAI_FAMILY;
    switch (h.socktype) {
        case socket_type::any:
        case socket_type::stream:
        case socket_type::dgram: break;
        default: return UV_EAI_SOCKTYPE;
    }
    if ((h.flags & ~known_flags) != 0) return UV_EAI_BADFLAGS;
    return 0;
}

}  // namespace

resolve_request resolve_fn(uvkit::loop& l, std::string_view host, std::string_view service,
                           const resolve_hints& hints, resolve_handler&& h, std::error_code& ec) noexcept {
    if (set_error(ec, check_hints(hints))) return {};
    // getaddrinfo takes C strings: an embedded NUL would silently cut the name.
    // A DNS name has at most 255 bytes (RFC 1035); a longer one is refused
    // here, never handed to libuv (1.44.2 truncates it: CVE-2024-24806).
    if (host.find('\0') != std::string_view::npos || service.find('\0') != std::string_view::npos ||
        (host.empty() && service.empty()) || host.size() > max_host_name) {
        ec = make_uv_error(UV_EINVAL);
        return {};
    }
    auto* op = new (std::nothrow) getaddrinfo_op(l);
    std::string host_z, service_z;
    try {
        host_z.assign(host);
        service_z.assign(service);
    } catch (...) {
        delete op;
        op = nullptr;
    }
    if (!op || !pool_op::ready(l)) {
        delete op;
        ec = make_uv_error(UV_ENOMEM);
        return {};
    }
    addrinfo ai{};
    ai.ai_family = hints.family;
    ai.ai_socktype = static_cast<int>(hints.socktype);
    ai.ai_flags = hints.flags;
    op->req.data = static_cast<pool_op*>(op);
    // libuv copies the strings and the hints; they may die after the call.
    int rc = uv_getaddrinfo(l.raw(), &op->req, &on_getaddrinfo, host.empty() ? nullptr : host_z.c_str(),
                            service.empty() ? nullptr : service_z.c_str(), &ai);
    if (set_error(ec, rc)) {
        delete op;
        return {};
    }
    op->cb = std::move(h);
    op->started(reinterpret_cast<uv_req_t*>(&op->req));
    return resolve_request(op);
}

resolve_request resolve_name_fn(uvkit::loop& l, const endpoint& ep, int flags, name_handler&& h,
                                std::error_code& ec) noexcept {
    if (!ep) {
        ec = make_uv_error(UV_EINVAL);
        return {};
    }
    auto* op = new (std::nothrow) getnameinfo_op(l);
    if (!op || !pool_op::ready(l)) {
        delete op;
        ec = make_uv_error(UV_ENOMEM);
        return {};
    }
    op->req.data = static_cast<pool_op*>(op);
    if (set_error(ec, uv_getnameinfo(l.raw(), &op->req, &on_getnameinfo, ep.data(), flags))) {
        delete op;
        return {};
    }
    op->cb = std::move(h);
    op->started(reinterpret_cast<uv_req_t*>(&op->req));
    return resolve_request(op);
}

}  // namespace uvkit::detail
