// uvkit/co/task_group.hpp: a dynamic set of child tasks (a nursery), optionally bounded.
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
// spawn() starts a child at once (it runs until its first suspension) and
// returns its join_handle: `co_await h` waits for that child alone, and
// h.cancel() cancels it alone. Dropping the handle leaves the child to the
// group (the group owns and joins it; it is not cancelled). A child's frame
// is freed as soon as it finished (or, if its handle still exists, when the
// handle goes). A child that throws cancels the whole group, and join()
// rethrows the first exception once every child stopped: catch inside the
// child to keep one failure from stopping the rest.
//
// Bounded: `task_group g{loop, n}` never runs more than n children at once.
// A spawn() beyond n queues the child, which starts when a running one ends
// (in spawn order); `co_await g.async_spawn(t)` instead waits for a free slot
// before it starts `t`, which makes an accept loop stop accepting while the
// group is full:
//
//     uvkit::task_group conns{loop, 100};
//     for (;;) {
//         auto c = co_await server.async_accept();
//         co_await conns.async_spawn(serve(std::move(c)));   // waits while 100 run
//     }
//
// Cancellation: cancel() cancels every child (and children spawned later,
// queued ones included: they start and see it at their first operation). A
// cancelled async_spawn() starts nothing and throws errc::canceled. If the
// coroutine awaiting join() is cancelled, the children are cancelled, join()
// still waits for them, then completes with errc::canceled.
//
// Lifetime: destroying the group destroys the children still running or
// queued (their operations are stopped; nothing runs later on freed memory);
// an async_spawn() still waiting completes with errc::canceled, soon.
#pragma once

#include <cstddef>
#include <stdexcept>

#include "uvkit/co/context.hpp"
#include "uvkit/co/join_handle.hpp"
#include "uvkit/co/operation.hpp"

namespace uvkit {

class UVKIT_API task_group {
public:
    /// An unbounded group.
    explicit task_group(uvkit::loop& l) noexcept : loop_(l) {}
    /// A group that runs at most `max_concurrent` children at once. Throws
    /// std::invalid_argument for 0.
    task_group(uvkit::loop& l, std::size_t max_concurrent) : loop_(l), max_(max_concurrent) {
        if (max_concurrent == 0) throw std::invalid_argument("uvkit::task_group: max_concurrent is 0");
    }
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;
    ~task_group();

    /// Starts `t` as a child of the group (or queues it while the group is
    /// full) and returns its handle. Throws std::invalid_argument for an empty task.
    template <class T>
    join_handle<T> spawn(task<T> t) {
        if (!t) throw std::invalid_argument("uvkit::task_group::spawn: empty task");
        auto h = t.release();
        join_handle<T> out(h.promise(), finished_, nullptr);
        admit(h, h.promise());
        return out;
    }

    template <class T>
    class spawn_awaiter;
    /// Waits for a free slot, then starts `t`; gives its handle. Throws
    /// std::invalid_argument for an empty task, std::system_error
    /// (errc::canceled) if the awaiting task is cancelled while it waits (then
    /// `t` never starts).
    template <class T>
    spawn_awaiter<T> async_spawn(task<T> t) {
        if (!t) throw std::invalid_argument("uvkit::task_group::async_spawn: empty task");
        return spawn_awaiter<T>(*this, std::move(t));
    }

    /// Requests cancellation of every child, present and future.
    void cancel() noexcept { scope_.request(); }

    /// Number of children running (started, not finished).
    std::size_t size() const noexcept { return children_.size(); }
    /// Number of children spawned but not started yet (a bounded group that is full).
    std::size_t queued() const noexcept { return queued_.size(); }
    /// The bound on running children (0: unbounded).
    std::size_t max_concurrent() const noexcept { return max_; }

    /// True once cancel() was called (or the joiner was cancelled).
    bool cancelled() const noexcept { return scope_.requested(); }

    class UVKIT_API join_awaiter final : public detail::operation {
    public:
        join_awaiter(task_group& g, std::error_code* ec) noexcept : operation(ec), g_(g) {}
        ~join_awaiter() override;
        bool await_ready() const noexcept { return g_.children_.empty() && g_.queued_.empty(); }
        template <class P>
        void await_suspend(std::coroutine_handle<P> h) noexcept {
            joiner_scope_ = detail::scope_of(h);
            g_.scope_.link(joiner_scope_);
            g_.joiner_ = this;
            suspend(h, joiner_scope_);
        }
        void await_resume();
        /// dump_tasks(): "join N children", then the children.
        void describe(detail::task_dump& d) const override;

    private:
        friend class task_group;
        // The group's scope is linked below the joiner's: the request reaches the children there.
        void cancel() noexcept override {}
        task_group& g_;
        detail::cancel_scope* joiner_scope_ = nullptr;
    };

    /// Waits until every child finished; see the header comment for errors.
    join_awaiter join() noexcept { return join_awaiter{*this, nullptr}; }
    /// Non-throwing form: a cancelled joiner gets errc::canceled in `ec`; a
    /// child's exception is still rethrown (it is not an error code).
    join_awaiter join(std::error_code& ec) noexcept { return join_awaiter{*this, &ec}; }

private:
    class slot_waiter : public detail::operation {
    public:
        slot_waiter(task_group& g) noexcept : operation(nullptr, &g.loop_), g_(&g) {}
        /// The group hands this waiter a slot: its task starts now.
        virtual std::coroutine_handle<> grant() noexcept = 0;
        void granted() noexcept { resume_soon(detail::no_error()); }
        /// dump_tasks(): "wait for a slot in task_group".
        void describe(detail::task_dump& d) const override { d << "wait for a slot in task_group"; }
        void orphan() noexcept {
            g_ = nullptr;
            resume_soon(make_error_code(errc::canceled));
        }

    protected:
        task_group* g_;
        slot_waiter* next_ = nullptr;
        slot_waiter* prev_ = nullptr;
        void unlist() noexcept;
        void list(std::coroutine_handle<> h, detail::cancel_scope* scope);
        friend class task_group;
    };

    template <class T>
    join_handle<T> handle_for(detail::promise_base& p) noexcept {
        return join_handle<T>(p, finished_, nullptr);
    }
    bool has_slot() const noexcept {
        return (max_ == 0 || children_.size() < max_) && queued_.empty() && !waiters_head_;
    }
    /// Starts or queues `h`.
    void admit(std::coroutine_handle<> h, detail::promise_base& p);
    /// Makes `p` a running child and returns what to resume to start it.
    std::coroutine_handle<> enlist(std::coroutine_handle<> h, detail::promise_base& p) noexcept;
    static std::coroutine_handle<> child_done(void* ctx, detail::promise_base& p) noexcept;

    friend class detail::task_dump;
    friend class detail::co_context;

    uvkit::loop& loop_;
    std::size_t max_ = 0;
    // Listed with the loop's coroutine context (for dump_tasks) from the first spawn on.
    detail::co_context* dump_ctx_ = nullptr;
    task_group* dump_prev_ = nullptr;
    task_group* dump_next_ = nullptr;
    detail::cancel_scope scope_;
    std::exception_ptr error_;
    join_awaiter* joiner_ = nullptr;
    slot_waiter* waiters_head_ = nullptr;
    slot_waiter* waiters_tail_ = nullptr;
    detail::task_list finished_;  // done, kept for their join handles
    detail::task_list queued_;    // not started (a bounded group that is full)
    detail::task_list children_;  // last: destroyed first, while scope_ is alive
};

template <class T>
class task_group::spawn_awaiter final : public task_group::slot_waiter {
public:
    spawn_awaiter(task_group& g, task<T> t) noexcept : slot_waiter(g), t_(std::move(t)) {}
    ~spawn_awaiter() override {
        if (hp_) {  // granted, never resumed: the group keeps the child, or frees it if done
            hp_->joiner = nullptr;
            if (hp_->self.done() && g_) detail::retire(nullptr, g_->finished_, *hp_, true);
        }
        if (pending_) {
            unlist();
            forget();
        }
    }

    bool await_ready() const noexcept { return g_->has_slot(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        detail::cancel_scope* scope = detail::scope_of(h);
        if (!admit(scope)) return false;
        list(h, scope);
        return true;
    }
    join_handle<T> await_resume() {
        deliver("uvkit::task_group::async_spawn");
        if (t_) return g_->spawn(std::move(t_));  // a free slot at once
        if (!hp_) throw std::system_error(make_error_code(errc::canceled), "uvkit::task_group::async_spawn");
        detail::promise_base* p = std::exchange(hp_, nullptr);
        return g_->handle_for<T>(*p);
    }

private:
    std::coroutine_handle<> grant() noexcept override {
        auto h = t_.release();
        hp_ = &h.promise();
        hp_->joiner = &hp_;  // finishing before this resumes keeps the frame for the handle
        return g_->enlist(h, h.promise());
    }
    void cancel() noexcept override {
        if (!pending_) return;
        unlist();
        resume_soon(make_error_code(errc::canceled));
    }

    task<T> t_;
    detail::promise_base* hp_ = nullptr;
};

}  // namespace uvkit
