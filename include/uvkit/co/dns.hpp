// uvkit/co/dns.hpp: co_await uvkit::async_resolve(loop, host, service).
//
// What it is: the coroutine form of uvkit::resolve (uvkit/dns.hpp), with the
// same hints, results and errors:
//
//     std::vector<uvkit::endpoint> eps = co_await uvkit::async_resolve(loop, "localhost", "8080");
//     auto eps = co_await uvkit::async_resolve(loop, host, "", {}, ec);   // non-throwing
//
// Errors: throws std::system_error (e.g. UV_EAI_NONAME: "unknown node or
// service"); the form taking a trailing std::error_code& stores the error
// and returns an empty vector. A failed start (bad hints) is reported the
// same way, at the co_await.
//
// Cancellation: calls uv_cancel. A lookup still waiting for a pool thread
// completes with errc::canceled (resumed by the loop, never from inside the
// cancelling call); one already running cannot be stopped: the awaiter waits
// for it and delivers its result. Destroying a suspended task cancels the
// lookup if it can; its completion never touches the destroyed frame.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "uvkit/co/work.hpp"
#include "uvkit/dns.hpp"

namespace uvkit {

namespace detail {

class UVKIT_API resolve_awaiter final : pool_awaiter {
public:
    resolve_awaiter(uvkit::loop& l, std::string_view host, std::string_view service,
                    const resolve_hints& hints, std::error_code* ec_out)
        : pool_awaiter(ec_out, &l), host_(host), service_(service), hints_(hints) {}

    using pool_awaiter::await_ready;
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return start(h, scope_of(h));
    }
    std::vector<endpoint> await_resume();
    /// dump_tasks(): "resolve <host> <service>".
    void describe(task_dump& d) const override { d << "resolve " << host_ << ' ' << service_; }

private:
    bool start(std::coroutine_handle<> h, cancel_scope* scope);

    std::string host_;
    std::string service_;
    resolve_hints hints_;
    std::vector<endpoint> result_;
};

}  // namespace detail

/// Resolves `host` and `service` (see uvkit::resolve). Throws std::system_error.
inline detail::resolve_awaiter async_resolve(uvkit::loop& l, std::string_view host, std::string_view service,
                                             const resolve_hints& hints = {}) {
    return {l, host, service, hints, nullptr};
}
/// Non-throwing form: the error goes to `ec`, the result is empty.
inline detail::resolve_awaiter async_resolve(uvkit::loop& l, std::string_view host, std::string_view service,
                                             const resolve_hints& hints, std::error_code& ec) {
    return {l, host, service, hints, &ec};
}
inline detail::resolve_awaiter async_resolve(uvkit::loop& l, std::string_view host, std::string_view service,
                                             std::error_code& ec) {
    return {l, host, service, resolve_hints{}, &ec};
}

}  // namespace uvkit
