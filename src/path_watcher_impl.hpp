// Internal: what fs_event.cpp and fs_poll.cpp share (uvkit/detail/path_watcher.hpp).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "handle_impl.hpp"
#include "uvkit/detail/path_watcher.hpp"

namespace uvkit::detail {

/// (Re)starts the watcher `s` on `path`: `uv_start(c_path)` is the libuv start
/// with the watcher's other arguments; a handler `h`, or none and `queued`.
/// `bad_args`: the caller's own checks of those other arguments failed.
template <class Traits, class H, class Start>
void start_watch(path_watcher_state<Traits>* s, std::string_view path, H&& h, bool queued, bool bad_args,
                 std::error_code& ec, Start&& uv_start) noexcept {
    if (!s) return;
    if (bad_args || (!queued && !h) || path.find('\0') != std::string_view::npos) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    std::string p;
    try {
        p.assign(path);
    } catch (...) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    // libuv refuses to start an active watcher: a restart replaces the watch.
    if (uv_is_active(s->uvh)) Traits::stop(&s->h);
    s->queue.items.clear();
    if (set_error(ec, uv_start(p.c_str()))) return;
    s->queued = queued;
    s->cb.set(std::forward<H>(h));
    if (!queued) s->queue.stopped(*s);  // a waiting async_next() would wait for ever: errc::canceled
}

/// What a watcher's libuv callback does with one report: queues `make()` for
/// async_next(), or calls the handler with `args`.
template <class Traits, class Make, class... Args>
void deliver_watch(path_watcher_state<Traits>* s, Make&& make, const Args&... args) noexcept {
    if (s->queued) {
        s->queue.push(*s, make());
        return;
    }
    guarded(s, [&] { s->cb(args...); });
}

}  // namespace uvkit::detail
