// The state behind uvkit::tls_context and uvkit::tls_stream, shared by
// src/tls.cpp (the callback core) and src/co_tls.cpp (the coroutine layer).
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <system_error>

#include "uvkit/tls.hpp"

namespace uvkit::detail {

struct tls_context_state {
    ~tls_context_state() {
        if (ctx) SSL_CTX_free(ctx);
    }
    SSL_CTX* ctx = nullptr;
    tls_role role = tls_role::client;
    bool verify = false;
    std::string alpn_wire;  // the ALPN list in wire format (length-prefixed names)
};

/// Bytes that are only ever overwritten: resize() does not zero them (a
/// std::string would, 64 KiB per 64 KiB written).
struct byte_buffer {
    std::unique_ptr<char[]> bytes;
    std::size_t capacity = 0;
    std::size_t size = 0;

    /// Room for `n` bytes (their content undefined); false if out of memory.
    bool resize(std::size_t n) noexcept {
        if (n > capacity) {
            std::unique_ptr<char[]> more(new (std::nothrow) char[n]);
            if (!more) return false;
            bytes = std::move(more);
            capacity = n;
        }
        size = n;
        return true;
    }
    void release() noexcept {
        bytes.reset();
        capacity = size = 0;
    }
    std::string_view view() const noexcept { return {bytes.get(), size}; }
};

/// One pending handshake, write or shutdown: its handler or its consumer,
/// completed exactly once.
struct tls_op {
    write_handler cb;
    tls_consumer* consumer = nullptr;
    tls_op* next = nullptr;  // the queue of writes waiting for the handshake
    std::string_view data;   // a borrowed write's bytes
    std::string owned;       // an owned write's bytes
    byte_buffer cipher;      // its ciphertext while the transport writes it (capacity reused)
    bool is_owned = false;
};

struct tls_state {
    enum class phase : unsigned char { idle, handshaking, established, failed };

    tls_state() = default;
    ~tls_state();
    tls_state(const tls_state&) = delete;
    tls_state& operator=(const tls_state&) = delete;

    /// Drops a reference (the owner's, the open transport's, a posted pump's).
    static void unref(tls_state* s) noexcept;

    stream& transport() noexcept { return holder->get(); }
    bool usable() const noexcept { return !closing; }

    // What both layers call; each returns 0 or sets `ec`.
    void start_handshake(write_handler&& h, tls_consumer* c, tls_op** out, std::error_code& ec) noexcept;
    void start_write(std::string_view data, std::string* owned, write_handler&& h, tls_consumer* c,
                     tls_op** out, std::error_code& ec) noexcept;
    void start_shutdown(write_handler&& h, tls_consumer* c, tls_op** out, std::error_code& ec) noexcept;
    /// Turns the delivery of decrypted bytes on or off (transport reads follow).
    void set_reading(bool on) noexcept;
    /// Starts closing the transport (idempotent).
    void begin_close() noexcept;

    // Internals.
    void pump() noexcept;
    void schedule_pump() noexcept;
    void flush(tls_op* op) noexcept;
    void complete(tls_op* op, std::error_code ec) noexcept;
    void deliver(std::error_code ec, std::string_view data) noexcept;
    /// The session failed: the alert goes out and reading stops now; what waits
    /// (handlers, coroutines) learns of it now from a loop callback, or from
    /// the loop soon when inside a user's call (in_call).
    void fail(std::error_code ec) noexcept;
    /// Completes what waits with failed_ec and tells the reader (fail()'s second half).
    void notify_failed() noexcept;
    /// A tls_op from the stream's pool (steady-state writes allocate nothing), or nullptr.
    tls_op* new_op() noexcept;
    /// Gives a finished tls_op back to the pool.
    void recycle(tls_op* op) noexcept;
    /// Sends what OpenSSL wrote as `op`'s ciphertext (borrowed from op->cipher); `op` completes with the
    /// write.
    void send_cipher(tls_op* op, std::error_code& ec) noexcept;
    void established() noexcept;
    void encrypt(tls_op* op) noexcept;
    void do_shutdown() noexcept;
    void update_transport_reading() noexcept;
    void on_transport_read(std::error_code ec, std::string_view data) noexcept;
    void on_transport_closed() noexcept;
    std::error_code ssl_error(int ret) noexcept;

    uvkit::loop* owner = nullptr;
    std::unique_ptr<tls_stream::transport_holder> holder;
    handle_state* transport_state = nullptr;
    std::shared_ptr<tls_context_state> ctx;
    SSL* ssl = nullptr;
    BIO* rbio = nullptr;  // what the transport read, for OpenSSL
    BIO* wbio = nullptr;  // what OpenSSL wrote, for the transport
    std::string hostname;
    bool verify_hostname = true;
    tls_session session;  // client: the newest session the server gave (OpenSSL's new-session callback)

    phase ph = phase::idle;
    std::error_code failed_ec = no_error();
    tls_op* handshake_op = nullptr;
    tls_op* queue_head = nullptr;  // writes waiting for the handshake, in order
    tls_op* queue_tail = nullptr;
    std::size_t queued_bytes = 0;
    tls_op* shutdown_op = nullptr;
    bool shutdown_requested = false;
    bool shutdown_started = false;

    handler_slot<void(std::error_code, std::string_view)> on_read;
    tls_read_consumer* reader = nullptr;  // owned
    bool reading = false;                 // the user (or the reader) wants decrypted bytes
    bool read_done = false;               // close_notify, EOF or an error was delivered
    bool transport_reading = false;
    bool transport_eof = false;                 // the transport reached EOF (or failed)
    std::error_code transport_ec = no_error();  // and with what
    bool pumping = false;
    bool repump = false;
    bool pump_posted = false;
    bool closing = false;
    bool closed = false;
    unique_function<void()> on_closed;
    int refs = 0;
    tls_op* free_ops = nullptr;  // the pool of finished tls_ops
    unsigned free_count = 0;
    unsigned sending = 0;       // writes whose ciphertext the transport is writing
    int in_call = 0;            // inside a user's call (write, shutdown, read_stop, ...)
    bool fail_pending = false;  // fail() ran inside a user's call: notify_failed() from the loop

    /// Marks a user's call: a failure inside it notifies from the loop, later.
    struct call_guard {
        explicit call_guard(tls_state* s) noexcept : s(s) { ++s->in_call; }
        ~call_guard() { --s->in_call; }
        call_guard(const call_guard&) = delete;
        call_guard& operator=(const call_guard&) = delete;
        tls_state* s;
    };
};

}  // namespace uvkit::detail
