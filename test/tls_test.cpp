// uvkit::tls_context and uvkit::tls_stream with callbacks: uvkit against
// uvkit, against raw (hostile) TCP peers, and against `openssl s_server` and
// `openssl s_client`. Certificates are made by tls_util.hpp at test time.
#include <uvkit/tls.hpp>

#include <openssl/ssl.h>
#include <uvkit/uvkit.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "alloc_counter.hpp"
#include "fixture.hpp"
#include "tls_util.hpp"

using uvkit_tls_test::certs;
using uvkit_tls_test::client_ctx;
using uvkit_tls_test::pattern;
using uvkit_tls_test::server_ctx;

namespace {

struct tls_fixture : uvkit_test::loop_fixture {
    /// A connected pair of tcp sockets {server side, client side}, by callbacks.
    std::pair<uvkit::tcp, uvkit::tcp> tcp_pair() {
        uvkit::tcp listener{loop};
        listener.bind(uvkit::endpoint::parse("127.0.0.1:0"));
        uvkit::tcp accepted{loop};
        bool got = false, connected = false;
        listener.listen(8, [&](std::error_code ec) {
            REQUIRE_FALSE(ec);
            listener.accept(accepted);
            got = true;
        });
        uvkit::tcp c{loop};
        c.connect(listener.local_endpoint(), [&](std::error_code ec) {
            REQUIRE_FALSE(ec);
            connected = true;
        });
        run_until([&] { return got && connected; });
        return {std::move(accepted), std::move(c)};
    }

    /// A TLS pair over tcp_pair(), handshake not started: {server, client}.
    std::pair<uvkit::tls_stream, uvkit::tls_stream> tls_pair(const uvkit::tls_context& sctx,
                                                             const uvkit::tls_context& cctx,
                                                             std::string_view host = "localhost") {
        auto ab = tcp_pair();
        uvkit::tls_stream s{sctx, std::move(ab.first)};
        uvkit::tls_stream c{cctx, std::move(ab.second)};
        if (!host.empty()) c.set_hostname(host);
        return {std::move(s), std::move(c)};
    }

    /// Runs both handshakes; returns {server's result, client's result}.
    std::pair<std::error_code, std::error_code> handshake(uvkit::tls_stream& s, uvkit::tls_stream& c) {
        std::optional<std::error_code> se, ce;
        int scalls = 0, ccalls = 0;
        s.handshake([&](std::error_code ec) {
            ++scalls;
            se = ec;
        });
        c.handshake([&](std::error_code ec) {
            ++ccalls;
            ce = ec;
        });
        run_until([&] { return se && ce; });
        // Exactly once, also after the loop ran some more.
        loop.run(uvkit::run_mode::nowait);
        CHECK(scalls == 1);
        CHECK(ccalls == 1);
        return {*se, *ce};
    }

    /// Reads from `t` until EOF or an error; returns what was read and the end.
    struct collected {
        std::string data;
        std::optional<std::error_code> end;
    };
    void collect(uvkit::tls_stream& t, collected& out) {
        t.read_start([&out](std::error_code ec, std::string_view d) {
            if (ec)
                out.end = ec;
            else
                out.data += d;
        });
    }
};

/// A raw TCP server on 127.0.0.1:0 that does `on_data(conn, bytes)` with
/// what a client sends (or nothing): the hostile peer of the failure tests.
struct raw_server {
    uvkit::tcp listener;
    uvkit::tcp conn;
    explicit raw_server(uvkit::loop& l) : listener(l), conn(l) {
        listener.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    }
    template <class F>
    void serve(F on_data) {
        listener.listen(8, [this, on_data](std::error_code ec) mutable {
            REQUIRE_FALSE(ec);
            listener.accept(conn);
            conn.read_start([this, on_data](std::error_code rec, std::string_view d) mutable {
                if (!rec) on_data(conn, d);
            });
        });
    }
    uvkit::endpoint ep() const { return listener.local_endpoint(); }
};

}  // namespace

TEST_SUITE("tls") {

TEST_CASE_FIXTURE(tls_fixture, "tls: handshake, then the protocol, cipher, peer subject and ALPN") {
    auto sctx = server_ctx();
    sctx.set_alpn({"http/1.1"});
    auto cctx = client_ctx();
    cctx.set_alpn({"h2", "http/1.1"});
    auto sc = tls_pair(sctx, cctx);
    auto& s = sc.first;
    auto& c = sc.second;
    CHECK_FALSE(c.handshake_done());
    auto r = handshake(s, c);
    REQUIRE_MESSAGE(!r.first, r.first.message());
    REQUIRE_MESSAGE(!r.second, r.second.message());
    CHECK(c.handshake_done());
    CHECK(s.handshake_done());
    CHECK(c.protocol() == "TLSv1.3");
    CHECK(s.protocol() == "TLSv1.3");
    CHECK_FALSE(c.cipher().empty());
    CHECK(c.cipher() == s.cipher());
    CHECK(c.peer_subject().find("CN=localhost") != std::string::npos);
    CHECK(s.peer_subject().empty());  // the client sent no certificate
    CHECK(c.alpn() == "http/1.1");
    CHECK(s.alpn() == "http/1.1");
    CHECK(c.raw() != nullptr);
    CHECK(c.transport().raw_stream() != nullptr);
}

TEST_CASE_FIXTURE(tls_fixture, "tls: TLS 1.2 only, with a chosen cipher") {
    auto sctx = server_ctx();
    SSL_CTX_set_max_proto_version(sctx.raw(), TLS1_2_VERSION);
    sctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256");
    auto sc = tls_pair(sctx, client_ctx());
    auto r = handshake(sc.first, sc.second);
    REQUIRE_MESSAGE(!r.second, r.second.message());
    CHECK(sc.second.protocol() == "TLSv1.2");
    CHECK(sc.second.cipher() == "ECDHE-ECDSA-AES128-GCM-SHA256");
    CHECK(sc.second.alpn().empty());
}

TEST_CASE_FIXTURE(tls_fixture, "tls: a minimum of TLS 1.3 refuses a TLS 1.2-only peer") {
    auto sctx = server_ctx();
    SSL_CTX_set_max_proto_version(sctx.raw(), TLS1_2_VERSION);
    auto cctx = client_ctx();
    cctx.set_min_version(uvkit::tls_version::tls1_3);
    auto sc = tls_pair(sctx, cctx);
    auto r = handshake(sc.first, sc.second);
    CHECK(r.second == uvkit::tls_errc::handshake_failed);
    CHECK(r.first == uvkit::tls_errc::handshake_failed);
    CHECK(r.second.category() == uvkit::tls_category());
}

TEST_CASE_FIXTURE(tls_fixture, "tls: writes made during the handshake are queued and arrive in order") {
    auto sc = tls_pair(server_ctx(), client_ctx());
    auto& s = sc.first;
    auto& c = sc.second;
    collected got;
    collect(s, got);  // read_start before the handshake: bytes come after it
    std::vector<std::string> order;
    const std::string borrowed = "two,";
    c.handshake([&](std::error_code ec) { order.push_back(ec ? "hs-error" : "hs"); });
    c.write(std::string("one,"), [&](std::error_code ec) { order.push_back(ec ? "w1-error" : "w1"); });
    c.write(borrowed, [&](std::error_code ec) { order.push_back(ec ? "w2-error" : "w2"); });
    c.write(std::string("three"));
    CHECK(c.write_queue_size() >= 12);
    s.handshake([](std::error_code) {});
    run_until([&] { return got.data.size() == 13 && order.size() == 3; });
    CHECK(got.data == "one,two,three");
    CHECK(order == std::vector<std::string>{"hs", "w1", "w2"});
    CHECK_FALSE(got.end);
}

TEST_CASE_FIXTURE(tls_fixture,
                  "tls: shutdown sends close_notify: the peer reads eof, then half-close replies") {
    auto sc = tls_pair(server_ctx(), client_ctx());
    auto& s = sc.first;
    auto& c = sc.second;
    REQUIRE_FALSE(handshake(s, c).second);
    collected at_server, at_client;
    collect(c, at_client);
    std::optional<std::error_code> c_shut, s_shut;
    s.read_start([&](std::error_code ec, std::string_view d) {
        if (!ec) {
            at_server.data += d;
            return;
        }
        at_server.end = ec;
        // The client's write side is closed; ours still works.
        s.write(std::string("reply after eof"));
        s.shutdown([&](std::error_code sec) { s_shut = sec; });
    });
    c.write(std::string("request"));
    c.shutdown([&](std::error_code ec) { c_shut = ec; });
    std::error_code again;
    c.shutdown([](std::error_code) {}, again);
    CHECK(again == std::errc::connection_already_in_progress);
    std::error_code late;
    c.write(
        "late", [](std::error_code) {}, late);
    CHECK(late == std::errc::broken_pipe);
    run_until([&] { return at_client.end && s_shut && c_shut; });
    CHECK(at_server.data == "request");
    REQUIRE(at_server.end);
    CHECK(*at_server.end == uvkit::errc::eof);
    CHECK(at_client.data == "reply after eof");
    CHECK(*at_client.end == uvkit::errc::eof);
    CHECK_FALSE(*c_shut);
    CHECK_FALSE(*s_shut);
}

TEST_CASE_FIXTURE(tls_fixture, "tls: 1 MiB each way, byte for byte, under write_queue_size backpressure") {
    auto sc = tls_pair(server_ctx(), client_ctx());
    auto& s = sc.first;
    auto& c = sc.second;
    REQUIRE_FALSE(handshake(s, c).second);
    const std::string up = pattern(1 << 20, 1), down = pattern(1 << 20, 2);
    collected at_server, at_client;
    collect(s, at_server);
    collect(c, at_client);
    // Each side writes 64 KiB pieces, the next one when the queue is below 256 KiB.
    struct writer {
        uvkit::tls_stream* t;
        const std::string* data;
        std::size_t pos = 0;
        int in_flight = 0;
        void more() {
            while (pos < data->size() && t->write_queue_size() < 256 * 1024) {
                std::size_t n = std::min<std::size_t>(64 * 1024, data->size() - pos);
                ++in_flight;
                t->write(std::string_view(*data).substr(pos, n), [this](std::error_code ec) {
                    REQUIRE_FALSE(ec);
                    --in_flight;
                    more();
                });
                pos += n;
            }
            if (pos == data->size() && in_flight == 0)
                t->shutdown([](std::error_code ec) { CHECK_FALSE(ec); });
        }
    } wc{&c, &up}, ws{&s, &down};
    wc.more();
    ws.more();
    run_until([&] { return at_server.end && at_client.end; });
    CHECK(*at_server.end == uvkit::errc::eof);
    CHECK(*at_client.end == uvkit::errc::eof);
    CHECK(at_server.data.size() == up.size());
    CHECK(at_server.data == up);
    CHECK(at_client.data.size() == down.size());
    CHECK(at_client.data == down);
}

TEST_CASE_FIXTURE(tls_fixture, "tls: read_stop pauses delivery; read_start resumes it, nothing lost") {
    auto sc = tls_pair(server_ctx(), client_ctx());
    auto& s = sc.first;
    auto& c = sc.second;
    REQUIRE_FALSE(handshake(s, c).second);
    std::string got;
    int chunks = 0;
    s.read_start([&](std::error_code ec, std::string_view d) {
        REQUIRE_FALSE(ec);
        got += d;
        ++chunks;
        s.read_stop();  // one chunk, then stop
    });
    bool written = false;
    // Two TLS records in one transport write: the second stays with OpenSSL.
    c.write(std::string("first"), [&](std::error_code) {
        c.write(std::string("second"), [&](std::error_code) { written = true; });
    });
    run_until([&] { return chunks == 1; });
    run_until([&] { return written; });
    CHECK(got == "first");
    s.read_start([&](std::error_code ec, std::string_view d) {
        REQUIRE_FALSE(ec);
        got += d;
        ++chunks;
    });
    run_until([&] { return got == "firstsecond"; });
}

TEST_CASE_FIXTURE(tls_fixture, "tls: verification failures name OpenSSL's reason") {
    struct row {
        const char* name;
        std::string cert, key;
        bool trust_ca;
        uvkit::tls_errc kind;
        const char* reason;
    };
    const certs& k = certs::get();
    std::vector<row> rows = {
        {"unknown CA", k.cert, k.key, false, uvkit::tls_errc::verify_failed, "unable to get local issuer"},
        {"self-signed", k.self_signed, k.self_key, true, uvkit::tls_errc::verify_failed, "self-signed"},
        {"expired", k.expired, k.key, true, uvkit::tls_errc::verify_failed, "expired"},
        {"wrong host", k.wrong_host, k.key, true, uvkit::tls_errc::hostname_mismatch, "mismatch"},
    };
    for (const row& r : rows) {
        CAPTURE(r.name);
        uvkit::tls_context cctx = r.trust_ca ? client_ctx() : uvkit::tls_context{uvkit::tls_role::client};
        auto sc = tls_pair(server_ctx(r.cert, r.key), cctx);
        auto res = handshake(sc.first, sc.second);
        std::error_code ce = res.second;
        CHECK(ce.category() == uvkit::tls_category());
        CHECK(ce == r.kind);
        CHECK(ce == uvkit::tls_errc::verify_failed);  // a host name mismatch is a verification failure too
        CHECK_MESSAGE(ce.message().find(r.reason) != std::string::npos, ce.message());
        // The server learns it from the client's alert.
        CHECK(res.first == uvkit::tls_errc::handshake_failed);
        CHECK_MESSAGE(res.first.message().find("alert") != std::string::npos, res.first.message());
        // The stream is failed: reading and writing report it.
        std::error_code w;
        sc.second.write(
            "x", [](std::error_code) {}, w);
        CHECK(w == ce);
        CHECK_FALSE(sc.second.handshake_done());
    }
}

TEST_CASE_FIXTURE(tls_fixture, "tls: host name rules: an IP literal, no name, verification turned off") {
    const certs& k = certs::get();
    {
        auto sc = tls_pair(server_ctx(), client_ctx(), "127.0.0.1");
        auto r = handshake(sc.first, sc.second);
        CHECK_MESSAGE(!r.second, r.second.message());
    }
    {
        auto sc = tls_pair(server_ctx(), client_ctx(), "");
        std::error_code ec;
        sc.second.handshake([](std::error_code) { FAIL("must not run"); }, ec);
        CHECK(ec == uvkit::tls_errc::hostname_mismatch);
        CHECK_THROWS_AS(sc.second.handshake([](std::error_code) {}), std::system_error);
    }
    {
        auto sc = tls_pair(server_ctx(k.wrong_host, k.key), client_ctx());
        sc.second.set_verify_hostname(false);  // the chain is still verified
        auto r = handshake(sc.first, sc.second);
        CHECK_MESSAGE(!r.second, r.second.message());
    }
    {
        auto cctx = client_ctx();
        cctx.set_verify_peer(false);
        CHECK_FALSE(cctx.verify_peer());
        auto sc = tls_pair(server_ctx(k.self_signed, k.self_key), cctx, "");
        auto r = handshake(sc.first, sc.second);
        CHECK_MESSAGE(!r.second, r.second.message());
    }
}

TEST_CASE_FIXTURE(tls_fixture, "tls: a server that requires client certificates") {
    auto sctx = server_ctx();
    sctx.load_verify_file(certs::get().ca);
    sctx.set_verify_peer(true);
    {
        auto sc = tls_pair(sctx, client_ctx());
        auto r = handshake(sc.first, sc.second);
        CHECK(r.first == uvkit::tls_errc::handshake_failed);
        CHECK_MESSAGE(r.first.message().find("certificate") != std::string::npos, r.first.message());
    }
    {
        auto cctx = client_ctx();
        cctx.use_certificate_chain_file(certs::get().cert);
        cctx.use_private_key_file(certs::get().key);
        auto sc = tls_pair(sctx, cctx);
        auto r = handshake(sc.first, sc.second);
        CHECK_MESSAGE(!r.first, r.first.message());
        CHECK(sc.first.peer_subject().find("CN=localhost") != std::string::npos);
    }
}

namespace {
/// One connection: the handshake (offering `offer` if given), then the server
/// writes "hi" and the client reads it (a TLS 1.3 server's session tickets come
/// before it). Returns the client's newest session; `reused` gets
/// {server's session_reused(), client's}.
uvkit::tls_session one_connection(tls_fixture& f, const uvkit::tls_context& sctx,
                                  const uvkit::tls_context& cctx, const uvkit::tls_session& offer,
                                  std::pair<bool, bool>& reused) {
    auto sc = f.tls_pair(sctx, cctx);
    auto& s = sc.first;
    auto& c = sc.second;
    if (offer) c.set_session(offer);
    auto r = f.handshake(s, c);
    REQUIRE_MESSAGE(!r.first, r.first.message());
    REQUIRE_MESSAGE(!r.second, r.second.message());
    CHECK(c.peer_subject().find("CN=localhost") != std::string::npos);
    reused = {s.session_reused(), c.session_reused()};
    CHECK_FALSE(s.session());  // a server keeps no session per connection
    tls_fixture::collected got;
    f.collect(c, got);
    s.write(std::string("hi"));
    f.run_until([&] { return got.data == "hi" || got.end.has_value(); });
    CHECK(got.data == "hi");
    return c.session();
}
}  // namespace

TEST_CASE_FIXTURE(tls_fixture, "tls: a client resumes a session it kept, over TLS 1.3 and TLS 1.2") {
    for (bool tls12 : {false, true}) {
        CAPTURE(tls12);
        auto sctx = server_ctx();
        if (tls12) SSL_CTX_set_max_proto_version(sctx.raw(), TLS1_2_VERSION);
        auto cctx = client_ctx();
        std::pair<bool, bool> reused;
        uvkit::tls_session first = one_connection(*this, sctx, cctx, {}, reused);
        CHECK(reused == std::pair{false, false});
        REQUIRE(first);
        uvkit::tls_session second = one_connection(*this, sctx, cctx, first, reused);
        CHECK(reused == std::pair{true, true});
        // A session copied from the context of another client resumes too
        // (the server decides), and a fresh context offers nothing.
        auto other = client_ctx();
        one_connection(*this, sctx, other, second ? second : first, reused);
        CHECK(reused == std::pair{true, true});
        one_connection(*this, sctx, other, {}, reused);
        CHECK(reused == std::pair{false, false});
    }
}

TEST_CASE_FIXTURE(tls_fixture, "tls: a server without session resumption makes full handshakes") {
    auto sctx = server_ctx();
    sctx.set_session_resumption(false);
    auto cctx = client_ctx();
    std::pair<bool, bool> reused;
    uvkit::tls_session first = one_connection(*this, sctx, cctx, {}, reused);
    CHECK_FALSE(first);  // TLS 1.3: no tickets were sent
    // A session from a server that resumes is refused by one that does not.
    auto resuming = server_ctx();
    uvkit::tls_session kept = one_connection(*this, resuming, cctx, {}, reused);
    REQUIRE(kept);
    one_connection(*this, sctx, cctx, kept, reused);
    CHECK(reused == std::pair{false, false});
    // Turned back on, it resumes.
    sctx.set_session_resumption(true);
    kept = one_connection(*this, sctx, cctx, {}, reused);
    REQUIRE(kept);
    one_connection(*this, sctx, cctx, kept, reused);
    CHECK(reused == std::pair{true, true});
}

TEST_CASE_FIXTURE(tls_fixture, "tls: a resumed session with client certificates required") {
    auto sctx = server_ctx();
    sctx.load_verify_file(certs::get().ca);
    sctx.set_verify_peer(true);
    auto cctx = client_ctx();
    cctx.use_certificate_chain_file(certs::get().cert);
    cctx.use_private_key_file(certs::get().key);
    std::pair<bool, bool> reused;
    uvkit::tls_session kept = one_connection(*this, sctx, cctx, {}, reused);
    REQUIRE(kept);
    one_connection(*this, sctx, cctx, kept, reused);
    CHECK(reused == std::pair{true, true});
}

TEST_CASE_FIXTURE(tls_fixture, "tls: set_session refuses what it cannot offer") {
    auto sctx = server_ctx();
    auto cctx = client_ctx();
    std::pair<bool, bool> reused;
    uvkit::tls_session kept = one_connection(*this, sctx, cctx, {}, reused);
    REQUIRE(kept);
    auto sc = tls_pair(sctx, cctx);
    std::error_code ec;
    sc.second.set_session(uvkit::tls_session{}, ec);  // empty
    CHECK(ec == std::errc::invalid_argument);
    sc.first.set_session(kept, ec);  // a server stream
    CHECK(ec == std::errc::invalid_argument);
    CHECK_THROWS_AS(sc.first.set_session(kept), std::system_error);
    CHECK_FALSE(sc.second.session_reused());  // no handshake yet
    auto r = handshake(sc.first, sc.second);
    REQUIRE_FALSE(r.second);
    sc.second.set_session(kept, ec);  // after the handshake
    CHECK(ec == std::errc::invalid_argument);
    uvkit::tls_stream empty;
    empty.set_session(kept, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK_FALSE(empty.session());
    CHECK_FALSE(empty.session_reused());
    CHECK(kept.raw() != nullptr);
}

TEST_CASE_FIXTURE(tls_fixture,
                  "tls: a bulk writer allocates nothing per 64 KiB write once warm; a quiet stream lets go") {
    auto sc = tls_pair(server_ctx(), client_ctx());
    auto& s = sc.first;
    auto& c = sc.second;
    auto r = handshake(s, c);
    REQUIRE_FALSE(r.second);
    const std::string chunk = pattern(64 * 1024, 3);
    std::size_t received = 0;
    bool broken = false;
    s.read_start([&](std::error_code ec, std::string_view d) {
        if (ec) broken = true;
        received += d.size();
    });
    // Two writes in flight; each completion starts the next one. The handler
    // holds one pointer, so that it is stored inline (the test's own handlers
    // must not allocate).
    struct bulk_writer {
        uvkit::tls_stream& c;
        const std::string& chunk;
        int warmup = 20, counted = 200;
        int started = 0, completed = 0;
        bool failed = false;
        std::size_t window_start = 0, window_allocs = 0;
        void next() {
            if (started == warmup + counted) return;
            ++started;
            c.write(chunk, [this](std::error_code ec) {
                failed = failed || ec;
                if (++completed == warmup) window_start = uvkit_test::allocations();
                if (completed == warmup + counted) window_allocs = uvkit_test::allocations() - window_start;
                next();
            });
        }
    } w{c, chunk};
    w.next();
    w.next();
    const int total = w.warmup + w.counted;
    run_until([&] { return w.completed == total && received == chunk.size() * total; });
    CHECK_FALSE(broken);
    CHECK_FALSE(w.failed);
    CHECK(w.window_allocs == 0);  // operator new only: OpenSSL's own (malloc) are not counted
    // Quiet now: the 64 KiB ciphertext buffers were let go, so the next big
    // write allocates one again (an idle connection holds no more than a record per pooled write).
    std::size_t before = uvkit_test::allocations();
    bool done = false;
    c.write(chunk, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        done = true;
    });
    CHECK(uvkit_test::allocations() - before >= 1);
    run_until([&] { return done && received == chunk.size() * (total + 1); });
}

TEST_CASE_FIXTURE(tls_fixture, "tls: empty writes complete in order with the others") {
    auto sc = tls_pair(server_ctx(), client_ctx());
    auto& s = sc.first;
    auto& c = sc.second;
    collected got;
    collect(s, got);
    std::vector<int> order;
    c.write("", [&](std::error_code ec) {  // queued during the handshake
        CHECK_FALSE(ec);
        order.push_back(1);
    });
    auto r = handshake(s, c);
    REQUIRE_FALSE(r.second);
    c.write("ab", [&](std::error_code ec) {
        CHECK_FALSE(ec);
        order.push_back(2);
    });
    c.write(std::string(), [&](std::error_code ec) {
        CHECK_FALSE(ec);
        order.push_back(3);
    });
    c.write("cd", [&](std::error_code ec) {
        CHECK_FALSE(ec);
        order.push_back(4);
    });
    run_until([&] { return order.size() == 4 && got.data == "abcd"; });
    CHECK(order == std::vector<int>{1, 2, 3, 4});
}

TEST_CASE_FIXTURE(tls_fixture, "tls: certificates and keys from memory; configuration errors") {
    const certs& k = certs::get();
    uvkit::tls_context sctx{uvkit::tls_role::server};
    sctx.use_certificate_chain(certs::read(k.cert) + certs::read(k.ca));
    sctx.use_private_key(certs::read(k.key));
    auto sc = tls_pair(sctx, client_ctx());
    auto r = handshake(sc.first, sc.second);
    CHECK_MESSAGE(!r.second, r.second.message());

    std::error_code ec;
    sctx.use_certificate_chain_file(k.dir + "/missing.pem", ec);
    CHECK(ec == uvkit::tls_errc::config_error);
    CHECK_MESSAGE(ec.message().find("No such file") != std::string::npos, ec.message());
    sctx.use_certificate_chain("not a certificate", ec);
    CHECK(ec == uvkit::tls_errc::config_error);
    uvkit::tls_context other{uvkit::tls_role::server};
    other.use_certificate_chain_file(k.cert);
    other.use_private_key_file(k.self_key, ec);  // not the certificate's key
    CHECK(ec == uvkit::tls_errc::config_error);
    CHECK_MESSAGE(ec.message().find("key values mismatch") != std::string::npos, ec.message());
    sctx.set_ciphers("NO-SUCH-CIPHER", ec);
    CHECK(ec == uvkit::tls_errc::config_error);
    std::vector<std::string> bad_alpn{std::string()};
    sctx.set_alpn(bad_alpn, ec);
    CHECK(ec == uvkit::tls_errc::config_error);
    CHECK_THROWS_AS(sctx.load_verify_file(k.dir + "/missing.pem"), std::system_error);
    uvkit::tls_context empty;
    empty.set_ciphers("DEFAULT", ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK_FALSE(empty);
    uvkit::tcp t{loop};
    CHECK_THROWS_AS(uvkit::tls_stream(empty, std::move(t)), std::system_error);
}

TEST_CASE_FIXTURE(tls_fixture, "tls: an empty or moved-from tls_stream fails with UV_EINVAL") {
    uvkit::tls_stream e;
    std::error_code ec;
    e.write(
        "x", [](std::error_code) {}, ec);
    CHECK(ec == std::errc::invalid_argument);
    e.handshake([](std::error_code) {}, ec);
    CHECK(ec == std::errc::invalid_argument);
    e.shutdown([](std::error_code) {}, ec);
    CHECK(ec == std::errc::invalid_argument);
    e.read_start([](std::error_code, std::string_view) {}, ec);
    CHECK(ec == std::errc::invalid_argument);
    e.read_stop();
    e.close();
    CHECK(e.closing());
    CHECK(e.write_queue_size() == 0);
    CHECK(e.protocol().empty());
    CHECK_THROWS_AS(e.get_loop(), std::system_error);
    CHECK_THROWS_AS(e.transport(), std::system_error);

    auto sc = tls_pair(server_ctx(), client_ctx());
    uvkit::tls_stream moved = std::move(sc.second);
    CHECK_FALSE(sc.second);
    CHECK(moved);
    CHECK(&moved.get_loop() == &loop);
    sc.second.write(
        "x", [](std::error_code) {}, ec);
    CHECK(ec == std::errc::invalid_argument);
    // A stream read by a handler is taken over: the handler is no longer called.
    auto ab = tcp_pair();
    int old_handler = 0;
    ab.first.read_start([&](std::error_code, std::string_view) { ++old_handler; });
    uvkit::tls_stream s{server_ctx(), std::move(ab.first)};
    uvkit::tls_stream c{client_ctx(), std::move(ab.second)};
    c.set_hostname("localhost");
    auto r = handshake(s, c);
    CHECK_MESSAGE(!r.first, r.first.message());
    CHECK(old_handler == 0);
}

TEST_CASE_FIXTURE(tls_fixture,
                  "tls: close during the handshake cancels it and the queued writes, once each") {
    auto sc = tls_pair(server_ctx(), client_ctx());
    auto& c = sc.second;
    std::vector<std::error_code> got;
    bool closed = false;
    c.handshake([&](std::error_code ec) { got.push_back(ec); });
    c.write(std::string("queued"), [&](std::error_code ec) { got.push_back(ec); });
    c.shutdown([&](std::error_code ec) { got.push_back(ec); });
    c.close([&] { closed = true; });
    c.close([&] { FAIL("a second close does nothing"); });
    CHECK(got.empty());  // never inside close()
    run_until([&] { return closed; });
    REQUIRE(got.size() == 3);
    for (auto& ec : got) CHECK(ec == uvkit::errc::canceled);
    std::error_code ec;
    c.write(
        "x", [](std::error_code) {}, ec);
    CHECK(ec == std::errc::invalid_argument);
}

TEST_CASE_FIXTURE(tls_fixture, "tls: destroying the stream inside its handlers is safe") {
    auto sc = tls_pair(server_ctx(), client_ctx());
    auto s = std::make_unique<uvkit::tls_stream>(std::move(sc.first));
    auto c = std::make_unique<uvkit::tls_stream>(std::move(sc.second));
    int calls = 0;
    s->handshake([&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        s->read_start([&](std::error_code rec, std::string_view) {
            ++calls;
            CHECK_FALSE(rec);
            s.reset();  // inside its own read handler, with more records waiting
        });
    });
    c->handshake([&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        c->write(std::string("a"));
        c->write(std::string("b"));
        c->write(std::string("c"), [&](std::error_code) { c.reset(); });  // inside its write handler
    });
    run_until([&] { return !s && !c; });
    CHECK(calls == 1);
}

TEST_CASE_FIXTURE(tls_fixture, "tls: a peer that closes without close_notify is unexpected_eof") {
    auto sc = tls_pair(server_ctx(), client_ctx());
    auto& s = sc.first;
    auto& c = sc.second;
    REQUIRE_FALSE(handshake(s, c).second);
    collected got;
    collect(c, got);
    s.write(std::string("partial"), [&](std::error_code) { s.close(); });
    run_until([&] { return got.end.has_value(); });
    CHECK(got.data == "partial");
    CHECK(*got.end == uvkit::tls_errc::unexpected_eof);
    CHECK_MESSAGE(got.end->message().find("unexpected eof") != std::string::npos, got.end->message());
    CHECK(*got.end != uvkit::errc::eof);
}

TEST_CASE_FIXTURE(tls_fixture, "tls: hostile peers during the handshake: garbage, truncation, reset") {
    struct row {
        const char* name;
        int action;  // 0: garbage, 1: FIN after the ClientHello, 2: RST after it, 3: half a record, then FIN
    };
    for (row r : {row{"garbage", 0}, row{"truncated", 1}, row{"reset", 2}, row{"half a record", 3}}) {
        CAPTURE(r.name);
        raw_server peer{loop};
        peer.serve([&](uvkit::tcp& conn, std::string_view) {
            switch (r.action) {
                case 0: conn.write(std::string("HTTP/1.1 400 Bad Request\r\n\r\n")); break;
                case 1: conn.shutdown([](std::error_code) {}); break;
                case 2: conn.close_reset(); break;
                case 3:
                    conn.write(std::string("\x16\x03\x03\x00\x40\x02\x00", 7));
                    conn.shutdown([](std::error_code) {});
                    break;
            }
            conn.read_stop();
        });
        uvkit::tcp t{loop};
        bool connected = false;
        t.connect(peer.ep(), [&](std::error_code ec) {
            REQUIRE_FALSE(ec);
            connected = true;
        });
        run_until([&] { return connected; });
        uvkit::tls_stream c{client_ctx(), std::move(t)};
        c.set_hostname("localhost");
        std::optional<std::error_code> hs;
        c.handshake([&](std::error_code ec) { hs = ec; });
        run_until([&] { return hs.has_value(); });
        CHECK_MESSAGE(*hs, "handshake must fail");
        if (r.action == 0) {
            CHECK(*hs == uvkit::tls_errc::handshake_failed);
            CHECK_MESSAGE(hs->message().find("wrong version number") != std::string::npos, hs->message());
        } else if (r.action == 2) {
            CHECK(hs->category() == uvkit::error_category());  // a transport error, not a TLS one
            CHECK(*hs == std::errc::connection_reset);
        } else {
            CHECK(*hs == uvkit::tls_errc::unexpected_eof);
        }
        peer.conn.close();
        peer.listener.close();
    }
}

TEST_CASE_FIXTURE(tls_fixture, "tls: a server fed garbage fails its handshake and answers with an alert") {
    auto ab = tcp_pair();
    uvkit::tls_stream s{server_ctx(), std::move(ab.first)};
    auto& raw = ab.second;
    std::string answer;
    bool raw_eof = false;
    raw.read_start([&](std::error_code ec, std::string_view d) {
        if (ec)
            raw_eof = true;
        else
            answer += d;
    });
    std::optional<std::error_code> hs;
    s.handshake([&](std::error_code ec) {
        hs = ec;
        s.close();  // what a server does with a failed connection
    });
    raw.write(std::string("\x16\x03\x01\x00\x05hello garbage that is not a ClientHello", 45));
    run_until([&] { return hs && raw_eof; });
    CHECK(*hs == uvkit::tls_errc::handshake_failed);
    REQUIRE_FALSE(answer.empty());
    CHECK(answer[0] == '\x15');  // an alert record
}

TEST_CASE_FIXTURE(tls_fixture, "tls: over a pipe") {
    std::string path = certs::get().dir + "/tls.sock";
    uvkit::pipe listener{loop};
    listener.bind(path);
    uvkit::pipe accepted{loop};
    uvkit::pipe client{loop};
    bool got = false, connected = false;
    listener.listen(4, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        listener.accept(accepted);
        got = true;
    });
    client.connect(path, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        connected = true;
    });
    run_until([&] { return got && connected; });
    uvkit::tls_stream s{server_ctx(), std::move(accepted)};
    uvkit::tls_stream c{client_ctx(), std::move(client)};
    c.set_hostname("localhost");
    auto r = handshake(s, c);
    REQUIRE_MESSAGE(!r.second, r.second.message());
    collected got_s;
    collect(s, got_s);
    c.write(std::string("over a pipe"));
    c.shutdown([](std::error_code) {});
    run_until([&] { return got_s.end.has_value(); });
    CHECK(got_s.data == "over a pipe");
    CHECK(*got_s.end == uvkit::errc::eof);
}

// --- real peers: openssl s_server and s_client -----------------------------------------------

TEST_CASE_FIXTURE(tls_fixture, "tls: uvkit client against openssl s_server") {
    const certs& k = certs::get();
    uvkit::pipe in{loop}, out{loop};
    uvkit::process_options opts;
    opts.file = "openssl";
    opts.args = {"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert",    k.cert,    "-key",
                 k.key,     "-naccept", "1",       "-alpn",       "http/1.1", "-ign_eof"};
    opts.stdio = {uvkit::process_stdio::create_pipe(in), uvkit::process_stdio::create_pipe(out),
                  uvkit::process_stdio::ignore()};
    std::optional<std::int64_t> exit_status;
    uvkit::process child{loop, opts, [&](std::int64_t st, int) { exit_status = st; }};
    std::string printed;
    bool out_eof = false;
    out.read_start([&](std::error_code ec, std::string_view d) {
        if (ec)
            out_eof = true;
        else
            printed += d;
    });
    // s_server prints "ACCEPT 127.0.0.1:PORT" once it listens.
    run_until([&] { return printed.find('\n', printed.find("ACCEPT")) != std::string::npos || out_eof; });
    auto at = printed.find("ACCEPT ");
    REQUIRE(at != std::string::npos);
    std::string addr = printed.substr(at + 7, printed.find('\n', at) - at - 7);
    auto ep = uvkit::endpoint::parse(addr);

    uvkit::tcp t{loop};
    bool connected = false;
    t.connect(ep, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        connected = true;
    });
    run_until([&] { return connected; });
    auto cctx = client_ctx();
    cctx.set_alpn({"http/1.1"});
    uvkit::tls_stream c{cctx, std::move(t)};
    c.set_hostname("localhost");
    std::optional<std::error_code> hs;
    c.handshake([&](std::error_code ec) { hs = ec; });
    collected got;
    collect(c, got);
    c.write(std::string("hello from uvkit\n"));
    run_until([&] { return hs.has_value(); });
    REQUIRE_MESSAGE(!*hs, hs->message());
    CHECK(c.alpn() == "http/1.1");
    // What s_server reads it prints; what it reads on stdin it sends.
    run_until([&] { return printed.find("hello from uvkit") != std::string::npos; });
    in.write(std::string("hello from s_server\n"));
    run_until([&] { return got.data.find("hello from s_server\n") != std::string::npos; });
    c.shutdown([](std::error_code) {});
    run_until([&] { return exit_status.has_value() && out_eof; });
    in.close();
}

TEST_CASE_FIXTURE(tls_fixture, "tls: uvkit server against openssl s_client, 1 MiB each way") {
    const certs& k = certs::get();
    uvkit::tcp listener{loop};
    listener.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    auto sctx = server_ctx();
    std::optional<uvkit::tls_stream> s;
    const std::string up = pattern(1 << 20, 3) + "\n", down = pattern(1 << 20, 4) + "\n";
    collected at_server;
    std::optional<std::error_code> hs;
    listener.listen(4, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        uvkit::tcp conn{loop};
        listener.accept(conn);
        s.emplace(sctx, std::move(conn));
        s->handshake([&](std::error_code hec) { hs = hec; });
        collect(*s, at_server);
        s->write(down, [&](std::error_code wec) { CHECK_FALSE(wec); });
    });
    uvkit::pipe in{loop}, out{loop};
    uvkit::process_options opts;
    opts.file = "openssl";
    opts.args = {"openssl",
                 "s_client",
                 "-connect",
                 listener.local_endpoint().to_string(),
                 "-CAfile",
                 k.ca,
                 "-verify_return_error",
                 "-verify_hostname",
                 "localhost",
                 "-servername",
                 "localhost",
                 "-quiet",
                 "-nocommands"};
    opts.stdio = {uvkit::process_stdio::create_pipe(in), uvkit::process_stdio::create_pipe(out),
                  uvkit::process_stdio::ignore()};
    std::optional<std::int64_t> exit_status;
    uvkit::process child{loop, opts, [&](std::int64_t st, int) { exit_status = st; }};
    std::string printed;
    bool out_eof = false;
    out.read_start([&](std::error_code ec, std::string_view d) {
        if (ec)
            out_eof = true;
        else
            printed += d;
    });
    in.write(std::string_view(up), [](std::error_code ec) { CHECK_FALSE(ec); });
    run_until([&] { return (hs && *hs) || at_server.data.size() >= up.size(); }, std::chrono::seconds(60));
    REQUIRE_MESSAGE(!*hs, hs->message());
    run_until([&] { return printed.size() >= down.size(); }, std::chrono::seconds(60));
    CHECK(at_server.data.size() == up.size());
    CHECK(at_server.data == up);
    // close_notify ends s_client.
    s->shutdown([](std::error_code) {});
    run_until([&] { return exit_status.has_value() && out_eof; }, std::chrono::seconds(60));
    CHECK(*exit_status == 0);
    CHECK(printed.size() == down.size());
    CHECK(printed == down);
    in.close();
    listener.close();
}

TEST_CASE_FIXTURE(tls_fixture, "tls: an error inside write() calls no other handler inside that call") {
    // The transport's write side is shut behind the TLS layer's back: the next
    // write fails at once (UV_EPIPE). The read handler and the queued shutdown
    // learn of the failure later, from the loop, not inside write().
    auto sc = tls_pair(server_ctx(), client_ctx());
    auto& s = sc.first;
    auto& c = sc.second;
    auto hs = handshake(s, c);
    REQUIRE_FALSE(hs.first);
    REQUIRE_FALSE(hs.second);
    collected sgot;
    collect(s, sgot);
    int reads = 0;
    std::optional<std::error_code> read_end;
    c.read_start([&](std::error_code ec, std::string_view) {
        ++reads;
        if (ec) read_end = ec;
    });
    bool transport_shut = false;
    c.transport().shutdown([&](std::error_code) { transport_shut = true; });
    std::error_code ec;
    bool write_called = false;
    c.write(
        std::string_view("x"), [&](std::error_code) { write_called = true; }, ec);
    CHECK(ec);
    CHECK(reads == 0);  // not called inside write()
    CHECK_FALSE(write_called);
    run_until([&] { return read_end.has_value() && transport_shut; });
    CHECK(reads == 1);
    CHECK(*read_end == ec);
    CHECK_FALSE(write_called);  // a write that failed to start never calls its handler
    // Later operations fail with the same error.
    std::error_code ec2;
    c.write(
        std::string_view("y"), [](std::error_code) {}, ec2);
    CHECK(ec2 == ec);
}

TEST_CASE(
    "tls: a loop destroyed with tls_streams open: what waits is canceled once, the streams outlive it") {
    std::vector<std::error_code> got;
    std::optional<uvkit::tls_stream> s, c;
    {
        auto l = std::make_unique<uvkit::loop>();
        {
            uvkit::tcp listener{*l};
            listener.bind(uvkit::endpoint::parse("127.0.0.1:0"));
            uvkit::tcp accepted{*l}, conn{*l};
            bool acc = false, connected = false;
            listener.listen(8, [&](std::error_code ec) {
                REQUIRE_FALSE(ec);
                listener.accept(accepted);
                acc = true;
            });
            conn.connect(listener.local_endpoint(), [&](std::error_code ec) {
                REQUIRE_FALSE(ec);
                connected = true;
            });
            for (int i = 0; i < 1000 && !(acc && connected); ++i) l->run(uvkit::run_mode::once);
            REQUIRE((acc && connected));
            s.emplace(server_ctx(), std::move(accepted));
            c.emplace(client_ctx(), std::move(conn));
        }
        c->set_hostname("localhost");
        c->handshake([&](std::error_code ec) { got.push_back(ec); });
        c->write(std::string("queued"), [&](std::error_code ec) { got.push_back(ec); });
        c->shutdown([&](std::error_code ec) { got.push_back(ec); });
        s->handshake([&](std::error_code ec) { got.push_back(ec); });
        s->read_start([&](std::error_code, std::string_view) {});
        l.reset();  // with the handshakes, a write and a shutdown pending
    }
    REQUIRE(got.size() == 4);
    for (auto& ec : got) CHECK(ec == uvkit::errc::canceled);
    CHECK(c->closing());
    std::error_code ec;
    c->write(
        "x", [](std::error_code) {}, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(c->write_queue_size() == 0);
    s.reset();
    c.reset();
}

}  // TEST_SUITE

TEST_CASE_FIXTURE(
    tls_fixture, "tls: allocation failure for a write's ciphertext fails the write and the stream, cleanly") {
    auto sc = tls_pair(server_ctx(), client_ctx());
    auto& s = sc.first;
    auto& c = sc.second;
    auto r = handshake(s, c);
    REQUIRE_FALSE(r.second);
    int small_done = 0;
    c.write("ab", [p = &small_done](std::error_code ec) {
        CHECK_FALSE(ec);
        ++*p;
    });
    run_until([&] { return small_done == 1; });
    // A 64 KiB write needs a bigger ciphertext buffer than the small one left.
    static const std::string big(64 * 1024, 'x');
    int calls = 0;
    std::error_code ec;
    {
        uvkit_test::alloc_failure oom;
        c.write(
            std::string_view(big), [p = &calls](std::error_code) { ++*p; }, ec);
        CHECK(oom.refused() >= 1);
    }
    CHECK(ec == std::errc::not_enough_memory);
    // The plaintext went into OpenSSL but its record cannot be sent: the stream failed, and
    // says so to every later write; the failed write's handler never runs.
    std::error_code later;
    c.write(
        "x", [p = &calls](std::error_code) { ++*p; }, later);
    CHECK(later == ec);
    loop.run(uvkit::run_mode::nowait);
    CHECK(calls == 0);
    c.close();
    s.close();
    run_until([&] { return !loop.alive(); });
}
