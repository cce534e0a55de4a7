// uvkit/idle.hpp: an idle handle (uv_idle_t).
//
// What it is: runs its handler once per loop iteration while active. An
// active idle handle makes the loop poll for I/O without blocking, so use it
// for short background work, not as a timer.
//
// Lifetime: see uvkit/handle.hpp. The handler may stop, restart, close or
// destroy its own handle.
//
// Errors: start on an empty, closing or closed handle fails with UV_EINVAL,
// and so does start with an empty handler (nullptr), as libuv rejects NULL.
#pragma once

#include "uvkit/handle.hpp"

namespace uvkit {

namespace detail {
struct UVKIT_API idle_state final : handle_state {
    using handle_state::handle_state;
    uv_idle_t h{};
    handler_slot<void()> cb;
    static void on_idle(uv_idle_t* t) noexcept;
};
}  // namespace detail

class UVKIT_API idle : public handle {
public:
    /// An empty handle: every operation fails with UV_EINVAL until one is moved in.
    idle() noexcept = default;
    /// Creates an idle handle on `l` (uv_idle_init). Throws std::system_error.
    explicit idle(uvkit::loop& l);
    idle(idle&&) noexcept = default;
    idle& operator=(idle&&) noexcept = default;
    ~idle() = default;

    /// Calls `h()` once per loop iteration until stop() (uv_idle_start).
    /// Replaces any previous handler. Throws std::system_error.
    template <class F>
    void start(F&& h) {
        start_fn(detail::unique_function<void()>(std::forward<F>(h)));
    }
    /// Non-throwing twin of start().
    template <class F>
    void start(F&& h, std::error_code& ec) noexcept {
        start_fn(detail::unique_function<void()>(std::forward<F>(h)), ec);
    }

    /// Stops calling the handler (uv_idle_stop). No-op when empty.
    void stop() noexcept;

    /// The libuv handle, or nullptr for an empty handle.
    uv_idle_t* raw() const noexcept;

private:
    void start_fn(detail::unique_function<void()>&& h);
    void start_fn(detail::unique_function<void()>&& h, std::error_code& ec) noexcept;
};

}  // namespace uvkit
