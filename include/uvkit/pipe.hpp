// uvkit/pipe.hpp: a local stream (uv_pipe_t): Unix domain socket, Windows named pipe, or an fd.
//
// What it is: a stream (see uvkit/stream.hpp for reading and writing) plus
// what is a pipe's own: bind to a name, connect to one, adopt an open file
// descriptor (open(0) for stdin), names and permissions. An IPC pipe
// (`pipe{loop, true}`) can also carry handles: write(data, tcp, h) sends an
// open socket to the peer, which takes it with pending_count() and accept(),
// possibly on another loop or in another process. This is how several loops
// share the connections one of them accepts.
//
//     uvkit::pipe server{loop};
//     server.bind("/tmp/app.sock");
//     server.listen(128, [&](std::error_code ec) {
//         if (ec) return;
//         uvkit::pipe client{loop};
//         server.accept(client);
//         ...
//     });
//
//     // IPC: the receiving side, on the loop that will serve the connection.
//     ipc.read_start([&](std::error_code ec, std::string_view) {
//         while (!ec && ipc.pending_count() > 0 && ipc.pending_type() == UV_TCP) {
//             uvkit::tcp conn{loop};
//             ipc.accept(conn);
//             ...
//         }
//     });
//
// Lifetime: see uvkit/handle.hpp. Closing a pipe completes its pending
// connect, writes and shutdown with errc::canceled. A handle sent with
// write(data, handle, h) must stay open until `h` ran; the sender may close
// it after that, the receiver's copy stays open.
//
// Errors: throwing and std::error_code& forms for every synchronous call.
// connect()'s errors (std::errc::no_such_file_or_directory,
// connection_refused, ...) arrive through its handler, as libuv reports them.
// A name containing '\0' or longer than the platform's socket path limit
// fails with UV_EINVAL / UV_ENAMETOOLONG instead of being truncated.
#pragma once

#include <string>

#include "uvkit/stream.hpp"

namespace uvkit {

namespace detail {
class pipe_connect_awaiter;
struct UVKIT_API pipe_state final : stream_state {
    using stream_state::stream_state;
    uv_pipe_t h{};
};
}  // namespace detail

/// Who may connect to a bound pipe (uv_pipe_chmod).
enum class pipe_access : int {
    readable = UV_READABLE,
    writable = UV_WRITABLE,
    read_write = UV_READABLE | UV_WRITABLE,
};

class UVKIT_API pipe : public stream {
public:
    /// An empty pipe: every operation fails with UV_EINVAL until one is moved in.
    pipe() noexcept = default;
    /// Creates a pipe handle on `l` (uv_pipe_init); `ipc` makes it able to pass
    /// handles (both ends must agree). Nothing is open until bind, connect or
    /// open. Throws std::system_error.
    explicit pipe(uvkit::loop& l, bool ipc = false);
    pipe(pipe&&) noexcept = default;
    pipe& operator=(pipe&&) noexcept = default;
    ~pipe() = default;

    /// True if created with ipc = true (uv_pipe_t::ipc); false when empty.
    bool ipc() const noexcept;

    /// Binds to a path (Unix) or a pipe name such as \\.\pipe\app (Windows)
    /// (uv_pipe_bind). On Unix the socket file is created and is not removed
    /// at close: remove it yourself. (libuv 1.44 has no abstract names.)
    void bind(const std::string& name);
    void bind(const std::string& name, std::error_code& ec) noexcept;

    /// Connects to `name` (uv_pipe_connect); `h(ec)` is called exactly once,
    /// with an empty ec on success, an error such as
    /// std::errc::no_such_file_or_directory or connection_refused, or
    /// errc::canceled if the handle was closed first. Only an unusable handle
    /// or an invalid name fail synchronously.
    template <class F>
    void connect(const std::string& name, F&& h) {
        std::error_code ec;
        connect(name, std::forward<F>(h), ec);
        if (ec) detail::throw_uv_error(ec.value(), "uv_pipe_connect");
    }
    template <class F>
    void connect(const std::string& name, F&& h, std::error_code& ec) noexcept {
        connect_fn(name, detail::write_handler(std::forward<F>(h)), ec);
    }

    /// Adopts an open file descriptor or HANDLE (uv_pipe_open): stdin/stdout,
    /// one end of uv_pipe() or of a socketpair. uvkit closes it at close().
    void open(uv_file fd);
    void open(uv_file fd, std::error_code& ec) noexcept;

    /// The name the pipe is bound to (uv_pipe_getsockname); "" if unnamed.
    std::string local_name() const;
    std::string local_name(std::error_code& ec) const noexcept;

    /// The name of the connected peer (uv_pipe_getpeername).
    std::string peer_name() const;
    std::string peer_name(std::error_code& ec) const noexcept;

    /// Number of pipe instances a Windows server keeps (uv_pipe_pending_instances);
    /// no effect elsewhere or when empty.
    void pending_instances(int count) noexcept;

    /// Lets other users connect to the bound pipe (uv_pipe_chmod).
    void chmod(pipe_access access);
    void chmod(pipe_access access, std::error_code& ec) noexcept;

    using stream::write;
    /// Writes `data` and sends `send_handle` (an open tcp or pipe; on Windows
    /// a tcp) with it over this IPC pipe (uv_write2). `data` must not be empty
    /// and must stay alive, and `send_handle` open, until `h(ec)` ran. `h` is
    /// called exactly once; errc::canceled if this pipe was closed first.
    /// UV_EINVAL if this pipe is not an IPC pipe, or send_handle is unusable.
    template <class F>
    void write(std::string_view data, stream& send_handle, F&& h) {
        std::error_code ec;
        write(data, send_handle, std::forward<F>(h), ec);
        if (ec) detail::throw_uv_error(ec.value(), "uv_write2");
    }
    template <class F>
    void write(std::string_view data, stream& send_handle, F&& h, std::error_code& ec) noexcept {
        write_handle_fn(data, send_handle, detail::write_handler(std::forward<F>(h)), ec);
    }

    /// Handles received over this IPC pipe and not yet accepted (uv_pipe_pending_count).
    /// Check it in the read handler; 0 when empty.
    int pending_count() const noexcept;

    /// The type of the next received handle (uv_pipe_pending_type): UV_TCP or
    /// UV_NAMED_PIPE (UV_UDP on Unix); UV_UNKNOWN_HANDLE if none or empty.
    /// Create a handle of that type and take it with accept(stream&).
    uv_handle_type pending_type() const noexcept;

    /// The next connection on a server that listen(backlog) started
    /// (uvkit/co/pipe.hpp). The new pipe has the server's ipc flag.
    detail::accept_awaiter<pipe> async_accept() noexcept;
    detail::accept_awaiter<pipe> async_accept(std::error_code& ec) noexcept;

    /// The libuv handle, or nullptr for an empty pipe.
    uv_pipe_t* raw() const noexcept;

private:
    friend class detail::pipe_connect_awaiter;
    template <class>
    friend class detail::accept_awaiter;
    static pipe accepted_peer(const detail::stream_state& server, uvkit::loop& l) {
        return pipe{l, reinterpret_cast<const uv_pipe_t*>(server.stream())->ipc != 0};
    }

    void write_handle_fn(std::string_view data, stream& send_handle, detail::write_handler&& h,
                         std::error_code& ec) noexcept;
    void connect_fn(const std::string& name, detail::write_handler&& h, std::error_code& ec,
                    detail::request_base** started = nullptr) noexcept;
};

}  // namespace uvkit
