// uvkit/check.hpp: a check handle (uv_check_t).
//
// What it is: runs its handler once per loop iteration while active, right
// after the loop polled for I/O (and ran the I/O handlers), before close
// handlers. Pair it with uvkit::prepare, which runs right before the poll;
// a check handler sees every I/O handler of its iteration already done.
//
// Lifetime: see uvkit/handle.hpp. The handler may stop, restart, move, close
// or destroy its own handle. Unlike idle, an active check handle does not
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
struct UVKIT_API check_state final : handle_state {
    using handle_state::handle_state;
    uv_check_t h{};
    handler_slot<void()> cb;
    static void on_check(uv_check_t* c) noexcept;
};
}  // namespace detail

class UVKIT_API check : public handle {
public:
    /// An empty handle: every operation fails with UV_EINVAL until one is moved in.
    check() noexcept = default;
    /// Creates a check handle on `l` (uv_check_init). Throws std::system_error.
    explicit check(uvkit::loop& l);
    check(check&&) noexcept = default;
    check& operator=(check&&) noexcept = default;
    ~check() = default;

    /// Calls `h()` once per loop iteration, after polling for I/O, until
    /// stop() (uv_check_start). Replaces any previous handler. Throws std::system_error.
    template <class F>
    void start(F&& h) {
        start_fn(detail::unique_function<void()>(std::forward<F>(h)));
    }
    /// Non-throwing twin of start().
    template <class F>
    void start(F&& h, std::error_code& ec) noexcept {
        start_fn(detail::unique_function<void()>(std::forward<F>(h)), ec);
    }

    /// Stops calling the handler (uv_check_stop). No-op when empty.
    void stop() noexcept;

    /// The libuv handle, or nullptr for an empty handle.
    uv_check_t* raw() const noexcept;

private:
    void start_fn(detail::unique_function<void()>&& h);
    void start_fn(detail::unique_function<void()>&& h, std::error_code& ec) noexcept;
};

}  // namespace uvkit
