#include "uvkit/co/work.hpp"

namespace uvkit::detail {

pool_awaiter::~pool_awaiter() {
    if (!op_) return;
    // The frame is destroyed while suspended: the request completes on its
    // own (cancelled if it had not started) and never calls back into it.
    unwatch();
    pool_op* op = std::exchange(op_, nullptr);
    op->slot = nullptr;
    op->silenced = true;
    op->cancel();
}

bool pool_awaiter::admit(cancel_scope* scope) noexcept {
    if (scope && scope->requested()) {
        ec_ = make_error_code(errc::canceled);
        return false;
    }
    return true;
}

void pool_awaiter::suspend(pool_request& r, std::coroutine_handle<> h, cancel_scope* scope) noexcept {
    op_ = r.release_op();
    op_->slot = &op_;
    h_ = h;
    watch(scope);
}

void pool_awaiter::finish() noexcept {
    // op_ was cleared by pool_op::finish before the handler ran.
    unwatch();
    detail::resume(h_);
}

void pool_awaiter::cancel() noexcept {
    // Success: libuv completes the request with UV_ECANCELED from the loop.
    // UV_EBUSY: it is running; wait for its result.
    if (op_) op_->cancel();
}

}  // namespace uvkit::detail
