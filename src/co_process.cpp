#include "uvkit/co/process.hpp"

namespace uvkit::detail {

exit_waiter::~exit_waiter() {
    if (!pending_) return;
    if (st_->consumer == this) st_->consumer = nullptr;
    forget();
}

bool exit_waiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    st_ = proc_->get<process_state>(ec_);
    if (!st_) return false;
    if (st_->result) {
        result_ = *st_->result;
        return false;
    }
    if (st_->consumer) {
        ec_ = make_uv_error(UV_EALREADY);
        return false;
    }
    suspend(h, scope, *st_->owner);
    st_->consumer = this;
    return true;
}

void exit_waiter::ready(int) noexcept {
    st_->consumer = nullptr;
    result_ = *st_->result;
    resume_now();
}

void exit_waiter::abort(std::error_code e) noexcept {
    if (!pending_) return;
    st_->consumer = nullptr;
    resume_soon(e);
}

void exit_waiter::stop() noexcept { abort(make_error_code(errc::canceled)); }

void exit_waiter::describe(task_dump& d) const {
    d << "process exit";
    if (st_ && st_->uvh) d << ' ' << uv_process_get_pid(reinterpret_cast<const uv_process_t*>(st_->uvh));
}

void exit_waiter::cancel() noexcept { abort(make_error_code(errc::canceled)); }

}  // namespace uvkit::detail
