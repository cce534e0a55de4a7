// What the uvkit (C++) benchmark programs share, beside bench.h.
#pragma once

#include <uvkit/tcp.hpp>

#include "bench.h"

#ifdef UVKIT_HAVE_TLS
#include <uvkit/tls.hpp>

#include "tls_bench_cert.h"
#endif

/// SO_SNDBUF and SO_RCVBUF pinned to BENCH_SOCKBUF, as the C programs do.
inline void pin_buffers(uvkit::tcp& t) {
    auto* h = reinterpret_cast<uv_handle_t*>(t.raw());
    int size = BENCH_SOCKBUF;
    BENCH_UV(uv_send_buffer_size(h, &size));
    size = BENCH_SOCKBUF;
    BENCH_UV(uv_recv_buffer_size(h, &size));
}

#ifdef UVKIT_HAVE_TLS
/// tls_throughput's contexts: TLS 1.3 with BENCH_TLS_SUITE only; the server
/// with the in-memory certificate and no session tickets, the client without
/// verification (tls_throughput_uv.c does the same).
inline uvkit::tls_context bench_tls_context(uvkit::tls_role role) {
    uvkit::tls_context c{role};
    c.set_min_version(uvkit::tls_version::tls1_3);
    c.set_ciphersuites(BENCH_TLS_SUITE);
    if (role == uvkit::tls_role::server) {
        BENCH_CHECK(tls_bench_use_cert(c.raw()), "the certificate");
        c.set_session_resumption(false);  // no tickets
    } else {
        c.set_verify_peer(false);
    }
    return c;
}
#endif
