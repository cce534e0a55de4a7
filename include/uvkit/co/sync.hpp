// uvkit/co/sync.hpp: async_mutex and event, between tasks of one loop.
//
// What it is: coroutine-aware synchronisation for tasks on the same loop (no
// threads: call everything on the loop's thread).
//
//     uvkit::async_mutex m{loop};
//     {
//         auto lock = co_await m.lock();      // waits while another task holds it
//         co_await c.async_write(...);        // nobody else writes meanwhile
//     }                                       // unlocked: the next waiter gets it
//
//     uvkit::event ready{loop};
//     co_await ready.wait();                  // until someone calls ready.set()
//
// Rules:
// - Waiters are served in the order they started waiting (FIFO): an unlock
//   hands the mutex to the first waiter, which cannot be overtaken.
// - A waiter is resumed by the loop, soon, never inside the call (unlock(),
//   set()) that woke it.
// - Cancellation: a waiting lock() or wait() completes with errc::canceled
//   (std::system_error, or the std::error_code& form). A lock that was handed
//   to a waiter before its cancellation arrived is kept: the await succeeds
//   and the guard owns the mutex (nothing is lost, nothing is reported as
//   cancelled that was not).
//
// Lifetime: the mutex or event must outlive its waiters; destroying one with
// waiters completes them with errc::canceled, soon.
#pragma once

#include <system_error>
#include <utility>

#include "uvkit/co/operation.hpp"

namespace uvkit {

namespace detail {

/// An operation waiting in a FIFO list of a mutex, an event or a channel.
class list_waiter : public operation {
public:
    using operation::operation;

    /// Ends the wait with `ec`: resumed by the loop, soon.
    void wake(std::error_code ec) noexcept { resume_soon(ec); }
    bool waiting() const noexcept { return pending_; }

    list_waiter* next = nullptr;
    list_waiter* prev = nullptr;
    bool listed = false;
};

class waiter_list {
public:
    void push(list_waiter& w) noexcept {
        w.prev = tail_;
        w.next = nullptr;
        if (tail_)
            tail_->next = &w;
        else
            head_ = &w;
        tail_ = &w;
        w.listed = true;
    }
    void erase(list_waiter& w) noexcept {
        if (!w.listed) return;
        if (w.prev)
            w.prev->next = w.next;
        else
            head_ = w.next;
        if (w.next)
            w.next->prev = w.prev;
        else
            tail_ = w.prev;
        w.next = w.prev = nullptr;
        w.listed = false;
    }
    list_waiter* pop() noexcept {
        list_waiter* w = head_;
        if (w) erase(*w);
        return w;
    }
    list_waiter* front() const noexcept { return head_; }
    bool empty() const noexcept { return head_ == nullptr; }

private:
    list_waiter* head_ = nullptr;
    list_waiter* tail_ = nullptr;
};

}  // namespace detail

class UVKIT_API async_mutex {
public:
    explicit async_mutex(uvkit::loop& l) noexcept : loop_(l) {}
    async_mutex(const async_mutex&) = delete;
    async_mutex& operator=(const async_mutex&) = delete;
    /// Waiters still waiting complete with errc::canceled.
    ~async_mutex();

    /// Owns the mutex until destroyed (or unlock()); move-only.
    class guard {
    public:
        guard() noexcept = default;
        explicit guard(async_mutex& m) noexcept : m_(&m) {}
        guard(guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
        guard& operator=(guard&& o) noexcept {
            if (this != &o) {
                unlock();
                m_ = std::exchange(o.m_, nullptr);
            }
            return *this;
        }
        ~guard() { unlock(); }
        /// Releases the mutex now.
        void unlock() noexcept {
            if (m_) std::exchange(m_, nullptr)->unlock();
        }
        explicit operator bool() const noexcept { return m_ != nullptr; }

    private:
        async_mutex* m_ = nullptr;
    };

    class UVKIT_API lock_awaiter final : public detail::list_waiter {
    public:
        lock_awaiter(async_mutex& m, std::error_code* ec) noexcept : list_waiter(ec, &m.loop_), m_(&m) {}
        ~lock_awaiter() override;
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            return start(h, detail::scope_of(h));
        }
        /// The guard; an empty one if the non-throwing form stored an error.
        guard await_resume();
        /// dump_tasks(): "mutex lock".
        void describe(detail::task_dump& d) const override { d << "mutex lock"; }

    private:
        friend class async_mutex;
        bool start(std::coroutine_handle<> h, detail::cancel_scope* scope);
        void cancel() noexcept override;
        async_mutex* m_;
        bool owner_ = false;  // the mutex was handed to this waiter
    };

    /// Waits until the mutex is free and takes it. Throws std::system_error
    /// (errc::canceled) if cancelled while waiting.
    lock_awaiter lock() noexcept { return lock_awaiter{*this, nullptr}; }
    /// Non-throwing form: errc::canceled in `ec` and an empty guard.
    lock_awaiter lock(std::error_code& ec) noexcept { return lock_awaiter{*this, &ec}; }
    /// Takes the mutex if it is free (no waiter overtaken): a guard that owns it, or an empty one.
    guard try_lock() noexcept {
        if (locked_ || !waiters_.empty()) return {};
        locked_ = true;
        return guard{*this};
    }
    /// True while some task holds it.
    bool locked() const noexcept { return locked_; }

private:
    void unlock() noexcept;
    uvkit::loop& loop_;
    bool locked_ = false;
    detail::waiter_list waiters_;
};

class UVKIT_API event {
public:
    explicit event(uvkit::loop& l) noexcept : loop_(l) {}
    event(const event&) = delete;
    event& operator=(const event&) = delete;
    /// Waiters still waiting complete with errc::canceled.
    ~event();

    /// Sets the event: every waiter completes (soon), and wait() completes at once until reset().
    void set() noexcept;
    /// Clears it: later wait()s wait for the next set().
    void reset() noexcept { set_ = false; }
    bool is_set() const noexcept { return set_; }

    class UVKIT_API wait_awaiter final : public detail::list_waiter {
    public:
        wait_awaiter(event& e, std::error_code* ec) noexcept : list_waiter(ec, &e.loop_), e_(&e) {}
        ~wait_awaiter() override;
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            return start(h, detail::scope_of(h));
        }
        void await_resume() { deliver("uvkit::event::wait"); }
        /// dump_tasks(): "event wait".
        void describe(detail::task_dump& d) const override { d << "event wait"; }

    private:
        friend class event;
        bool start(std::coroutine_handle<> h, detail::cancel_scope* scope);
        void cancel() noexcept override;
        event* e_;
    };

    /// Waits until the event is set (completes at once if it is). Throws
    /// std::system_error (errc::canceled) if cancelled while waiting.
    wait_awaiter wait() noexcept { return wait_awaiter{*this, nullptr}; }
    /// Non-throwing form.
    wait_awaiter wait(std::error_code& ec) noexcept { return wait_awaiter{*this, &ec}; }

private:
    uvkit::loop& loop_;
    bool set_ = false;
    detail::waiter_list waiters_;
};

}  // namespace uvkit
