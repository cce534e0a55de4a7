// uvkit/signal.hpp: a signal handler (uv_signal_t).
//
// What it is: runs a handler on the loop's thread when the process receives
// a signal, e.g. SIGINT or SIGTERM for a graceful shutdown. libuv's rules
// are kept: several handles (on one loop or several) may watch the same
// signal and all are called; SIGKILL and SIGSTOP cannot be watched; a
// one-shot handle is stopped right after its handler returned (so restart a
// one-shot handle from elsewhere, not from inside its own handler). When the
// last handle watching a signal stops, its default action is restored. On
// Windows libuv emulates SIGINT, SIGBREAK, SIGHUP and SIGWINCH.
//
//     uvkit::signal sig{loop};
//     sig.start(SIGINT, [&](int) { server.close(); sig.close(); });
//
// Lifetime: see uvkit/handle.hpp. An active signal handle keeps the loop
// alive; unref() it if it should only listen while there is other work. The
// handler may stop, restart (with a new handler), move, close or destroy its
// own handle.
//
// Functions: start, start_oneshot, stop, signum, raw.
//
// Errors: start and start_oneshot with an empty handler (nullptr), or on an
// empty, closing or closed handle fail
// with UV_EINVAL; an invalid signal number (0, negative, or beyond the
// platform's range, or one that cannot be caught) fails with UV_EINVAL, and
// a handle that was watching another signal may be left stopped (libuv).
#pragma once

#include "uvkit/handle.hpp"

namespace uvkit {

namespace detail {
struct UVKIT_API signal_state final : handle_state {
    using handle_state::handle_state;
    uv_signal_t h{};
    handler_slot<void(int)> cb;
    static void on_signal(uv_signal_t* s, int signum) noexcept;
};
}  // namespace detail

class UVKIT_API signal : public handle {
public:
    /// An empty handle: every operation fails with UV_EINVAL until one is moved in.
    signal() noexcept = default;
    /// Creates a signal handle on `l` (uv_signal_init). Throws std::system_error.
    explicit signal(uvkit::loop& l);
    signal(signal&&) noexcept = default;
    signal& operator=(signal&&) noexcept = default;
    ~signal() = default;

    /// Calls `h(signum)` every time the process receives `signum`
    /// (uv_signal_start). Replaces any previous handler and signal.
    /// Throws std::system_error.
    template <class F>
    void start(int signum, F&& h) {
        start_fn(signum, false, detail::unique_function<void(int)>(std::forward<F>(h)));
    }
    /// Non-throwing twin of start(): errors go to `ec`, the handler is dropped.
    template <class F>
    void start(int signum, F&& h, std::error_code& ec) noexcept {
        start_fn(signum, false, detail::unique_function<void(int)>(std::forward<F>(h)), ec);
    }

    /// Calls `h(signum)` once, the next time `signum` arrives; the handle is
    /// stopped once the handler returned (uv_signal_start_oneshot). Throws std::system_error.
    template <class F>
    void start_oneshot(int signum, F&& h) {
        start_fn(signum, true, detail::unique_function<void(int)>(std::forward<F>(h)));
    }
    /// Non-throwing twin of start_oneshot().
    template <class F>
    void start_oneshot(int signum, F&& h, std::error_code& ec) noexcept {
        start_fn(signum, true, detail::unique_function<void(int)>(std::forward<F>(h)), ec);
    }

    /// Stops watching (uv_signal_stop). No-op when stopped or empty.
    void stop() noexcept;

    /// The signal being watched (uv_signal_t::signum); 0 if stopped or empty.
    int signum() const noexcept;

    /// The libuv handle, or nullptr for an empty handle.
    uv_signal_t* raw() const noexcept;

private:
    void start_fn(int signum, bool oneshot, detail::unique_function<void(int)>&& h);
    void start_fn(int signum, bool oneshot, detail::unique_function<void(int)>&& h,
                  std::error_code& ec) noexcept;
};

}  // namespace uvkit
