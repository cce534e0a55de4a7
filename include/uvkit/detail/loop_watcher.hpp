// Internal: idle, prepare and check, written once (libuv too writes them as
// one loop-watcher macro). Each is a handle that calls its handler once per
// loop iteration while started; they differ only in where in the iteration
// (see uvkit/idle.hpp, prepare.hpp, check.hpp).
#pragma once

#include "uvkit/handle.hpp"

namespace uvkit::detail {

/// The state block of a loop watcher of libuv type H (uv_idle_t, uv_prepare_t, uv_check_t).
template <class H>
struct loop_watcher_state final : handle_state {
    using handle_state::handle_state;
    H h{};
    handler_slot<void()> cb;
};

/// The handle class of a loop watcher of libuv type H; uvkit::idle, prepare
/// and check derive from it and add nothing but their name.
template <class H>
class UVKIT_API loop_watcher : public handle {
public:
    /// Calls `h()` once per loop iteration until stop() (uv_*_start). Replaces
    /// any previous handler. Throws std::system_error (UV_EINVAL on an empty,
    /// closing or closed handle, or for an empty handler: libuv rejects NULL).
    template <class F>
    void start(F&& h) {
        start_fn(unique_function<void()>(std::forward<F>(h)));
    }
    /// Non-throwing twin of start().
    template <class F>
    void start(F&& h, std::error_code& ec) noexcept {
        start_fn(unique_function<void()>(std::forward<F>(h)), ec);
    }

    /// Stops calling the handler (uv_*_stop). No-op when empty.
    void stop() noexcept;

    /// The libuv handle, or nullptr for an empty handle.
    H* raw() const noexcept { return state_ ? &static_cast<loop_watcher_state<H>*>(state_)->h : nullptr; }

protected:
    loop_watcher() noexcept = default;
    /// Creates the handle on `l` (uv_*_init). Throws std::system_error.
    explicit loop_watcher(uvkit::loop& l);

private:
    void start_fn(unique_function<void()>&& h);
    void start_fn(unique_function<void()>&& h, std::error_code& ec) noexcept;
};

extern template class UVKIT_API loop_watcher<uv_idle_t>;
extern template class UVKIT_API loop_watcher<uv_prepare_t>;
extern template class UVKIT_API loop_watcher<uv_check_t>;

}  // namespace uvkit::detail
