#include "uvkit/tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <new>

#include "tls_impl.hpp"

namespace uvkit {

// ---------------------------------------------------------------------------------------------
// Errors. A code is kind | reason << 4 | lib << 20: lib 0 with a reason is an X509 verify result.

namespace {

constexpr int kind_mask = 0xF;

/// Empties the thread's OpenSSL error queue before an SSL_read or SSL_write
/// (SSL_get_error needs it empty). Peeking first: clearing an empty queue
/// still walks all its slots (~800 instructions, twice per 64 KiB written).
void clear_errors() noexcept {
    if (ERR_peek_error() != 0) ERR_clear_error();
}

int pack(tls_errc kind, unsigned lib, unsigned reason) noexcept {
    return static_cast<int>(kind) | static_cast<int>((reason & 0xFFFFu) << 4) |
           static_cast<int>((lib & 0xFFu) << 20);
}

const char* kind_text(int kind) noexcept {
    switch (kind) {
        case static_cast<int>(tls_errc::handshake_failed): return "TLS handshake failed";
        case static_cast<int>(tls_errc::verify_failed): return "TLS certificate verification failed";
        case static_cast<int>(tls_errc::hostname_mismatch):
            return "TLS certificate does not match the host name";
        case static_cast<int>(tls_errc::unexpected_eof):
            return "TLS peer closed the connection without close_notify";
        case static_cast<int>(tls_errc::protocol_error): return "TLS protocol error";
        case static_cast<int>(tls_errc::config_error): return "TLS configuration error";
        default: return "TLS error";
    }
}

class tls_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "uvkit.tls"; }
    std::string message(int code) const override {
        std::string m = kind_text(code & kind_mask);
        unsigned reason = (static_cast<unsigned>(code) >> 4) & 0xFFFFu;
        unsigned lib = (static_cast<unsigned>(code) >> 20) & 0xFFu;
        if (!reason) return m;
        const char* detail = nullptr;
        if (lib == 0)
            detail = X509_verify_cert_error_string(static_cast<long>(reason));
        else if (lib == ERR_LIB_SYS)
            return m + ": " + std::system_category().message(static_cast<int>(reason));
        else
            detail = ERR_reason_error_string(ERR_PACK(static_cast<int>(lib), 0, static_cast<int>(reason)));
        m += ": ";
        if (detail)
            m += detail;
        else
            m += "OpenSSL library " + std::to_string(lib) + " reason " + std::to_string(reason);
        return m;
    }
    std::error_condition default_error_condition(int code) const noexcept override {
        return {code & kind_mask, *this};
    }
    bool equivalent(int code, const std::error_condition& cond) const noexcept override {
        if (cond.category() != *this) return false;
        int kind = code & kind_mask;
        if (kind == cond.value()) return true;
        return kind == static_cast<int>(tls_errc::hostname_mismatch) &&
               cond.value() == static_cast<int>(tls_errc::verify_failed);
    }
};

/// The error OpenSSL queued (the earliest, which names the cause), as kind; clears the queue.
std::error_code queued_error(tls_errc kind) noexcept {
    unsigned long e = ERR_peek_error();
    ERR_clear_error();
    if (!e) return make_error_code(kind);
    unsigned reason = static_cast<unsigned>(ERR_GET_REASON(e));
    if (kind != tls_errc::config_error && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        kind = tls_errc::unexpected_eof;
    return {pack(kind, static_cast<unsigned>(ERR_GET_LIB(e)), reason), tls_category()};
}

/// A temporary BIO over PEM text.
struct mem_bio {
    explicit mem_bio(std::string_view pem) noexcept
        : b(pem.size() <= 0x7fffffff ? BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())) : nullptr) {}
    ~mem_bio() {
        if (b) BIO_free(b);
    }
    BIO* b;
};

}  // namespace

const std::error_category& tls_category() noexcept {
    static const tls_category_impl c;
    return c;
}

std::error_condition make_error_condition(tls_errc e) noexcept {
    return {static_cast<int>(e), tls_category()};
}

// ---------------------------------------------------------------------------------------------
// tls_context

namespace {
int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
    auto* cs = static_cast<detail::tls_context_state*>(arg);
    if (cs->alpn_wire.empty()) return SSL_TLSEXT_ERR_NOACK;
    unsigned char* chosen = nullptr;
    int r =
        SSL_select_next_proto(&chosen, outlen, reinterpret_cast<const unsigned char*>(cs->alpn_wire.data()),
                              static_cast<unsigned>(cs->alpn_wire.size()), in, inlen);
    if (r != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

/// Runs `f(ctx)` on a usable context; a false return is OpenSSL's queued error.
template <class F>
void configure(const std::shared_ptr<detail::tls_context_state>& s, std::error_code& ec, F&& f) noexcept {
    if (!s || !s->ctx) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    ERR_clear_error();
    ec = f(s->ctx) ? detail::no_error() : queued_error(tls_errc::config_error);
}

/// A client's new session (OpenSSL's new-session callback): a copy is kept as
/// the connection's newest. A copy, because OpenSSL marks the connection's own
/// session not resumable when the connection ends without close_notify
/// (close() without shutdown()), and a kept session should not depend on how
/// the connection that made it ended. Returns 0: OpenSSL keeps its reference.
int keep_session(SSL* ssl, SSL_SESSION* sess) {
    auto* st = static_cast<detail::tls_state*>(SSL_get_app_data(ssl));
    if (st && SSL_SESSION_is_resumable(sess)) {
        if (SSL_SESSION* copy = SSL_SESSION_dup(sess)) st->session = tls_session(copy);
    }
    return 0;
}

void apply_verify(detail::tls_context_state& s) noexcept {
    int mode = SSL_VERIFY_NONE;
    if (s.verify) mode = SSL_VERIFY_PEER | (s.role == tls_role::server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(s.ctx, mode, nullptr);
}
}  // namespace

tls_context::tls_context(tls_role role, std::error_code& ec) noexcept {
    std::shared_ptr<detail::tls_context_state> s(new (std::nothrow) detail::tls_context_state);
    if (!s) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    ERR_clear_error();
    s->ctx = SSL_CTX_new(TLS_method());
    if (!s->ctx) {
        ec = queued_error(tls_errc::config_error);
        return;
    }
    s->role = role;
    s->verify = role == tls_role::client;
    SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
    // No renegotiation (a DoS vector; TLS 1.3 has none); OpenSSL's own send path is ours.
    SSL_CTX_set_options(s->ctx, SSL_OP_NO_RENEGOTIATION);
    apply_verify(*s);
    if (role == tls_role::server) {
        SSL_CTX_set_alpn_select_cb(s->ctx, &alpn_select, s.get());
        // Sessions are resumable also when client certificates are required
        // (OpenSSL refuses to resume without an id context then).
        static constexpr unsigned char id[] = {'u', 'v', 'k', 'i', 't'};
        SSL_CTX_set_session_id_context(s->ctx, id, sizeof id);
    } else {
        // The client keeps each connection's newest session itself
        // (tls_stream::session()), not in the context's cache.
        SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(s->ctx, &keep_session);
    }
    state_ = std::move(s);
    ec = detail::no_error();
}

tls_context::tls_context(tls_role role) {
    detail::throwing("uvkit::tls_context", [&](std::error_code& ec) { *this = tls_context(role, ec); });
}

tls_context tls_context::client() {
    tls_context c(tls_role::client);
    c.set_default_verify_paths();
    return c;
}

tls_context tls_context::server() { return tls_context(tls_role::server); }

void tls_context::set_session_resumption(bool on) noexcept {
    if (!state_ || state_->role != tls_role::server) return;
    SSL_CTX* c = state_->ctx;
    SSL_CTX_set_session_cache_mode(c, on ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
    if (on) {
        SSL_CTX_clear_options(c, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(c, 2);  // OpenSSL's default
    } else {
        SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(c, 0);
    }
}

tls_session::tls_session(ssl_session_st* s) noexcept {
    if (!s) return;
    try {
        s_ = std::shared_ptr<ssl_session_st>(s, &SSL_SESSION_free);
    } catch (...) {
        SSL_SESSION_free(s);  // out of memory: the session is dropped, as if never given
    }
}

void tls_context::use_certificate_chain_file(const std::string& path, std::error_code& ec) noexcept {
    configure(state_, ec,
              [&](SSL_CTX* c) { return SSL_CTX_use_certificate_chain_file(c, path.c_str()) == 1; });
}
void tls_context::use_certificate_chain_file(const std::string& path) {
    detail::throwing("SSL_CTX_use_certificate_chain_file",
                     [&](std::error_code& ec) { use_certificate_chain_file(path, ec); });
}

void tls_context::use_certificate_chain(std::string_view pem, std::error_code& ec) noexcept {
    configure(state_, ec, [&](SSL_CTX* c) {
        mem_bio in(pem);
        if (!in.b) return false;
        X509* leaf = PEM_read_bio_X509_AUX(in.b, nullptr, nullptr, nullptr);
        if (!leaf) return false;
        bool ok = SSL_CTX_use_certificate(c, leaf) == 1;
        X509_free(leaf);
        if (!ok || SSL_CTX_clear_chain_certs(c) != 1) return false;
        while (X509* ca = PEM_read_bio_X509(in.b, nullptr, nullptr, nullptr)) {
            if (SSL_CTX_add0_chain_cert(c, ca) != 1) {
                X509_free(ca);
                return false;
            }
        }
        // The loop ends at the end of the text: that is not an error.
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) ERR_clear_error();
        return ERR_peek_error() == 0;
    });
}
void tls_context::use_certificate_chain(std::string_view pem) {
    detail::throwing("uvkit::tls_context::use_certificate_chain",
                     [&](std::error_code& ec) { use_certificate_chain(pem, ec); });
}

void tls_context::use_private_key_file(const std::string& path, std::error_code& ec) noexcept {
    configure(state_, ec, [&](SSL_CTX* c) {
        if (SSL_CTX_use_PrivateKey_file(c, path.c_str(), SSL_FILETYPE_PEM) != 1) return false;
        return SSL_CTX_get0_certificate(c) == nullptr || SSL_CTX_check_private_key(c) == 1;
    });
}
void tls_context::use_private_key_file(const std::string& path) {
    detail::throwing("SSL_CTX_use_PrivateKey_file",
                     [&](std::error_code& ec) { use_private_key_file(path, ec); });
}

void tls_context::use_private_key(std::string_view pem, std::error_code& ec) noexcept {
    configure(state_, ec, [&](SSL_CTX* c) {
        mem_bio in(pem);
        if (!in.b) return false;
        EVP_PKEY* key = PEM_read_bio_PrivateKey(in.b, nullptr, nullptr, nullptr);
        if (!key) return false;
        bool ok = SSL_CTX_use_PrivateKey(c, key) == 1;
        EVP_PKEY_free(key);
        return ok && (SSL_CTX_get0_certificate(c) == nullptr || SSL_CTX_check_private_key(c) == 1);
    });
}
void tls_context::use_private_key(std::string_view pem) {
    detail::throwing("uvkit::tls_context::use_private_key",
                     [&](std::error_code& ec) { use_private_key(pem, ec); });
}

void tls_context::load_verify_file(const std::string& path, std::error_code& ec) noexcept {
    configure(state_, ec, [&](SSL_CTX* c) { return SSL_CTX_load_verify_file(c, path.c_str()) == 1; });
}
void tls_context::load_verify_file(const std::string& path) {
    detail::throwing("SSL_CTX_load_verify_file", [&](std::error_code& ec) { load_verify_file(path, ec); });
}

void tls_context::load_verify_dir(const std::string& path, std::error_code& ec) noexcept {
    configure(state_, ec, [&](SSL_CTX* c) { return SSL_CTX_load_verify_dir(c, path.c_str()) == 1; });
}
void tls_context::load_verify_dir(const std::string& path) {
    detail::throwing("SSL_CTX_load_verify_dir", [&](std::error_code& ec) { load_verify_dir(path, ec); });
}

void tls_context::set_default_verify_paths(std::error_code& ec) noexcept {
    configure(state_, ec, [&](SSL_CTX* c) { return SSL_CTX_set_default_verify_paths(c) == 1; });
}
void tls_context::set_default_verify_paths() {
    detail::throwing("SSL_CTX_set_default_verify_paths",
                     [&](std::error_code& ec) { set_default_verify_paths(ec); });
}

void tls_context::set_verify_peer(bool on) noexcept {
    if (!state_ || !state_->ctx) return;
    state_->verify = on;
    apply_verify(*state_);
}

bool tls_context::verify_peer() const noexcept { return state_ && state_->verify; }

void tls_context::set_min_version(tls_version v, std::error_code& ec) noexcept {
    configure(state_, ec, [&](SSL_CTX* c) {
        return SSL_CTX_set_min_proto_version(c, v == tls_version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION) ==
               1;
    });
}
void tls_context::set_min_version(tls_version v) {
    detail::throwing("SSL_CTX_set_min_proto_version", [&](std::error_code& ec) { set_min_version(v, ec); });
}

void tls_context::set_ciphers(const std::string& list, std::error_code& ec) noexcept {
    configure(state_, ec, [&](SSL_CTX* c) { return SSL_CTX_set_cipher_list(c, list.c_str()) == 1; });
}
void tls_context::set_ciphers(const std::string& list) {
    detail::throwing("SSL_CTX_set_cipher_list", [&](std::error_code& ec) { set_ciphers(list, ec); });
}

void tls_context::set_ciphersuites(const std::string& list, std::error_code& ec) noexcept {
    configure(state_, ec, [&](SSL_CTX* c) { return SSL_CTX_set_ciphersuites(c, list.c_str()) == 1; });
}
void tls_context::set_ciphersuites(const std::string& list) {
    detail::throwing("SSL_CTX_set_ciphersuites", [&](std::error_code& ec) { set_ciphersuites(list, ec); });
}

void tls_context::set_alpn(std::span<const std::string> protocols, std::error_code& ec) noexcept {
    if (!state_ || !state_->ctx) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    std::string wire;
    try {
        for (const std::string& p : protocols) {
            if (p.empty() || p.size() > 255) {
                ec = make_error_code(tls_errc::config_error);
                return;
            }
            wire += static_cast<char>(p.size());
            wire += p;
        }
    } catch (...) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    if (state_->role == tls_role::client) {
        // SSL_CTX_set_alpn_protos returns 0 on success.
        ERR_clear_error();
        if (SSL_CTX_set_alpn_protos(state_->ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                    static_cast<unsigned>(wire.size())) != 0) {
            ec = queued_error(tls_errc::config_error);
            return;
        }
    }
    state_->alpn_wire = std::move(wire);
    ec = detail::no_error();
}
void tls_context::set_alpn(std::span<const std::string> protocols) {
    detail::throwing("uvkit::tls_context::set_alpn", [&](std::error_code& ec) { set_alpn(protocols, ec); });
}

tls_role tls_context::role() const noexcept { return state_ ? state_->role : tls_role::client; }

ssl_ctx_st* tls_context::raw() const noexcept { return state_ ? state_->ctx : nullptr; }

// ---------------------------------------------------------------------------------------------
// tls_state: the session, driven through memory BIOs.

namespace detail {

namespace {
/// Calls a user handler; its exception goes to the loop's run().
template <class F>
void call(uvkit::loop* l, F&& f) noexcept {
    try {
        f();
    } catch (...) {
        l->fail(std::current_exception());
    }
}

/// A posted pump's reference on the state.
struct state_ref {
    explicit state_ref(tls_state* s) noexcept : s(s) { ++s->refs; }
    state_ref(state_ref&& o) noexcept : s(std::exchange(o.s, nullptr)) {}
    state_ref& operator=(state_ref&&) = delete;
    ~state_ref() {
        if (s) tls_state::unref(s);
    }
    tls_state* s;
};

constexpr std::size_t read_chunk = 16 * 1024;
constexpr std::size_t max_record_read = 1 << 20;  // an SSL_read's size (an int) for a caller's buffer
}  // namespace

tls_state::~tls_state() {
    while (tls_op* op = free_ops) {
        free_ops = op->next;
        delete op;
    }
    delete reader;
    if (ssl) SSL_free(ssl);  // frees both BIOs
}

void tls_state::unref(tls_state* s) noexcept {
    if (--s->refs == 0) delete s;
}

void tls_state::complete(tls_op* op, std::error_code ec) noexcept {
    if (op->consumer) {
        std::exchange(op->consumer, nullptr)->tls_done(ec);
    } else if (op->cb) {
        call(owner, [&] { op->cb(ec); });
    }
    recycle(op);
}

namespace {
constexpr unsigned pool_limit = 4;  // tls_ops kept per stream (writes in flight at once, usually 1)
// Ciphertext capacity every pooled tls_op keeps: one full record. More is kept
// only while the stream writes (another write in flight when one completes),
// so that a bulk writer does not allocate per write and a quiet stream holds
// no more than this per pooled op.
constexpr std::size_t pool_cipher_limit = 17 * 1024;
}  // namespace

tls_op* tls_state::new_op() noexcept {
    if (tls_op* op = free_ops) {
        free_ops = op->next;
        op->next = nullptr;
        --free_count;
        return op;
    }
    return new (std::nothrow) tls_op;
}

void tls_state::recycle(tls_op* op) noexcept {
    if (free_count >= pool_limit) {
        delete op;
        return;
    }
    op->cb = nullptr;
    op->consumer = nullptr;
    op->data = {};
    if (op->is_owned) std::string().swap(op->owned);
    op->is_owned = false;
    if (sending == 0) {
        // Quiet: the big buffers go, this one's and the pooled ones'.
        if (op->cipher.capacity > pool_cipher_limit) op->cipher.release();
        for (tls_op* f = free_ops; f; f = f->next)
            if (f->cipher.capacity > pool_cipher_limit) f->cipher.release();
    }
    op->next = free_ops;
    free_ops = op;
    ++free_count;
}

void tls_state::send_cipher(tls_op* op, std::error_code& ec) noexcept {
    std::size_t n = BIO_ctrl_pending(wbio);
    if (!op->cipher.resize(n)) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    if (n) BIO_read(wbio, op->cipher.bytes.get(), static_cast<int>(n));
    transport().write(
        op->cipher.view(),
        [this, op](std::error_code wec) {
            --sending;
            complete(op, wec);
        },
        ec);
    if (!ec) ++sending;
}

void tls_state::deliver(std::error_code ec, std::string_view data) noexcept {
    if (ec) {
        read_done = true;
        reading = false;
    }
    if (reader) {
        reader->tls_data(ec, data);
    } else if (on_read) {
        call(owner, [&] { on_read(ec, data); });
    }
}

std::error_code tls_state::ssl_error(int ret) noexcept {
    int e = SSL_get_error(ssl, ret);
    if (e == SSL_ERROR_SSL && ph == phase::handshaking) {
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK) {
            ERR_clear_error();
            tls_errc kind = (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
                                ? tls_errc::hostname_mismatch
                                : tls_errc::verify_failed;
            return {pack(kind, 0, static_cast<unsigned>(v)), tls_category()};
        }
    }
    return queued_error(ph == phase::handshaking ? tls_errc::handshake_failed : tls_errc::protocol_error);
}

void tls_state::flush(tls_op* op) noexcept {
    std::size_t n = BIO_ctrl_pending(wbio);
    if (n == 0 && !op) return;
    std::error_code ec;
    if (op) {
        send_cipher(op, ec);
    } else {
        std::string out;
        try {
            out.resize(n);
        } catch (...) {
            ec = make_uv_error(UV_ENOMEM);
        }
        if (!ec) {
            if (n) BIO_read(wbio, out.data(), static_cast<int>(n));
            transport().write(
                std::move(out), [](std::error_code) {}, ec);
        }
    }
    if (ec) {
        // The transport cannot take it (closing, out of memory): the session is lost.
        if (op) complete(op, ec);
        if (ph != phase::failed) fail(ec);
    }
}

void tls_state::encrypt(tls_op* op) noexcept {
    std::string_view d = op->is_owned ? std::string_view(op->owned) : op->data;
    if (!d.empty()) {
        clear_errors();
        int r = SSL_write(ssl, d.data(), static_cast<int>(d.size()));
        if (r <= 0) {
            std::error_code ec = ssl_error(r);
            complete(op, ec);
            fail(ec);
            return;
        }
    }
    // The plaintext is encrypted: an owned string can go now.
    if (op->is_owned) std::string().swap(op->owned);
    flush(op);
}

void tls_state::fail(std::error_code ec) noexcept {
    if (ph == phase::failed) return;
    ph = phase::failed;
    failed_ec = ec;
    // The alert OpenSSL queued for the peer goes out first.
    if (!closing && BIO_ctrl_pending(wbio)) flush(nullptr);
    update_transport_reading();
    if (in_call) {
        // Inside a user's call (a write that failed at once): nothing else is
        // called back from inside it; the loop tells the others.
        fail_pending = true;
        schedule_pump();
        return;
    }
    notify_failed();
}

void tls_state::notify_failed() noexcept {
    fail_pending = false;
    std::error_code ec = failed_ec;
    if (tls_op* h = std::exchange(handshake_op, nullptr)) complete(h, ec);
    while (tls_op* w = queue_head) {
        queue_head = w->next;
        if (!queue_head) queue_tail = nullptr;
        queued_bytes -= (w->is_owned ? w->owned.size() : w->data.size());
        complete(w, ec);
    }
    if (tls_op* s = std::exchange(shutdown_op, nullptr)) complete(s, ec);
    if (!read_done && (reading || reader)) deliver(ec, {});
    if (!closing) update_transport_reading();
}

void tls_state::established() noexcept {
    ph = phase::established;
    if (tls_op* h = std::exchange(handshake_op, nullptr)) complete(h, no_error());
    while (!closing && ph == phase::established && queue_head) {
        tls_op* w = queue_head;
        queue_head = w->next;
        if (!queue_head) queue_tail = nullptr;
        queued_bytes -= (w->is_owned ? w->owned.size() : w->data.size());
        encrypt(w);
    }
    if (!closing && ph == phase::established && shutdown_requested && !shutdown_started) do_shutdown();
}

void tls_state::do_shutdown() noexcept {
    shutdown_started = true;
    ERR_clear_error();
    SSL_shutdown(ssl);  // queues close_notify in wbio (0: sent, the peer's not seen yet)
    ERR_clear_error();
    flush(nullptr);
    if (closing || !shutdown_op || ph == phase::failed) return;
    std::error_code ec;
    transport().shutdown(
        [this](std::error_code sec) {
            if (tls_op* s = std::exchange(shutdown_op, nullptr)) complete(s, sec);
        },
        ec);
    if (ec) fail(ec);  // completes the shutdown with it (from the loop if inside a user's call)
}

void tls_state::update_transport_reading() noexcept {
    bool want = !closing && !transport_eof && ph != phase::failed &&
                (ph == phase::handshaking || (reading && !read_done));
    if (want == transport_reading) return;
    if (want) {
        std::error_code ec;
        transport().read_start([this](std::error_code rec, std::string_view d) { on_transport_read(rec, d); },
                               ec);
        if (ec) {
            transport_eof = true;
            transport_ec = ec;
            schedule_pump();
            return;
        }
    } else {
        transport().read_stop();
    }
    transport_reading = want;
}

void tls_state::on_transport_read(std::error_code ec, std::string_view data) noexcept {
    if (ec) {
        // libuv stopped reading; what OpenSSL still holds is decrypted first.
        transport_reading = false;
        transport_eof = true;
        transport_ec = ec;
    } else if (BIO_write(rbio, data.data(), static_cast<int>(data.size())) != static_cast<int>(data.size())) {
        fail(make_uv_error(UV_ENOMEM));
        return;
    }
    pump();
}

void tls_state::schedule_pump() noexcept {
    if (pump_posted || closing) return;
    pump_posted = true;
    try {
        owner->post([ref = state_ref(this)] {
            ref.s->pump_posted = false;
            ref.s->pump();
        });
    } catch (...) {
        pump_posted = false;
    }
}

void tls_state::pump() noexcept {
    if (pumping) {
        repump = true;
        return;
    }
    pumping = true;
    ++refs;  // a handler may drop the owner's reference and close
    do {
        repump = false;
        if (closing) break;
        if (fail_pending) {
            notify_failed();
            break;
        }
        if (ph == phase::handshaking) {
            ERR_clear_error();
            int r = SSL_do_handshake(ssl);
            if (r == 1) {
                flush(nullptr);
                if (closing) break;
                established();
                repump = true;
                continue;
            }
            std::error_code ec;
            if (SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ) {
                flush(nullptr);
                if (!transport_eof) break;
                // The peer went away in the middle of the handshake.
                ec = transport_ec == errc::eof ? std::error_code{pack(tls_errc::unexpected_eof, ERR_LIB_SSL,
                                                                      SSL_R_UNEXPECTED_EOF_WHILE_READING),
                                                                 tls_category()}
                                               : transport_ec;
            } else {
                ec = ssl_error(r);
            }
            fail(ec);
            break;
        }
        if (ph != phase::established || read_done || !reading) break;
        std::span<char> room = reader ? reader->tls_room() : std::span<char>{};
        if (room.empty()) room = {owner->ready_read_buffer(), read_chunk};
        clear_errors();
        int n = SSL_read(ssl, room.data(), static_cast<int>(std::min(room.size(), max_record_read)));
        char* buf = room.data();
        if (n > 0) {
            deliver(no_error(), std::string_view(buf, static_cast<std::size_t>(n)));
            repump = true;
            continue;
        }
        int e = SSL_get_error(ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            flush(nullptr);  // what reading produced (a key update's answer)
            if (!transport_eof) break;
            if (transport_ec == errc::eof) {
                std::error_code t{
                    pack(tls_errc::unexpected_eof, ERR_LIB_SSL, SSL_R_UNEXPECTED_EOF_WHILE_READING),
                    tls_category()};
                deliver(t, {});
            } else {
                deliver(transport_ec, {});
            }
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            deliver(make_error_code(errc::eof), {});
            break;
        }
        fail(ssl_error(n));
        break;
    } while (repump);
    pumping = false;
    if (!closing) update_transport_reading();
    unref(this);
}

void tls_state::set_reading(bool on) noexcept {
    if (on == reading) return;
    call_guard g(this);
    reading = on;
    if (on && ph == phase::established &&
        (SSL_pending(ssl) > 0 || BIO_ctrl_pending(rbio) > 0 || transport_eof || read_done)) {
        schedule_pump();
    }
    if (!pumping) update_transport_reading();
}

void tls_state::start_handshake(write_handler&& h, tls_consumer* c, tls_op** out,
                                std::error_code& ec) noexcept {
    call_guard g(this);
    if (ph == phase::failed) {
        ec = failed_ec;
        return;
    }
    if (ph != phase::idle || handshake_op) {
        ec = make_uv_error(UV_EALREADY);
        return;
    }
    if (ctx->role == tls_role::client && ctx->verify && verify_hostname && hostname.empty()) {
        ec = make_error_code(tls_errc::hostname_mismatch);
        return;
    }
    auto* op = new_op();
    if (!op) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    if (ctx->role == tls_role::client && ctx->verify && verify_hostname) {
        ERR_clear_error();
        ASN1_OCTET_STRING* ip = a2i_IPADDRESS(hostname.c_str());
        bool ok;
        if (ip) {
            ASN1_OCTET_STRING_free(ip);
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), hostname.c_str()) == 1;
        } else {
            ok = SSL_set1_host(ssl, hostname.c_str()) == 1;
        }
        if (!ok) {
            recycle(op);
            ec = queued_error(tls_errc::config_error);
            return;
        }
    }
    op->cb = std::move(h);
    op->consumer = c;
    handshake_op = op;
    if (out) *out = op;
    ph = phase::handshaking;
    if (ctx->role == tls_role::client)
        SSL_set_connect_state(ssl);
    else
        SSL_set_accept_state(ssl);
    ec = no_error();
    update_transport_reading();
    // A client's ClientHello goes out from the loop, never inside this call.
    schedule_pump();
}

void tls_state::start_write(std::string_view data, std::string* owned, write_handler&& h, tls_consumer* c,
                            tls_op** out, std::error_code& ec) noexcept {
    call_guard g(this);
    if (ph == phase::failed) {
        ec = failed_ec;
        return;
    }
    if (shutdown_requested || (owned ? owned->size() : data.size()) > 0x7fffffff) {
        ec = make_uv_error(shutdown_requested ? UV_EPIPE : UV_EINVAL);
        return;
    }
    auto* op = new_op();
    if (!op) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    if (owned) {
        op->owned = std::move(*owned);
        op->is_owned = true;
    } else {
        op->data = data;
    }
    op->consumer = c;
    ec = no_error();
    if (out) *out = op;
    if (ph == phase::established) {
        // Encrypted now; the handler runs when the transport's write completed.
        std::string_view d = op->is_owned ? std::string_view(op->owned) : op->data;
        if (!d.empty()) {
            clear_errors();
            int r = SSL_write(ssl, d.data(), static_cast<int>(d.size()));
            if (r <= 0) {
                ec = ssl_error(r);
                if (owned) *owned = std::move(op->owned);
                recycle(op);
                if (out) *out = nullptr;
                fail(ec);
                return;
            }
        }
        if (op->is_owned) std::string().swap(op->owned);
        send_cipher(op, ec);
        if (ec) {
            // The bytes were taken by OpenSSL but cannot be sent: the session is lost.
            recycle(op);
            if (out) *out = nullptr;
            fail(ec);
            return;
        }
        op->cb = std::move(h);
        return;
    }
    // Before the handshake completed: queued in order.
    op->cb = std::move(h);
    queued_bytes += op->is_owned ? op->owned.size() : op->data.size();
    if (queue_tail)
        queue_tail->next = op;
    else
        queue_head = op;
    queue_tail = op;
}

void tls_state::start_shutdown(write_handler&& h, tls_consumer* c, tls_op** out,
                               std::error_code& ec) noexcept {
    call_guard g(this);
    if (ph == phase::failed) {
        ec = failed_ec;
        return;
    }
    if (shutdown_requested) {
        ec = make_uv_error(UV_EALREADY);
        return;
    }
    auto* op = new_op();
    if (!op) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    op->cb = std::move(h);
    op->consumer = c;
    shutdown_op = op;
    shutdown_requested = true;
    if (out) *out = op;
    ec = no_error();
    if (ph == phase::established) do_shutdown();
}

void tls_state::begin_close() noexcept {
    if (closing) return;
    closing = true;
    if (transport_state && !transport_state->closing && transport_state->uvh) transport_state->begin_close();
}

void tls_state::on_transport_closed() noexcept {
    closing = true;
    closed = true;
    if (fail_pending) notify_failed();  // the failure, not errc::canceled
    std::error_code canceled = make_error_code(errc::canceled);
    if (tls_op* h = std::exchange(handshake_op, nullptr)) complete(h, canceled);
    while (tls_op* w = queue_head) {
        queue_head = w->next;
        complete(w, canceled);
    }
    queue_tail = nullptr;
    queued_bytes = 0;
    if (tls_op* s = std::exchange(shutdown_op, nullptr)) complete(s, canceled);
    if (reader) reader->tls_stop(false);
    on_read.set(nullptr);
    if (on_closed) {
        auto f = std::move(on_closed);
        on_closed = nullptr;
        call(owner, [&] { f(); });
    }
    unref(this);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// tls_stream

using detail::tls_state;

void tls_stream::init(const tls_context& ctx, std::unique_ptr<transport_holder> t,
                      std::error_code& ec) noexcept {
    stream& s = t->get();
    if (!ctx.state_ || !ctx.state_->ctx || !s.raw_stream() || s.closing()) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    auto* hs = detail::state_of<detail::stream_state>(s.raw_stream());
    // A coroutine read waiting on `s`, or bytes it kept unread, would be lost.
    if (hs->consumer && !hs->consumer->yield()) {
        ec = make_uv_error(UV_EBUSY);
        return;
    }
    std::unique_ptr<tls_state> st(new (std::nothrow) tls_state);
    if (!st) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    if (!hs->owner->prepare_read_buffer()) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    ERR_clear_error();
    st->ssl = SSL_new(ctx.state_->ctx);
    st->rbio = BIO_new(BIO_s_mem());
    st->wbio = BIO_new(BIO_s_mem());
    if (!st->ssl || !st->rbio || !st->wbio) {
        if (st->rbio) BIO_free(st->rbio);
        if (st->wbio) BIO_free(st->wbio);
        ec = ERR_peek_error() ? queued_error(tls_errc::config_error) : make_uv_error(UV_ENOMEM);
        return;
    }
    SSL_set_bio(st->ssl, st->rbio, st->wbio);
    SSL_set_app_data(st->ssl, st.get());  // for keep_session
    s.read_stop();  // a read_start() handler on `s` is replaced; reading resumes with the handshake
    st->owner = hs->owner;
    st->ctx = ctx.state_;
    st->holder = std::move(t);
    st->transport_state = hs;
    st->refs = 2;  // the owner, and the open transport
    tls_state* raw = st.release();
    // The transport's close (ours, or the loop's when it goes away) completes what waits.
    hs->on_closed = [raw] { raw->on_transport_closed(); };
    state_ = raw;
    ec = detail::no_error();
}

tls_stream& tls_stream::operator=(tls_stream&& o) noexcept {
    if (this != &o) {
        if (state_) {
            state_->begin_close();
            tls_state::unref(state_);
        }
        state_ = std::exchange(o.state_, nullptr);
    }
    return *this;
}

tls_stream::~tls_stream() {
    if (state_) {
        state_->begin_close();
        tls_state::unref(state_);
    }
}

tls_state* tls_stream::usable(std::error_code& ec) const noexcept {
    if (!state_ || state_->closing) {
        ec = make_uv_error(UV_EINVAL);
        return nullptr;
    }
    ec = detail::no_error();
    return state_;
}

void tls_stream::set_hostname(std::string_view name, std::error_code& ec) noexcept {
    tls_state* s = usable(ec);
    if (!s) return;
    if (s->ph != tls_state::phase::idle || name.empty() || name.find('\0') != std::string_view::npos) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    try {
        s->hostname = std::string(name);
    } catch (...) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    if (s->ctx->role != tls_role::client) return;
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(s->hostname.c_str());
    if (ip) {
        ASN1_OCTET_STRING_free(ip);  // SNI carries names only (RFC 6066)
        return;
    }
    ERR_clear_error();
    if (SSL_set_tlsext_host_name(s->ssl, s->hostname.c_str()) != 1) ec = queued_error(tls_errc::config_error);
}
void tls_stream::set_hostname(std::string_view name) {
    detail::throwing("uvkit::tls_stream::set_hostname", [&](std::error_code& ec) { set_hostname(name, ec); });
}

void tls_stream::set_verify_hostname(bool on) noexcept {
    if (state_) state_->verify_hostname = on;
}

void tls_stream::set_session(const tls_session& session, std::error_code& ec) noexcept {
    tls_state* s = usable(ec);
    if (!s) return;
    if (!session || s->ctx->role != tls_role::client || s->ph != tls_state::phase::idle) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    ERR_clear_error();
    // A copy, so that `session` stays resumable however this connection ends
    // (see keep_session); SSL_set_session takes its own reference.
    SSL_SESSION* copy = SSL_SESSION_dup(session.raw());
    if (!copy) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    if (SSL_set_session(s->ssl, copy) != 1) ec = queued_error(tls_errc::config_error);
    SSL_SESSION_free(copy);
}
void tls_stream::set_session(const tls_session& session) {
    detail::throwing("uvkit::tls_stream::set_session",
                     [&](std::error_code& ec) { set_session(session, ec); });
}

tls_session tls_stream::session() const noexcept { return state_ ? state_->session : tls_session(); }

bool tls_stream::session_reused() const noexcept {
    return handshake_done() && SSL_session_reused(state_->ssl) == 1;
}

void tls_stream::handshake_fn(detail::write_handler&& h, std::error_code& ec) noexcept {
    if (tls_state* s = usable(ec)) s->start_handshake(std::move(h), nullptr, nullptr, ec);
}

void tls_stream::read_start_fn(detail::unique_function<void(std::error_code, std::string_view)>&& h,
                               std::error_code& ec) noexcept {
    tls_state* s = usable(ec);
    if (!s) return;
    if (s->ph == tls_state::phase::failed) {
        ec = s->failed_ec;
        return;
    }
    if (s->reader) {
        if (!s->reader->tls_yield()) {
            ec = make_uv_error(UV_EBUSY);
            return;
        }
        delete std::exchange(s->reader, nullptr);
        s->reading = false;
    }
    s->on_read.set(std::move(h));
    s->set_reading(true);
}

void tls_stream::read_stop() noexcept {
    if (state_ && !state_->closing) {
        state_->set_reading(false);
        if (state_->reader) state_->reader->tls_stop(true);  // inside a user's call: the loop resumes it
    }
}

void tls_stream::write_fn(std::string_view data, std::string* owned, detail::write_handler&& h,
                          std::error_code& ec) noexcept {
    if (tls_state* s = usable(ec)) s->start_write(data, owned, std::move(h), nullptr, nullptr, ec);
}

void tls_stream::shutdown_fn(detail::write_handler&& h, std::error_code& ec) noexcept {
    if (tls_state* s = usable(ec)) s->start_shutdown(std::move(h), nullptr, nullptr, ec);
}

void tls_stream::close_fn(detail::unique_function<void()>&& on_closed) noexcept {
    if (!state_ || state_->closing) return;
    state_->on_closed = std::move(on_closed);
    state_->begin_close();
}

std::size_t tls_stream::write_queue_size() const noexcept {
    if (!state_ || state_->closed) return 0;
    return state_->queued_bytes + state_->transport().write_queue_size();
}

bool tls_stream::handshake_done() const noexcept {
    return state_ && state_->ph == tls_state::phase::established;
}

bool tls_stream::closing() const noexcept { return !state_ || state_->closing; }

std::string tls_stream::peer_subject() const {
    if (!state_ || !state_->ssl) return {};
    X509* peer = SSL_get0_peer_certificate(state_->ssl);
    if (!peer) return {};
    BIO* out = BIO_new(BIO_s_mem());
    if (!out) throw std::bad_alloc();
    X509_NAME_print_ex(out, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
    char* p = nullptr;
    long n = BIO_get_mem_data(out, &p);
    std::string r(p, static_cast<std::size_t>(n > 0 ? n : 0));
    BIO_free(out);
    return r;
}

std::string tls_stream::alpn() const {
    if (!state_ || !state_->ssl) return {};
    const unsigned char* p = nullptr;
    unsigned n = 0;
    SSL_get0_alpn_selected(state_->ssl, &p, &n);
    return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

std::string tls_stream::protocol() const {
    if (!handshake_done()) return {};
    return SSL_get_version(state_->ssl);
}

std::string tls_stream::cipher() const {
    if (!handshake_done()) return {};
    const char* c = SSL_get_cipher_name(state_->ssl);
    return c ? c : "";
}

stream& tls_stream::transport() const {
    if (!state_) detail::throw_uv_error(UV_EINVAL, "uvkit::tls_stream::transport");
    return state_->transport();
}

ssl_st* tls_stream::raw() const noexcept { return state_ ? state_->ssl : nullptr; }

uvkit::loop& tls_stream::get_loop() const {
    if (!state_ || state_->closed) detail::throw_uv_error(UV_EINVAL, "uvkit::tls_stream::get_loop");
    return *state_->owner;
}

}  // namespace uvkit
