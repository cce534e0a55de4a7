// uvkit/tls.hpp: TLS (OpenSSL 3) over any connected uvkit stream.
//
// What it is: `tls_context` holds the configuration shared by many
// connections (role, certificate and key, trusted CAs, minimum version,
// ciphers, ALPN); `tls_stream` takes ownership of a connected stream (tcp,
// pipe) and speaks TLS over it. OpenSSL only ever sees memory BIOs: libuv does
// all the I/O, on the loop's thread. Built when uvkit is configured with
// `-Dtls=enabled` (or `auto` and OpenSSL 3 found); UVKIT_HAVE_TLS is then
// defined for users. Without it, nothing in uvkit needs OpenSSL.
//
//     auto ctx = uvkit::tls_context::client();          // system CA store, TLS >= 1.2
//     uvkit::tls_stream t{ctx, std::move(connected_tcp)};
//     t.set_hostname("example.com");                    // SNI and the name verified
//     t.handshake([&](std::error_code ec) { ... });
//     t.write(std::string("GET / HTTP/1.1\r\n..."));     // queued until the handshake is done
//     t.read_start([&](std::error_code ec, std::string_view plain) { ... });
//
// Lifetime: tls_stream is move-only; a moved-from one is empty and its
// operations fail with UV_EINVAL. Its state lives in a heap block that stays
// until the transport's close callback ran, so destroying, moving or closing
// a tls_stream inside its own handlers is safe. The destructor closes it
// (without close_notify: call shutdown() first for an orderly end).
//
// Handlers: every handshake, write and shutdown handler is called exactly
// once, on the loop thread: with success, the error, or errc::canceled when
// the stream was closed first (after the close began, from the loop). If
// starting an operation fails, its handler is never called and the error is
// thrown (or stored in `ec`). A handler's exception leaves loop::run().
// No handler runs and no coroutine resumes inside another call: a failure
// found inside write() (the transport refused the bytes) fails the stream at
// once, but the read handler and the other operations hear of it from the
// loop, soon.
//
// Errors: TLS failures are in tls_category() (compare with tls_errc:
// `ec == uvkit::tls_errc::verify_failed`); the message carries OpenSSL's
// reason ("TLS certificate verification failed: certificate has expired").
// Transport failures keep uvkit::error_category() (connection reset, ...).
// After a TLS failure the stream is failed: the alert was sent, reading
// stopped, queued writes completed with the error, and further operations
// fail with it. Close it.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "uvkit/stream.hpp"

// OpenSSL's types, without its headers (SSL_CTX, SSL, SSL_SESSION).
struct ssl_ctx_st;
struct ssl_st;
struct ssl_session_st;

namespace uvkit {

/// What went wrong in TLS, as error conditions: an error_code from
/// tls_category() compares equal to its kind; hostname_mismatch also
/// compares equal to verify_failed.
enum class tls_errc : int {
    handshake_failed =
        1,              ///< the handshake failed (alert, no shared cipher or version, garbage from the peer)
    verify_failed = 2,  ///< the peer's certificate did not verify (unknown CA, expired, ...)
    hostname_mismatch = 3,  ///< the certificate is valid but not for the name (or IP) asked for
    unexpected_eof = 4,     ///< the peer closed the connection without close_notify (truncation)
    protocol_error = 5,     ///< a TLS failure after the handshake (bad record, bad MAC, alert)
    config_error = 6,       ///< a certificate, key, CA, cipher or ALPN setting OpenSSL rejected
};

/// The category of TLS errors ("uvkit.tls"). Its codes carry the kind in
/// the low 4 bits and OpenSSL's library and reason (or X509 verify result)
/// above, so that message() names OpenSSL's reason. A singleton.
UVKIT_API const std::error_category& tls_category() noexcept;

/// The condition for `e` (what `ec == tls_errc::...` compares with).
UVKIT_API std::error_condition make_error_condition(tls_errc e) noexcept;
/// A code of kind `e` with no OpenSSL detail.
inline std::error_code make_error_code(tls_errc e) noexcept { return {static_cast<int>(e), tls_category()}; }

/// Which side of the handshake a context is for.
enum class tls_role { client, server };

/// Protocol versions for tls_context::set_min_version.
enum class tls_version { tls1_2, tls1_3 };

namespace detail {
struct tls_context_state;
struct tls_state;
/// The coroutine layer's door into tls_stream (defined in uvkit/co/tls.hpp).
struct tls_access;
// The coroutine layer's awaitables (uvkit/co/tls.hpp).
class tls_handshake_awaiter;
template <class R>
class tls_read_awaiter;
class tls_write_awaiter;
class tls_shutdown_awaiter;

/// The neutral hook through which a layer above the core (an awaited
/// handshake, write or shutdown) takes that operation's completion instead
/// of a handler.
struct tls_consumer {
    virtual void tls_done(std::error_code ec) noexcept = 0;

protected:
    ~tls_consumer() = default;
};

/// The neutral hook through which a layer above the core consumes a
/// tls_stream's decrypted bytes instead of a read_start() handler. Owned by
/// the stream's state (released with it).
struct tls_read_consumer {
    virtual ~tls_read_consumer() = default;
    /// Decrypted bytes, or the end (errc::eof) or an error (empty data).
    virtual void tls_data(std::error_code ec, std::string_view data) noexcept = 0;
    /// Where the next decrypted bytes may go in place (a waiting read's own
    /// buffer), or empty for the loop's buffer. tls_data then gets a view of it.
    virtual std::span<char> tls_room() noexcept { return {}; }
    /// A read_start() handler takes over: true if the consumer lets go.
    virtual bool tls_yield() noexcept = 0;
    /// Reading stopped (read_stop(); `soon`: inside a user's call, resumed by
    /// the loop) or the stream closed (from its close callback): what waits
    /// ends with errc::canceled.
    virtual void tls_stop(bool soon) noexcept = 0;
};
}  // namespace detail

/// A TLS configuration (an SSL_CTX), shared by the connections made from it.
/// Copies share the same configuration (reference counted); change it before
/// making connections, not while they handshake. Functions throw
/// std::system_error (tls_errc::config_error with OpenSSL's reason, or the
/// file's error), or take a std::error_code& and are noexcept.
class UVKIT_API tls_context {
public:
    /// An empty context: making a tls_stream from it fails with UV_EINVAL.
    tls_context() noexcept = default;
    /// A new context (SSL_CTX_new over TLS_method) for `role`: minimum
    /// version TLS 1.2; a client verifies the server's certificate and the
    /// host name (trusted CAs: none until load_verify_file/dir or
    /// set_default_verify_paths; client() loads the system's store).
    explicit tls_context(tls_role role);
    tls_context(tls_role role, std::error_code& ec) noexcept;

    /// A client context that trusts the system's default CA store.
    static tls_context client();
    /// A server context; give it a certificate chain and key before use.
    static tls_context server();

    /// The certificate chain, leaf first, from a PEM file
    /// (SSL_CTX_use_certificate_chain_file).
    void use_certificate_chain_file(const std::string& path);
    void use_certificate_chain_file(const std::string& path, std::error_code& ec) noexcept;
    /// The certificate chain, leaf first, from PEM text in memory.
    void use_certificate_chain(std::string_view pem);
    void use_certificate_chain(std::string_view pem, std::error_code& ec) noexcept;
    /// The private key from a PEM file; checked against the certificate if one was set.
    void use_private_key_file(const std::string& path);
    void use_private_key_file(const std::string& path, std::error_code& ec) noexcept;
    /// The private key from PEM text in memory.
    void use_private_key(std::string_view pem);
    void use_private_key(std::string_view pem, std::error_code& ec) noexcept;

    /// Trusts the CA certificates in a PEM file (SSL_CTX_load_verify_file).
    void load_verify_file(const std::string& path);
    void load_verify_file(const std::string& path, std::error_code& ec) noexcept;
    /// Trusts the CA certificates of a hashed directory (SSL_CTX_load_verify_dir).
    void load_verify_dir(const std::string& path);
    void load_verify_dir(const std::string& path, std::error_code& ec) noexcept;
    /// Trusts the system's default CA store (SSL_CTX_set_default_verify_paths).
    void set_default_verify_paths();
    void set_default_verify_paths(std::error_code& ec) noexcept;

    /// Whether the peer's certificate is verified. On by default for clients;
    /// for servers, true asks for and requires a client certificate. Turning
    /// it off on a client accepts any server: only for tests and tools that
    /// say so (uvcat --insecure).
    void set_verify_peer(bool on) noexcept;
    bool verify_peer() const noexcept;

    /// The lowest protocol version accepted (TLS 1.2 by default).
    void set_min_version(tls_version v);
    void set_min_version(tls_version v, std::error_code& ec) noexcept;
    /// The TLS 1.2 cipher list, OpenSSL syntax (SSL_CTX_set_cipher_list).
    void set_ciphers(const std::string& list);
    void set_ciphers(const std::string& list, std::error_code& ec) noexcept;
    /// The TLS 1.3 cipher suites, OpenSSL syntax (SSL_CTX_set_ciphersuites).
    void set_ciphersuites(const std::string& list);
    void set_ciphersuites(const std::string& list, std::error_code& ec) noexcept;

    /// The ALPN protocols, most preferred first ("h2", "http/1.1"; each 1 to
    /// 255 bytes). A client offers them; a server picks the first of its own
    /// list that the client offered, and goes on without ALPN if none matches.
    void set_alpn(std::span<const std::string> protocols);
    void set_alpn(std::span<const std::string> protocols, std::error_code& ec) noexcept;
    void set_alpn(std::initializer_list<std::string> protocols) {
        std::vector<std::string> v(protocols);
        set_alpn(std::span<const std::string>(v));
    }

    /// Server: whether clients may resume sessions (on by default: OpenSSL's
    /// session cache and, for TLS 1.3, session tickets). Off, every
    /// connection makes a full handshake and no tickets are sent. Client:
    /// no effect (a client resumes with tls_stream::set_session()).
    void set_session_resumption(bool on) noexcept;

    /// The role given at construction (client for an empty context).
    tls_role role() const noexcept;
    /// The OpenSSL context for settings uvkit does not wrap, or nullptr.
    ssl_ctx_st* raw() const noexcept;
    /// True unless the context is empty.
    explicit operator bool() const noexcept { return static_cast<bool>(state_); }

private:
    friend class tls_stream;
    std::shared_ptr<detail::tls_context_state> state_;
};

/// A TLS session that a client can resume on a later connection to the same
/// server (tls_stream::session(), tls_stream::set_session()): an abbreviated
/// handshake, without the certificate exchange. Copies share the session
/// (reference counted); an empty one resumes nothing. Keep it secret: it
/// holds the session's keys.
class UVKIT_API tls_session {
public:
    tls_session() noexcept = default;
    /// Takes ownership of an OpenSSL session (one reference), or nullptr.
    explicit tls_session(ssl_session_st* s) noexcept;
    /// True unless empty.
    explicit operator bool() const noexcept { return static_cast<bool>(s_); }
    /// The OpenSSL session, or nullptr.
    ssl_session_st* raw() const noexcept { return s_.get(); }

private:
    std::shared_ptr<ssl_session_st> s_;
};

/// TLS over a connected uvkit stream. Reading and writing mirror
/// uvkit::stream; see the header comment for lifetime and errors.
class UVKIT_API tls_stream {
public:
    /// An empty tls_stream: every operation fails with UV_EINVAL.
    tls_stream() noexcept = default;
    /// Takes ownership of the connected stream `s` (a tcp or a pipe, moved
    /// in) and prepares a TLS session of `ctx`'s role over it. Nothing is
    /// sent until handshake(); bytes already queued on `s` (a STARTTLS
    /// answer) go out first. A read_start() handler on `s` stops being
    /// called. Throws std::system_error: UV_EINVAL for an empty context or
    /// stream, UV_EBUSY if a coroutine read waits on `s` or bytes it read wait
    /// to be taken, UV_ENOMEM. Do not read, write or close `s` directly
    /// afterwards (transport() is for its endpoints and options).
    template <class S, class = std::enable_if_t<std::is_base_of_v<stream, S> && !std::is_reference_v<S>>>
    tls_stream(const tls_context& ctx, S&& s) {
        std::error_code ec;
        init(ctx, std::make_unique<holder<S>>(std::move(s)), ec);
        if (ec) throw std::system_error(ec, "uvkit::tls_stream");
    }
    template <class S, class = std::enable_if_t<std::is_base_of_v<stream, S> && !std::is_reference_v<S>>>
    tls_stream(const tls_context& ctx, S&& s, std::error_code& ec) noexcept {
        std::unique_ptr<transport_holder> h(new (std::nothrow) holder<S>(std::move(s)));
        if (!h) {
            ec = make_uv_error(UV_ENOMEM);
            return;
        }
        init(ctx, std::move(h), ec);
    }
    tls_stream(tls_stream&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
    tls_stream& operator=(tls_stream&& o) noexcept;
    tls_stream(const tls_stream&) = delete;
    tls_stream& operator=(const tls_stream&) = delete;
    /// Closes the stream (see close()), without close_notify.
    ~tls_stream();

    /// Client: the server name sent as SNI and verified against the
    /// certificate (an IP address literal is verified as an IP and not sent
    /// as SNI). Without it, a verifying client fails the handshake with
    /// tls_errc::hostname_mismatch: a name is needed, or set_verify_hostname(false).
    /// Server: ignored. Call before handshake().
    void set_hostname(std::string_view name);
    void set_hostname(std::string_view name, std::error_code& ec) noexcept;
    /// Turns host name verification off (on by default for clients); the
    /// chain is still verified if the context verifies peers.
    void set_verify_hostname(bool on) noexcept;

    /// Client: offers `session` (from session() of an earlier connection to
    /// the same server) for resumption. The server may refuse it, then the
    /// handshake is a full one: see session_reused(). The peer is verified
    /// either way. Call before handshake(); UV_EINVAL on a server stream, an
    /// empty session or stream, or after handshake() was called.
    void set_session(const tls_session& session);
    void set_session(const tls_session& session, std::error_code& ec) noexcept;
    /// Client: the newest session the server gave this connection, to resume
    /// on a later one; empty if none (yet). A TLS 1.2 server gives it in the
    /// handshake; a TLS 1.3 server sends it just after, so it is there once
    /// the client read the server's first bytes. It stays resumable however
    /// the connection ends (close() without shutdown() included). Server: empty.
    tls_session session() const noexcept;
    /// After the handshake: true if it resumed a session (no certificates
    /// were exchanged).
    bool session_reused() const noexcept;

    /// Starts the handshake; `h(ec)` is called exactly once when it is done:
    /// success, a tls_category() error, a transport error, or errc::canceled
    /// if the stream was closed first. A second handshake() is UV_EALREADY.
    template <class F>
    void handshake(F&& h) {
        std::error_code ec;
        handshake(std::forward<F>(h), ec);
        if (ec) throw std::system_error(ec, "uvkit::tls_stream::handshake");
    }
    template <class F>
    void handshake(F&& h, std::error_code& ec) noexcept {
        handshake_fn(detail::write_handler(std::forward<F>(h)), ec);
    }

    /// Calls `h(ec, plain)` for each chunk of decrypted bytes; `plain` is valid
    /// during the call only. At the peer's close_notify: errc::eof and reading
    /// stops; at a TLS or transport error likewise with that error (a peer that
    /// closes without close_notify is tls_errc::unexpected_eof). Before the
    /// handshake completed, bytes are delivered once it did. Replaces a
    /// previous handler. UV_EBUSY while a coroutine reads this stream.
    template <class F>
    void read_start(F&& h) {
        std::error_code ec;
        read_start(std::forward<F>(h), ec);
        if (ec) throw std::system_error(ec, "uvkit::tls_stream::read_start");
    }
    template <class F>
    void read_start(F&& h, std::error_code& ec) noexcept {
        read_start_fn(detail::unique_function<void(std::error_code, std::string_view)>(std::forward<F>(h)),
                      ec);
    }
    /// Stops delivering decrypted bytes and stops reading the transport
    /// (backpressure). The handshake, if in progress, goes on. No-op if empty.
    void read_stop() noexcept;

    /// Writes borrowed bytes: `data` must stay alive until `h(ec)` ran. During
    /// the handshake the write is queued (not encrypted yet); once the
    /// handshake is done writes are encrypted at once. `h` runs when the
    /// ciphertext was handed to the kernel. Writes complete in order.
    template <class F>
    void write(std::string_view data, F&& h) {
        std::error_code ec;
        write(data, std::forward<F>(h), ec);
        if (ec) throw std::system_error(ec, "uvkit::tls_stream::write");
    }
    template <class F>
    void write(std::string_view data, F&& h, std::error_code& ec) noexcept {
        write_fn(data, nullptr, detail::write_handler(std::forward<F>(h)), ec);
    }
    /// Writes owned bytes (a std::string moved in); the handler is optional.
    template <class S, class F = std::nullptr_t, class = std::enable_if_t<detail::is_owned_string<S>>>
    void write(S&& data, F&& h = nullptr) {
        std::error_code ec;
        write_fn({}, &data, detail::write_handler(std::forward<F>(h)), ec);
        if (ec) throw std::system_error(ec, "uvkit::tls_stream::write");
    }
    template <class S, class F, class = std::enable_if_t<detail::is_owned_string<S>>>
    void write(S&& data, F&& h, std::error_code& ec) noexcept {
        write_fn({}, &data, detail::write_handler(std::forward<F>(h)), ec);
    }

    /// Ends the write side: after the queued writes, sends close_notify, then
    /// shuts the transport's write side down (uv_shutdown). `h(ec)` is called
    /// exactly once, when that is done. Reading goes on (half-close): the
    /// peer may still send until its own close_notify. UV_EALREADY if shutdown
    /// was already called.
    template <class F>
    void shutdown(F&& h) {
        std::error_code ec;
        shutdown(std::forward<F>(h), ec);
        if (ec) throw std::system_error(ec, "uvkit::tls_stream::shutdown");
    }
    template <class F>
    void shutdown(F&& h, std::error_code& ec) noexcept {
        shutdown_fn(detail::write_handler(std::forward<F>(h)), ec);
    }

    /// Closes the transport (no close_notify). Idempotent. Queued and
    /// in-flight writes, a pending handshake and shutdown complete with
    /// errc::canceled (unless already done); then `on_closed`, if given, runs
    /// exactly once, after the transport's close callback.
    template <class F = std::nullptr_t>
    void close(F&& on_closed = nullptr) noexcept {
        close_fn(detail::unique_function<void()>(std::forward<F>(on_closed)));
    }

    /// Plaintext bytes queued (during the handshake) plus ciphertext bytes the
    /// transport has not handed to the kernel yet: wait while it is large.
    std::size_t write_queue_size() const noexcept;

    /// True once the handshake succeeded.
    bool handshake_done() const noexcept;
    /// After the handshake: the peer certificate's subject ("CN=localhost,O=..."),
    /// "" if the peer sent none.
    std::string peer_subject() const;
    /// After the handshake: the negotiated ALPN protocol, "" if none.
    std::string alpn() const;
    /// After the handshake: the protocol version ("TLSv1.3").
    std::string protocol() const;
    /// After the handshake: the cipher suite ("TLS_AES_256_GCM_SHA384").
    std::string cipher() const;

    /// The stream TLS runs over (for endpoints, nodelay, ...): do not read
    /// or write it directly. Throws std::system_error(UV_EINVAL) if empty.
    stream& transport() const;
    /// The OpenSSL session, or nullptr if empty.
    ssl_st* raw() const noexcept;
    /// The loop. Throws std::system_error(UV_EINVAL) if empty or closed.
    uvkit::loop& get_loop() const;
    /// True unless empty (moved from).
    explicit operator bool() const noexcept { return state_ != nullptr; }
    /// True if empty, closing or closed.
    bool closing() const noexcept;

    // Coroutine operations (uvkit/co/tls.hpp has the rules and defines them).
    // Each is awaited once; the forms with std::error_code& never throw.

    /// Performs the handshake (starts it if handshake() was not called).
    detail::tls_handshake_awaiter async_handshake() noexcept;
    detail::tls_handshake_awaiter async_handshake(std::error_code& ec) noexcept;
    /// The next chunk of decrypted bytes; "" at the peer's close_notify.
    detail::tls_read_awaiter<std::string> async_read() noexcept;
    detail::tls_read_awaiter<std::string> async_read(std::error_code& ec) noexcept;
    /// At least one decrypted byte into `buf`; 0 at the peer's close_notify.
    detail::tls_read_awaiter<std::size_t> async_read(std::span<char> buf) noexcept;
    detail::tls_read_awaiter<std::size_t> async_read(std::span<char> buf, std::error_code& ec) noexcept;
    /// Writes borrowed bytes: they must stay alive until the co_await completed.
    detail::tls_write_awaiter async_write(std::string_view data) noexcept;
    detail::tls_write_awaiter async_write(std::string_view data, std::error_code& ec) noexcept;
    /// Writes owned bytes (a std::string moved in).
    template <class S, class = std::enable_if_t<detail::is_owned_string<S>>>
    detail::tls_write_awaiter async_write(S&& data) noexcept;
    template <class S, class = std::enable_if_t<detail::is_owned_string<S>>>
    detail::tls_write_awaiter async_write(S&& data, std::error_code& ec) noexcept;
    /// Sends close_notify after the queued writes and shuts the transport's write side.
    detail::tls_shutdown_awaiter async_shutdown() noexcept;
    detail::tls_shutdown_awaiter async_shutdown(std::error_code& ec) noexcept;

private:
    friend struct detail::tls_access;
    friend struct detail::tls_state;

    /// Owns the transport whatever its type.
    struct transport_holder {
        virtual ~transport_holder() = default;
        virtual stream& get() noexcept = 0;
    };
    template <class S>
    struct holder final : transport_holder {
        explicit holder(S&& t) noexcept : s(std::move(t)) {}
        stream& get() noexcept override { return s; }
        S s;
    };

    void init(const tls_context& ctx, std::unique_ptr<transport_holder> t, std::error_code& ec) noexcept;
    void handshake_fn(detail::write_handler&& h, std::error_code& ec) noexcept;
    void read_start_fn(detail::unique_function<void(std::error_code, std::string_view)>&& h,
                       std::error_code& ec) noexcept;
    void write_fn(std::string_view data, std::string* owned, detail::write_handler&& h,
                  std::error_code& ec) noexcept;
    void shutdown_fn(detail::write_handler&& h, std::error_code& ec) noexcept;
    void close_fn(detail::unique_function<void()>&& on_closed) noexcept;
    detail::tls_state* usable(std::error_code& ec) const noexcept;

    detail::tls_state* state_ = nullptr;
};

}  // namespace uvkit

template <>
struct std::is_error_condition_enum<uvkit::tls_errc> : std::true_type {};
