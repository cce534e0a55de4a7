// uvkit/timer.hpp: a timer (uv_timer_t).
//
// What it is: runs a handler once after a timeout, or repeatedly. libuv's
// semantics are kept: timeouts count from the loop's cached time (now());
// a repeating timer is re-armed before its handler runs; timers with equal
// timeouts fire in the order they were started.
//
// Lifetime: see uvkit/handle.hpp. The handler may stop, restart (with a new
// handler), move, close or destroy its own timer.
//
// Errors: start/again on an empty, closing or closed timer fail with UV_EINVAL,
// and so does start with an empty handler (nullptr), as libuv rejects NULL;
// again() on a timer that was never started fails with UV_EINVAL (libuv's rule).
#pragma once

#include <chrono>

#include "uvkit/handle.hpp"

namespace uvkit {

namespace detail {
struct UVKIT_API timer_state final : handle_state {
    using handle_state::handle_state;
    uv_timer_t h;  // not zeroed: uv_timer_init initialises it
    handler_slot<void()> cb;
    static void on_timer(uv_timer_t* t) noexcept;
};
}  // namespace detail

class UVKIT_API timer : public handle {
public:
    using duration = std::chrono::milliseconds;

    /// An empty timer: every operation fails with UV_EINVAL until one is moved in.
    timer() noexcept = default;
    /// Creates a timer on `l` (uv_timer_init). Throws std::system_error.
    explicit timer(uvkit::loop& l);
    timer(timer&&) noexcept = default;
    timer& operator=(timer&&) noexcept = default;
    ~timer() = default;

    /// Calls `h()` once after `timeout` (uv_timer_start with repeat 0).
    /// Replaces any previous handler. The handler is called once per expiry.
    template <class F>
    void start(duration timeout, F&& h) {
        start(timeout, duration{0}, std::forward<F>(h));
    }
    /// Calls `h()` after `timeout`, then every `repeat` (uv_timer_start).
    template <class F>
    void start(duration timeout, duration repeat, F&& h) {
        start_fn(timeout, repeat, detail::unique_function<void()>(std::forward<F>(h)));
    }
    /// Non-throwing twins of start(): errors go to `ec`, the handler is dropped.
    template <class F>
    void start(duration timeout, F&& h, std::error_code& ec) noexcept {
        start(timeout, duration{0}, std::forward<F>(h), ec);
    }
    template <class F>
    void start(duration timeout, duration repeat, F&& h, std::error_code& ec) noexcept {
        start_fn(timeout, repeat, detail::unique_function<void()>(std::forward<F>(h)), ec);
    }

    /// Stops the timer (uv_timer_stop); the handler is kept for again(). No-op when empty.
    void stop() noexcept;

    /// Restarts a repeating timer with its repeat as timeout (uv_timer_again).
    /// A stopped one-shot timer is left stopped. Throws std::system_error.
    void again();
    void again(std::error_code& ec) noexcept;

    /// Sets the repeat interval (uv_timer_set_repeat); takes effect at the next expiry.
    void set_repeat(duration repeat) noexcept;

    /// The repeat interval (uv_timer_get_repeat); zero for an empty timer.
    duration repeat() const noexcept;

    /// Time until the timer fires (uv_timer_get_due_in); zero if stopped or empty.
    duration due_in() const noexcept;

    /// The libuv handle, or nullptr for an empty timer.
    uv_timer_t* raw() const noexcept;

private:
    void start_fn(duration timeout, duration repeat, detail::unique_function<void()>&& h);
    void start_fn(duration timeout, duration repeat, detail::unique_function<void()>&& h,
                  std::error_code& ec) noexcept;
};

}  // namespace uvkit
