// uvkit/co/tls.hpp: awaitable TLS handshake, read, write and shutdown.
//
//     uvkit::tls_stream t{ctx, co_await uvkit::connect(loop, ep)};
//     t.set_hostname("localhost");
//     co_await t.async_handshake();                       // tls_errc::verify_failed, ...
//     co_await t.async_write("ping");
//     std::string reply = co_await t.async_read();        // "" at the peer's close_notify
//     co_await t.async_shutdown();                        // close_notify, then FIN
//
// Each has a throwing form and one taking a trailing std::error_code&.
//
// Reading: the first awaited read makes the stream deliver to coroutines; bytes
// that arrive while no read waits are kept (up to 64 KiB, then reading pauses)
// and handed to the next read. One read may wait at a time (a second gets
// UV_EALREADY; so does a read while a read_start() handler reads the stream;
// read_start() takes the stream over when no read waits and no bytes are kept,
// else UV_EBUSY). A peer that closes without close_notify is
// tls_errc::unexpected_eof, not "".
//
// Cancellation, as for streams: a cancelled read completes with
// errc::canceled (the stream stays usable); a cancelled handshake, write or
// shutdown closes the stream and completes with errc::canceled once the
// transport reported it. Destroying a suspended task that waits on a
// handshake, write or shutdown closes the stream too (so that no borrowed
// bytes are read after the frame is gone); one waiting on a read just stops
// reading. Closing or destroying the tls_stream completes what waits with
// errc::canceled.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "uvkit/co/operation.hpp"
#include "uvkit/tls.hpp"

namespace uvkit {

namespace detail {

struct tls_op;

/// The coroutine layer's door into tls_stream's state.
struct UVKIT_API tls_access {
    /// The stream's state with a reference held (nullptr if empty or closing).
    static tls_state* acquire(const tls_stream& t) noexcept;
    static void release(tls_state* s) noexcept;
    static uvkit::loop* loop_of(const tls_stream& t) noexcept;
};

/// An awaited handshake, write or shutdown: the core's tls_op completes it.
class UVKIT_API tls_request_waiter : public uvkit::operation<tls_request_waiter>, tls_consumer {
public:
    enum class kind : unsigned char { handshake, write, shutdown };

    tls_request_waiter(tls_stream& t, kind k, std::error_code* ec) noexcept
        : operation(tls_access::loop_of(t), ec), stream_(&t), kind_(k) {}
    ~tls_request_waiter();
    tls_request_waiter(tls_request_waiter&&) = delete;

    void start();
    void on_cancel() noexcept;

protected:
    void tls_done(std::error_code ec) noexcept override;

    const tls_stream* stream_;
    tls_state* st_ = nullptr;
    tls_op* op_ = nullptr;
    kind kind_;
    std::string_view data_;
    std::string owned_;
    bool has_owned_ = false;
};

class tls_handshake_awaiter final : public tls_request_waiter {
public:
    tls_handshake_awaiter(tls_stream& t, std::error_code* ec) noexcept
        : tls_request_waiter(t, kind::handshake, ec) {}
    void await_resume() { deliver("uvkit::tls_stream::async_handshake"); }
};

class tls_write_awaiter final : public tls_request_waiter {
public:
    tls_write_awaiter(tls_stream& t, std::string_view data, std::error_code* ec) noexcept
        : tls_request_waiter(t, kind::write, ec) {
        data_ = data;
    }
    tls_write_awaiter(tls_stream& t, std::string&& data, std::error_code* ec) noexcept
        : tls_request_waiter(t, kind::write, ec) {
        owned_ = std::move(data);
        has_owned_ = true;
    }
    void await_resume() { deliver("uvkit::tls_stream::async_write"); }
};

class tls_shutdown_awaiter final : public tls_request_waiter {
public:
    tls_shutdown_awaiter(tls_stream& t, std::error_code* ec) noexcept
        : tls_request_waiter(t, kind::shutdown, ec) {}
    void await_resume() { deliver("uvkit::tls_stream::async_shutdown"); }
};

struct co_tls_reader;

/// An awaited read: the bytes go into `dst_` or `*out_`; the result is their count.
class UVKIT_API tls_read_waiter : public uvkit::operation<tls_read_waiter, std::size_t> {
public:
    tls_read_waiter(tls_stream& t, std::error_code* ec) noexcept
        : operation(tls_access::loop_of(t), ec), stream_(&t) {}
    ~tls_read_waiter();
    tls_read_waiter(tls_read_waiter&&) = delete;

    void start();
    void on_cancel() noexcept;
    /// Takes bytes from `d` (all of them for a string, what fits for a span): returns how many.
    std::size_t take(std::string_view d);
    /// A span read's buffer, to decrypt into in place; empty for a string read.
    std::span<char> room() const noexcept { return out_ ? std::span<char>{} : dst_; }
    /// Completes with what take() took, or with the end of the stream / its error.
    void done(std::size_t n) noexcept {
        reader_ = nullptr;
        complete(n);
    }
    void ended(std::error_code ec) noexcept;
    /// Ends with `ec` inside a user's call (read_stop()): the loop resumes the coroutine.
    void ended_soon(std::error_code ec) noexcept;

protected:
    const tls_stream* stream_;
    tls_state* st_ = nullptr;
    co_tls_reader* reader_ = nullptr;
    std::span<char> dst_;
    std::string* out_ = nullptr;
};

template <class R>
class tls_read_awaiter final : public tls_read_waiter {
public:
    tls_read_awaiter(tls_stream& t, std::error_code* ec) noexcept : tls_read_waiter(t, ec) {
        if constexpr (std::is_same_v<R, std::string>) out_ = &str_;
    }
    tls_read_awaiter(tls_stream& t, std::span<char> dst, std::error_code* ec) noexcept
        : tls_read_waiter(t, ec) {
        dst_ = dst;
    }
    R await_resume() {
        std::size_t n = tls_read_waiter::await_resume();
        if constexpr (std::is_same_v<R, std::string>) {
            (void)n;
            return std::move(str_);
        } else {
            return n;
        }
    }

private:
    struct no_string {};
    [[no_unique_address]] std::conditional_t<std::is_same_v<R, std::string>, std::string, no_string> str_;
};

}  // namespace detail

// tls_stream's coroutine members, declared in uvkit/tls.hpp.

inline detail::tls_handshake_awaiter tls_stream::async_handshake() noexcept { return {*this, nullptr}; }
inline detail::tls_handshake_awaiter tls_stream::async_handshake(std::error_code& ec) noexcept {
    return {*this, &ec};
}
inline detail::tls_read_awaiter<std::string> tls_stream::async_read() noexcept { return {*this, nullptr}; }
inline detail::tls_read_awaiter<std::string> tls_stream::async_read(std::error_code& ec) noexcept {
    return {*this, &ec};
}
inline detail::tls_read_awaiter<std::size_t> tls_stream::async_read(std::span<char> buf) noexcept {
    return {*this, buf, nullptr};
}
inline detail::tls_read_awaiter<std::size_t> tls_stream::async_read(std::span<char> buf,
                                                                    std::error_code& ec) noexcept {
    return {*this, buf, &ec};
}
inline detail::tls_write_awaiter tls_stream::async_write(std::string_view data) noexcept {
    return {*this, data, nullptr};
}
inline detail::tls_write_awaiter tls_stream::async_write(std::string_view data,
                                                         std::error_code& ec) noexcept {
    return {*this, data, &ec};
}
template <class S, class>
detail::tls_write_awaiter tls_stream::async_write(S&& data) noexcept {
    return {*this, std::move(data), nullptr};
}
template <class S, class>
detail::tls_write_awaiter tls_stream::async_write(S&& data, std::error_code& ec) noexcept {
    return {*this, std::move(data), &ec};
}
inline detail::tls_shutdown_awaiter tls_stream::async_shutdown() noexcept { return {*this, nullptr}; }
inline detail::tls_shutdown_awaiter tls_stream::async_shutdown(std::error_code& ec) noexcept {
    return {*this, &ec};
}

}  // namespace uvkit
