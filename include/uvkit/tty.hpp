// uvkit/tty.hpp: a terminal stream (uv_tty_t).
//
// What it is: a stream (see uvkit/stream.hpp for reading and writing) over a
// terminal's file descriptor (0, 1, 2 or any tty), plus what is a terminal's
// own: the mode (line-buffered, raw, binary-safe I/O) and the window size.
//
//     uvkit::tty in{loop, 0};
//     in.set_mode(uvkit::tty_mode::raw);      // key by key, no echo
//     in.read_start([&](std::error_code ec, std::string_view keys) { ... });
//     ...
//     uvkit::tty::reset_mode();               // before exiting
//
// Lifetime: see uvkit/handle.hpp. Closing a tty does not restore its mode:
// set_mode(tty_mode::normal) or reset_mode() first. On Unix libuv reopens the
// terminal, so that making it non-blocking does not affect other processes
// sharing it; the fd passed in stays yours to close.
//
// Errors: throwing and std::error_code& forms for every synchronous call.
// Creating a tty over a regular file fails with UV_EINVAL (a pipe or socket
// is accepted and behaves as a plain stream; set_mode then fails).
#pragma once

#include "uvkit/stream.hpp"

namespace uvkit {

namespace detail {
struct UVKIT_API tty_state final : stream_state {
    using stream_state::stream_state;
    uv_tty_t h{};
};
}  // namespace detail

/// Terminal modes (uv_tty_mode_t).
enum class tty_mode : int {
    normal = UV_TTY_MODE_NORMAL,  // line-buffered, echo: as the shell left it
    raw = UV_TTY_MODE_RAW,        // each key as it is typed, no echo, no signals from ^C
    io = UV_TTY_MODE_IO,          // binary-safe raw I/O (Unix only)
};

/// A terminal's size in character cells.
struct tty_size {
    int width = 0;
    int height = 0;
    friend bool operator==(const tty_size&, const tty_size&) = default;
};

class UVKIT_API tty : public stream {
public:
    /// An empty tty: every operation fails with UV_EINVAL until one is moved in.
    tty() noexcept = default;
    /// Opens the terminal `fd` as a stream on `l` (uv_tty_init). Throws
    /// std::system_error, UV_EINVAL for a regular file.
    explicit tty(uvkit::loop& l, uv_file fd);
    tty(tty&&) noexcept = default;
    tty& operator=(tty&&) noexcept = default;
    ~tty() = default;

    /// Switches the terminal mode (uv_tty_set_mode). The first switch away from
    /// normal remembers the terminal's settings for reset_mode().
    void set_mode(tty_mode mode);
    void set_mode(tty_mode mode, std::error_code& ec) noexcept;

    /// The terminal's size (uv_tty_get_winsize); {0, 0} for a terminal that does not know it.
    tty_size window_size() const;
    tty_size window_size(std::error_code& ec) const noexcept;

    /// Restores the settings saved by the process's first set_mode() away from
    /// normal (uv_tty_reset_mode). Safe from a signal handler; call it before
    /// exiting after using raw mode. Throws std::system_error (UV_EBUSY if
    /// another thread is changing a mode).
    static void reset_mode();
    static void reset_mode(std::error_code& ec) noexcept;

    /// The libuv handle, or nullptr for an empty tty.
    uv_tty_t* raw() const noexcept;
};

}  // namespace uvkit
