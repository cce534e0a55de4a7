#include "uvkit/co/work.hpp"

namespace uvkit::detail {

void pool_awaiter::abandon() noexcept {
    forget();
    pool_op* op = std::exchange(op_, nullptr);
    op->slot = nullptr;
    op->silenced = true;
    op->cancel();
}

void pool_awaiter::suspend(pool_op* op, std::coroutine_handle<> h, cancel_scope* scope) {
    try {
        operation::suspend(h, scope, *loop_);
    } catch (...) {
        // The frame resumes with the exception: the request must not call back into it.
        op->silenced = true;
        op->cancel();
        throw;
    }
    op_ = op;
    op_->slot = &op_;
}

void pool_awaiter::cancel() noexcept {
    // Success: libuv completes the request with UV_ECANCELED from the loop.
    // UV_EBUSY: it is running; wait for its result.
    if (op_) op_->cancel();
}

}  // namespace uvkit::detail
