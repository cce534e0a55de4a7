// uvkit/work.hpp: running a function on libuv's thread pool (uv_queue_work).
//
// What it is: `uvkit::work(loop, fn, done)` runs `fn()` on one of libuv's
// pool threads (4 by default, UV_THREADPOOL_SIZE) and then calls
// `done(ec, result)` on the loop thread. Use it for blocking or CPU-heavy
// calls that must not stall the loop:
//
//     auto req = uvkit::work(loop, [] { return checksum(file); },
//                            [&](std::error_code ec, uvkit::work_result<std::uint32_t> r) {
//                                if (ec) return;                 // errc::canceled
//                                std::uint32_t sum = r.value();  // rethrows what fn threw
//                            });
//
// Result: `done` gets a std::error_code (empty, or errc::canceled) and a
// `uvkit::work_result<T>` for T = what fn returns (void allowed). The result
// holds exactly one of: fn's value, the exception fn threw, or the error.
// `value()` returns the value, rethrows fn's exception, or throws
// std::system_error for the error. fn and its result may be move-only; fn is
// invoked once, as an rvalue, on a pool thread: it must not touch loop-thread
// state without its own synchronisation (uvkit handles are not thread-safe;
// loop::post is).
//
// Requests (work_request, and resolve_request in uvkit/dns.hpp): the call
// returns a move-only request object; the function is [[nodiscard]].
// - `done` is called exactly once, on the loop thread, unless starting failed
//   (then the call throws std::system_error, or the std::error_code& form
//   stores the error, and `done` never runs).
// - cancel() (uv_cancel) succeeds only while the request waits in the pool's
//   queue: `done` then gets errc::canceled (soon, from the loop; never from
//   inside cancel()). Once a pool thread runs it, cancel() returns false
//   (libuv says UV_EBUSY) and the request completes normally.
// - Destroying (or assigning over) a pending request object cancels it if it
//   can, as cancel() does; `done` still runs exactly once, with errc::canceled
//   or with the result. `done` owns what it captured, so nothing freed is
//   touched. To let a request run on without keeping its object, detach() it.
// - Pending requests keep loop::run() going, like any libuv request.
// - Destroying the loop cancels its pending requests and waits (running the
//   loop) until the ones already on a pool thread finished; their handlers
//   run then. A `fn` that waits for the loop thread would deadlock there.
//
// Errors: done's handler exception stops the loop and leaves loop::run(), as
// for every uvkit handler.
#pragma once

#include <uv.h>

#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "uvkit/error.hpp"
#include "uvkit/export.hpp"
#include "uvkit/loop.hpp"

namespace uvkit {

namespace detail {

/// The heap block behind a thread-pool request (work, getaddrinfo,
/// getnameinfo). libuv owns its request until the completion callback, so the
/// block frees itself there, whether or not its C++ request object still exists.
struct UVKIT_API pool_op {
    explicit pool_op(uvkit::loop& l) noexcept : owner(&l) {}
    virtual ~pool_op() = default;
    pool_op(const pool_op&) = delete;
    pool_op& operator=(const pool_op&) = delete;

    /// Delivers the outcome to the handler (loop thread). May throw (the user's handler).
    virtual void complete(int status) = 0;

    /// uv_cancel; true if libuv took the request back (it completes with UV_ECANCELED).
    bool cancel() noexcept;

    /// Makes `l`'s registry of requests (a loop extension) if it has none; false if out of memory.
    static bool ready(uvkit::loop& l) noexcept { return l.extension(registry_slot) || make_registry(l); }
    static constexpr std::size_t registry_slot = 1;  // see loop::extension_slots
    static bool make_registry(uvkit::loop& l) noexcept;
    /// Links a started request into its loop's registry (ready() made it).
    void started(uv_req_t* r) noexcept;
    /// The completion trampoline's body: unlinks, empties the request object,
    /// calls complete() unless silenced, and frees the block.
    static void finish(pool_op* op, int status) noexcept;
    /// finish()'s first half, for completions that deliver on their own: takes
    /// the completed request out of its loop's registry and empties its request
    /// object (before the handler runs, so that the handler may destroy or reuse it).
    void unlink() noexcept {
        if (prev)
            prev->next = next;
        else
            *list = next;
        if (next) next->prev = prev;
        prev = next = nullptr;
        if (slot) *slot = nullptr;
        slot = nullptr;
    }
    /// Used by ~loop (the registry's shutdown): cancels every pending request
    /// (those in the registry, and those that blocks on the loop's list of
    /// closed handles keep themselves: handle_state::cancel_requests) and runs
    /// the loop until all completed.
    static void finish_all(uvkit::loop& l) noexcept;

    uvkit::loop* owner;
    uv_req_t* req = nullptr;
    pool_op** slot = nullptr;  // the request object's (or awaiter's) pointer to this block
    pool_op** list = nullptr;  // the head of the registry's list (started() sets it)
    pool_op* prev = nullptr;
    pool_op* next = nullptr;
    bool canceled = false;
    bool silenced = false;  // an awaiter whose frame is gone: complete() must not run
};

/// The pool_op of uv_queue_work: runs `execute()` on a pool thread.
struct UVKIT_API work_op_base : pool_op {
    using pool_op::pool_op;
    virtual void execute() noexcept = 0;
    uv_work_t work{};
};

/// Queues `op` (uv_queue_work). On failure `ec` is set and the caller still owns `op`.
UVKIT_API void queue_work(work_op_base* op, std::error_code& ec) noexcept;

/// What request objects share: a pointer to the block, kept up to date on moves.
class UVKIT_API pool_request {
public:
    pool_request() noexcept = default;
    pool_request(const pool_request&) = delete;
    pool_request& operator=(const pool_request&) = delete;
    pool_request(pool_request&& o) noexcept : op_(std::exchange(o.op_, nullptr)) {
        if (op_) op_->slot = &op_;
    }
    pool_request& operator=(pool_request&& o) noexcept {
        if (this != &o) {
            abandon();
            op_ = std::exchange(o.op_, nullptr);
            if (op_) op_->slot = &op_;
        }
        return *this;
    }
    ~pool_request() { abandon(); }

    /// Cancels the request if it has not started running (uv_cancel). Returns
    /// true if it was (or already had been) cancelled: the handler will get
    /// errc::canceled. False if a pool thread already runs it (UV_EBUSY), if it
    /// completed, or for an empty object.
    bool cancel() noexcept { return op_ && op_->cancel(); }

    /// True until the handler has been called (or the object was detached, moved from).
    bool pending() const noexcept { return op_ != nullptr; }
    explicit operator bool() const noexcept { return pending(); }

    /// Lets the request complete on its own: the object becomes empty and its
    /// destruction no longer cancels anything.
    void detach() noexcept {
        if (op_) op_->slot = nullptr;
        op_ = nullptr;
    }

    /// The libuv request (uv_work_t, uv_getaddrinfo_t, ...), or nullptr when not pending.
    uv_req_t* raw_req() const noexcept { return op_ ? op_->req : nullptr; }

    /// Internal: gives the block up without cancelling it (the coroutine layer adopts it).
    pool_op* release_op() noexcept {
        if (op_) op_->slot = nullptr;
        return std::exchange(op_, nullptr);
    }

protected:
    explicit pool_request(pool_op* op) noexcept : op_(op) {
        if (op_) op_->slot = &op_;
    }

private:
    void abandon() noexcept {
        if (!op_) return;
        pool_op* op = std::exchange(op_, nullptr);
        op->slot = nullptr;
        op->cancel();
    }

    pool_op* op_ = nullptr;
};

}  // namespace detail

/// The outcome of a work function: its value, its exception, or an error
/// (errc::canceled). Move-only if T is.
template <class T>
class work_result {
public:
    /// An empty result: error() is empty, has_value() false.
    work_result() noexcept = default;
    /// A result holding an error (errc::canceled).
    explicit work_result(std::error_code ec) noexcept : ec_(ec) {}

    /// True if fn returned normally.
    bool has_value() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return has_value(); }
    /// What fn threw, or nullptr.
    std::exception_ptr exception() const noexcept { return ex_; }
    /// errc::canceled if fn never ran; otherwise empty.
    std::error_code error() const noexcept { return ec_; }

    /// fn's value; rethrows fn's exception; throws std::system_error for an error.
    T& value() & {
        check();
        return *value_;
    }
    const T& value() const& {
        check();
        return *value_;
    }
    T&& value() && {
        check();
        return std::move(*value_);
    }

    /// Internal: filled on the pool thread.
    template <class F>
    void run(F&& f) noexcept {
        try {
            value_.emplace(std::invoke(std::forward<F>(f)));
        } catch (...) {
            ex_ = std::current_exception();
        }
    }
    /// Internal: the request failed (errc::canceled); fn never ran.
    void set_error(std::error_code ec) noexcept {
        value_.reset();
        ex_ = nullptr;
        ec_ = ec;
    }

private:
    void check() const {
        if (ex_) std::rethrow_exception(ex_);
        if (!value_)
            throw std::system_error(ec_ ? ec_ : make_uv_error(UV_EINVAL), "uvkit::work_result::value");
    }

    // Not a std::variant: GCC 12 reports a false maybe-uninitialized on
    // variants holding an exception_ptr.
    std::optional<T> value_;
    std::exception_ptr ex_;
    std::error_code ec_ = detail::no_error();
};

/// The result of a work function returning void: completion, exception or error.
template <>
class work_result<void> {
public:
    work_result() noexcept = default;
    explicit work_result(std::error_code ec) noexcept : ec_(ec) {}

    bool has_value() const noexcept { return done_; }
    explicit operator bool() const noexcept { return has_value(); }
    std::exception_ptr exception() const noexcept { return ex_; }
    std::error_code error() const noexcept { return ec_; }

    /// Returns if fn returned; rethrows fn's exception; throws std::system_error for an error.
    void value() const {
        if (ex_) std::rethrow_exception(ex_);
        if (!done_)
            throw std::system_error(ec_ ? ec_ : make_uv_error(UV_EINVAL), "uvkit::work_result::value");
    }

    template <class F>
    void run(F&& f) noexcept {
        try {
            std::invoke(std::forward<F>(f));
            done_ = true;
        } catch (...) {
            ex_ = std::current_exception();
        }
    }
    void set_error(std::error_code ec) noexcept {
        done_ = false;
        ex_ = nullptr;
        ec_ = ec;
    }

private:
    bool done_ = false;
    std::exception_ptr ex_;
    std::error_code ec_ = detail::no_error();
};

/// The type work() delivers for a function object of type F.
template <class F>
using work_result_t = std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>&&>>;

/// A queued or running work() call; see the header comment for the rules.
class work_request : public detail::pool_request {
public:
    work_request() noexcept = default;
    /// Internal: adopts a started request block.
    explicit work_request(detail::pool_op* op) noexcept : pool_request(op) {}
};

namespace detail {

template <class F, class D>
struct work_op final : work_op_base {
    using T = work_result_t<F>;
    template <class FF, class DD>
    work_op(uvkit::loop& l, FF&& f, DD&& d)
        : work_op_base(l), fn(std::forward<FF>(f)), done(std::forward<DD>(d)) {}

    void execute() noexcept override { result.run(std::move(fn)); }
    void complete(int status) override {
        std::error_code ec;
        if (status < 0) {
            ec = make_uv_error(status);
            result.set_error(ec);  // not an assignment: GCC 12 warns (maybe-uninitialized) on one
        }
        std::invoke(done, ec, std::move(result));
    }

    F fn;
    D done;
    work_result<T> result;
};

}  // namespace detail

/// Runs `fn()` on libuv's thread pool, then `done(std::error_code, work_result<T>)`
/// on the loop thread, exactly once (uv_queue_work). Non-throwing form: a
/// failed start stores the error in `ec`, returns an empty request and never
/// calls `done`.
template <class F, class D>
[[nodiscard]] work_request work(uvkit::loop& l, F&& fn, D&& done, std::error_code& ec) noexcept {
    using T = work_result_t<F>;
    static_assert(std::is_invocable_v<std::decay_t<D>&, std::error_code, work_result<T>>,
                  "uvkit::work: done must be callable as done(std::error_code, uvkit::work_result<T>)");
    using op_t = detail::work_op<std::decay_t<F>, std::decay_t<D>>;
    op_t* op = nullptr;
    try {
        op = new op_t(l, std::forward<F>(fn), std::forward<D>(done));
    } catch (...) {
        // Allocation is what fails here; callables whose move throws otherwise are reported alike.
        ec = make_uv_error(UV_ENOMEM);
        return {};
    }
    detail::queue_work(op, ec);
    if (ec) {
        delete op;
        return {};
    }
    return work_request(op);
}

/// Throwing form: a failed start throws std::system_error and `done` never runs.
template <class F, class D>
[[nodiscard]] work_request work(uvkit::loop& l, F&& fn, D&& done) {
    return detail::throwing("uv_queue_work", [&](std::error_code& ec) {
        return work(l, std::forward<F>(fn), std::forward<D>(done), ec);
    });
}

}  // namespace uvkit
