// uvkit/fs_poll.hpp: watching a path by polling its status (uv_fs_poll_t).
//
// What it is: stats `path` every `interval` and reports when anything in the
// status changed, with the status before and after. Slower than fs_event but
// works everywhere, on network file systems too, and for paths that do not
// exist yet.
//
//     uvkit::fs_poll p{loop};
//     p.start("app.log", 500ms, [&](std::error_code ec, const uvkit::file_stat& prev,
//                                   const uvkit::file_stat& curr) {
//         if (!ec && curr.size > prev.size) tail_from(prev.size);
//     });
//
// Or pull (uvkit/co/fs.hpp): `p.start(path, 500ms); auto r = co_await p.async_next();`.
//
// Reports: the handler runs when the status changed; when the path cannot be
// stat'ed it gets that error once (e.g. UV_ENOENT, with `curr` zeroed), and
// again only if the error changes; when the path comes back, it gets no error
// and the new status. A queued watcher keeps at most 1024 unconsumed reports.
//
// Lifetime: see uvkit/handle.hpp; closing completes a pending async_next()
// with errc::canceled.
//
// Errors: start on an empty or closed handle, with a NUL in the path or an empty
// handler: UV_EINVAL.
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>

#include "uvkit/detail/path_watcher.hpp"
#include "uvkit/fs.hpp"

namespace uvkit {

/// One change, as async_next() gives it.
struct fs_poll_record {
    std::error_code ec;
    file_stat prev, curr;
};

namespace detail {
/// What fs_poll's path_watcher stamps in.
struct fs_poll_traits {
    using uv_type = uv_fs_poll_t;
    using record = fs_poll_record;
    using signature = void(std::error_code, const file_stat&, const file_stat&);
    static int stop(uv_fs_poll_t* h) noexcept { return uv_fs_poll_stop(h); }
    static int getpath(uv_fs_poll_t* h, char* buf, std::size_t* n) noexcept {
        return uv_fs_poll_getpath(h, buf, n);
    }
    static constexpr const char* next_name = "uvkit::fs_poll::async_next";
};

struct UVKIT_API fs_poll_state final : path_watcher_state<fs_poll_traits> {
    using path_watcher_state::path_watcher_state;
    static void on_poll(uv_fs_poll_t* h, int status, const uv_stat_t* prev, const uv_stat_t* curr) noexcept;
};
}  // namespace detail

/// A status poller of one path (uv_fs_poll_t). From detail::path_watcher:
/// stop(), path(), async_next() (uvkit/co/fs.hpp), raw(), and handle's functions.
class UVKIT_API fs_poll : public detail::path_watcher<detail::fs_poll_traits, detail::fs_poll_state> {
public:
    using poll_handler = detail::unique_function<void(std::error_code, const file_stat&, const file_stat&)>;

    /// An empty poller: every operation fails with UV_EINVAL until one is moved in.
    fs_poll() noexcept = default;
    /// Creates a poller on `l` (uv_fs_poll_init). Throws std::system_error.
    explicit fs_poll(uvkit::loop& l);
    fs_poll(fs_poll&&) noexcept = default;
    fs_poll& operator=(fs_poll&&) noexcept = default;
    ~fs_poll() = default;

    /// Polls `path` every `interval` (uv_fs_poll_start): `h(ec, prev, curr)`
    /// on each change. Replaces a previous start. Throws std::system_error.
    void start(std::string_view path, std::chrono::milliseconds interval, poll_handler h);
    void start(std::string_view path, std::chrono::milliseconds interval, poll_handler h,
               std::error_code& ec) noexcept;
    /// Polls and queues the reports for async_next().
    void start(std::string_view path, std::chrono::milliseconds interval);
    void start(std::string_view path, std::chrono::milliseconds interval, std::error_code& ec) noexcept;

private:
    void start_fn(std::string_view path, std::chrono::milliseconds interval, poll_handler&& h, bool queued,
                  std::error_code& ec) noexcept;
};

}  // namespace uvkit
