#include "uvkit/co/dns.hpp"

namespace uvkit::detail {

bool resolve_awaiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    resolve_request r = resolve_fn(
        *loop_, host_, service_, hints_,
        [this](std::error_code ec, std::vector<endpoint> eps) {
            ec_ = ec;
            result_ = std::move(eps);
            finish();
        },
        ec_);
    if (ec_) return false;
    suspend(r, h, scope);
    return true;
}

std::vector<endpoint> resolve_awaiter::await_resume() {
    deliver("uvkit::async_resolve");
    return std::move(result_);
}

}  // namespace uvkit::detail
