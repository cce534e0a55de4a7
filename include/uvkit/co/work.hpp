// uvkit/co/work.hpp: co_await uvkit::async_work(loop, fn).
//
// What it is: runs `fn()` on libuv's thread pool (uvkit/work.hpp) and resumes
// the coroutine on the loop thread with fn's value:
//
//     std::uint64_t sum = co_await uvkit::async_work(loop, [&] { return checksum(data); });
//
// Results: fn's value (nothing for void); if fn threw, co_await rethrows
// that exception. The form taking a trailing std::error_code& stores
// uvkit's own errors (errc::canceled, a failed start) there instead of
// throwing them and then returns a value-initialised T (so T must be
// default-constructible there); fn's own exception is still rethrown.
//
// Cancellation (a cancel scope: when_any, with_timeout, task_group, ...)
// calls uv_cancel. If fn has not started, it never runs and the co_await
// completes with errc::canceled. If a pool thread already runs it, it
// cannot be stopped: the awaiter waits for it and then delivers fn's result
// (value or exception) as if nothing had happened; the cancelled scope
// makes the next operation fail instead. A cancelled await is resumed by the
// loop, never from inside the cancelling call.
//
// Destroying a suspended task: the request is cancelled if it can be, and
// its completion no longer touches the coroutine frame. A fn already running
// keeps running, so fn must not refer to the frame's locals if the task may
// be destroyed while it runs (capture by value then); cancelling through a
// scope, by contrast, always waits.
//
// One heap block per await (the libuv request must outlive a destroyed frame).
#pragma once

#include <coroutine>
#include <system_error>
#include <type_traits>
#include <utility>

#include "uvkit/co/operation.hpp"
#include "uvkit/work.hpp"

namespace uvkit {

namespace detail {

/// An await of a thread-pool request (work, getaddrinfo).
class UVKIT_API pool_awaiter : public operation {
protected:
    explicit pool_awaiter(std::error_code* ec_out, uvkit::loop* l = nullptr) noexcept
        : operation(ec_out, l) {}
    ~pool_awaiter() override {
        if (op_) [[unlikely]]
            abandon();
    }
    /// The frame is destroyed while suspended: the request completes on its
    /// own (cancelled if it had not started) and never calls back into it.
    void abandon() noexcept;

    /// Adopts the started request (from `r`) and registers with the scope.
    void suspend(pool_request& r, std::coroutine_handle<> h, cancel_scope* scope) noexcept {
        suspend(r.release_op(), h, scope);
    }
    /// Adopts the started request's block and registers with the scope. The
    /// request's own completion resumes the coroutine (resume_now(), from a
    /// libuv callback) and a cancellation only asks libuv (uv_cancel), so the
    /// loop's ready queue is never needed. Inline: every await of a file read
    /// or write runs it.
    void suspend(pool_op* op, std::coroutine_handle<> h, cancel_scope* scope) noexcept {
        operation::suspend(h, scope);
        op_ = op;
        op_->slot = &op_;
    }
    /// Called by the request's handler, on the loop thread: resumes the coroutine.
    void finish() noexcept { resume_now(); }
    void cancel() noexcept override;
    /// dump_tasks(): "work" (fs calls and resolve say which).
    void describe(task_dump& d) const override { d << "work"; }

    pool_op* op_ = nullptr;
};

template <class F>
class work_awaiter final : pool_awaiter {
public:
    using value_type = work_result_t<F>;

    template <class FF>
    work_awaiter(uvkit::loop& l, FF&& fn, std::error_code* ec_out)
        : pool_awaiter(ec_out, &l), fn_(std::forward<FF>(fn)) {}

    using pool_awaiter::await_ready;
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        cancel_scope* scope = scope_of(h);
        if (!admit(scope)) return false;
        work_request r = uvkit::work(*loop_, std::move(fn_), on_done{this}, ec_);
        if (ec_) return false;
        suspend(r, h, scope);
        return true;
    }
    value_type await_resume() {
        if (ec_out_) *ec_out_ = ec_;
        if (ec_) {
            // Only the std::error_code& form (whose T is default-constructible) returns here.
            if constexpr (std::is_void_v<value_type>) {
                if (ec_out_) return;
            } else if constexpr (std::is_default_constructible_v<value_type>) {
                if (ec_out_) return value_type{};
            }
            throw std::system_error(ec_, "uvkit::async_work");
        }
        return std::move(result_).value();
    }

private:
    struct on_done {
        work_awaiter* self;
        void operator()(std::error_code ec, work_result<value_type> r) noexcept {
            self->ec_ = ec;
            self->result_ = std::move(r);
            self->finish();
        }
    };

    F fn_;
    work_result<value_type> result_;
};

}  // namespace detail

/// Runs `fn()` on the thread pool; co_await gives its value or rethrows its
/// exception; throws std::system_error(errc::canceled) if cancelled before it ran.
template <class F>
detail::work_awaiter<std::decay_t<F>> async_work(uvkit::loop& l, F&& fn) {
    return {l, std::forward<F>(fn), nullptr};
}
/// Non-throwing form for uvkit's errors (errc::canceled): stored in `ec`, and
/// the result is value-initialised. fn's own exception is still rethrown.
template <class F>
detail::work_awaiter<std::decay_t<F>> async_work(uvkit::loop& l, F&& fn, std::error_code& ec) {
    static_assert(std::is_void_v<work_result_t<F>> || std::is_default_constructible_v<work_result_t<F>>,
                  "uvkit::async_work(loop, fn, ec): fn's result must be default-constructible");
    return {l, std::forward<F>(fn), &ec};
}

}  // namespace uvkit
