#include "uvkit/fs_event.hpp"

#include <string>

#include "path_watcher_impl.hpp"

namespace uvkit {

namespace detail {
void fs_event_state::on_event(uv_fs_event_t* h, const char* filename, int events, int status) noexcept {
    auto* s = state_of<fs_event_state>(h);
    const std::error_code ec = status_code(status);
    const std::string_view name = filename ? std::string_view(filename) : std::string_view();
    deliver_watch(
        s,
        [&]() noexcept {
            fs_event_record r;
            r.ec = ec;
            r.events = events;
            try {
                r.filename.assign(name);
            } catch (...) {
            }
            return r;
        },
        ec, name, events);
}
}  // namespace detail

using detail::fs_event_state;

fs_event::fs_event(uvkit::loop& l)
    : path_watcher(detail::create_state<fs_event_state>(l, "uv_fs_event_init", &uv_fs_event_init)) {}

void fs_event::start_fn(std::string_view path, unsigned flags, event_handler&& h, bool queued,
                        std::error_code& ec) noexcept {
    auto* s = get<fs_event_state>(ec);
    detail::start_watch(s, path, std::move(h), queued, false, ec, [&](const char* p) {
        return uv_fs_event_start(&s->h, &fs_event_state::on_event, p, flags);
    });
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

}  // namespace uvkit
