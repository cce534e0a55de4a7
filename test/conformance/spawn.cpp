// Conformance ports of libuv's process tests (test/test-spawn.c) against
// uvkit::process. The children are standard POSIX tools (/bin/sh, /bin/cat,
// /bin/sleep, /usr/bin/env), so these ports are not built on Windows.
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;
using uvkit_conf::uv_code;

#ifndef _WIN32

namespace {

/// Collects everything read from `p` until EOF (then closes it).
struct collector {
    std::string data;
    std::error_code end;
    bool done = false;
    void start(uvkit::pipe& p) {
        p.read_start([this, &p](std::error_code ec, std::string_view chunk) {
            if (ec) {
                end = ec;
                done = true;
                p.close();
                return;
            }
            data.append(chunk);
        });
    }
};

uvkit::process_options sh(const std::string& script) {
    uvkit::process_options o;
    o.file = "/bin/sh";
    o.args = {"sh", "-c", script};
    return o;
}

}  // namespace

#endif
TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: spawn_empty_env (test-spawn.c)" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/sh, /bin/cat, /bin/sleep, /usr/bin/env)")) {
#ifndef _WIN32
    uvkit::pipe out{loop};
    uvkit::process_options o;
    o.file = "/usr/bin/env";
    o.env = std::vector<std::string>{};  // an empty environment, not ours
    o.stdio = {uvkit::process_stdio::ignore(), uvkit::process_stdio::create_pipe(out),
               uvkit::process_stdio::inherit(2)};
    std::optional<uvkit::process_exit> result;
    uvkit::process child{loop, o, [&](std::int64_t status, int sig) {
                             result = uvkit::process_exit{status, sig};
                         }};
    collector c;
    c.start(out);
    run_until([&] { return result && c.done; });
    CHECK(result->exit_status == 0);
    CHECK(c.data.empty());
    CHECK(c.end == uvkit::errc::eof);
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: spawn_preserve_env (test-spawn.c)" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/sh, /bin/cat, /bin/sleep, /usr/bin/env)")) {
#ifndef _WIN32
    REQUIRE(uv_os_setenv("UVKIT_CONFORMANCE_VAR", "preserved") == 0);
    uvkit::pipe out{loop};
    auto o = sh("printf %s \"$UVKIT_CONFORMANCE_VAR\"");
    // No env given: the child inherits ours.
    o.stdio = {uvkit::process_stdio::ignore(), uvkit::process_stdio::create_pipe(out),
               uvkit::process_stdio::inherit(2)};
    int exits = 0;
    uvkit::process child{loop, o, [&](std::int64_t status, int) {
                             CHECK(status == 0);
                             ++exits;
                         }};
    collector c;
    c.start(out);
    run_until([&] { return exits == 1 && c.done; });
    uv_os_unsetenv("UVKIT_CONFORMANCE_VAR");
    CHECK(c.data == "preserved");
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: spawn_stdio_greater_than_3 (test-spawn.c)" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/sh, /bin/cat, /bin/sleep, /usr/bin/env)")) {
#ifndef _WIN32
    uvkit::pipe fd3{loop};
    auto o = sh("printf 'fourth stdio!' >&3");
    // The child's descriptor 3 is a pipe to us.
    o.stdio = {uvkit::process_stdio::ignore(), uvkit::process_stdio::ignore(),
               uvkit::process_stdio::inherit(2), uvkit::process_stdio::create_pipe(fd3)};
    int exits = 0;
    uvkit::process child{loop, o, [&](std::int64_t status, int) {
                             CHECK(status == 0);
                             ++exits;
                         }};
    collector c;
    c.start(fd3);
    run_until([&] { return exits == 1 && c.done; });
    CHECK(c.data == "fourth stdio!");
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: spawn_and_kill_with_std (test-spawn.c)" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/sh, /bin/cat, /bin/sleep, /usr/bin/env)")) {
#ifndef _WIN32
    uvkit::pipe in{loop};
    uvkit::pipe out{loop};
    uvkit::pipe err{loop};
    uvkit::process_options o;
    o.file = "/bin/cat";
    o.stdio = {uvkit::process_stdio::create_pipe(in), uvkit::process_stdio::create_pipe(out),
               uvkit::process_stdio::create_pipe(err)};
    std::optional<uvkit::process_exit> result;
    uvkit::process child{loop, o, [&](std::int64_t status, int sig) {
                             result = uvkit::process_exit{status, sig};
                         }};
    collector c_out;
    collector c_err;
    c_out.start(out);
    c_err.start(err);
    // A child blocked reading its stdin, killed: its exit reports the signal and
    // every pipe of it reaches EOF.
    child.kill(SIGTERM);
    run_until([&] { return result && c_out.done && c_err.done; });
    CHECK(result->term_signal == SIGTERM);
    CHECK(c_out.end == uvkit::errc::eof);
    CHECK(c_err.end == uvkit::errc::eof);
    in.close();
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: spawn_detached (test-spawn.c)" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/sh, /bin/cat, /bin/sleep, /usr/bin/env)")) {
#ifndef _WIN32
    uvkit_conf::watchdog wd{loop};
    uvkit::process_options o;
    o.file = "/bin/sleep";
    o.args = {"sleep", "30"};
    o.detached = true;
    std::optional<uvkit::process_exit> result;
    uvkit::process child{loop, o, [&](std::int64_t status, int sig) {
                             result = uvkit::process_exit{status, sig};
                         }};
    // A detached, unreferenced child does not keep the loop running...
    child.unref();
    CHECK_FALSE(loop.run());
    CHECK_FALSE(result);
    // ...and can still be signalled (signal 0: it exists) and killed.
    child.kill(0);
    child.kill(SIGKILL);
    child.ref();
    run_until([&] { return result.has_value(); });
    CHECK(result->term_signal == SIGKILL);
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: spawn_exercise_sigchld_issue (test-spawn.c)" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/sh, /bin/cat, /bin/sleep, /usr/bin/env)")) {
#ifndef _WIN32
    // Several children exiting at about the same time: each exit reaches the
    // handler of its own process, once.
    constexpr int n = 6;
    std::vector<std::int64_t> status(n, -1);
    std::vector<int> calls(n, 0);
    std::vector<uvkit::process> children;
    for (int i = 0; i < n; ++i) {
        children.emplace_back(loop, sh("exit " + std::to_string(i + 1)), [&, i](std::int64_t s, int) {
            status[static_cast<std::size_t>(i)] = s;
            ++calls[static_cast<std::size_t>(i)];
        });
    }
    run_all();
    for (int i = 0; i < n; ++i) {
        CHECK(calls[static_cast<std::size_t>(i)] == 1);
        CHECK(status[static_cast<std::size_t>(i)] == i + 1);
    }
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: spawn_auto_unref, kill after exit (test-spawn.c)" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/sh, /bin/cat, /bin/sleep, /usr/bin/env)")) {
#ifndef _WIN32
    uvkit_conf::watchdog wd{loop};
    int exits = 0;
    uvkit::process child{loop, sh("exit 0"), [&](std::int64_t, int) { ++exits; }};
    int pid = child.pid();
    CHECK(pid > 0);
    // Once the child exited, the process handle no longer keeps the loop alive.
    CHECK_FALSE(loop.run());
    CHECK(exits == 1);
    CHECK_FALSE(loop.alive());
    CHECK_FALSE(child.active());
    // Signalling a child that exited (and was reaped) is UV_ESRCH.
    std::error_code ec;
    child.kill(SIGTERM, ec);
    CHECK(ec == uv_code(UV_ESRCH));
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: spawn_reads_child_path (test-spawn.c)" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/sh, /bin/cat, /bin/sleep, /usr/bin/env)")) {
#ifndef _WIN32
    // A program name without a slash is looked up in PATH.
    uvkit::process_options o;
    o.file = "sh";
    o.args = {"sh", "-c", "exit 3"};
    std::int64_t status = -1;
    uvkit::process child{loop, o, [&](std::int64_t s, int) { status = s; }};
    run_all();
    CHECK(status == 3);
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: spawn_closed_process_io (test-spawn.c)" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/sh, /bin/cat, /bin/sleep, /usr/bin/env)")) {
#ifndef _WIN32
    // The parent closes the child's stdin pipe at once: the child reads EOF
    // and exits normally.
    uvkit::pipe in{loop};
    uvkit::process_options o;
    o.file = "/bin/cat";
    o.stdio = {uvkit::process_stdio::create_pipe(in), uvkit::process_stdio::ignore(),
               uvkit::process_stdio::inherit(2)};
    std::optional<uvkit::process_exit> result;
    uvkit::process child{loop, o, [&](std::int64_t status, int sig) {
                             result = uvkit::process_exit{status, sig};
                         }};
    in.close();
    run_all();
    REQUIRE(result);
    CHECK(result->exit_status == 0);
    CHECK(result->term_signal == 0);
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: spawn_stdout_to_file (test-spawn.c)" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/sh, /bin/cat, /bin/sleep, /usr/bin/env)")) {
#ifndef _WIN32
    std::string path = uvkit_conf::temp_socket_path("out.txt");
    uv_fs_t req;
    int fd =
        uv_fs_open(nullptr, &req, path.c_str(), UV_FS_O_CREAT | UV_FS_O_RDWR | UV_FS_O_TRUNC, 0600, nullptr);
    uv_fs_req_cleanup(&req);
    REQUIRE(fd >= 0);
    // The child's stdout is our open file (UV_INHERIT_FD).
    auto o = sh("echo hello world");
    o.stdio = {uvkit::process_stdio::ignore(), uvkit::process_stdio::inherit(fd),
               uvkit::process_stdio::inherit(2)};
    int exits = 0;
    uvkit::process child{loop, o, [&](std::int64_t status, int) {
                             CHECK(status == 0);
                             ++exits;
                         }};
    run_all();
    CHECK(exits == 1);
    char buf[64] = {};
    uv_buf_t b = uv_buf_init(buf, sizeof buf - 1);
    int n = uv_fs_read(nullptr, &req, fd, &b, 1, 0, nullptr);
    uv_fs_req_cleanup(&req);
    uv_fs_close(nullptr, &req, fd, nullptr);
    uv_fs_req_cleanup(&req);
    uvkit_conf::remove_path(path);
    CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) == "hello world\n");
#endif
}

}  // TEST_SUITE("conformance")
