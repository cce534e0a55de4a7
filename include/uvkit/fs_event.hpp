// uvkit/fs_event.hpp: watching a file or a directory for changes (uv_fs_event_t).
//
// What it is: the platform's change notification (inotify, FSEvents, kqueue,
// ReadDirectoryChangesW) on one path. For a directory, changes to its entries
// are reported with the entry's name; for a file, with the file's name.
//
//     uvkit::fs_event w{loop};
//     w.start("conf.d", 0, [&](std::error_code ec, std::string_view name, int events) {
//         if (events & UV_CHANGE) reload(name);        // UV_RENAME: created, deleted or renamed
//     });
//
// Or pull the events one at a time (uvkit/co/fs.hpp):
//
//     w.start("conf.d");                               // no handler: events are queued
//     uvkit::fs_event_record e = co_await w.async_next();
//
// Events: a bit set of UV_RENAME and UV_CHANGE; the platform decides how many
// events one change makes (an editor's save is often several), so treat them
// as "look again", not as an exact log. Flags: UV_FS_EVENT_RECURSIVE watches
// subdirectories too where the platform can (macOS, Windows); on Linux
// (inotify) libuv watches only the path itself.
// A queued watcher keeps at most 1024 unconsumed events; later ones are
// dropped (dropped() counts them): for "something changed" that loses nothing.
//
// Lifetime: see uvkit/handle.hpp. The handler may stop, restart, move, close or
// destroy its own watcher. Closing it completes a pending async_next() with
// errc::canceled.
//
// Errors: start on an empty or closed watcher, with a path containing a NUL,
// or with an empty handler: UV_EINVAL; a missing path: UV_ENOENT (thrown, or
// in the std::error_code& form).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "uvkit/detail/path_watcher.hpp"

namespace uvkit {

/// One change, as async_next() gives it: the entry's name (may be empty) and UV_RENAME | UV_CHANGE.
struct fs_event_record {
    std::error_code ec;
    std::string filename;
    int events = 0;
};

namespace detail {
/// What fs_event's path_watcher stamps in.
struct fs_event_traits {
    using uv_type = uv_fs_event_t;
    using record = fs_event_record;
    using signature = void(std::error_code, std::string_view, int);
    static int stop(uv_fs_event_t* h) noexcept { return uv_fs_event_stop(h); }
    static int getpath(uv_fs_event_t* h, char* buf, std::size_t* n) noexcept {
        return uv_fs_event_getpath(h, buf, n);
    }
    static constexpr const char* next_name = "uvkit::fs_event::async_next";
};

struct UVKIT_API fs_event_state final : path_watcher_state<fs_event_traits> {
    using path_watcher_state::path_watcher_state;
    static void on_event(uv_fs_event_t* h, const char* filename, int events, int status) noexcept;
};
}  // namespace detail

/// A watcher of one path (uv_fs_event_t). From detail::path_watcher: stop(),
/// path(), async_next() (uvkit/co/fs.hpp), raw(), and handle's functions.
class UVKIT_API fs_event : public detail::path_watcher<detail::fs_event_traits, detail::fs_event_state> {
public:
    using event_handler = detail::unique_function<void(std::error_code, std::string_view, int)>;

    /// An empty watcher: every operation fails with UV_EINVAL until one is moved in.
    fs_event() noexcept = default;
    /// Creates a watcher on `l` (uv_fs_event_init). Throws std::system_error.
    explicit fs_event(uvkit::loop& l);
    fs_event(fs_event&&) noexcept = default;
    fs_event& operator=(fs_event&&) noexcept = default;
    ~fs_event() = default;

    /// Watches `path` (uv_fs_event_start): `h(ec, filename, events)` for each
    /// change. Replaces a previous watch. Throws std::system_error.
    void start(std::string_view path, unsigned flags, event_handler h);
    void start(std::string_view path, unsigned flags, event_handler h, std::error_code& ec) noexcept;
    /// Watches `path` and queues the events for async_next().
    void start(std::string_view path, unsigned flags = 0);
    void start(std::string_view path, unsigned flags, std::error_code& ec) noexcept;
    /// Events a queued watcher dropped because nobody consumed them.
    std::size_t dropped() const noexcept { return dropped_count(); }

private:
    void start_fn(std::string_view path, unsigned flags, event_handler&& h, bool queued,
                  std::error_code& ec) noexcept;
};

}  // namespace uvkit
