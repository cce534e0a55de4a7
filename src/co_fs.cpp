#include "uvkit/co/fs.hpp"

namespace uvkit::detail {

bool file_io_awaiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    pool_op* op = fs_start_io(io_, this, ec_);
    if (!op) return false;
    suspend(op, h, scope);
    return true;
}

void file_io_awaiter::request_done(int result) noexcept {
    if (result < 0)
        ec_ = make_uv_error(result);
    else
        result_ = static_cast<std::size_t>(result);
    finish();
}

}  // namespace uvkit::detail
