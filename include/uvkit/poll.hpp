// uvkit/poll.hpp: readiness of a foreign socket (uv_poll_t).
//
// What it is: tells you when a socket that someone else reads and writes
// becomes readable, writable, disconnected or has priority data, the way
// mio's Poll/Interest does. It brings another C library's sockets (a
// database driver, c-ares, libcurl's multi interface) into the loop: uvkit
// only reports readiness; the library does the I/O. libuv's rules apply:
// readiness may be spurious (a read can still say EAGAIN); do not use it on
// a socket that a uvkit tcp/udp already owns; on Windows only sockets work.
//
//     uvkit::poll p{loop, sock};
//     p.start(uvkit::poll::readable, [&](std::error_code ec, int events) {
//         if (ec) { p.close(); return; }
//         if (events & uvkit::poll::readable) library_read(sock);
//     });
//
// Lifetime: see uvkit/handle.hpp. The socket is borrowed: uvkit never closes
// it. Close or destroy the poll handle before closing the socket (libuv's
// rule); stop() is not enough. One poll handle per socket at a time. The
// handler may stop, restart (with other events or a new handler), move,
// close or destroy its own handle.
//
// Functions: the constructor (a socket) and from_fd() (a file descriptor,
// Unix), start, stop, raw.
//
// Errors: creating a poll handle for a descriptor that cannot be polled
// (e.g. a regular file on Linux: UV_EPERM) or that already has one (UV_EEXIST)
// throws std::system_error; start on an empty, closing or closed handle, or
// with bits other than the four events below, fails with UV_EINVAL. An error
// while polling (e.g. UV_EBADF) reaches the handler as its std::error_code,
// with events 0; the handle is then stopped.
#pragma once

#include "uvkit/handle.hpp"

namespace uvkit {

namespace detail {
struct UVKIT_API poll_state final : handle_state {
    using handle_state::handle_state;
    uv_poll_t h{};
    handler_slot<void(std::error_code, int)> cb;
    static void on_poll(uv_poll_t* p, int status, int events) noexcept;
};
}  // namespace detail

class UVKIT_API poll : public handle {
public:
    /// The events to watch and to report; combine them with `|`, like mio's Interest.
    enum event : int {
        readable = UV_READABLE,        ///< data to read, or a connection to accept
        writable = UV_WRITABLE,        ///< room to write
        disconnect = UV_DISCONNECT,    ///< the peer shut down its write side (where the OS tells)
        prioritized = UV_PRIORITIZED,  ///< urgent (out-of-band) data to read
    };
    /// Every event bit at once.
    static constexpr int all_events = readable | writable | disconnect | prioritized;

    /// An empty handle: every operation fails with UV_EINVAL until one is moved in.
    poll() noexcept = default;
    /// Watches the socket `sock` (uv_poll_init_socket); the portable form.
    /// Throws std::system_error.
    poll(uvkit::loop& l, uv_os_sock_t sock);
    /// Watches the file descriptor `fd` (uv_poll_init): a pipe, a tty, a
    /// socket or a character device on Unix; on Windows only a socket's fd.
    /// Throws std::system_error.
    static poll from_fd(uvkit::loop& l, int fd);
    poll(poll&&) noexcept = default;
    poll& operator=(poll&&) noexcept = default;
    ~poll() = default;

    /// Calls `h(std::error_code, int events)` whenever one of `events` is
    /// ready, with the ready ones (uv_poll_start). Restarting replaces the
    /// events and the handler. `events` 0 watches nothing (like stop()).
    /// Throws std::system_error.
    template <class F>
    void start(int events, F&& h) {
        start_fn(events, detail::unique_function<void(std::error_code, int)>(std::forward<F>(h)));
    }
    /// Non-throwing twin of start(): errors go to `ec`, the handler is dropped.
    template <class F>
    void start(int events, F&& h, std::error_code& ec) noexcept {
        start_fn(events, detail::unique_function<void(std::error_code, int)>(std::forward<F>(h)), ec);
    }

    /// Stops watching (uv_poll_stop). No-op when stopped or empty.
    void stop() noexcept;

    /// The libuv handle, or nullptr for an empty handle.
    uv_poll_t* raw() const noexcept;

private:
    struct fd_tag {};
    poll(uvkit::loop& l, int fd, fd_tag);
    void start_fn(int events, detail::unique_function<void(std::error_code, int)>&& h);
    void start_fn(int events, detail::unique_function<void(std::error_code, int)>&& h,
                  std::error_code& ec) noexcept;
};

}  // namespace uvkit
