// uvkit/handle.hpp: what every uvkit handle shares.
//
// What it is: `uvkit::handle` is the base of timer, idle, tcp and the other
// handle classes. It owns a heap *state block* that holds the uv_*_t and the
// handlers, because libuv forbids moving a handle in memory and freeing it
// before its close callback ran. Moving a uvkit handle moves a pointer.
//
// Lifetime: handles are move-only. A moved-from handle is empty: its
// operations fail with UV_EINVAL (thrown as std::system_error, or stored in
// the std::error_code& argument), never crash; so do operations on a closed
// handle or on a handle whose loop was destroyed. The destructor closes the
// handle (uv_close); the state block is freed once the close callback ran and
// the C++ object is gone, whichever comes last. So destroying, moving or
// closing a handle from inside its own handler is safe.
//
// Functions: active, closing, ref, unref, has_ref, close, raw, get_loop.
#pragma once

#include <uv.h>

#include <string_view>
#include <system_error>
#include <utility>

#include "uvkit/detail/function.hpp"
#include "uvkit/error.hpp"
#include "uvkit/export.hpp"
#include "uvkit/loop.hpp"

namespace uvkit {

namespace detail {

/// The one hook through which a layer above the callback core (the coroutine
/// layer) consumes a handle's events itself, with no handler in between: a
/// waiting operation, or that layer's per-handle state. At most one per handle;
/// the core knows nothing of what it is, it only tells it these four things.
struct handle_consumer {
    /// The handle starts closing, or its events stop (read_stop, recv_stop):
    /// what waits ends with errc::canceled, and the consumer stops consuming.
    virtual void stop() noexcept = 0;
    /// A handler is about to take the handle's events over (read_start,
    /// recv_start): true once the consumer let go of them; false if it cannot
    /// without losing something (an operation waits, bytes are kept unread).
    virtual bool yield() noexcept { return true; }
    /// What the consumer waits for arrived: a connection on a listening stream
    /// (the listen callback's `status`), a process's exit (0).
    virtual void ready(int status) noexcept { (void)status; }
    /// The state block goes away: the consumer lets go of what it kept for it.
    virtual void release() noexcept {}

protected:
    ~handle_consumer() = default;
};

/// The heap block behind every handle. Derived blocks add the uv_*_t and the
/// handlers. uv_handle_t::data points here; uvkit sets `data` only on the
/// handles it creates.
struct UVKIT_API handle_state {
    explicit handle_state(uvkit::loop& l) noexcept : owner(&l) {}
    virtual ~handle_state() {
        if (consumer) consumer->release();
    }
    handle_state(const handle_state&) = delete;
    handle_state& operator=(const handle_state&) = delete;

    /// Links the block into its loop's registry; call once uv_*_init succeeded.
    void attach(uv_handle_t* h) noexcept;

    /// True when the handle can take operations: initialised, not closing, not
    /// closed, by uvkit or by raw code (uv_close from a uv_walk).
    bool usable() const noexcept { return open() && !uv_is_closing(uvh); }
    /// usable() without asking libuv: for the calls that libuv itself refuses
    /// (uv_timer_start: UV_EINVAL) or makes harmless (uv_timer_stop) on a
    /// handle raw code closed.
    bool open() const noexcept { return uvh != nullptr && !closing; }

    /// Starts closing (idempotent); `cb` runs once the close callback ran.
    void close(unique_function<void()>&& cb = nullptr) noexcept;
    /// close() without on_closed; the handle is initialised and not closing yet.
    void begin_close() noexcept;

    /// Called once, just before uv_close: the consumer (if any) stops, so that
    /// what waits on the handle completes (libuv would not complete it).
    void on_closing() noexcept {
        if (consumer) consumer->stop();
    }

    /// Called by the C++ owner when it lets go of the block (destructor or assignment).
    static void release(handle_state* s) noexcept;

    /// Destroys the block and frees its memory, into `l`'s pool if given.
    static void destroy(handle_state* s, uvkit::loop* l) noexcept;

    /// Reports a handler's exception to the loop (stops it; run() rethrows).
    void fail(std::exception_ptr e) noexcept;

    /// Used by ~loop (pool_op::finish_all) on the blocks of its closed_handles()
    /// list: cancels the thread-pool requests the block keeps itself, outside the
    /// loop's registry (uv_cancel: queued ones complete with errc::canceled);
    /// true while any of them is still in flight.
    virtual bool cancel_requests() noexcept { return false; }

    // The loop. Valid while !uv_closed; once closed, null if the loop is gone
    // (the block is then on the loop's closed_handles() list until released).
    uvkit::loop* owner;
    uv_handle_t* uvh = nullptr;
    handle_state* prev = nullptr;
    handle_state* next = nullptr;
    unique_function<void()> on_closed;
    handle_consumer* consumer = nullptr;  // see handle_consumer; released with the block
    bool owner_alive = true;
    bool closing = false;  // uv_close was called, or raw code's uv_close was seen
    bool foreign_close =
        false;  // raw code closed it: the close callback is not ours (loop::reap_foreign_closes)
    bool uv_closed = false;
    bool internal = false;          // uvkit's own (pooled timers, ...): not in loop::handle_count()
    unsigned char block_class = 0;  // size class in the loop's block_pool; 0: plain new/delete

    /// Marks a handle as uvkit's own.
    void make_internal() noexcept;

    static void close_cb(uv_handle_t* h) noexcept;
    /// What close_cb does for `s`: unlink, on_closed, free or keep for the owner.
    static void finish_close(handle_state* s) noexcept;
    /// Closes every handle still registered on `l`: used by loop's destructor.
    static void close_all(uvkit::loop& l) noexcept;
    /// Detaches the closed blocks still held by C++ handles from `l` and frees
    /// `l`'s pool: the last step of loop's destructor.
    static void forget_loop(uvkit::loop& l) noexcept;
};

/// The coroutine layer's door into handles' state blocks.
struct handle_access;

/// A libuv buffer over `d`'s bytes (libuv never writes through a send buffer).
inline uv_buf_t make_buf(std::string_view d) noexcept {
    // What uv_buf_init does, inline (uv_buf_t's field order differs between platforms).
    uv_buf_t b;
    b.base = const_cast<char*>(d.data());
    b.len = static_cast<decltype(b.len)>(d.size());
    return b;
}

/// Recovers the state block of a uvkit handle from the libuv handle.
template <class State, class H>
State* state_of(H* h) noexcept {
    return static_cast<State*>(static_cast<handle_state*>(h->data));
}

/// The completion handler of a request (write, shutdown, connect, udp send).
using write_handler = unique_function<void(std::error_code)>;

/// A layer above the core (an awaited operation) that takes a request's
/// completion itself, instead of a handler: no type-erased call in between.
struct request_consumer {
    virtual void request_done(int status) noexcept = 0;

protected:
    ~request_consumer() = default;
};

/// What every uvkit request (write, shutdown, connect, udp send) has: its completion
/// handler or its consumer, called exactly once, and the loop whose run() gets its exceptions.
struct request_base {
    write_handler cb;
    /// Set once the request started, on a request started with no handler:
    /// a request has a handler or a consumer, never both.
    request_consumer* consumer = nullptr;
    uvkit::loop* owner = nullptr;

    /// Calls the handler or the consumer (if any) with the request's status;
    /// the handler's exception goes to the loop's run().
    void complete(int status) noexcept {
        if (cb) [[likely]] {  // the callback core's case first: one test
            try {
                cb(status_code(status));
            } catch (...) {
                owner->fail(std::current_exception());
            }
            return;
        }
        if (consumer) std::exchange(consumer, nullptr)->request_done(status);
    }
};

}  // namespace detail

/// Base class of every uvkit handle: the operations libuv offers on uv_handle_t.
class UVKIT_API handle {
public:
    handle(const handle&) = delete;
    handle& operator=(const handle&) = delete;

    /// True if the handle is active (uv_is_active): a started timer, a reading stream, ...
    bool active() const noexcept { return usable() && uv_is_active(state_->uvh) != 0; }

    /// True if the handle is closing or closed (uv_is_closing), also when raw
    /// code closed it; true for an empty handle.
    bool closing() const noexcept {
        return !state_ || !state_->uvh || state_->closing || uv_is_closing(state_->uvh) != 0;
    }

    /// Makes the handle keep the loop alive (uv_ref). No effect on an empty or closed handle.
    void ref() noexcept {
        if (usable()) uv_ref(state_->uvh);
    }

    /// Stops the handle from keeping the loop alive (uv_unref).
    void unref() noexcept {
        if (usable()) uv_unref(state_->uvh);
    }

    /// True if the handle is referenced (uv_has_ref).
    bool has_ref() const noexcept { return usable() && uv_has_ref(state_->uvh) != 0; }

    /// Closes the handle (uv_close). Idempotent: a second call, or a call on an
    /// empty handle, does nothing and does not run `on_closed`. `on_closed`,
    /// if given, runs exactly once on the loop thread after libuv's close
    /// callback. Pending requests complete first (errc::canceled for those
    /// not yet done), so on_closed is the place to free what handlers use.
    template <class F = std::nullptr_t>
    void close(F&& on_closed = nullptr) noexcept {
        if (state_) state_->close(detail::unique_function<void()>(std::forward<F>(on_closed)));
    }

    /// The libuv handle (uv_handle_t*), or nullptr for an empty handle.
    uv_handle_t* raw_handle() const noexcept { return state_ ? state_->uvh : nullptr; }

    /// The loop this handle was created on. Throws std::system_error (UV_EINVAL)
    /// for an empty handle or one whose loop is gone.
    uvkit::loop& get_loop() const;

    /// True unless the handle is empty (moved from).
    explicit operator bool() const noexcept { return state_ != nullptr; }

protected:
    friend struct detail::handle_access;
    handle() noexcept = default;
    explicit handle(detail::handle_state* s) noexcept : state_(s) {}
    handle(handle&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
    handle& operator=(handle&& o) noexcept {
        if (this != &o) {
            detail::handle_state::release(state_);
            state_ = std::exchange(o.state_, nullptr);
        }
        return *this;
    }
    ~handle() { detail::handle_state::release(state_); }

    bool usable() const noexcept { return state_ && state_->usable(); }
    /// Asks the kernel for a receive buffer of `bytes` (> 0) on the socket
    /// (SO_RCVBUF, uv_recv_buffer_size): data that arrives while the program
    /// is busy waits there; what overflows it is lost (UDP) or slows the peer
    /// (TCP). The kernel may grant another size: Linux caps it at
    /// net.core.rmem_max and doubles what it grants (room for its own
    /// bookkeeping), so recv_buffer_size() reads back about twice the value
    /// set. Errors: UV_EINVAL for `bytes` <= 0 and for an empty or closed
    /// handle; UV_EBADF before the socket exists (a tcp before bind, connect or
    /// open, a udp before bind or connect unless created with a family);
    /// UV_ENOTSUP where the handle has no socket (a tty; pipes on Windows),
    /// UV_ENOTSOCK for a pipe opened over a descriptor that is no socket.
    /// Public on streams and udp (which say `using`), not on other handles.
    void set_recv_buffer_size(int bytes) {
        detail::throwing("uv_recv_buffer_size",
                         [&](std::error_code& ec) { set_recv_buffer_size(bytes, ec); });
    }
    void set_recv_buffer_size(int bytes, std::error_code& ec) noexcept {
        socket_buffer_size(false, true, bytes, ec);
    }
    /// The socket's receive buffer size in bytes, as the kernel reports it
    /// (uv_recv_buffer_size); the errors of set_recv_buffer_size().
    int recv_buffer_size() const {
        return detail::throwing("uv_recv_buffer_size",
                                [&](std::error_code& ec) { return recv_buffer_size(ec); });
    }
    int recv_buffer_size(std::error_code& ec) const noexcept {
        return socket_buffer_size(false, false, 0, ec);
    }
    /// Asks the kernel for a send buffer of `bytes` (> 0) on the socket
    /// (SO_SNDBUF, uv_send_buffer_size): how much it takes before a write or
    /// send waits. As with the receive buffer, Linux caps it (at
    /// net.core.wmem_max) and send_buffer_size() reads back about twice the
    /// value set; the errors of set_recv_buffer_size().
    void set_send_buffer_size(int bytes) {
        detail::throwing("uv_send_buffer_size",
                         [&](std::error_code& ec) { set_send_buffer_size(bytes, ec); });
    }
    void set_send_buffer_size(int bytes, std::error_code& ec) noexcept {
        socket_buffer_size(true, true, bytes, ec);
    }
    /// The socket's send buffer size in bytes, as the kernel reports it (uv_send_buffer_size).
    int send_buffer_size() const {
        return detail::throwing("uv_send_buffer_size",
                                [&](std::error_code& ec) { return send_buffer_size(ec); });
    }
    int send_buffer_size(std::error_code& ec) const noexcept {
        return socket_buffer_size(true, false, 0, ec);
    }
    /// What stream's and udp's set_recv_buffer_size() and the others share:
    /// with `set`, asks for `bytes` (> 0, else UV_EINVAL: libuv reads the size
    /// when given 0) and returns 0; without, returns the size (uv_recv_buffer_size
    /// or, with `send`, uv_send_buffer_size). Returns 0 on error.
    int socket_buffer_size(bool send, bool set, int bytes, std::error_code& ec) const noexcept;

    /// The state block if usable; otherwise reports UV_EINVAL through `ec`.
    template <class State>
    State* get(std::error_code& ec) const noexcept {
        if (!usable()) {
            ec = make_uv_error(UV_EINVAL);
            return nullptr;
        }
        ec = detail::no_error();
        return static_cast<State*>(state_);
    }
    /// The state block if usable; otherwise throws std::system_error(UV_EINVAL).
    template <class State>
    State* get(const char* what) const {
        if (!usable()) detail::throw_uv_error(UV_EINVAL, what);
        return static_cast<State*>(state_);
    }

    detail::handle_state* state_ = nullptr;
};

}  // namespace uvkit
