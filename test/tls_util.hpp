// Test helpers for uvkit/tls.hpp: certificates made with the `openssl` command
// into a temporary directory, once per test process.
#pragma once

#include <uvkit/tls.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

namespace uvkit_tls_test {

/// A byte pattern that shows reordering or loss.
inline std::string pattern(std::size_t n, std::size_t seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
    return s;
}

/// The files the tests use: a CA, server certificates signed by it (for
/// localhost and 127.0.0.1, expired, for another host), a self-signed one.
struct certs {
    std::string dir;
    std::string ca;           // ca.pem
    std::string cert, key;    // localhost + 127.0.0.1, signed by the CA
    std::string expired;      // same key, expired
    std::string wrong_host;   // same key, for wrong.example
    std::string self_signed;  // same names, self-signed (its own key: self.key)
    std::string self_key;

    static const certs& get() {
        static const certs c = make();
        static const struct remover {
            std::string d;
            ~remover() {
                std::error_code e;
                std::filesystem::remove_all(d, e);
            }
        } r{c.dir};
        return c;
    }

    static std::string read(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    }

private:
    static void run(const std::string& cmd) {
        std::string full = cmd + " >/dev/null 2>&1";
        if (std::system(full.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
    }

    static certs make() {
        namespace fs = std::filesystem;
        std::random_device rd;
        fs::path d = fs::temp_directory_path() / ("uvkit-tls-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(d);
        certs c;
        c.dir = d.string();
        auto p = [&](const char* f) { return (d / f).string(); };
        const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        run("openssl req -x509" + ec + " -keyout " + p("ca.key") + " -out " + p("ca.pem") +
            " -days 30 -subj /CN=uvkit-test-ca");
        run("openssl req -new" + ec + " -keyout " + p("server.key") + " -out " + p("server.csr") +
            " -subj /CN=localhost");
        {
            std::ofstream(p("ext")) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
            std::ofstream(p("wrong.ext")) << "subjectAltName=DNS:wrong.example\n";
        }
        const std::string sign = "openssl x509 -req -in " + p("server.csr") + " -CA " + p("ca.pem") +
                                 " -CAkey " + p("ca.key") + " -CAcreateserial";
        run(sign + " -days 30 -extfile " + p("ext") + " -out " + p("server.pem"));
        // -days -1: valid until yesterday, so "certificate has expired".
        run(sign + " -days -1 -extfile " + p("ext") + " -out " + p("expired.pem"));
        run(sign + " -days 30 -extfile " + p("wrong.ext") + " -out " + p("wrong.pem"));
        run("openssl req -x509" + ec + " -keyout " + p("self.key") + " -out " + p("self.pem") +
            " -days 30 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1");
        c.ca = p("ca.pem");
        c.cert = p("server.pem");
        c.key = p("server.key");
        c.expired = p("expired.pem");
        c.wrong_host = p("wrong.pem");
        c.self_signed = p("self.pem");
        c.self_key = p("self.key");
        return c;
    }
};

/// A server context with `cert` (default: the CA-signed localhost one).
inline uvkit::tls_context server_ctx(const std::string& cert = certs::get().cert,
                                     const std::string& key = certs::get().key) {
    uvkit::tls_context ctx = uvkit::tls_context::server();
    ctx.use_certificate_chain_file(cert);
    ctx.use_private_key_file(key);
    return ctx;
}

/// A client context that trusts the test CA only.
inline uvkit::tls_context client_ctx() {
    uvkit::tls_context ctx{uvkit::tls_role::client};
    ctx.load_verify_file(certs::get().ca);
    return ctx;
}

}  // namespace uvkit_tls_test
