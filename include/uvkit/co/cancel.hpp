// uvkit/co/cancel.hpp: structured cancellation for coroutines.
//
// Every task runs under a cancel scope. A task that awaits another task
// shares its scope; when_all, when_any, task_group and spawn give each child a
// scope of its own, linked below its parent's, so cancelling a parent cancels
// its whole subtree and no child outlives its parent.
//
// Rules:
// - Cancellation is a request. It reaches the one operation the task is
//   suspended on (a sleep stops its timer, a read stops reading, a pending
//   write or connect closes its stream, work calls uv_cancel), and that
//   operation completes with errc::canceled: its awaitable throws
//   std::system_error(errc::canceled), or stores it in the std::error_code&.
// - A cancelled operation never resumes its coroutine from inside the call
//   that requested the cancellation; it is resumed by the loop, soon after.
// - Cancellation is sticky: once a scope is cancelled, every later operation
//   awaited under it completes with errc::canceled at once.
#pragma once

#include <cstddef>

namespace uvkit::detail {

class cancel_scope;
class task_dump;

/// An operation a coroutine is suspended on that can be told to give up.
/// It is registered with at most one scope at a time, and the link is cut
/// from whichever side goes first: a scope that dies (its frame destroyed
/// while an operation it does not own still waits) forgets the operation,
/// and an operation that ends forgets the scope.
class cancellable {
public:
    /// Must make the operation complete soon with errc::canceled, without
    /// resuming the awaiting coroutine from inside this call.
    virtual void cancel() noexcept = 0;
    /// For uvkit::dump_tasks() only (never called otherwise): appends what the
    /// operation waits on ("sleep 250 ms") to `d`, and dumps its child tasks.
    virtual void describe(task_dump& d) const = 0;

    /// Registers with `s` (if any); a scope already cancelled is the caller's to check.
    inline void watch(cancel_scope* s) noexcept;
    /// Cuts the link with the scope, if any.
    inline void unwatch() noexcept;

protected:
    cancellable() noexcept = default;
    cancellable(const cancellable&) = delete;
    cancellable& operator=(const cancellable&) = delete;
    virtual ~cancellable() { unwatch(); }

private:
    friend class cancel_scope;
    cancel_scope* scope_ = nullptr;
};

class cancel_scope {
public:
    cancel_scope() noexcept = default;
    cancel_scope(const cancel_scope&) = delete;
    cancel_scope& operator=(const cancel_scope&) = delete;
    ~cancel_scope() {
        if (op_) op_->scope_ = nullptr;
        unlink();
        // Children still linked (their owner outlives this scope) become roots.
        while (cancel_scope* c = first_child_) c->unlink();
    }

    bool requested() const noexcept { return requested_; }
    /// The operation registered with this scope (the one its task waits on), if any.
    const cancellable* waiting_op() const noexcept { return op_; }

    /// Requests cancellation of this scope and of every scope below it.
    void request() noexcept {
        if (requested_) return;
        requested_ = true;
        if (op_) op_->cancel();
        for (cancel_scope* c = first_child_; c; c = c->next_) c->request();
    }

    /// Links this scope below `parent` (inheriting a pending request).
    void link(cancel_scope* parent) noexcept {
        unlink();
        if (!parent) return;
        parent_ = parent;
        next_ = parent->first_child_;
        if (next_) next_->prev_ = this;
        parent->first_child_ = this;
        if (parent->requested_) request();
    }

    void unlink() noexcept {
        if (!parent_) return;
        if (prev_)
            prev_->next_ = next_;
        else
            parent_->first_child_ = next_;
        if (next_) next_->prev_ = prev_;
        parent_ = prev_ = next_ = nullptr;
    }

    /// Forgets a request (a scope is reused for another child).
    void reset() noexcept {
        requested_ = false;
        if (op_) op_->unwatch();
    }

private:
    friend class cancellable;
    bool requested_ = false;
    cancellable* op_ = nullptr;
    cancel_scope* parent_ = nullptr;
    cancel_scope* first_child_ = nullptr;
    cancel_scope* prev_ = nullptr;
    cancel_scope* next_ = nullptr;
};

inline void cancellable::watch(cancel_scope* s) noexcept {
    unwatch();
    if (!s) return;
    if (s->op_) s->op_->scope_ = nullptr;
    s->op_ = this;
    scope_ = s;
}

inline void cancellable::unwatch() noexcept {
    if (!scope_) return;
    if (scope_->op_ == this) scope_->op_ = nullptr;
    scope_ = nullptr;
}

}  // namespace uvkit::detail
