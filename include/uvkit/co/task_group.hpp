// uvkit/co/task_group.hpp: a dynamic set of child tasks (a nursery).
//
// What it is: for a number of children known only at run time, such as a
// server's connections:
//
//     uvkit::task_group conns{loop};
//     for (;;) conns.spawn(serve(co_await server.async_accept()));
//     ...
//     conns.cancel();            // e.g. on SIGINT
//     co_await conns.join();     // every connection has stopped
//
// spawn() starts a child at once (it runs until its first suspension). A
// child's frame is freed as soon as it finishes. A child that throws cancels
// the whole group, and join() rethrows the first exception once every child
// stopped: catch inside the child to keep one failure from stopping the rest.
//
// Cancellation: cancel() cancels every child (and children spawned later).
// If the coroutine awaiting join() is cancelled, the children are cancelled,
// join() still waits for them, then completes with errc::canceled.
//
// Lifetime: destroying the group destroys the children still running (their
// operations are stopped; nothing runs later on freed memory).
#pragma once

#include "uvkit/co/context.hpp"

namespace uvkit {

class UVKIT_API task_group {
public:
    explicit task_group(uvkit::loop& l) noexcept : loop_(l) {}
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;
    ~task_group() = default;

    /// Starts `t` as a child of the group. Throws std::invalid_argument for an empty task.
    void spawn(task<void> t);

    /// Requests cancellation of every child, present and future.
    void cancel() noexcept { scope_.request(); }

    /// Number of children still running.
    std::size_t size() const noexcept { return children_.size(); }

    /// True once cancel() was called (or the joiner was cancelled).
    bool cancelled() const noexcept { return scope_.requested(); }

    class join_awaiter {
    public:
        join_awaiter(task_group& g, std::error_code* ec) noexcept : g_(g), ec_(ec) {}
        join_awaiter(const join_awaiter&) = delete;
        join_awaiter& operator=(const join_awaiter&) = delete;
        ~join_awaiter() {
            // The joiner was destroyed while suspended: the group, which may
            // live on, must neither resume it nor stay linked to its scope.
            if (h_ && g_.joiner_ == h_) {
                g_.joiner_ = {};
                g_.scope_.unlink();
            }
        }
        bool await_ready() const noexcept { return g_.children_.empty(); }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) noexcept {
            joiner_scope_ = detail::scope_of(h);
            g_.scope_.link(joiner_scope_);
            g_.joiner_ = h;
            h_ = h;
            return true;
        }
        void await_resume();

    private:
        task_group& g_;
        std::error_code* ec_;
        detail::cancel_scope* joiner_scope_ = nullptr;
        std::coroutine_handle<> h_;
    };

    /// Waits until every child finished; see the header comment for errors.
    join_awaiter join() noexcept { return join_awaiter{*this, nullptr}; }
    /// Non-throwing form: a cancelled joiner gets errc::canceled in `ec`; a
    /// child's exception is still rethrown (it is not an error code).
    join_awaiter join(std::error_code& ec) noexcept { return join_awaiter{*this, &ec}; }

private:
    static std::coroutine_handle<> child_done(void* ctx, detail::promise_base& p) noexcept;

    [[maybe_unused]] uvkit::loop& loop_;  // clang: -Wunused-private-field under -Werror
    detail::cancel_scope scope_;
    std::exception_ptr error_;
    std::coroutine_handle<> joiner_;
    detail::task_list children_;  // last: destroyed first, while scope_ is alive
};

}  // namespace uvkit
