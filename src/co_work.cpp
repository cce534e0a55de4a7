#include "uvkit/co/work.hpp"

namespace uvkit::detail {

void pool_awaiter::abandon() noexcept {
    forget();
    pool_op* op = std::exchange(op_, nullptr);
    op->slot = nullptr;
    op->silenced = true;
    op->cancel();
}

void pool_awaiter::cancel() noexcept {
    // Success: libuv completes the request with UV_ECANCELED from the loop.
    // UV_EBUSY: it is running; wait for its result.
    if (op_) op_->cancel();
}

}  // namespace uvkit::detail
