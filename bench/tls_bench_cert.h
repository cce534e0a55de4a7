/* tls_bench_cert.h: what the tls_throughput programs share (C11 and C++20, OpenSSL 3).
 *
 * A server certificate made in memory at start-up (a fresh P-256 key and a self-signed X509 for
 * CN=localhost, valid for a day), no files; and the one TLS 1.3 cipher suite every variant forces
 * on both ends, so that all of them do the same crypto. */
#ifndef UVKIT_TLS_BENCH_CERT_H
#define UVKIT_TLS_BENCH_CERT_H

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define BENCH_TLS_SUITE "TLS_AES_128_GCM_SHA256"
/* tls_throughput: keep writing while fewer ciphertext bytes than this wait for the kernel
 * (write_queue_size backpressure: raw C and callbacks); the coroutine variant runs this many
 * 64 KiB chunks' worth of writer tasks. */
#define BENCH_TLS_QUEUE (4 * 64 * 1024)
#define BENCH_TLS_WRITERS 4

/* Gives `ctx` a new key and a self-signed certificate for it. Returns 1, or 0 on failure (OpenSSL's
 * error queue says why). */
static inline int tls_bench_use_cert(SSL_CTX* ctx) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_NAME* name = NULL;
    int ok = key != NULL && x != NULL;
    ok = ok && X509_set_version(x, 2) == 1; /* v3 */
    ok = ok && ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1;
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL;
    ok = ok && X509_gmtime_adj(X509_getm_notAfter(x), 24L * 3600) != NULL;
    ok = ok && X509_set_pubkey(x, key) == 1;
    if (ok) {
        name = X509_get_subject_name(x);
        ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char*)"localhost", -1, -1,
                                        0) == 1;
    }
    ok = ok && X509_set_issuer_name(x, name) == 1; /* self-signed */
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    ok = ok && SSL_CTX_use_certificate(ctx, x) == 1;
    ok = ok && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    ok = ok && SSL_CTX_check_private_key(ctx) == 1;
    X509_free(x); /* the context holds its own references */
    EVP_PKEY_free(key);
    return ok;
}

#endif
