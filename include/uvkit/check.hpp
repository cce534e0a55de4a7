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

#include "uvkit/detail/loop_watcher.hpp"

namespace uvkit {

namespace detail {
using check_state = loop_watcher_state<uv_check_t>;
}  // namespace detail

class UVKIT_API check : public detail::loop_watcher<uv_check_t> {
public:
    /// An empty handle: every operation fails with UV_EINVAL until one is moved in.
    check() noexcept = default;
    /// Creates a check handle on `l` (uv_check_init). Throws std::system_error.
    explicit check(uvkit::loop& l) : loop_watcher(l) {}
    check(check&&) noexcept = default;
    check& operator=(check&&) noexcept = default;
    ~check() = default;
    // start(h), start(h, ec), stop(), raw(): see detail::loop_watcher.
};

}  // namespace uvkit
