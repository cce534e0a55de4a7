// Internal: the coroutine layer's per-loop state.
#pragma once

#include <coroutine>
#include <mutex>
#include <vector>

#include "uvkit/co/task.hpp"
#include "uvkit/idle.hpp"
#include "uvkit/timer.hpp"

namespace uvkit {
class task_group;
}

namespace uvkit::detail {

/// A list of detached task frames (spawned tasks, a task_group's children),
/// linked through their promises. Destroying the list destroys the frames.
class task_list {
public:
    task_list() noexcept = default;
    task_list(const task_list&) = delete;
    task_list& operator=(const task_list&) = delete;
    ~task_list() { destroy_all(); }

    void push(promise_base& p) noexcept {
        p.sibling_prev = nullptr;
        p.sibling_next = head_;
        if (head_)
            head_->sibling_prev = &p;
        else
            tail_ = &p;
        head_ = &p;
        ++size_;
    }
    void erase(promise_base& p) noexcept {
        if (p.sibling_prev)
            p.sibling_prev->sibling_next = p.sibling_next;
        else
            head_ = p.sibling_next;
        if (p.sibling_next)
            p.sibling_next->sibling_prev = p.sibling_prev;
        else
            tail_ = p.sibling_prev;
        p.sibling_prev = p.sibling_next = nullptr;
        --size_;
    }
    template <class F>
    void for_each(F&& f) noexcept {
        for (promise_base* p = head_; p; p = p->sibling_next) f(*p);
    }
    /// Destroys every frame still listed (their awaiters stop their operations).
    void destroy_all() noexcept {
        while (promise_base* p = head_) {
            erase(*p);
            p->self.destroy();
        }
    }
    /// The first pushed of the frames still listed (FIFO order for a queue).
    promise_base* oldest() const noexcept { return tail_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

private:
    promise_base* head_ = nullptr;
    promise_base* tail_ = nullptr;
    std::size_t size_ = 0;
};

class remote_cancel;

/// A coroutine waiting in the loop's ready queue.
struct ready_node {
    std::coroutine_handle<> handle;
    ready_node* prev;  // both set by co_context::schedule, read only while queued
    ready_node* next;
    bool queued = false;
};

class UVKIT_API co_context final : public loop_extension {
public:
    static constexpr std::size_t slot = 0;  // see loop::extension_slots

    explicit co_context(uvkit::loop& l);
    ~co_context() override;

    /// The context of `l`, created on first use.
    static co_context& of(uvkit::loop& l) {
        if (loop_extension* e = l.extension(slot)) return static_cast<co_context&>(*e);
        return create(l);
    }

    /// Resumes `n.handle` from the loop soon (never from inside this call).
    void schedule(ready_node& n) noexcept;
    /// Takes `n` out of the ready queue (its frame is going away).
    void unschedule(ready_node& n) noexcept;

    /// A stopped timer from the pool (no allocation once warm).
    uvkit::timer acquire_timer();
    /// Gives a timer back to the pool (it is stopped).
    void release_timer(uvkit::timer&& t) noexcept;

    /// Spawned tasks.
    task_list& detached() noexcept { return detached_; }

    /// Any thread: `r` fires on the loop's thread soon (through loop.post).
    void queue_remote(remote_cancel& r) noexcept;
    /// Loop thread: `r` goes away; it will not fire.
    void unqueue_remote(remote_cancel& r) noexcept;

    uvkit::loop& get_loop() noexcept { return loop_; }

    // For dump_tasks(), which lists them: the tasks run() drives, and the task_groups.
    /// run() starts driving `p` (linked through p.sibling_next).
    void enter_run(promise_base& p) noexcept;
    /// run() ends with `p` (nothing if it is not listed).
    void leave_run(promise_base& p) noexcept;
    /// A group got its first child (g.dump_ctx_ says it is listed).
    void list_group(task_group& g) noexcept;
    void unlist_group(task_group& g) noexcept;

private:
    friend class task_dump;
    static co_context& create(uvkit::loop& l);
    void run_ready() noexcept;

    uvkit::loop& loop_;
    uvkit::idle resumer_;
    ready_node* head_ = nullptr;
    ready_node* tail_ = nullptr;
    std::vector<uvkit::timer> timers_;
    task_list detached_;
    promise_base* runs_ = nullptr;  // outermost first
    task_group* groups_ = nullptr;  // newest first
    // Cross-thread cancellations waiting for the loop's thread (queue_remote).
    void run_remote() noexcept;
    std::mutex remote_mutex_;
    remote_cancel* remote_head_ = nullptr;
    bool remote_posted_ = false;
};

}  // namespace uvkit::detail
