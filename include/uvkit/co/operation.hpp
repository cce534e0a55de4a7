// Internal: the one base of every awaited operation.
//
// An operation (a read, a write, an accept, a sleep, a process exit, a udp
// receive or send, a thread-pool request) supplies how it starts and what it
// returns; this base owns the rest, the same way for all of them:
// - admit(): a scope already cancelled completes the operation with
//   errc::canceled at once (cancellation is sticky);
// - suspend(): the coroutine waits, registered with its cancel scope;
// - resume_now(): the result came from a libuv callback: resume at once;
// - resume_soon(): it ended inside some other call (a cancel, a close): the
//   loop resumes it soon, never the call that ended it;
// - forget(): the frame is destroyed while the operation waits: no
//   resumption, no scope link, out of the loop's ready queue;
// - deliver(): the result's error goes into the caller's std::error_code, or
//   is thrown as std::system_error.
// Operations refer to their handle's state block, never to the C++ handle
// object, so moving or destroying the handle under a pending operation is safe.
#pragma once

#include <coroutine>
#include <system_error>

#include "uvkit/co/context.hpp"

namespace uvkit::detail {

/// Delivers the result of an awaited operation: stores it in the caller's
/// error_code, or throws it.
inline void deliver(const std::error_code& ec, std::error_code* out, const char* what) {
    if (out)
        *out = ec;
    else if (ec)
        throw std::system_error(ec, what);
}

class UVKIT_API operation : public cancellable {
public:
    operation(const operation&) = delete;
    operation& operator=(const operation&) = delete;

    bool await_ready() const noexcept { return false; }

protected:
    explicit operation(std::error_code* ec_out, uvkit::loop* l = nullptr) noexcept
        : ec_out_(ec_out), loop_(l) {}
    ~operation() override {
        if (node_.queued) [[unlikely]]
            unschedule();
    }

    /// False, with errc::canceled as the result, if `scope` was cancelled: then do not start.
    bool admit(cancel_scope* scope) noexcept {
        if (scope && scope->requested()) [[unlikely]] {
            ec_ = make_error_code(errc::canceled);
            return false;
        }
        return true;
    }
    /// The operation started on `l`: the coroutine `h` waits for its end. Makes
    /// the loop's coroutine context (resume_soon() needs it): std::bad_alloc.
    void suspend(std::coroutine_handle<> h, cancel_scope* scope, uvkit::loop& l) {
        co_context::of(l);
        node_.handle = h;
        loop_ = &l;
        pending_ = true;
        watch(scope);
    }
    /// The operation waits on other coroutines (a combinator's children), not
    /// on the loop: it ends through handoff(), never through resume_soon().
    void suspend(std::coroutine_handle<> h, cancel_scope* scope) noexcept {
        node_.handle = h;
        pending_ = true;
        watch(scope);
    }
    /// The operation ended where control passes by transfer (a child's
    /// final_suspend): returns the coroutine to hand control to.
    std::coroutine_handle<> handoff() noexcept {
        pending_ = false;
        unwatch();
        return node_.handle;
    }
    /// The operation ended in a libuv callback: resumes the coroutine now.
    void resume_now() noexcept {
        pending_ = false;
        unwatch();
        resume(node_.handle);
    }
    /// The operation ends with `e` inside another call: resumed by the loop, soon.
    void resume_soon(std::error_code e) noexcept;
    /// The frame goes away while the operation waits (see the destructor for the queue).
    void forget() noexcept {
        pending_ = false;
        unwatch();
    }
    void deliver(const char* what) const { detail::deliver(ec_, ec_out_, what); }

    std::error_code* ec_out_;
    std::error_code ec_ = no_error();
    uvkit::loop* loop_;
    ready_node node_;
    bool pending_ = false;

private:
    void unschedule() noexcept;
};

}  // namespace uvkit::detail
