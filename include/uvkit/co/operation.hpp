// uvkit/co/operation.hpp: the one base of every awaited operation, and its
// public face, uvkit::operation<Derived, T>, for your own awaitables.
//
// Internal part (detail::operation):
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

#ifdef UVKIT_NO_COROUTINES
#error \
    "uvkit was built without its coroutine layer (-Dcoroutines=false); the callback core never includes uvkit/co/"
#endif

#include <coroutine>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "uvkit/co/context.hpp"
#include "uvkit/co/dump.hpp"

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

    /// dump_tasks(): "operation" unless the operation says more.
    void describe(task_dump& d) const override;

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
    /// The operation waits on other coroutines (a combinator's children) or on
    /// a request whose own completion resumes it: it ends through handoff() or
    /// resume_now(), never through resume_soon().
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

namespace uvkit {

/// Your own awaitable, in the cancel tree like uvkit's: wrap a third-party
/// callback API (a client library, a uv_work_t, a device) so that
/// `co_await my_op{loop, ...}` is cancelled by its task's cancellation,
/// when_any, with_timeout, a task_group, a cancel_token, exactly like a read.
///
///     struct fetch_op : uvkit::operation<fetch_op, std::string> {
///         fetch_op(uvkit::loop& l, legacy_client& c, std::string key)
///             : operation(l), c_(c), key_(std::move(key)) {}
///         ~fetch_op() { if (pending()) c_.cancel(id_); }    // the frame went away
///         void start() {                                   // begin the work
///             id_ = c_.fetch(key_, [this](int err, std::string v) {
///                 if (err) fail(std::error_code(err, my_category()));
///                 else complete(std::move(v));
///             });
///         }
///         void on_cancel() noexcept { c_.cancel(id_); fail(uvkit::errc::canceled); }
///         legacy_client& c_; std::string key_; int id_ = 0;
///     };
///     std::string v = co_await fetch_op{loop, client, "k"};   // throws std::system_error
///     std::error_code ec;
///     std::string w = co_await fetch_op{loop, client, "k", ec}; // or: see the ec constructor
///
/// What Derived supplies:
/// - `void start()`: begins the work. It may complete at once (call complete()
///   or fail() inside start()): the coroutine then goes on without suspending.
///   An exception from start() leaves the co_await.
/// - `void on_cancel() noexcept` (optional): the awaiting task was cancelled.
///   It must make the operation end soon: call fail(errc::canceled) now, or
///   have the third-party API call back later (with any result). Without it,
///   the operation fails with errc::canceled at once and a later completion is
///   ignored.
/// - A destructor that stops the third-party work if pending() is still true:
///   the awaiting frame was destroyed; the callback must then not run into it.
/// - (optional) a public `std::string dump_name() const` (or anything
///   `task_dump << x` takes: a const char*, a std::string_view): what
///   uvkit::dump_tasks() shows while the operation waits ("fetch k");
///   without it, "operation".
///
/// What the base does: a task already cancelled never calls start() (the
/// await completes with errc::canceled); the coroutine is resumed from
/// complete()/fail() when they are called from a callback, and by the loop,
/// soon, when they are called inside on_cancel() (never inside the call that
/// cancelled); an operation completes once: later complete()/fail() calls are
/// ignored. complete() and fail() must be called on the loop's thread (from
/// another thread, loop.post() to it).
///
/// Errors: the result's error is thrown as std::system_error, or stored in the
/// std::error_code& given to the constructor (then the await returns T{} /
/// nothing on error; T must be default-constructible for that form).
template <class Derived, class T = void>
class operation : public detail::operation {
public:
    explicit operation(uvkit::loop& l) noexcept : detail::operation(nullptr, &l) {}
    operation(uvkit::loop& l, std::error_code& ec) noexcept : detail::operation(&ec, &l) {}
    /// For an operation on an object that may be empty: with no loop, the
    /// await completes with UV_EINVAL and start() is never called. `ec` may be null.
    operation(uvkit::loop* l, std::error_code* ec) noexcept : detail::operation(ec, l) {}

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        if (!loop_) {
            ec_ = make_uv_error(UV_EINVAL);
            return false;
        }
        detail::cancel_scope* scope = detail::scope_of(h);
        if (!admit(scope)) return false;
        suspend(h, scope, *loop_);
        state_ = state::starting;
        try {
            static_cast<Derived&>(*this).start();
        } catch (...) {
            if (pending_) forget();
            state_ = state::idle;
            throw;
        }
        if (state_ == state::finished) return false;  // completed inside start()
        state_ = state::waiting;
        return true;
    }
    T await_resume() {
        deliver(what());
        if constexpr (!std::is_void_v<T>) {
            if (!value_) return T{};
            return std::move(*value_);
        }
    }

    /// The loop the operation runs on.
    uvkit::loop& get_loop() const noexcept { return *loop_; }

protected:
    /// True from start() until the operation completed (or was abandoned).
    bool pending() const noexcept { return pending_; }

    /// Completes with a value (operations with a T).
    template <class U = T, class = std::enable_if_t<!std::is_void_v<U>>>
    void complete(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        if (!pending_) return;
        value_.emplace(std::forward<U>(v));
        finish(detail::no_error());
    }
    /// Completes successfully (operations without a T).
    template <class U = T, class = std::enable_if_t<std::is_void_v<U>>>
    void complete() noexcept {
        if (!pending_) return;
        finish(detail::no_error());
    }
    /// Completes with an error (errc::canceled for a cancelled operation).
    void fail(std::error_code ec) noexcept {
        if (!pending_) return;
        finish(ec);
    }
    void fail(uvkit::errc e) noexcept { fail(make_error_code(e)); }

    /// Default cancellation: fail with errc::canceled at once.
    void on_cancel() noexcept { fail(errc::canceled); }
    /// The name in thrown errors ("uvkit::operation").
    const char* what() const noexcept { return "uvkit::operation"; }

    /// dump_tasks(): Derived's dump_name() if it has one, else "operation".
    void describe(detail::task_dump& d) const override {
        if constexpr (requires(const Derived& x, detail::task_dump& w) { w << x.dump_name(); })
            d << static_cast<const Derived&>(*this).dump_name();
        else
            d << "operation";
    }

private:
    enum class state : unsigned char { idle, starting, waiting, finished };

    void finish(std::error_code ec) noexcept {
        if (state_ == state::starting) {  // inside start(): no suspension, no resume
            ec_ = ec;
            forget();
            state_ = state::finished;
            return;
        }
        state_ = state::finished;
        if (in_cancel_) {
            resume_soon(ec);
        } else {
            ec_ = ec;
            resume_now();
        }
    }
    void cancel() noexcept final {
        if (!pending_) return;
        in_cancel_ = true;
        static_cast<Derived&>(*this).on_cancel();
        in_cancel_ = false;
    }

    using stored = std::conditional_t<std::is_void_v<T>, char, T>;
    std::optional<stored> value_;
    state state_ = state::idle;
    bool in_cancel_ = false;
};

}  // namespace uvkit
