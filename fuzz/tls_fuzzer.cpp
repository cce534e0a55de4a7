// tls_fuzzer: arbitrary bytes into a server-side tls_stream's input.
//
// Each input is a script. Its first byte chooses what the server does while
// it handshakes (a read_start() handler set before the handshake, a write
// queued during it, the coroutine handshake and read instead of callbacks),
// and whether the peer ends with a FIN or a close; the next bytes give the
// sizes of the peer's writes; the rest is what a raw peer sends, in chunks of
// those sizes, through one end of a uv_socketpair(). The fuzzer aborts if a
// handler runs twice, or not at all, if the server keeps waiting after the
// peer is gone (libFuzzer's -timeout), or if anything is left open.
#include <uvkit/co.hpp>
#include <uvkit/co/tls.hpp>
#include <uvkit/tls.hpp>
#include <uvkit/uvkit.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "require.hpp"
#include "socket_pair.hpp"

namespace {

// A self-signed P-256 certificate for CN=uvkit-fuzz (valid until 2126) and its
// key, made for this fuzzer with `openssl req -x509`: test material, no secret.
constexpr std::string_view cert_pem = R"(-----BEGIN CERTIFICATE-----
MIIBgTCCASegAwIBAgIUS2CHdUPakrxY+rXD5CYJ3dF8NEIwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKdXZraXQtZnV6ejAgFw0yNjEyMDMwNTUyMTRaGA8yMTI2MTEw
OTA1NTIxNFowFTETMBEGA1UEAwwKdXZraXQtZnV6ejBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABAqF56n87fCxSngC5YK0XWK+RLaQOzVUuA+AEXFrkGSMQA0WQV16
vFVW1++18RI7KQNXeBhmB90dvr+j8SLrzjSjUzBRMB0GA1UdDgQWBBR793QrlGYD
WUSQ539gOL20s8o11jAfBgNVHSMEGDAWgBR793QrlGYDWUSQ539gOL20s8o11jAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQCM6h/KgXJOo631az/a
I2L1Mj5VNK2ZZ0Nkwe2b0nX6dQIgVFJM+tIUd4Y9xCh/vTnroswxS4dlklRNsmSG
OH5mbUU=
-----END CERTIFICATE-----
)";
constexpr std::string_view key_pem = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZKZL7RZsval/11GJ
t544gHrsZ2Q/XH2Ka9MXV47kfuehRANCAAQKheep/O3wsUp4AuWCtF1ivkS2kDs1
VLgPgBFxa5BkjEANFkFderxVVtfvtfESOykDV3gYZgfdHb6/o/Ei6840
-----END PRIVATE KEY-----
)";

const uvkit::tls_context& server_context() {
    static const uvkit::tls_context ctx = [] {
        uvkit::tls_context c = uvkit::tls_context::server();
        c.use_certificate_chain(cert_pem);
        c.use_private_key(key_pem);
        c.set_alpn({"http/1.1"});
        return c;
    }();
    return ctx;
}

struct script {
    bool read_first = false;   // read_start() before the handshake
    bool queue_write = false;  // a write queued during the handshake
    bool coroutines = false;   // async_handshake and async_read instead
    bool close_peer = false;   // the peer closes instead of shutting down
    std::vector<std::size_t> sizes;
    std::string_view payload;
};

script parse_script(std::string_view in) {
    script s;
    auto take = [&in]() -> std::uint8_t {
        if (in.empty()) return 0;
        const auto b = static_cast<std::uint8_t>(in.front());
        in.remove_prefix(1);
        return b;
    };
    const std::uint8_t mode = take();
    s.read_first = mode & 1;
    s.queue_write = mode & 2;
    s.coroutines = mode & 4;
    s.close_peer = mode & 8;
    const std::size_t n = 1 + take() % 8;
    for (std::size_t i = 0; i < n; ++i) s.sizes.push_back(std::size_t{take()} + 1);
    s.payload = in;
    return s;
}

/// The raw peer: sends the payload in chunks, one per loop turn, reads and
/// drops what the server answers, then shuts down or closes.
struct peer {
    uvkit::pipe& out;
    const script& s;
    uvkit::idle turn;
    std::size_t pos = 0, i = 0;
    bool ended = false;

    void start() {
        out.read_start([](std::error_code, std::string_view) {});
        turn.start([this] { step(); });
    }
    void step() {
        if (pos < s.payload.size()) {
            const std::size_t n = std::min(s.sizes[i++ % s.sizes.size()], s.payload.size() - pos);
            std::error_code ec;
            out.write(
                s.payload.substr(pos, n), [](std::error_code) {}, ec);
            pos += n;
            if (!ec) return;
        }
        turn.stop();
        ended = true;
        std::error_code ec;
        if (s.close_peer)
            out.close();
        else
            out.shutdown([](std::error_code) {}, ec);
    }
};

uvkit::task<void> serve_co(uvkit::tls_stream& t, int& handshakes) {
    std::error_code ec;
    co_await t.async_handshake(ec);
    ++handshakes;
    if (ec) co_return;
    for (;;) {
        std::string chunk = co_await t.async_read(ec);
        if (ec || chunk.empty()) co_return;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const script s = parse_script(std::string_view(reinterpret_cast<const char*>(data), size));

    uvkit::loop loop;
    auto pipes = socket_pair(loop);
    uvkit::pipe& server_end = pipes.first;
    uvkit::pipe& peer_end = pipes.second;

    uvkit::tls_stream t{server_context(), std::move(server_end)};
    peer p{peer_end, s, uvkit::idle(loop)};
    p.start();

    int handshakes = 0, writes = 0, ends = 0;
    bool after_end = false;
    if (s.coroutines) {
        uvkit::run(loop, serve_co(t, handshakes));
    } else {
        if (s.read_first) {
            t.read_start([&](std::error_code ec, std::string_view) {
                require(!after_end);
                if (ec) {
                    ++ends;
                    after_end = true;
                }
            });
        }
        t.handshake([&](std::error_code) { ++handshakes; });
        if (s.queue_write)
            t.write(std::string("queued during the handshake"), [&](std::error_code) { ++writes; });
        // Until the handshake ended and the peer is done: bounded by the payload.
        while ((handshakes == 0 || !p.ended) && loop.run(uvkit::run_mode::once)) {
        }
    }
    require(handshakes == 1);
    t.close();
    peer_end.close();
    p.turn.close();
    loop.run();
    // Every handler ran exactly once, also those that waited when the stream closed.
    require(handshakes == 1);
    require(writes == (s.queue_write && !s.coroutines ? 1 : 0));
    require(ends <= 1);
    require(loop.handle_count() == 0);
    return 0;
}
