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

#include "uvkit/detail/loop_watcher.hpp"

namespace uvkit {

namespace detail {
using prepare_state = loop_watcher_state<uv_prepare_t>;
}  // namespace detail

class UVKIT_API prepare : public detail::loop_watcher<uv_prepare_t> {
public:
    /// An empty handle: every operation fails with UV_EINVAL until one is moved in.
    prepare() noexcept = default;
    /// Creates a prepare handle on `l` (uv_prepare_init). Throws std::system_error.
    explicit prepare(uvkit::loop& l) : loop_watcher(l) {}
    prepare(prepare&&) noexcept = default;
    prepare& operator=(prepare&&) noexcept = default;
    ~prepare() = default;
    // start(h), start(h, ec), stop(), raw(): see detail::loop_watcher.
};

}  // namespace uvkit
