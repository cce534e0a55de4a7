#include "uvkit/fs_poll.hpp"

#include <climits>
#include <string>

#include "fs_impl.hpp"
#include "handle_impl.hpp"

namespace uvkit {

namespace detail {
void fs_poll_state::on_poll(uv_fs_poll_t* h, int status, const uv_stat_t* prev,
                            const uv_stat_t* curr) noexcept {
    auto* s = state_of<fs_poll_state>(h);
    const std::error_code ec = status_code(status);
    file_stat p = prev ? to_file_stat(*prev) : file_stat{};
    file_stat c = curr ? to_file_stat(*curr) : file_stat{};
    if (s->queued) {
        s->queue.push(*s, fs_poll_record{ec, p, c});
        return;
    }
    guarded(s, [&] { s->cb(ec, p, c); });
}
}  // namespace detail

using detail::fs_poll_state;

fs_poll::fs_poll(uvkit::loop& l)
    : handle(detail::create_state<fs_poll_state>(l, "uv_fs_poll_init", &uv_fs_poll_init)) {}

void fs_poll::start_fn(std::string_view path, std::chrono::milliseconds interval, poll_handler&& h,
                       bool queued, std::error_code& ec) noexcept {
    auto* s = get<fs_poll_state>(ec);
    if (!s) return;
    if ((!queued && !h) || path.find('\0') != std::string_view::npos || interval.count() < 0 ||
        interval.count() > static_cast<long long>(UINT_MAX)) {
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
    if (uv_is_active(s->uvh)) uv_fs_poll_stop(&s->h);
    s->queue.items.clear();
    if (detail::set_error(ec, uv_fs_poll_start(&s->h, &fs_poll_state::on_poll, p.c_str(),
                                               static_cast<unsigned>(interval.count()))))
        return;
    s->queued = queued;
    s->cb.set(std::move(h));
    if (!queued) s->queue.stopped(*s);  // a waiting async_next() would wait for ever: errc::canceled
}

void fs_poll::start(std::string_view path, std::chrono::milliseconds interval, poll_handler h,
                    std::error_code& ec) noexcept {
    start_fn(path, interval, std::move(h), false, ec);
}
void fs_poll::start(std::string_view path, std::chrono::milliseconds interval, poll_handler h) {
    detail::throwing("uv_fs_poll_start",
                     [&](std::error_code& ec) { start_fn(path, interval, std::move(h), false, ec); });
}
void fs_poll::start(std::string_view path, std::chrono::milliseconds interval, std::error_code& ec) noexcept {
    start_fn(path, interval, nullptr, true, ec);
}
void fs_poll::start(std::string_view path, std::chrono::milliseconds interval) {
    detail::throwing("uv_fs_poll_start",
                     [&](std::error_code& ec) { start_fn(path, interval, nullptr, true, ec); });
}

void fs_poll::stop() noexcept {
    if (!usable()) return;
    auto* s = static_cast<fs_poll_state*>(state_);
    uv_fs_poll_stop(&s->h);
    s->queue.stopped(*s);  // a waiting async_next() ends with errc::canceled
}

std::string fs_poll::path() const {
    if (!usable()) return {};
    auto* s = static_cast<fs_poll_state*>(state_);
    char buf[4096];
    std::size_t n = sizeof buf;
    if (uv_fs_poll_getpath(&s->h, buf, &n) != 0) return {};
    return std::string(buf, n);
}

uv_fs_poll_t* fs_poll::raw() const noexcept {
    return state_ ? &static_cast<fs_poll_state*>(state_)->h : nullptr;
}

}  // namespace uvkit
