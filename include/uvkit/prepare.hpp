// uvkit/prepare.hpp: a prepare handle (uv_prepare_t).
//
// What it is: runs its handler once per loop iteration while active, right
// before the loop blocks for I/O (after timers and idle handles, before
// polling). Pair it with uvkit::check, which runs right after the poll, to
// see each iteration's I/O phase from both sides, e.g. to flush batched
// writes before the loop sleeps or to measure time spent waiting.
//
// Lifetime: see uvkit/handle.hpp. The handler may stop, restart, move, close
// or destroy its own handle. Unlike idle, an active prepare handle does not
// stop the loop from blocking.
//
// Functions: start, stop, raw.
//
// Errors: start on an empty, closing or closed handle fails with UV_EINVAL,
// and so does start with an empty handler (nullptr), as libuv rejects NULL.
#pragma once

#include "uvkit/handle.hpp"

namespace uvkit {

namespace detail {
struct UVKIT_API prepare_state final : handle_state {
    using handle_state::handle_state;
    uv_prepare_t h{};
    handler_slot<void()> cb;
    static void on_prepare(uv_prepare_t* p) noexcept;
};
}  // namespace detail

class UVKIT_API prepare : public handle {
public:
    /// An empty handle: every operation fails with UV_EINVAL until one is moved in.
    prepare() noexcept = default;
    /// Creates a prepare handle on `l` (uv_prepare_init). Throws std::system_error.
    explicit prepare(uvkit::loop& l);
    prepare(prepare&&) noexcept = default;
    prepare& operator=(prepare&&) noexcept = default;
    ~prepare() = default;

    /// Calls `h()` once per loop iteration, before polling for I/O, until
    /// stop() (uv_prepare_start). Replaces any previous handler. Throws std::system_error.
    template <class F>
    void start(F&& h) {
        start_fn(detail::unique_function<void()>(std::forward<F>(h)));
    }
    /// Non-throwing twin of start().
    template <class F>
    void start(F&& h, std::error_code& ec) noexcept {
        start_fn(detail::unique_function<void()>(std::forward<F>(h)), ec);
    }

    /// Stops calling the handler (uv_prepare_stop). No-op when empty.
    void stop() noexcept;

    /// The libuv handle, or nullptr for an empty handle.
    uv_prepare_t* raw() const noexcept;

private:
    void start_fn(detail::unique_function<void()>&& h);
    void start_fn(detail::unique_function<void()>&& h, std::error_code& ec) noexcept;
};

}  // namespace uvkit
