// Helpers shared by the conformance ports (test/conformance/*.cpp): tests that
// follow libuv's own test suite (test/test-*.c), written against uvkit's API.
#pragma once

#include <uvkit/uvkit.hpp>

#include <chrono>
#include <string>
#include <system_error>
#include <utility>

#ifndef UVKIT_NO_COROUTINES
#include "../co_util.hpp"
#endif
#include "../fixture.hpp"
#include "../platform.hpp"

namespace uvkit_conf {

using uvkit_test::loop_fixture;

inline std::error_code uv_code(int code) { return uvkit::make_uv_error(code); }

/// Requires that `f()` throws std::system_error carrying `want`.
template <class F>
void require_throws_code(std::error_code want, F&& f) {
    bool thrown = false;
    try {
        f();
    } catch (const std::system_error& e) {
        thrown = true;
        CHECK_MESSAGE(e.code() == want, "threw ", e.code().message(), ", wanted ", want.message());
    }
    CHECK_MESSAGE(thrown, "did not throw ", want.message());
}

/// Bounds the plain loop.run() calls of a test that checks run()'s own return
/// value (run_until/run_all cannot be used there): an unreferenced timer that
/// stops the loop after `limit`; its destructor fails the test if it fired.
/// Unreferenced, it changes neither run()'s result nor loop.alive().
struct watchdog {
    uvkit::timer t;
    bool expired = false;
    explicit watchdog(uvkit::loop& l, std::chrono::milliseconds limit = std::chrono::seconds(10)) : t{l} {
        t.start(limit, [this, &l] {
            expired = true;
            l.stop();
        });
        t.unref();
    }
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;
    ~watchdog() { CHECK_MESSAGE(!expired, "watchdog: time limit reached"); }
};

inline const uvkit::endpoint& loopback_any() {
    static const uvkit::endpoint ep = uvkit::endpoint::parse("127.0.0.1:0");
    return ep;
}

/// A unique, absent path for a Unix socket in the temp directory.
inline std::string temp_socket_path(const char* tag) {
    static int n = 0;
    char buf[256];
    std::size_t size = sizeof buf;
    std::string dir = uv_os_tmpdir(buf, &size) == 0 ? std::string(buf, size) : std::string("/tmp");
    std::string p =
        dir + "/uvkit-conf-" + std::to_string(uv_os_getpid()) + "-" + tag + "-" + std::to_string(++n);
    uv_fs_t req;
    uv_fs_unlink(nullptr, &req, p.c_str(), nullptr);
    uv_fs_req_cleanup(&req);
    return p;
}

inline void remove_path(const std::string& p) {
    uv_fs_t req;
    uv_fs_unlink(nullptr, &req, p.c_str(), nullptr);
    uv_fs_req_cleanup(&req);
}

}  // namespace uvkit_conf
