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

#include "uvkit/detail/loop_watcher.hpp"

namespace uvkit {

namespace detail {
using idle_state = loop_watcher_state<uv_idle_t>;
}  // namespace detail

class UVKIT_API idle : public detail::loop_watcher<uv_idle_t> {
public:
    /// An empty handle: every operation fails with UV_EINVAL until one is moved in.
    idle() noexcept = default;
    /// Creates an idle handle on `l` (uv_idle_init). Throws std::system_error.
    explicit idle(uvkit::loop& l) : loop_watcher(l) {}
    idle(idle&&) noexcept = default;
    idle& operator=(idle&&) noexcept = default;
    ~idle() = default;
    // start(h), start(h, ec), stop(), raw(): see detail::loop_watcher.
};

}  // namespace uvkit
