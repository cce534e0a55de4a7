#include "uvkit/co/work.hpp"

namespace uvkit::detail {

pool_awaiter::~pool_awaiter() {
    if (!op_) return;
    // The frame is destroyed while suspended: the request completes on its
    // own (cancelled if it had not started) and never calls back into it.
    forget();
    pool_op* op = std::exchange(op_, nullptr);
    op->slot = nullptr;
    op->silenced = true;
    op->cancel();
}

void pool_awaiter::suspend(pool_request& r, std::coroutine_handle<> h, cancel_scope* scope) {
    operation::suspend(h, scope, *loop_);  // first: it may throw, and then `r` cancels the request
    op_ = r.release_op();
    op_->slot = &op_;
}

void pool_awaiter::cancel() noexcept {
    // Success: libuv completes the request with UV_ECANCELED from the loop.
    // UV_EBUSY: it is running; wait for its result.
    if (op_) op_->cancel();
}

}  // namespace uvkit::detail
