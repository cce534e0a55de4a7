#include "uvkit/fs_event.hpp"

#include <string>

#include "handle_impl.hpp"

namespace uvkit {

namespace detail {
void fs_event_state::on_event(uv_fs_event_t* h, const char* filename, int events, int status) noexcept {
    auto* s = state_of<fs_event_state>(h);
    const std::error_code ec = status_code(status);
    if (s->queued) {
        fs_event_record r;
        r.ec = ec;
        r.events = events;
        try {
            if (filename) r.filename = filename;
        } catch (...) {
        }
        s->queue.push(*s, std::move(r));
        return;
    }
    guarded(s, [&] { s->cb(ec, filename ? std::string_view(filename) : std::string_view(), events); });
}
}  // namespace detail

using detail::fs_event_state;

fs_event::fs_event(uvkit::loop& l)
    : handle(detail::create_state<fs_event_state>(l, "uv_fs_event_init", &uv_fs_event_init)) {}

void fs_event::start_fn(std::string_view path, unsigned flags, event_handler&& h, bool queued,
                        std::error_code& ec) noexcept {
    auto* s = get<fs_event_state>(ec);
    if (!s) return;
    if ((!queued && !h) || path.find('\0') != std::string_view::npos) {
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
    if (uv_is_active(s->uvh)) uv_fs_event_stop(&s->h);
    s->queue.items.clear();
    if (detail::set_error(ec, uv_fs_event_start(&s->h, &fs_event_state::on_event, p.c_str(), flags))) return;
    s->queued = queued;
    s->cb.set(std::move(h));
    if (!queued) s->queue.stopped(*s);  // a waiting async_next() would wait for ever: errc::canceled
}

void fs_event::start(std::string_view path, unsigned flags, event_handler h, std::error_code& ec) noexcept {
    start_fn(path, flags, std::move(h), false, ec);
}
void fs_event::start(std::string_view path, unsigned flags, event_handler h) {
    detail::throwing("uv_fs_event_start",
                     [&](std::error_code& ec) { start_fn(path, flags, std::move(h), false, ec); });
}
void fs_event::start(std::string_view path, unsigned flags, std::error_code& ec) noexcept {
    start_fn(path, flags, nullptr, true, ec);
}
void fs_event::start(std::string_view path, unsigned flags) {
    detail::throwing("uv_fs_event_start",
                     [&](std::error_code& ec) { start_fn(path, flags, nullptr, true, ec); });
}

void fs_event::stop() noexcept {
    if (!usable()) return;
    auto* s = static_cast<fs_event_state*>(state_);
    uv_fs_event_stop(&s->h);
    s->queue.stopped(*s);  // a waiting async_next() ends with errc::canceled
}

std::string fs_event::path() const {
    if (!usable()) return {};
    auto* s = static_cast<fs_event_state*>(state_);
    char buf[4096];
    std::size_t n = sizeof buf;
    if (uv_fs_event_getpath(&s->h, buf, &n) != 0) return {};
    return std::string(buf, n);
}

std::size_t fs_event::dropped() const noexcept {
    return state_ ? static_cast<fs_event_state*>(state_)->queue.dropped : 0;
}

uv_fs_event_t* fs_event::raw() const noexcept {
    return state_ ? &static_cast<fs_event_state*>(state_)->h : nullptr;
}

}  // namespace uvkit
