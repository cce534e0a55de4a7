#include "uvkit/co/sleep.hpp"

namespace uvkit::detail {

sleep_awaiter::~sleep_awaiter() {
    if (pending_) {
        // The frame is destroyed while suspended: the timer must not fire into it.
        unwatch();
        ctx_->release_timer(std::move(timer_));
    }
    if (node_.queued) ctx_->unschedule(node_);
}

bool sleep_awaiter::start(std::coroutine_handle<> h, cancel_scope* scope) {
    if (scope && scope->requested()) {
        ec_ = make_error_code(errc::canceled);
        return false;
    }
    ctx_ = &co_context::of(loop_);
    co_context& ctx = *ctx_;
    timer_ = ctx.acquire_timer();
    node_.handle = h;
    std::error_code ec;
    timer_.start(
        d_ < std::chrono::milliseconds{0} ? std::chrono::milliseconds{0} : d_, [this] { finish(); }, ec);
    if (ec) {
        ctx.release_timer(std::move(timer_));
        ec_ = ec;
        return false;
    }
    pending_ = true;
    watch(scope);
    return true;
}

void sleep_awaiter::finish() noexcept {
    pending_ = false;
    unwatch();
    ctx_->release_timer(std::move(timer_));
    resume(node_.handle);
}

void sleep_awaiter::cancel() noexcept {
    if (!pending_) return;
    pending_ = false;
    unwatch();
    ctx_->release_timer(std::move(timer_));
    ec_ = make_error_code(errc::canceled);
    ctx_->schedule(node_);
}

void sleep_awaiter::await_resume() {
    if (ec_out_)
        *ec_out_ = ec_;
    else if (ec_)
        throw std::system_error(ec_, "uvkit::sleep");
}

}  // namespace uvkit::detail
