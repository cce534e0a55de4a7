#include "uvkit/co/sleep.hpp"

namespace uvkit::detail {

sleep_awaiter::~sleep_awaiter() {
    if (!pending_) return;
    // The frame is destroyed while suspended: the timer must not fire into it.
    forget();
    ctx_->release_timer(std::move(timer_));
}

bool sleep_awaiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (!admit(scope)) return false;
    ctx_ = &co_context::of(*loop_);
    timer_ = ctx_->acquire_timer();
    std::error_code ec;
    timer_.start(
        d_ < std::chrono::milliseconds{0} ? std::chrono::milliseconds{0} : d_, [this] { finish(); }, ec);
    if (ec) {
        ctx_->release_timer(std::move(timer_));
        ec_ = ec;
        return false;
    }
    suspend(h, scope, *loop_);
    return true;
}

void sleep_awaiter::finish() noexcept {
    ctx_->release_timer(std::move(timer_));
    resume_now();
}

void sleep_awaiter::cancel() noexcept {
    if (!pending_) return;
    ctx_->release_timer(std::move(timer_));
    resume_soon(make_error_code(errc::canceled));
}

}  // namespace uvkit::detail
