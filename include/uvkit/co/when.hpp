// uvkit/co/when.hpp: when_all, when_any, with_timeout.
//
// What it is: structured concurrency over tasks, like Tokio's join!, select!
// and timeout, but no child outlives the co_await that started it.
//
//     auto [a, b] = co_await uvkit::when_all(f(loop), g(loop));
//     auto first = co_await uvkit::when_any(f(loop), g(loop));   // std::variant; first.index()
//     auto reply = co_await uvkit::with_timeout(loop, 2s, read_reply(c));
//     auto chunk = co_await uvkit::with_timeout(loop, 2s, c.async_read());
//
// Each argument is a task or an awaitable operation (`uvkit::sleep(loop, 1s)`,
// `c.async_read()`, `server.async_accept()`, ...); an operation is awaited in
// place, so co_await the combinator in the expression that made it:
//
//     auto [_, chunk] = co_await uvkit::when_all(uvkit::sleep(loop, 10ms), c.async_read());
//
// when_all starts every task at once and completes when all have finished,
// with a tuple of their results (std::monostate for task<void>). If one
// throws, the others are cancelled, and the first exception is rethrown once
// every task stopped.
//
// when_any completes when all tasks have stopped, with the result of the
// first to finish as a std::variant whose index() says which task it was;
// the others are cancelled as soon as the first finished. If the first to
// finish threw, its exception is rethrown.
//
// with_timeout runs a task under a deadline: when it expires first, the task
// is cancelled and std::system_error(std::errc::timed_out) is thrown.
//
// Cancelling the awaiting coroutine cancels every child. Each child is one
// task frame; the combinators themselves allocate nothing.
#pragma once

#include <array>
#include <chrono>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <variant>

#include "uvkit/co/deadline.hpp"
#include "uvkit/co/operation.hpp"
#include "uvkit/co/sleep.hpp"
#include "uvkit/co/task.hpp"

namespace uvkit {

namespace detail {

template <class T>
using result_of_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
result_of_t<T> take_result(task<T>& t) {
    if constexpr (std::is_void_v<T>) {
        t.handle().promise().take();
        return {};
    } else {
        return t.handle().promise().take();
    }
}

/// What when_all and when_any share: starting the children under scopes
/// linked below the parent's, and counting them back in. The awaiter is the
/// operation its parent waits on (the parent's cancellation reaches the
/// children through their linked scopes).
template <class Derived, class... T>
class when_base : public operation {
public:
    static constexpr std::size_t count = sizeof...(T);

    explicit when_base(task<T>&&... ts) noexcept : operation(nullptr), tasks_(std::move(ts)...) {}

    bool await_ready() const noexcept { return count == 0; }

    /// dump_tasks(): "when_all 3 children" (or when_any), then those not finished.
    void describe(task_dump& d) const override {
        d << Derived::dump_label << ' ' << count << (count == 1 ? " child" : " children");
        std::apply(
            [&](const auto&... t) { ((t.handle().done() ? void() : d.child(t.handle().promise())), ...); },
            tasks_);
    }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        cancel_scope* parent_scope = scope_of(h);
        suspend(h, parent_scope);
        remaining_ = count + 1;  // +1: nothing resumes the parent before all started
        for_each_promise([&](promise_base& p, std::size_t i) {
            ctx_[i] = {static_cast<Derived*>(this), i};
            p.own_scope.link(parent_scope);
            p.scope = &p.own_scope;
            p.on_done = &child_done;
            p.on_done_ctx = &ctx_[i];
        });
        std::apply([](auto&... t) { (resume(t.handle()), ...); }, tasks_);
        if (--remaining_ != 0) return true;
        forget();  // every child finished at once
        return false;
    }

protected:
    template <class F>
    void for_each_promise(F&& f) noexcept {
        std::size_t i = 0;
        std::apply([&](auto&... t) { (f(static_cast<promise_base&>(t.handle().promise()), i++), ...); },
                   tasks_);
    }
    void cancel_all() noexcept {
        for_each_promise([](promise_base& p, std::size_t) { p.own_scope.request(); });
    }

    struct child_ctx {
        Derived* self;
        std::size_t index;
    };
    static std::coroutine_handle<> child_done(void* c, promise_base& p) noexcept {
        auto* ctx = static_cast<child_ctx*>(c);
        Derived* self = ctx->self;
        self->on_child_done(ctx->index, p);
        if (--self->remaining_ == 0) return self->handoff();
        return {};
    }

    // The children reach the parent's cancellation through their linked scopes.
    void cancel() noexcept override {}

    std::tuple<task<T>...> tasks_;
    std::array<child_ctx, count> ctx_{};
    std::size_t remaining_ = 0;
};

template <class... T>
class when_all_awaiter final : public when_base<when_all_awaiter<T...>, T...> {
    using base = when_base<when_all_awaiter<T...>, T...>;
    friend base;

public:
    using base::base;
    static constexpr const char* dump_label = "when_all";

    std::tuple<result_of_t<T>...> await_resume() {
        if (error_) std::rethrow_exception(error_);
        return std::apply([](auto&... t) { return std::tuple<result_of_t<T>...>(take_result(t)...); },
                          this->tasks_);
    }

private:
    void on_child_done(std::size_t, promise_base& p) noexcept {
        if (p.error && !error_) {
            error_ = p.error;
            this->cancel_all();
        }
    }
    std::exception_ptr error_;
};

template <class... T>
class when_any_awaiter final : public when_base<when_any_awaiter<T...>, T...> {
    using base = when_base<when_any_awaiter<T...>, T...>;
    friend base;

public:
    using base::base;
    static constexpr const char* dump_label = "when_any";
    using variant_type = std::variant<result_of_t<T>...>;

    variant_type await_resume() { return take(std::index_sequence_for<T...>{}); }

private:
    void on_child_done(std::size_t i, promise_base&) noexcept {
        if (winner_ != npos) return;
        winner_ = i;
        this->cancel_all();
    }
    template <std::size_t... I>
    variant_type take(std::index_sequence<I...>) {
        variant_type out;
        ((winner_ == I ? (void)out.template emplace<I>(take_result(std::get<I>(this->tasks_))) : (void)0),
         ...);
        return out;
    }
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    std::size_t winner_ = npos;
};

template <class T>
inline constexpr bool is_task = false;
template <class T>
inline constexpr bool is_task<task<T>> = true;

template <class A>
using await_result_t = decltype(std::declval<A&>().await_resume());

/// A task that awaits `aw`; `aw` must outlive it (see with_timeout).
template <class A>
task<await_result_t<A>> await_in_task(A&& aw) {
    co_return co_await static_cast<std::remove_reference_t<A>&>(aw);  // an lvalue: awaiters do not move
}

/// A task, or an awaitable operation (`uvkit::sleep(...)`, `c.async_read()`, ...).
template <class A>
concept awaitable_operation = requires(A& a, std::coroutine_handle<> h) {
    a.await_ready();
    a.await_suspend(h);
    a.await_resume();
};
template <class A>
concept task_or_awaitable =
    is_task<std::remove_cvref_t<A>> || awaitable_operation<std::remove_reference_t<A>>;

/// A task as it is; an awaitable inside a task that awaits it in place (the
/// awaitable is the caller's: await the combinator in the same expression).
template <class A>
auto as_task(A&& a) {
    if constexpr (is_task<std::remove_cvref_t<A>>)
        return std::remove_cvref_t<A>(std::forward<A>(a));
    else
        return await_in_task(std::forward<A>(a));
}

template <class... T>
when_all_awaiter<T...> when_all_of(task<T>... ts) {
    if (!(static_cast<bool>(ts) && ...)) throw std::invalid_argument("uvkit::when_all: empty task");
    return when_all_awaiter<T...>(std::move(ts)...);
}
template <class... T>
when_any_awaiter<T...> when_any_of(task<T>... ts) {
    if (!(static_cast<bool>(ts) && ...)) throw std::invalid_argument("uvkit::when_any: empty task");
    return when_any_awaiter<T...>(std::move(ts)...);
}

}  // namespace detail

/// Runs every task (or awaitable operation) concurrently; completes with all
/// their results. Throws std::invalid_argument if a task is empty. Operations
/// such as `c.async_read()` are awaited in place: co_await the result in the
/// same expression (`co_await uvkit::when_all(uvkit::sleep(loop, 1s), c.async_read())`).
template <detail::task_or_awaitable... A>
auto when_all(A&&... as) {
    return detail::when_all_of(detail::as_task(std::forward<A>(as))...);
}

/// Runs every task (or awaitable operation) concurrently; completes with the
/// first result, the others cancelled. Throws std::invalid_argument if a task is empty.
template <detail::task_or_awaitable... A>
auto when_any(A&&... as) {
    static_assert(sizeof...(A) > 0, "when_any needs at least one task");
    return detail::when_any_of(detail::as_task(std::forward<A>(as))...);
}

namespace detail {

/// with_timeout, with_deadline and shielded: one child under a timer. On
/// expiry the child is cancelled and the await, once the child stopped, ends
/// with std::errc::timed_out (even if the cancelled child returned a value).
/// A shielded child's scope is a root: the parent's cancellation does not
/// reach it (the parent's next operation sees it, cancellation is sticky).
template <class T>
class timeout_awaiter final : public operation {
public:
    timeout_awaiter(uvkit::loop& l, std::chrono::milliseconds d, task<T> t, bool shield, const char* what)
        : operation(nullptr, &l),
          d_(d < std::chrono::milliseconds{0} ? std::chrono::milliseconds{0} : d),
          task_(std::move(t)),
          shield_(shield),
          what_(what) {
        if (!task_) throw std::invalid_argument(what);
    }
    ~timeout_awaiter() override {
        if (timer_) ctx_->release_timer(std::move(timer_));
        if (pending_) forget();
    }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        cancel_scope* parent_scope = scope_of(h);
        ctx_ = &co_context::of(*loop_);
        timer_ = ctx_->acquire_timer();
        std::error_code ec;
        timer_.start(
            d_, [this] { expire(); }, ec);
        if (ec) {
            ctx_->release_timer(std::move(timer_));
            ec_ = ec;
            return false;
        }
        promise_base& p = task_.handle().promise();
        p.own_scope.link(shield_ ? nullptr : parent_scope);
        p.scope = &p.own_scope;
        p.on_done = &child_done;
        p.on_done_ctx = this;
        suspend(h, parent_scope);
        starting_ = true;
        resume(task_.handle());
        starting_ = false;
        if (!task_.done()) return true;
        forget();  // the child finished at once
        return false;
    }
    /// dump_tasks(): "with_timeout 2000 ms" (with_deadline, shielded: the time it was
    /// given), then the task.
    void describe(task_dump& d) const override {
        d.name(what_) << ' ' << d_.count() << " ms";
        if (!task_.done()) d.child(task_.handle().promise());
    }
    T await_resume() {
        deliver(what_);
        if (expired_) throw std::system_error(std::make_error_code(std::errc::timed_out), what_);
        return task_.handle().promise().take();
    }

private:
    void expire() noexcept {
        ctx_->release_timer(std::move(timer_));
        expired_ = true;
        task_.handle().promise().own_scope.request();
    }
    static std::coroutine_handle<> child_done(void* c, promise_base&) noexcept {
        auto* self = static_cast<timeout_awaiter*>(c);
        if (self->timer_) self->ctx_->release_timer(std::move(self->timer_));
        if (self->starting_) return {};
        return self->handoff();
    }
    // The child's scope is linked below the parent's (unless shielded): the
    // parent's cancellation reaches it there.
    void cancel() noexcept override {}

    std::chrono::milliseconds d_;
    task<T> task_;
    co_context* ctx_ = nullptr;
    uvkit::timer timer_;
    bool shield_;
    bool starting_ = false;
    bool expired_ = false;
    const char* what_;
};

/// A task given to with_timeout/with_deadline/shielded stays a task (it can be
/// stored, spawned, run); an operation is awaited in place by the awaiter.
template <class T>
task<T> timeout_task(uvkit::loop& l, std::chrono::milliseconds d, task<T> t, bool shield, const char* what) {
    co_return co_await timeout_awaiter<T>(l, d, std::move(t), shield, what);
}
template <class A>
auto timed(uvkit::loop& l, std::chrono::milliseconds d, A&& a, bool shield, const char* what) {
    if constexpr (is_task<std::remove_cvref_t<A>>) {
        if (!a) throw std::invalid_argument(what);
        return timeout_task(l, d, std::remove_cvref_t<A>(std::forward<A>(a)), shield, what);
    } else {
        auto t = await_in_task(std::forward<A>(a));
        using T = typename decltype(t)::value_type;
        return timeout_awaiter<T>(l, d, std::move(t), shield, what);
    }
}

template <class Rep, class Period>
std::chrono::milliseconds round_up(std::chrono::duration<Rep, Period> d) {
    return std::chrono::ceil<std::chrono::milliseconds>(d);
}

}  // namespace detail

/// Runs a task or an awaitable operation (`c.async_read()`, `uvkit::connect(...)`)
/// with a deadline `d` (any std::chrono::duration, rounded up to milliseconds)
/// from now: on expiry it is cancelled and std::system_error(std::errc::timed_out)
/// is thrown. Given a task, returns a task (to await, run, spawn or store);
/// given an operation, returns an awaiter: await it in the same expression,
/// `co_await uvkit::with_timeout(loop, 5s, c.async_read())` (an operation is a
/// temporary). Throws std::invalid_argument for an empty task.
template <class Rep, class Period, detail::task_or_awaitable A>
auto with_timeout(uvkit::loop& l, std::chrono::duration<Rep, Period> d, A&& a) {
    return detail::timed(l, detail::round_up(d), std::forward<A>(a), false, "uvkit::with_timeout");
}

/// As with_timeout, until the time point `tp`: a loop_clock::time_point is on
/// the loop's clock (`uvkit::loop_clock::now(loop) + 2s`, the time of
/// loop.now()); a time point of any other clock (std::chrono::steady_clock)
/// is converted through that clock's now(). A deadline already past still
/// starts the task, and cancels it at the loop's next timer pass.
template <class Clock, class Dur, detail::task_or_awaitable A>
auto with_deadline(uvkit::loop& l, std::chrono::time_point<Clock, Dur> tp, A&& a) {
    return detail::timed(l, detail::round_up(loop_clock::remaining(l, tp)), std::forward<A>(a), false,
                         "uvkit::with_deadline");
}

/// Runs cleanup that the awaiting task's cancellation does not interrupt (a
/// goodbye message, a flush), bounded by its own timeout `d`: on expiry it is
/// cancelled and std::system_error(std::errc::timed_out) is thrown. The
/// awaiting task stays cancelled: its next operation after the shield
/// completes with errc::canceled. Throws std::invalid_argument for an empty task.
template <class Rep, class Period, detail::task_or_awaitable A>
auto shielded(uvkit::loop& l, std::chrono::duration<Rep, Period> d, A&& a) {
    return detail::timed(l, detail::round_up(d), std::forward<A>(a), true, "uvkit::shielded");
}

}  // namespace uvkit
