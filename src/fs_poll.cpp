#include "uvkit/fs_poll.hpp"

#include <climits>

#include "fs_impl.hpp"
#include "path_watcher_impl.hpp"

namespace uvkit {

namespace detail {
void fs_poll_state::on_poll(uv_fs_poll_t* h, int status, const uv_stat_t* prev,
                            const uv_stat_t* curr) noexcept {
    auto* s = state_of<fs_poll_state>(h);
    const std::error_code ec = status_code(status);
    const file_stat p = prev ? to_file_stat(*prev) : file_stat{};
    const file_stat c = curr ? to_file_stat(*curr) : file_stat{};
    deliver_watch(
        s,
        [&]() noexcept {
            return fs_poll_record{ec, p, c};
        },
        ec, p, c);
}
}  // namespace detail

using detail::fs_poll_state;

fs_poll::fs_poll(uvkit::loop& l)
    : path_watcher(detail::create_state<fs_poll_state>(l, "uv_fs_poll_init", &uv_fs_poll_init)) {}

void fs_poll::start_fn(std::string_view path, std::chrono::milliseconds interval, poll_handler&& h,
                       bool queued, std::error_code& ec) noexcept {
    auto* s = get<fs_poll_state>(ec);
    const bool bad_interval = interval.count() < 0 || interval.count() > static_cast<long long>(UINT_MAX);
    detail::start_watch(s, path, std::move(h), queued, bad_interval, ec, [&](const char* p) {
        return uv_fs_poll_start(&s->h, &fs_poll_state::on_poll, p, static_cast<unsigned>(interval.count()));
    });
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

}  // namespace uvkit
