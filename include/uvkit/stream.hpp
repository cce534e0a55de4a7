// uvkit/stream.hpp: the operations of a byte stream (uv_stream_t).
//
// What it is: the base of tcp (and of pipe and tty): listen/accept, reading,
// writing and shutdown. It is not created directly.
//
// Reading: read_start(h) calls `h(ec, data)` for every chunk. `data` points
// into a buffer that is only valid during the call (by default one 64 KiB
// buffer per loop, reused: reading allocates nothing). At end of stream the
// handler gets errc::eof with empty data and reading stops; on any other
// error likewise. set_buffer_provider() supplies your own buffers.
//
// Writing: every write's handler is called exactly once, on the loop thread,
// after the bytes were handed to the kernel, or with the error. Closing the
// stream completes the writes still queued with errc::canceled; a write that
// had already finished reports its own status (success, or e.g. broken_pipe),
// so `ec == errc::canceled` is not a sign that the stream is gone: release
// per-connection state in close()'s on_closed handler instead. Writes
// complete in order. If starting a write
// fails, the handler is never called and the error is thrown (or stored in
// `ec`). Borrowed bytes (string_view, spans of string_view) must stay alive
// until the handler ran; owned bytes (std::string&&) are kept by uvkit.
// Write requests come from a per-loop pool: a warm stream's writes do not
// allocate.
//
// Lifetime and errors: see uvkit/handle.hpp; operations on an empty, closing or
// closed stream fail with UV_EINVAL.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "uvkit/handle.hpp"

namespace uvkit {

namespace detail {
// The coroutine layer's awaitables, the return types of the async_ members
// (defined in uvkit/co/stream.hpp and uvkit/co/tcp.hpp).
template <class R>
class read_awaiter;
class write_awaiter;
class owned_write_awaiter;
class shutdown_awaiter;
template <class S>
class accept_awaiter;

/// What only a listening stream needs: made by listen() (or a first
/// async_accept()), so that a connection's state block does not carry it.
struct listen_state {
    handler_slot<void(std::error_code)> on_connection;
    // listen(backlog) without a handler: the connections (at most one, libuv
    // accepts no more until it is taken) and the error that nobody took yet.
    int pending_connections = 0;
    std::error_code accept_error = no_error();
};

struct UVKIT_API stream_state : handle_state {
    using handle_state::handle_state;
    uv_stream_t* stream() const noexcept { return reinterpret_cast<uv_stream_t*>(uvh); }

    handler_slot<void(std::error_code, std::string_view)> on_read;
    unique_function<std::span<char>(std::size_t)> provider;
    std::unique_ptr<listen_state> listener;

    /// The listening part, made on first use; nullptr if out of memory.
    listen_state* listening() noexcept {
        if (!listener) listener.reset(new (std::nothrow) listen_state);
        return listener.get();
    }

    static void alloc_cb(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf) noexcept;
    static void read_cb(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void connection_cb(uv_stream_t* st, int status) noexcept;
};

template <class S>
inline constexpr bool is_owned_string = std::is_same_v<S, std::string>;
}  // namespace detail

class UVKIT_API stream : public handle {
public:
    /// Starts listening (uv_listen). `h(ec)` is called for every incoming
    /// connection (or a failed accept, e.g. UV_EMFILE); call accept() in it.
    template <class F>
    void listen(int backlog, F&& h) {
        listen_fn(backlog, detail::unique_function<void(std::error_code)>(std::forward<F>(h)));
    }
    template <class F>
    void listen(int backlog, F&& h, std::error_code& ec) noexcept {
        listen_fn(backlog, detail::unique_function<void(std::error_code)>(std::forward<F>(h)), ec);
    }

    /// Listens with no handler (uv_listen): a connection waits until it is
    /// taken, by accept() or by a coroutine's async_accept() (uvkit/co/tcp.hpp);
    /// libuv accepts no further connection until then. Throws std::system_error.
    void listen(int backlog = 128);
    void listen(int backlog, std::error_code& ec) noexcept;

    /// Accepts a pending connection into `client`, an initialised, unconnected
    /// stream of the same kind (uv_accept). Throws std::system_error (UV_EAGAIN if none is pending).
    void accept(stream& client);
    void accept(stream& client, std::error_code& ec) noexcept;

    /// Calls `h(std::error_code, std::string_view)` for each chunk read (uv_read_start).
    /// Replaces any previous read handler. On a stream that coroutines read,
    /// UV_EBUSY while a read waits or read bytes wait to be taken; otherwise
    /// the handler takes the stream over. The first read_start() of a loop makes
    /// the 64 KiB read buffer its streams share: UV_ENOMEM if it cannot.
    template <class F>
    void read_start(F&& h) {
        read_start_fn(detail::unique_function<void(std::error_code, std::string_view)>(std::forward<F>(h)));
    }
    template <class F>
    void read_start(F&& h, std::error_code& ec) noexcept {
        read_start_fn(detail::unique_function<void(std::error_code, std::string_view)>(std::forward<F>(h)),
                      ec);
    }

    /// Stops reading (uv_read_stop); a coroutine's read waiting on the stream
    /// completes with errc::canceled. No-op when not reading or empty.
    void read_stop() noexcept;

    /// Supplies the buffers reads go into: `f(suggested_size)` returns a
    /// std::span<char> that stays valid until the read handler returned. An
    /// empty span makes the read handler get std::errc::no_buffer_space.
    /// Pass nullptr to return to the loop's shared buffer.
    template <class F>
    void set_buffer_provider(F&& f) {
        set_provider_fn(detail::unique_function<std::span<char>(std::size_t)>(std::forward<F>(f)));
    }

    /// Writes borrowed bytes (uv_write); `data` must stay alive until `h(ec)` ran.
    template <class F>
    void write(std::string_view data, F&& h) {
        uv_buf_t b = detail::make_buf(data);
        if (int rc = write_borrowed(&b, 1, detail::write_handler(std::forward<F>(h))))
            detail::check(rc, "uv_write");
    }
    template <class F>
    void write(std::string_view data, F&& h, std::error_code& ec) noexcept {
        uv_buf_t b = detail::make_buf(data);
        detail::set_error(ec, write_borrowed(&b, 1, detail::write_handler(std::forward<F>(h))));
    }

    /// Writes owned bytes: the string is moved into the request and freed after
    /// the write completed. The handler is optional.
    template <class S, class F = std::nullptr_t, class = std::enable_if_t<detail::is_owned_string<S>>>
    void write(S&& data, F&& h = nullptr) {
        if (int rc = write_start(nullptr, 0, detail::write_handler(std::forward<F>(h)), &data))
            detail::check(rc, "uv_write");
    }
    template <class S, class F, class = std::enable_if_t<detail::is_owned_string<S>>>
    void write(S&& data, F&& h, std::error_code& ec) noexcept {
        write_fn(nullptr, 0, detail::write_handler(std::forward<F>(h)), &data, ec);
    }

    /// Scatter/gather write of several borrowed buffers in one request.
    template <class F>
    void write(std::span<const std::string_view> bufs, F&& h) {
        std::error_code ec;
        write(bufs, std::forward<F>(h), ec);
        if (ec) detail::throw_uv_error(ec.value(), "uv_write");
    }
    template <class F>
    void write(std::initializer_list<std::string_view> bufs, F&& h) {
        write(std::span<const std::string_view>(bufs.begin(), bufs.size()), std::forward<F>(h));
    }
    template <class F>
    void write(std::span<const std::string_view> bufs, F&& h, std::error_code& ec) noexcept {
        write_views(bufs, detail::write_handler(std::forward<F>(h)), ec);
    }

    /// Writes what the kernel takes now without queueing (uv_try_write).
    /// Returns the number of bytes written; 0 if it would block.
    std::size_t try_write(std::string_view data);
    std::size_t try_write(std::string_view data, std::error_code& ec) noexcept;

    /// Shuts down the write side after the queued writes completed (uv_shutdown).
    /// `h(ec)` is called exactly once.
    template <class F>
    void shutdown(F&& h) {
        std::error_code ec;
        shutdown(std::forward<F>(h), ec);
        if (ec) detail::throw_uv_error(ec.value(), "uv_shutdown");
    }
    template <class F>
    void shutdown(F&& h, std::error_code& ec) noexcept {
        shutdown_fn(detail::write_handler(std::forward<F>(h)), ec);
    }

    // Socket buffer sizes (handle.hpp): SO_RCVBUF and SO_SNDBUF.
    using handle::recv_buffer_size;
    using handle::send_buffer_size;
    using handle::set_recv_buffer_size;
    using handle::set_send_buffer_size;

    /// Bytes queued for writing, not yet handed to the kernel (uv_stream_get_write_queue_size).
    std::size_t write_queue_size() const noexcept;

    // Coroutine operations (uvkit/co/stream.hpp has the rules). Each is awaited
    // once; the forms with std::error_code& never throw.

    /// The next chunk read, as a string; "" at end of stream.
    detail::read_awaiter<std::string> async_read() noexcept;
    detail::read_awaiter<std::string> async_read(std::error_code& ec) noexcept;
    /// Reads at least one byte into `buf` (in place, no allocation); 0 at end of stream.
    detail::read_awaiter<std::size_t> async_read(std::span<char> buf) noexcept;
    detail::read_awaiter<std::size_t> async_read(std::span<char> buf, std::error_code& ec) noexcept;
    /// Fills all of `buf`; end of stream first is errc::eof.
    detail::read_awaiter<std::size_t> async_read_exactly(std::span<char> buf) noexcept;
    detail::read_awaiter<std::size_t> async_read_exactly(std::span<char> buf, std::error_code& ec) noexcept;
    /// Appends to `buf` until it holds `delim`; returns the length up to and
    /// including the first `delim` (what follows stays in `buf`). More than
    /// `max` bytes without `delim` is std::errc::message_size; end of stream
    /// first is errc::eof.
    detail::read_awaiter<std::size_t> async_read_until(std::string& buf, std::string_view delim,
                                                       std::size_t max = 64 * 1024) noexcept;
    detail::read_awaiter<std::size_t> async_read_until(std::string& buf, std::string_view delim,
                                                       std::size_t max, std::error_code& ec) noexcept;
    /// Writes borrowed bytes: they must stay alive until the co_await completed.
    detail::write_awaiter async_write(std::string_view data) noexcept;
    detail::write_awaiter async_write(std::string_view data, std::error_code& ec) noexcept;
    /// Writes owned bytes (a std::string moved in).
    template <class S, class = std::enable_if_t<detail::is_owned_string<S>>>
    detail::owned_write_awaiter async_write(S&& data) noexcept;
    template <class S, class = std::enable_if_t<detail::is_owned_string<S>>>
    detail::owned_write_awaiter async_write(S&& data, std::error_code& ec) noexcept;
    /// Shuts down the write side once the queued writes completed.
    detail::shutdown_awaiter async_shutdown() noexcept;
    detail::shutdown_awaiter async_shutdown(std::error_code& ec) noexcept;

    /// uv_is_readable / uv_is_writable; false for an empty or closed stream.
    bool readable() const noexcept;
    bool writable() const noexcept;

    /// The libuv stream, or nullptr for an empty one.
    uv_stream_t* raw_stream() const noexcept {
        return state_ ? reinterpret_cast<uv_stream_t*>(state_->uvh) : nullptr;
    }

protected:
    friend struct detail::handle_access;
    using handle::handle;
    stream(stream&&) noexcept = default;
    stream& operator=(stream&&) noexcept = default;
    ~stream() = default;

    /// Starts a write of `bufs` (or of `*owned`); with `send_handle`, also
    /// passes that handle over this IPC pipe (uv_write2).
    void write_fn(const uv_buf_t* bufs, unsigned n, detail::write_handler&& h, std::string* owned,
                  std::error_code& ec, detail::request_base** started = nullptr,
                  uv_stream_t* send_handle = nullptr) noexcept {
        detail::set_error(ec, write_start(bufs, n, std::move(h), owned, started, send_handle));
    }
    /// write_fn's core: returns 0 or a libuv error code.
    int write_start(const uv_buf_t* bufs, unsigned n, detail::write_handler&& h, std::string* owned,
                    detail::request_base** started = nullptr, uv_stream_t* send_handle = nullptr) noexcept;
    /// write_start for borrowed buffers (n >= 1) and no handle to send: the
    /// short path every write(string_view) takes.
    int write_borrowed(const uv_buf_t* bufs, unsigned n, detail::write_handler&& h,
                       detail::request_base** started = nullptr) noexcept;

private:
    detail::owned_write_awaiter async_write_owned(std::string&& data, std::error_code* ec) noexcept;
    void listen_fn(int backlog, detail::unique_function<void(std::error_code)>&& h);
    void listen_fn(int backlog, detail::unique_function<void(std::error_code)>&& h,
                   std::error_code& ec) noexcept;
    void read_start_fn(detail::unique_function<void(std::error_code, std::string_view)>&& h);
    void read_start_fn(detail::unique_function<void(std::error_code, std::string_view)>&& h,
                       std::error_code& ec) noexcept;
    void set_provider_fn(detail::unique_function<std::span<char>(std::size_t)>&& f);
    void write_views(std::span<const std::string_view> bufs, detail::write_handler&& h,
                     std::error_code& ec) noexcept;
    void shutdown_fn(detail::write_handler&& h, std::error_code& ec,
                     detail::request_base** started = nullptr) noexcept;
};

}  // namespace uvkit
