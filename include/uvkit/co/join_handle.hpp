// uvkit/co/join_handle.hpp: spawn() and join_handle<T>.
//
// What it is: spawn() starts a task on the loop, outside the structure of the
// caller (it runs until its first suspension before spawn() returns), and
// returns a move-only handle to it:
//
//     auto h = uvkit::spawn(loop, fetch(loop));     // spawn() is [[nodiscard]]
//     int v = co_await h;                           // its value, or its exception
//     h.cancel();  h.done();
//     uvkit::spawn(loop, serve(loop)).detach();     // fire and forget, on purpose
//     uvkit::spawn(loop, serve(loop), stop.token()); // cancelled by a cancel_token
//
// The rule (no fire-and-forget by accident): destroying a handle that was
// not detached cancels its task. The task then stops at its next operation
// (errc::canceled); its frame is freed when it finished. Destroying a
// handle after its task finished just frees the frame.
//
// Exceptions: `co_await h` rethrows the task's exception. An exception that
// nobody awaits (the handle was detached, or dropped unawaited) stops the
// loop and leaves loop.run(), as it always did for spawned tasks; the one
// exception is the errc::canceled of a task that its own handle's destruction
// cancelled, which is expected and dropped.
//
// Cancellation: h.cancel() requests cancellation of the task (on the loop's
// thread; from another thread, start the task under a cancel_token). The
// errc::canceled it then ends with is given to `co_await h`, and is not
// reported elsewhere: not by loop.run(), and a task_group's child cancelled
// by its handle does not fail (nor cancel) its group. If the
// coroutine awaiting `co_await h` is cancelled, the task is cancelled too, and
// the await completes when the task stopped, with what the task gave.
//
// Lifetime: a task still suspended when its loop is destroyed is destroyed
// with it; its handle is then empty (awaiting it throws std::logic_error).
// A handle of a task_group's child does not cancel it when dropped: the group
// owns the child and joins it.
#pragma once

#include <stdexcept>
#include <utility>

#include "uvkit/co/cancel_token.hpp"
#include "uvkit/co/context.hpp"
#include "uvkit/co/operation.hpp"

namespace uvkit {

namespace detail {
/// Registers a started-to-be task frame with `l`'s coroutine context (its
/// list of spawned tasks). Throws std::bad_alloc.
UVKIT_API task_list& adopt_spawned(uvkit::loop& l, std::coroutine_handle<> h, promise_base& p);
/// The end of a finished frame nobody awaits any more: its exception (unless
/// `taken`) goes to `l` (if any), and it leaves `list` and is destroyed.
UVKIT_API void retire(uvkit::loop* l, task_list& list, promise_base& p, bool taken) noexcept;
/// True if `e` is a std::system_error with errc::canceled.
UVKIT_API bool is_canceled(const std::exception_ptr& e) noexcept;
}  // namespace detail

template <class T>
class join_handle;
class task_group;

template <class T>
[[nodiscard]] join_handle<T> spawn(uvkit::loop& l, task<T> t);

/// A handle to a spawned task (or a task_group's child): see the header comment.
template <class T = void>
class join_handle {
public:
    using value_type = T;

    /// An empty handle.
    join_handle() noexcept = default;
    join_handle(join_handle&& o) noexcept
        : p_(std::exchange(o.p_, nullptr)), list_(o.list_), loop_(o.loop_), taken_(o.taken_) {
        if (p_) p_->joiner = &p_;
    }
    join_handle& operator=(join_handle&& o) noexcept {
        if (this != &o) {
            drop();
            p_ = std::exchange(o.p_, nullptr);
            list_ = o.list_;
            loop_ = o.loop_;
            taken_ = o.taken_;
            if (p_) p_->joiner = &p_;
        }
        return *this;
    }
    join_handle(const join_handle&) = delete;
    join_handle& operator=(const join_handle&) = delete;
    /// Cancels the task if it still runs (unless detached; see the header comment).
    ~join_handle() { drop(); }

    /// True while the handle refers to a task (not empty, not detached).
    explicit operator bool() const noexcept { return p_ != nullptr; }
    /// True once the task finished (its value or exception waits in the handle).
    bool done() const noexcept { return p_ && p_->self.done(); }

    /// Requests cancellation of the task (loop thread). No effect once it finished.
    void cancel() noexcept {
        if (!p_ || p_->self.done()) return;
        p_->handle_cancelled = true;
        p_->own_scope.request();
    }

    /// Lets the task run on by itself; the handle becomes empty. Its exception,
    /// if it throws, leaves loop.run() (a task_group's child: join()).
    void detach() noexcept {
        if (!p_) return;
        detail::promise_base* p = std::exchange(p_, nullptr);
        p->joiner = nullptr;
        if (p->self.done()) detail::retire(loop_, *list_, *p, taken_);
    }

    class awaiter;
    /// Waits for the task; gives its value or rethrows its exception. Throws
    /// std::logic_error for an empty handle (or one whose loop destroyed the task).
    awaiter operator co_await() & noexcept { return awaiter{*this}; }
    awaiter operator co_await() && noexcept { return awaiter{*this}; }

private:
    template <class U>
    friend join_handle<U> spawn(uvkit::loop& l, task<U> t);
    friend class task_group;

    join_handle(detail::promise_base& p, detail::task_list& list, uvkit::loop* l) noexcept
        : p_(&p), list_(&list), loop_(l) {
        p.joiner = &p_;
    }

    void drop() noexcept {
        if (!p_) return;
        detail::promise_base* p = std::exchange(p_, nullptr);
        p->joiner = nullptr;
        if (p->self.done()) {
            detail::retire(loop_, *list_, *p, taken_);
        } else if (loop_) {  // a spawned task (a group's child is the group's)
            p->handle_cancelled = true;
            p->own_scope.request();
        }
    }

    detail::promise_base* p_ = nullptr;
    detail::task_list* list_ = nullptr;
    uvkit::loop* loop_ = nullptr;  // null for a task_group's child
    bool taken_ = false;
};

template <class T>
class join_handle<T>::awaiter final : public detail::operation {
public:
    explicit awaiter(join_handle& h) noexcept : operation(nullptr), h_(h) {}
    ~awaiter() override {
        // The awaiting frame goes away first: the task runs on without it.
        if (pending_ && h_.p_) restore(*h_.p_);
    }

    bool await_ready() const noexcept { return !h_.p_ || h_.p_->self.done(); }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
        detail::promise_base& p = *h_.p_;
        saved_on_done_ = std::exchange(p.on_done, &joined);
        saved_ctx_ = std::exchange(p.on_done_ctx, this);
        suspend(h, detail::scope_of(h));
    }
    /// dump_tasks(): "join task", then the task.
    void describe(detail::task_dump& d) const override {
        d << "join task";
        if (h_.p_) d.child(*h_.p_);
    }
    T await_resume() {
        if (!h_.p_) throw std::logic_error("uvkit::join_handle: awaiting an empty handle");
        h_.taken_ = true;
        auto& p = static_cast<detail::task_promise<T>&>(*h_.p_);
        return p.take();
    }

private:
    void restore(detail::promise_base& p) noexcept {
        p.on_done = saved_on_done_;
        p.on_done_ctx = saved_ctx_;
    }
    static std::coroutine_handle<> joined(void* ctx, detail::promise_base& p) noexcept {
        auto* self = static_cast<awaiter*>(ctx);
        self->restore(p);
        // The owner keeps the finished frame for the handle (it has a joiner);
        // what it hands control to (a group's next child) runs first.
        if (std::coroutine_handle<> next = p.on_done(p.on_done_ctx, p)) detail::resume(next);
        return self->handoff();
    }
    void cancel() noexcept override {
        if (h_.p_) h_.p_->own_scope.request();
    }

    join_handle& h_;
    std::coroutine_handle<> (*saved_on_done_)(void*, detail::promise_base&) noexcept = nullptr;
    void* saved_ctx_ = nullptr;
};

/// Starts `t` on `l` (it runs until its first suspension before spawn()
/// returns) and returns its handle. Throws std::invalid_argument for an empty task.
template <class T>
[[nodiscard]] join_handle<T> spawn(uvkit::loop& l, task<T> t) {
    if (!t) throw std::invalid_argument("uvkit::spawn: empty task");
    if (t.done()) throw std::logic_error("uvkit::spawn: the task has already run");
    auto h = t.release();
    detail::task_list& list = detail::adopt_spawned(l, h, h.promise());
    join_handle<T> out(h.promise(), list, &l);
    detail::resume(h);
    return out;
}

/// spawn() under `token`: cancelling the token, from any thread, cancels the task.
template <class T>
[[nodiscard]] join_handle<T> spawn(uvkit::loop& l, task<T> t, cancel_token token) {
    if (!t) throw std::invalid_argument("uvkit::spawn: empty task");
    return spawn(l, detail::under_token(l, std::move(token), std::move(t)));
}

}  // namespace uvkit
