// uvkit/co/stream.hpp: awaitable stream and TCP operations.
//
// What it is: the coroutine forms of reading, writing and shutdown, as
// members of every stream (connect and accept: uvkit/co/tcp.hpp). Each has a
// throwing form and a form taking a trailing `std::error_code&` that stores
// the error and never throws:
//
//     co_await c.async_write("ping");
//     std::string reply = co_await c.async_read();        // "" at EOF
//     std::size_t n = co_await c.async_read(buf, ec);     // 0 at EOF
//
// Reading: the first awaited read starts reading on the stream and it keeps
// reading between awaits, so a request/response exchange costs no extra
// system calls. Bytes that arrive while no coroutine waits are kept (up to
// 64 KiB, then reading pauses) and handed to the next read: nothing is lost.
// async_read(span) reads straight into the caller's buffer when it is waiting
// (no copy, no allocation). One read may wait on a stream at a time (a second
// gets UV_EALREADY). A stream read by a read_start() handler gets UV_EALREADY
// until read_stop(); read_start() on a stream coroutines read takes it over
// when no read waits and no read bytes wait to be taken (else UV_EBUSY).
//
// Writing: an awaited write that the kernel takes whole at once (nothing
// queued before it) completes without suspending: no request, no trip through
// the loop. After 64 such writes in a row without waiting for the loop, the
// next write goes through the loop, so that a coroutine writing in a loop
// lets the loop's other work run. A write the kernel takes in part writes the
// rest the usual way.
//
// Cancellation: a cancelled read stops reading and completes with
// errc::canceled (data not yet read stays in the kernel); a cancelled accept
// completes with errc::canceled; a cancelled write, shutdown or connect
// closes the stream (a half-written stream is of no use) and completes with
// errc::canceled once libuv reported it. Closing or destroying a stream
// completes the operations waiting on it with errc::canceled. Destroying a
// suspended task that waits on a write closes the stream, so that libuv never
// reads the freed bytes.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "uvkit/co/operation.hpp"
#include "uvkit/endpoint.hpp"
#include "uvkit/stream.hpp"

namespace uvkit {

namespace detail {

/// The door through which the coroutine layer reaches into handles.
struct UVKIT_API handle_access {
    /// Marks a handle as uvkit's own (see handle_state::internal).
    static void internal(handle& h) noexcept {
        if (h.state_) h.state_->make_internal();
    }
    static stream_state* state(const stream& s, std::error_code& ec) noexcept {
        return s.get<stream_state>(ec);
    }
    /// The stream's state block (nullptr for an empty stream), usable or not.
    static handle_state* state_block(const stream& s) noexcept { return s.state_; }
    /// The stream's state if it is usable, else nullptr.
    static stream_state* usable_state(const stream& s) noexcept {
        return s.usable() ? static_cast<stream_state*>(s.state_) : nullptr;
    }
    /// Starts a write of `owned`'s bytes (which the request takes); on failure
    /// stores the error in `ec` (left alone on success) and `owned` keeps its bytes.
    static void write_owned(stream& s, std::string* owned, std::error_code& ec, request_base** req) noexcept {
        if (int rc = s.write_start(nullptr, 0, nullptr, owned, req)) ec = make_uv_error(rc);
    }
    static void shutdown(stream& s, write_handler&& h, std::error_code& ec, request_base** req) noexcept {
        s.shutdown_fn(std::move(h), ec, req);
    }
    template <class Tcp>  // a template: tcp is not complete here
    static void connect(Tcp& t, const endpoint& ep, write_handler&& h, std::error_code& ec,
                        request_base** req) noexcept {
        t.connect_fn(ep, std::move(h), ec, req);
    }
};

struct read_waiter;
class accept_waiter;

/// The coroutine layer's part of one stream, the stream's handle_consumer:
/// made by its first awaited read or accept, released with its state block.
/// libuv's read callbacks then go straight to the waiting read (no handler in
/// between); bytes that arrive while no read waits are kept here.
struct UVKIT_API co_stream_state final : handle_consumer {
    explicit co_stream_state(stream_state* s) noexcept : st(s) {}

    /// The stream's co_stream_state, made on first use; nullptr if out of memory.
    static co_stream_state* of(stream_state* s) noexcept {
        if (s->consumer) [[likely]]
            return static_cast<co_stream_state*>(s->consumer);
        return make(s);
    }
    static co_stream_state* make(stream_state* s) noexcept;

    /// Starts libuv reading for coroutines; sets `ec` on failure.
    void start_reading(std::error_code& ec) noexcept;
    void stop_reading() noexcept;

    void stop() noexcept override;
    bool yield() noexcept override;
    void ready(int status) noexcept override;
    void release() noexcept override;

    stream_state* st;
    read_waiter* waiter = nullptr;      // the waiting read
    accept_waiter* acceptor = nullptr;  // the waiting accept
    /// The bytes read while no read waited, not yet taken.
    std::string_view kept() const noexcept {
        return {backlog.data() + backlog_pos, backlog.size() - backlog_pos};
    }
    /// Keeps `data` for the next reads (std::bad_alloc if out of memory).
    void keep(std::string_view data);
    /// The first `n` kept bytes were taken.
    void consume(std::size_t n) noexcept;

    // What was read while no read waited (from backlog_pos on), and the error
    // or EOF that followed it.
    std::string backlog;
    std::size_t backlog_pos = 0;
    std::error_code backlog_error = no_error();
    std::size_t offered = 0;  // the size of the buffer the last read was given
    bool reading = false;     // libuv reads for coroutines
    bool bulk = false;        // the last read filled its buffer: more is likely waiting
    /// Awaited writes completed at once (without the loop) since the stream's
    /// coroutines last waited for the loop; see request_awaiter::write_now().
    unsigned sync_writes = 0;
    static constexpr unsigned sync_write_limit = 64;
};

/// A coroutine waiting to read from a stream; see read_awaiter.
struct UVKIT_API read_waiter : operation {
    enum class kind { chunk, some, exactly, until };

    read_waiter(stream& s, kind k, std::error_code* ec_out) noexcept
        : operation(ec_out), stream_(&s), kind_(k) {}
    ~read_waiter() override {
        if (pending_) [[unlikely]]
            abandon();
    }

public:
    /// Takes bytes from [p, p+n): returns how many were used; sets done_.
    std::size_t take(const char* p, std::size_t n);
    /// The end of the stream or an error reached this read.
    void take_error(std::error_code e) noexcept;
    /// The caller's buffer still to fill, for reading in place.
    std::span<char> room() const noexcept { return dst_.subspan(filled_); }
    bool reads_in_place() const noexcept { return kind_ == kind::some || kind_ == kind::exactly; }

    /// The steady state of a reading loop, inline: nothing kept from before,
    /// the stream already reading, no cancellation requested. Everything else
    /// takes start_checked().
    bool start(std::coroutine_handle<> h, cancel_scope* scope) {
        stream_state* st = handle_access::usable_state(*stream_);
        auto* cs = st ? static_cast<co_stream_state*>(st->consumer) : nullptr;
        if ((scope && scope->requested()) || !cs || cs->waiter || !cs->reading || !cs->kept().empty() ||
            cs->backlog_error || kind_ == kind::until || (kind_ != kind::chunk && dst_.empty())) [[unlikely]]
            return start_checked(h, scope);
        cs_ = cs;
        wait(h, scope);
        return true;
    }
    bool start_checked(std::coroutine_handle<> h, cancel_scope* scope);  // start()'s every-case path
    /// Parks this read on the stream.
    void wait(std::coroutine_handle<> h, cancel_scope* scope) {
        suspend(h, scope, *cs_->st->owner);
        cs_->waiter = this;
        cs_->sync_writes = 0;  // this read waits for the loop
    }
    void complete() noexcept;                // resumes now (from a libuv callback)
    void abort(std::error_code e) noexcept;  // resumes soon, from the loop
    void cancel() noexcept override;
    /// dump_tasks(): "read tcp <peer>" ("read until ..." for async_read_until).
    void describe(task_dump& d) const override;
    /// Destroyed while waiting: unhooks this from the stream.
    void abandon() noexcept;

    stream* stream_;  // only until start(): the operation holds the state block
    kind kind_;
    std::span<char> dst_;
    std::size_t filled_ = 0;
    std::string* out_ = nullptr;
    std::string_view delim_;
    std::size_t max_ = 0;
    std::size_t result_ = 0;
    bool done_ = false;
    co_stream_state* cs_ = nullptr;
};

template <class R>
class read_awaiter final : read_waiter {
public:
    using read_waiter::read_waiter;
    read_awaiter(stream& s, kind k, std::error_code* ec_out, std::span<char> dst) noexcept
        : read_waiter(s, k, ec_out) {
        dst_ = dst;
    }
    read_awaiter(stream& s, std::string& buf, std::string_view delim, std::size_t max,
                 std::error_code* ec_out) noexcept
        : read_waiter(s, kind::until, ec_out) {
        out_ = &buf;
        delim_ = delim;
        max_ = max;
    }

    using read_waiter::await_ready;
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        if constexpr (std::is_same_v<R, std::string>) out_ = &str_;
        return start(h, scope_of(h));
    }
    R await_resume() {
        deliver("uvkit::async_read");
        if constexpr (std::is_same_v<R, std::string>)
            return std::move(str_);
        else
            return result_;
    }

private:
    struct no_string {};
    // The chunk read by async_read(); reads into a caller's buffer need none.
    [[no_unique_address]] std::conditional_t<std::is_same_v<R, std::string>, std::string, no_string> str_;
};

/// A write, shutdown or connect: one libuv request whose handler resumes us.
class UVKIT_API request_awaiter : public operation, request_consumer {
public:
    enum class kind { write, shutdown, connect };

protected:
    request_awaiter(stream& s, kind k, std::error_code* ec_out, uvkit::loop* l = nullptr) noexcept
        : operation(ec_out, l), stream_(&s), kind_(k) {}
    ~request_awaiter() override {
        if (req_) [[unlikely]]
            abandon();
    }

    bool start(std::coroutine_handle<> h, cancel_scope* scope);
    bool start_checked(std::coroutine_handle<> h, cancel_scope* scope);  // start()'s every-case path
    /// Destroyed while its request is in flight: the request must not resume this frame.
    void abandon() noexcept;
    void cancel() noexcept override;
    /// dump_tasks(): "write tcp <peer>", "shutdown ...", "connect ...".
    void describe(task_dump& d) const override;
    /// kind::connect: starts the connect request (tcp's, pipe's) without a handler.
    virtual void start_connect() noexcept { ec_ = make_uv_error(UV_EINVAL); }
    /// The request completed (its consumer): resumes now.
    void request_done(int status) noexcept final;
    /// Starts the borrowed write of data_ on st_ (open); false with ec_ set if it could not.
    bool start_borrowed() noexcept;
    /// start()'s path behind queued writes, out of line: start() itself stays
    /// a test and a jump, also for writes that take start_checked().
    bool start_queued(stream_state* st, std::coroutine_handle<> h, cancel_scope* scope);
    /// libuv's callback of an awaited borrowed write: the request goes back to
    /// its pool, then its awaiter (if its frame still waits) resumes.
    static void on_write(uv_write_t* req, int status) noexcept;
    /// kind::write: writes what the kernel takes now (uv_try_write). True if
    /// that was everything: the write is complete. Else what is left to write
    /// goes the usual way.
    bool write_now() noexcept;

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return start(h, scope_of(h));
    }
    /// Writes and shutdowns (connects return their stream: see connect_awaiter).
    void await_resume() { deliver(kind_ == kind::write ? "uvkit::async_write" : "uvkit::async_shutdown"); }

    stream* stream_;  // only until start(): the operation holds the state block
    stream_state* st_ = nullptr;
    kind kind_;
    std::string_view data_;
    std::string* owned_ = nullptr;  // an owned write's bytes (owned_write_awaiter's), else data_
    request_base* req_ = nullptr;
};

/// `co_await s.async_write(view)`: borrowed bytes.
class write_awaiter final : request_awaiter {
public:
    write_awaiter(stream& s, std::string_view data, std::error_code* ec_out) noexcept
        : request_awaiter(s, kind::write, ec_out) {
        data_ = data;
    }
    using request_awaiter::await_ready;
    using request_awaiter::await_resume;
    using request_awaiter::await_suspend;
};

/// `co_await s.async_write(std::move(str))`: the awaiter keeps the bytes
/// until the request took them.
class owned_write_awaiter final : request_awaiter {
public:
    owned_write_awaiter(stream& s, std::string&& data, std::error_code* ec_out) noexcept
        : request_awaiter(s, kind::write, ec_out), str_(std::move(data)) {
        owned_ = &str_;
    }
    using request_awaiter::await_ready;
    using request_awaiter::await_resume;
    using request_awaiter::await_suspend;

private:
    std::string str_;
};

class shutdown_awaiter final : request_awaiter {
public:
    shutdown_awaiter(stream& s, std::error_code* ec_out) noexcept
        : request_awaiter(s, kind::shutdown, ec_out) {}
    using request_awaiter::await_ready;
    using request_awaiter::await_resume;
    using request_awaiter::await_suspend;
};

/// A coroutine waiting for a connection on a listening stream (tcp, pipe):
/// the part that does not depend on the stream's type.
class UVKIT_API accept_waiter : public operation {
public:
    /// A connection is pending: accepts it (from the listen callback).
    void take_connection(std::error_code status) noexcept;
    void abort(std::error_code e) noexcept;

protected:
    accept_waiter(stream& server, std::error_code* ec_out) noexcept : operation(ec_out), server_(&server) {}
    ~accept_waiter() override;

    bool start(std::coroutine_handle<> h, cancel_scope* scope);
    void cancel() noexcept override;
    /// dump_tasks(): "accept tcp <local address>".
    void describe(task_dump& d) const override;
    /// Creates a new stream of the server's kind on `l` and accepts into it; sets ec_.
    virtual void accept_into(uvkit::loop& l) noexcept = 0;

    stream* server_;  // only until start(): the operation holds the state block
    stream_state* st_ = nullptr;
    co_stream_state* cs_ = nullptr;
};

/// `co_await server.async_accept()`: the accepted connection, of the server's type S.
template <class S>
class accept_awaiter final : accept_waiter {
public:
    accept_awaiter(S& server, std::error_code* ec_out) noexcept : accept_waiter(server, ec_out) {}

    using accept_waiter::await_ready;
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return start(h, scope_of(h));
    }
    S await_resume() {
        deliver("uvkit::async_accept");
        if (ec_) return S{};
        return std::move(client_);
    }

private:
    void accept_into(uvkit::loop& l) noexcept override {
        try {
            client_ = S::accepted_peer(*st_, l);
        } catch (const std::system_error& e) {
            ec_ = e.code();
            return;
        } catch (...) {
            ec_ = make_uv_error(UV_ENOMEM);
            return;
        }
        if (!set_error(ec_, uv_accept(st_->stream(), client_.raw_stream())))
            --st_->listener->pending_connections;
    }

    S client_;
};

}  // namespace detail

// The stream's coroutine members, declared in uvkit/stream.hpp.

inline detail::read_awaiter<std::string> stream::async_read() noexcept {
    return {*this, detail::read_waiter::kind::chunk, nullptr};
}
inline detail::read_awaiter<std::string> stream::async_read(std::error_code& ec) noexcept {
    return {*this, detail::read_waiter::kind::chunk, &ec};
}
inline detail::read_awaiter<std::size_t> stream::async_read(std::span<char> buf) noexcept {
    return {*this, detail::read_waiter::kind::some, nullptr, buf};
}
inline detail::read_awaiter<std::size_t> stream::async_read(std::span<char> buf,
                                                            std::error_code& ec) noexcept {
    return {*this, detail::read_waiter::kind::some, &ec, buf};
}
inline detail::read_awaiter<std::size_t> stream::async_read_exactly(std::span<char> buf) noexcept {
    return {*this, detail::read_waiter::kind::exactly, nullptr, buf};
}
inline detail::read_awaiter<std::size_t> stream::async_read_exactly(std::span<char> buf,
                                                                    std::error_code& ec) noexcept {
    return {*this, detail::read_waiter::kind::exactly, &ec, buf};
}
inline detail::read_awaiter<std::size_t> stream::async_read_until(std::string& buf, std::string_view delim,
                                                                  std::size_t max) noexcept {
    return {*this, buf, delim, max, nullptr};
}
inline detail::read_awaiter<std::size_t> stream::async_read_until(std::string& buf, std::string_view delim,
                                                                  std::size_t max,
                                                                  std::error_code& ec) noexcept {
    return {*this, buf, delim, max, &ec};
}
inline detail::write_awaiter stream::async_write(std::string_view data) noexcept {
    return {*this, data, nullptr};
}
inline detail::write_awaiter stream::async_write(std::string_view data, std::error_code& ec) noexcept {
    return {*this, data, &ec};
}
template <class S, class>
detail::owned_write_awaiter stream::async_write(S&& data) noexcept {
    return async_write_owned(std::move(data), nullptr);
}
template <class S, class>
detail::owned_write_awaiter stream::async_write(S&& data, std::error_code& ec) noexcept {
    return async_write_owned(std::move(data), &ec);
}
inline detail::owned_write_awaiter stream::async_write_owned(std::string&& data,
                                                             std::error_code* ec) noexcept {
    return {*this, std::move(data), ec};
}
inline detail::shutdown_awaiter stream::async_shutdown() noexcept { return {*this, nullptr}; }
inline detail::shutdown_awaiter stream::async_shutdown(std::error_code& ec) noexcept { return {*this, &ec}; }

}  // namespace uvkit
