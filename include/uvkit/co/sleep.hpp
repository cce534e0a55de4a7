// uvkit/co/sleep.hpp: co_await uvkit::sleep(loop, 100ms).
//
// What it is: suspends the coroutine for a duration, on a timer taken from a
// per-loop pool (awaiting a sleep allocates nothing once the pool is warm).
// sleep(loop, 0ms) still yields to the loop once.
//
// Cancellation: stops the timer; the sleep completes with errc::canceled.
// Errors: throws std::system_error; the form taking std::error_code& stores
// the error instead and never throws.
#pragma once

#include <chrono>
#include <system_error>

#include "uvkit/co/operation.hpp"

namespace uvkit {

namespace detail {

class UVKIT_API sleep_awaiter final : public operation {
public:
    sleep_awaiter(uvkit::loop& l, std::chrono::milliseconds d, std::error_code* ec) noexcept
        : operation(ec, &l), d_(d) {}
    ~sleep_awaiter() override;

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return start(h, scope_of(h));
    }
    void await_resume() { deliver("uvkit::sleep"); }
    /// dump_tasks(): "sleep 250 ms" (the duration asked for).
    void describe(task_dump& d) const override { d << "sleep " << d_.count() << " ms"; }

private:
    bool start(std::coroutine_handle<> h, cancel_scope* scope);
    void cancel() noexcept override;
    void finish() noexcept;

    co_context* ctx_ = nullptr;
    std::chrono::milliseconds d_;
    uvkit::timer timer_;
};

}  // namespace detail

/// Suspends the awaiting coroutine for `d` (at least; libuv's timer rules).
/// Throws std::system_error (errc::canceled when cancelled).
inline detail::sleep_awaiter sleep(uvkit::loop& l, std::chrono::milliseconds d) noexcept {
    return {l, d, nullptr};
}
/// Non-throwing form: errors (errc::canceled) are stored in `ec`.
inline detail::sleep_awaiter sleep(uvkit::loop& l, std::chrono::milliseconds d,
                                   std::error_code& ec) noexcept {
    return {l, d, &ec};
}

}  // namespace uvkit
