// uvkit/co/task.hpp: task<T> and run() (spawn() is in uvkit/co/join_handle.hpp).
//
// What it is: `uvkit::task<T>` is a lazy, move-only coroutine type. Nothing
// runs until it is awaited (co_await t), driven by run(loop, t), or spawned.
// Awaiting a task hands control to it through uvkit's flat resume loop (see
// detail::transfer), so neither long runs of awaits that complete at once nor
// deep chains of nested tasks grow the stack, at any optimisation level.
//
//     uvkit::task<int> answer(uvkit::loop& loop) {
//         co_await uvkit::sleep(loop, 10ms);
//         co_return 42;
//     }
//     int v = uvkit::run(loop, answer(loop));
//
// Lifetime: a task owns its coroutine frame (one allocation). Destroying a
// task that is suspended destroys the frame: the operation it awaits is
// stopped and its handler will not touch freed memory. A task must be
// awaited, run or spawned at most once.
//
// Errors: an exception that escapes the coroutine is rethrown by co_await,
// run(), or (for spawn) by the loop's run().
#pragma once

#ifdef UVKIT_NO_COROUTINES
#error \
    "uvkit was built without its coroutine layer (-Dcoroutines=false); the callback core never includes uvkit/co/"
#endif

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "uvkit/co/cancel.hpp"
#include "uvkit/loop.hpp"

namespace uvkit {

template <class T = void>
class task;

namespace detail {

/// Resuming without recursion. A coroutine that hands control to another
/// (a task starting a child, a child finishing back into its parent) does so
/// through transfer(): under a resume() further down the stack, the next
/// coroutine is parked in that resume()'s slot and the current one returns to
/// it, so a million awaits that complete at once run in one flat loop instead
/// of a million nested frames, whether or not the compiler turns symmetric
/// transfer into a tail call (it does not at -O0 nor under ASan).
struct trampoline {
    std::coroutine_handle<> next;
    trampoline* outer;
};
// constinit: no dynamic initialisation, so every access is a plain TLS load
// (no call to a thread_local wrapper function).
UVKIT_API extern thread_local constinit trampoline* current_trampoline;

/// Resumes `h` now, from a callback or a combinator, and every coroutine it
/// transfers to, before returning. Inline: it runs once per resumption.
inline void resume(std::coroutine_handle<> h) noexcept {
    trampoline t{{}, current_trampoline};
    current_trampoline = &t;
    h.resume();
    while (std::coroutine_handle<> next = std::exchange(t.next, {})) next.resume();
    current_trampoline = t.outer;
}

/// What an await_suspend or final_suspend returns to pass control to `next`.
inline std::coroutine_handle<> transfer(std::coroutine_handle<> next) noexcept {
    if (trampoline* t = current_trampoline; t && !t->next) {
        t->next = next;
        return std::noop_coroutine();
    }
    return next;  // not under resume() (or its slot is taken): symmetric transfer
}

/// A frame being destroyed must not stay parked in a trampoline's slot.
UVKIT_API void forget_parked(void* frame) noexcept;

/// What every task's promise has, whatever its T.
struct promise_base {
    std::coroutine_handle<> continuation;
    cancel_scope own_scope;
    cancel_scope* scope = &own_scope;
    std::exception_ptr error;
    // Instead of a continuation, a combinator (when_all, task_group, spawn)
    // may ask to be told: it returns where to transfer control next (an empty
    // handle: nowhere).
    std::coroutine_handle<> (*on_done)(void* ctx, promise_base& p) noexcept = nullptr;
    void* on_done_ctx = nullptr;
    // Links used by whoever owns a detached child (spawn, task_group).
    promise_base* sibling_prev = nullptr;
    promise_base* sibling_next = nullptr;
    std::coroutine_handle<> self;
    // The join_handle's pointer to this promise, while one is attached: the
    // frame going away first (with its loop) empties the handle.
    promise_base** joiner = nullptr;
    // Its join_handle cancelled it (h.cancel(), or destroyed before the end):
    // its errc::canceled is expected, not a failure to report.
    bool handle_cancelled = false;

    promise_base() noexcept = default;
    promise_base(const promise_base&) = delete;
    promise_base& operator=(const promise_base&) = delete;
    ~promise_base() {
        if (joiner) *joiner = nullptr;
    }

    std::suspend_always initial_suspend() const noexcept { return {}; }

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            promise_base& p = h.promise();
            if (p.on_done) {
                std::coroutine_handle<> next = p.on_done(p.on_done_ctx, p);
                return next ? transfer(next) : std::noop_coroutine();
            }
            return p.continuation ? transfer(p.continuation) : std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { error = std::current_exception(); }
};

/// The cancel scope of the coroutine behind `h`, or nullptr if its promise is
/// not a uvkit task's (such coroutines are simply not cancellable).
template <class P>
cancel_scope* scope_of(std::coroutine_handle<P> h) noexcept {
    if constexpr (std::is_base_of_v<promise_base, P>)
        return h.promise().scope;
    else
        return nullptr;
}

template <class P>
struct forget_on_destroy {
    forget_on_destroy() noexcept = default;
    forget_on_destroy(const forget_on_destroy&) = delete;
    forget_on_destroy& operator=(const forget_on_destroy&) = delete;
    ~forget_on_destroy() {
        if (current_trampoline) [[unlikely]]
            forget_parked(std::coroutine_handle<P>::from_promise(static_cast<P&>(*this)).address());
    }
};

template <class T>
struct task_promise : promise_base, forget_on_destroy<task_promise<T>> {
    std::optional<T> value;
    task<T> get_return_object() noexcept;
    template <class U>
    void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        value.emplace(std::forward<U>(v));
    }
    T take() {
        if (error) std::rethrow_exception(error);
        return std::move(*value);
    }
};

template <>
struct task_promise<void> : promise_base, forget_on_destroy<task_promise<void>> {
    task<void> get_return_object() noexcept;
    void return_void() const noexcept {}
    void take() const {
        if (error) std::rethrow_exception(error);
    }
};

}  // namespace detail

template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::task_promise<T>;
    using handle_type = std::coroutine_handle<promise_type>;
    using value_type = T;

    task() noexcept = default;
    explicit task(handle_type h) noexcept : h_(h) {}
    task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    task& operator=(task&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() {
        if (h_) h_.destroy();
    }

    /// True if the task holds a coroutine.
    explicit operator bool() const noexcept { return static_cast<bool>(h_); }
    /// True once the coroutine ran to its end.
    bool done() const noexcept { return h_ && h_.done(); }

    /// Awaiting a task starts it and resumes the awaiter with its result.
    struct awaiter {
        handle_type h;
        bool await_ready() const noexcept { return !h || h.done(); }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
            h.promise().continuation = parent;
            if (detail::cancel_scope* s = detail::scope_of(parent)) h.promise().scope = s;
            return detail::transfer(h);
        }
        T await_resume() {
            if (!h) throw std::logic_error("uvkit::task: awaiting an empty task");
            return h.promise().take();
        }
    };
    awaiter operator co_await() && noexcept { return awaiter{h_}; }

    /// Internal: the coroutine handle (still owned by the task).
    handle_type handle() const noexcept { return h_; }
    /// Internal: gives up ownership of the coroutine frame.
    handle_type release() noexcept { return std::exchange(h_, {}); }

private:
    handle_type h_;
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<task_promise<T>>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<task_promise<void>>::from_promise(*this));
}

/// Drives `l` until `h` is done. Throws std::logic_error if the loop runs out
/// of work while the task is still suspended (nothing could ever resume it).
UVKIT_API void drive(uvkit::loop& l, std::coroutine_handle<> h, promise_base& p);

}  // namespace detail

/// Runs `t` to completion on `l` (driving the loop) and returns its value or
/// rethrows its exception. Other handles on the loop run meanwhile. Throws
/// std::logic_error if the loop has nothing left to do while `t` still waits.
template <class T>
T run(uvkit::loop& l, task<T> t) {
    if (!t) throw std::logic_error("uvkit::run: empty task");
    if (t.done()) throw std::logic_error("uvkit::run: the task has already run");
    detail::drive(l, t.handle(), t.handle().promise());
    return t.handle().promise().take();
}

// spawn() is declared in uvkit/co/join_handle.hpp: it returns a join_handle.

}  // namespace uvkit
