// Tests of uvkit::process: real children (/bin/echo, /bin/cat, /bin/sh) with
// stdio wired to uvkit::pipes. Every wait is a bounded run of the loop.
#include <uv.h>

#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "platform.hpp"

using uvkit_test::loop_fixture;

#ifndef _WIN32

namespace {

bool is_einval(const std::error_code& ec) { return ec == uvkit::make_uv_error(UV_EINVAL); }

/// Collects everything read from `p` until EOF.
struct collector {
    std::string data;
    bool eof = false;
    std::error_code error;
    void attach(uvkit::pipe& p) {
        p.read_start([this, &p](std::error_code ec, std::string_view d) {
            if (ec) {
                if (ec != uvkit::errc::eof) error = ec;
                eof = true;
                p.close();
                return;
            }
            data += d;
        });
    }
};

using uvkit::process_stdio;

}  // namespace

#endif
TEST_CASE_FIXTURE(loop_fixture,
                  "process: /bin/echo with arguments, stdout through a pipe" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/echo, /bin/cat, /bin/sh)")) {
#ifndef _WIN32
    uvkit::pipe out{loop};
    uvkit::process_options opts;
    opts.file = "/bin/echo";
    opts.args = {"echo", "hello", "from echo"};
    opts.stdio = {process_stdio::ignore(), process_stdio::create_pipe(out), process_stdio::inherit(2)};
    std::optional<uvkit::process_exit> exit;
    int calls = 0;
    uvkit::process child{loop, opts, [&](std::int64_t status, int signal) {
                             ++calls;
                             exit = uvkit::process_exit{status, signal};
                         }};
    CHECK(child.pid() > 0);
    collector c;
    c.attach(out);
    run_until([&] { return c.eof && exit; });
    CHECK(c.data == "hello from echo\n");
    CHECK_FALSE(c.error);
    CHECK(calls == 1);
    CHECK(*exit == uvkit::process_exit{0, 0});
    CHECK(child.exit_result() == exit);
    CHECK_FALSE(child.active());
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "process: /bin/cat with piped stdin and stdout" UVKIT_SKIP_ON_WINDOWS(
                                    "the children are POSIX tools (/bin/echo, /bin/cat, /bin/sh)")) {
#ifndef _WIN32
    uvkit::pipe in{loop};
    uvkit::pipe out{loop};
    uvkit::process_options opts;
    opts.file = "cat";  // found in PATH
    opts.stdio = {process_stdio::create_pipe(in), process_stdio::create_pipe(out)};
    bool exited = false;
    std::int64_t status = -1;
    auto child = uvkit::process::spawn(loop, opts, [&](std::int64_t s, int) {
        exited = true;
        status = s;
    });
    CHECK(in.writable());
    CHECK(out.readable());
    std::string payload;
    for (int i = 0; i < 20000; ++i) payload += "line " + std::to_string(i) + "\n";
    bool shut = false;
    in.write(std::string_view(payload), [&](std::error_code ec) { CHECK_FALSE(ec); });
    in.shutdown([&](std::error_code ec) {
        CHECK_FALSE(ec);
        shut = true;
        in.close();
    });
    collector c;
    c.attach(out);
    run_until([&] { return c.eof && exited && shut; });
    CHECK(c.data.size() == payload.size());
    CHECK(c.data == payload);
    CHECK(status == 0);
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "process: a non-zero exit code" UVKIT_SKIP_ON_WINDOWS(
                                    "the children are POSIX tools (/bin/echo, /bin/cat, /bin/sh)")) {
#ifndef _WIN32
    uvkit::process_options opts;
    opts.file = "/bin/sh";
    opts.args = {"sh", "-c", "exit 3"};
    std::optional<uvkit::process_exit> exit;
    uvkit::process child{loop, opts, [&](std::int64_t s, int sig) { exit = uvkit::process_exit{s, sig}; }};
    run_until([&] { return exit.has_value(); });
    CHECK(exit->exit_status == 3);
    CHECK(exit->term_signal == 0);
    // The pid is reaped: kill() must not signal whoever has it now.
    std::error_code ec;
    child.kill(SIGTERM, ec);
    CHECK(ec == std::errc::no_such_process);
#endif
}

TEST_CASE_FIXTURE(loop_fixture,
                  "process: kill(SIGTERM) ends the child with term_signal 15" UVKIT_SKIP_ON_WINDOWS(
                      "the children are POSIX tools (/bin/echo, /bin/cat, /bin/sh)")) {
#ifndef _WIN32
    uvkit::pipe in{loop};
    uvkit::process_options opts;
    opts.file = "/bin/cat";  // waits on stdin, which stays open
    opts.stdio = {process_stdio::create_pipe(in)};
    std::optional<uvkit::process_exit> exit;
    uvkit::process child{loop, opts, [&](std::int64_t s, int sig) { exit = uvkit::process_exit{s, sig}; }};
    CHECK(child.active());
    child.kill(SIGTERM);
    run_until([&] { return exit.has_value(); });
    CHECK(exit->term_signal == SIGTERM);
    CHECK(exit->term_signal == 15);
    in.close();
#endif
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "process: a missing executable fails synchronously, the exit handler never runs" UVKIT_SKIP_ON_WINDOWS(
        "the children are POSIX tools (/bin/echo, /bin/cat, /bin/sh)")) {
#ifndef _WIN32
    uvkit::pipe out{loop};
    uvkit::process_options opts;
    opts.file = "/nonexistent/uvkit-no-such-program";
    opts.stdio = {process_stdio::ignore(), process_stdio::create_pipe(out)};
    int calls = 0;
    bool threw = false;
    try {
        uvkit::process child{loop, opts, [&](std::int64_t, int) { ++calls; }};
    } catch (const std::system_error& e) {
        threw = true;
        CHECK(e.code() == std::errc::no_such_file_or_directory);
    }
    CHECK(threw);
    // libuv 1.44 may open created pipes even when exec failed: use a fresh one.
    uvkit::pipe out2{loop};
    opts.stdio = {process_stdio::ignore(), process_stdio::create_pipe(out2)};
    std::error_code ec;
    auto p = uvkit::process::spawn(
        loop, opts, [&](std::int64_t, int) { ++calls; }, ec);
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK_FALSE(p);
    CHECK(p.pid() == 0);
    out.close();
    out2.close();
    run_all();
    CHECK(calls == 0);
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "process: environment and working directory" UVKIT_SKIP_ON_WINDOWS(
                                    "the children are POSIX tools (/bin/echo, /bin/cat, /bin/sh)")) {
#ifndef _WIN32
    auto dir = std::filesystem::canonical(std::filesystem::temp_directory_path());
    uvkit::pipe out{loop};
    uvkit::process_options opts;
    opts.file = "/bin/sh";
    opts.args = {"sh", "-c", "echo $FOO; pwd; echo ${HOME:-unset}"};
    opts.env = std::vector<std::string>{"FOO=bar baz", "PATH=/usr/bin:/bin"};
    opts.cwd = dir.string();
    opts.stdio = {process_stdio::ignore(), process_stdio::create_pipe(out)};
    bool exited = false;
    uvkit::process child{loop, opts, [&](std::int64_t, int) { exited = true; }};
    collector c;
    c.attach(out);
    run_until([&] { return c.eof && exited; });
    CHECK(c.data == "bar baz\n" + dir.string() + "\nunset\n");
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "process: invalid options, moved-from and static kill" UVKIT_SKIP_ON_WINDOWS(
                                    "the children are POSIX tools (/bin/echo, /bin/cat, /bin/sh)")) {
#ifndef _WIN32
    uvkit::process_options opts;
    std::error_code ec;
    auto p = uvkit::process::spawn(loop, opts, nullptr, ec);  // no file
    CHECK(is_einval(ec));
    uvkit::pipe empty;
    opts.file = "/bin/echo";
    opts.stdio = {process_stdio::create_pipe(empty)};
    p = uvkit::process::spawn(loop, opts, nullptr, ec);
    CHECK(is_einval(ec));

    opts.stdio = {};
    uvkit::process a{loop, opts};
    uvkit::process b = std::move(a);
    CHECK_FALSE(a);
    CHECK(a.pid() == 0);
    CHECK(a.raw() == nullptr);
    CHECK_FALSE(a.exit_result());
    a.kill(SIGTERM, ec);
    CHECK(is_einval(ec));
    CHECK_THROWS_AS(a.kill(SIGTERM), std::system_error);

    uvkit::process::kill(uv_os_getpid(), 0);  // signal 0: is it there?
    uvkit::process::kill(b.pid(), 0, ec);     // not reaped yet, or gone: never crashes
    run_until([&] { return b.exit_result().has_value(); });
    CHECK(b.exit_result()->exit_status == 0);
#endif
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "process: an open pipe, or one pipe twice, is refused before any child runs" UVKIT_SKIP_ON_WINDOWS(
        "the child is a POSIX tool (/bin/sh), the pipes come from uv_socketpair")) {
#ifndef _WIN32
    // A child that ran would write "ran" into `witness` (its stderr); the
    // witness reaches EOF once every writer is gone: ours, and the child's
    // if there was one. So "no child" is seen, not hoped for.
    uv_file w[2];
    REQUIRE(uv_pipe(w, 0, 0) == 0);
    uvkit::pipe witness{loop};
    witness.open(w[0]);

    uv_file sp[2];
    REQUIRE(uv_socketpair(SOCK_STREAM, 0, sp, 0, 0) == 0);
    uvkit::pipe open_one{loop};
    open_one.open(sp[0]);
    uvkit::pipe peer{loop};
    peer.open(sp[1]);
    uvkit::pipe fresh{loop};
    uvkit::loop other;
    uvkit::pipe elsewhere{other};

    uvkit::process_options opts;
    opts.file = "/bin/sh";
    opts.args = {"sh", "-c", "echo ran >&2"};
    const std::vector<std::vector<process_stdio>> bad = {
        {process_stdio::create_pipe(open_one), process_stdio::ignore(), process_stdio::inherit(w[1])},
        {process_stdio::create_pipe(fresh), process_stdio::create_pipe(fresh), process_stdio::inherit(w[1])},
        {process_stdio::create_pipe(elsewhere), process_stdio::ignore(), process_stdio::inherit(w[1])},
    };
    int calls = 0;
    for (const auto& stdio : bad) {
        opts.stdio = stdio;
        std::error_code ec;
        auto p = uvkit::process::spawn(
            loop, opts, [&](std::int64_t, int) { ++calls; }, ec);
        CHECK(is_einval(ec));
        CHECK_FALSE(p);
        CHECK_THROWS_AS(uvkit::process(loop, opts, [&](std::int64_t, int) { ++calls; }), std::system_error);
    }
    CHECK(open_one.readable());  // untouched
    uv_fs_t req;
    uv_fs_close(nullptr, &req, w[1], nullptr);
    uv_fs_req_cleanup(&req);
    collector c;
    c.attach(witness);
    run_until([&] { return c.eof; });
    CHECK(c.data.empty());
    CHECK_FALSE(c.error);
    CHECK(calls == 0);

    // The fresh pipe still works for one descriptor.
    opts.args = {"sh", "-c", "echo fine"};
    opts.stdio = {process_stdio::ignore(), process_stdio::create_pipe(fresh)};
    bool exited = false;
    uvkit::process ok{loop, opts, [&](std::int64_t, int) { exited = true; }};
    collector out;
    out.attach(fresh);
    run_until([&] { return out.eof && exited; });
    CHECK(out.data == "fine\n");
    open_one.close();
    peer.close();
    elsewhere.close();
    other.run();
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "process: destroying the process in its exit handler" UVKIT_SKIP_ON_WINDOWS(
                                    "the children are POSIX tools (/bin/echo, /bin/cat, /bin/sh)")) {
#ifndef _WIN32
    uvkit::process_options opts;
    opts.file = "/bin/sh";
    opts.args = {"sh", "-c", "exit 7"};
    std::unique_ptr<uvkit::process> child;
    std::int64_t status = -1;
    child = std::make_unique<uvkit::process>(loop, opts, [&](std::int64_t s, int) {
        status = s;
        child.reset();
    });
    run_until([&] { return child == nullptr; });
    CHECK(status == 7);
#endif
}

TEST_CASE("process: destroying the loop while a child runs" UVKIT_SKIP_ON_WINDOWS(
    "the children are POSIX tools (/bin/echo, /bin/cat, /bin/sh)")) {
#ifndef _WIN32
    auto l = std::make_unique<uvkit::loop>();
    uvkit::pipe in{*l};
    uvkit::process_options opts;
    opts.file = "/bin/cat";
    opts.stdio = {process_stdio::create_pipe(in)};
    int calls = 0;
    uvkit::process child{*l, opts, [&](std::int64_t, int) { ++calls; }};
    int pid = child.pid();
    l->run(uvkit::run_mode::nowait);
    l.reset();  // closes the pipe (cat sees EOF and exits) and stops watching the child
    CHECK(calls == 0);
    std::error_code ec;
    child.kill(SIGTERM, ec);
    CHECK(is_einval(ec));
    CHECK(child.pid() == pid);
#endif
}
#ifndef _WIN32

namespace {
uvkit::task<uvkit::process_exit> run_and_wait(uvkit::loop& l, std::string script) {
    uvkit::pipe out{l};
    uvkit::process_options opts;
    opts.file = "/bin/sh";
    opts.args = {"sh", "-c", std::move(script)};
    opts.stdio = {process_stdio::ignore(), process_stdio::create_pipe(out)};
    uvkit::process child{l, opts};
    std::string all;
    for (;;) {
        std::string chunk = co_await out.async_read();
        if (chunk.empty()) break;
        all += chunk;
    }
    CHECK(all == "co\n");
    uvkit::process_exit e = co_await child.async_exit();
    // Awaiting again after the exit completes at once with the same result.
    CHECK(co_await child.async_exit() == e);
    co_return e;
}
uvkit::task<std::error_code> wait_closed(uvkit::loop& l) {
    uvkit::pipe in{l};
    uvkit::process_options opts;
    opts.file = "/bin/cat";
    opts.stdio = {process_stdio::create_pipe(in)};
    uvkit::process child{l, opts};
    uvkit::timer t{l};
    t.start(std::chrono::milliseconds(1), [&] { child.close(); });
    std::error_code ec;
    co_await child.async_exit(ec);
    in.close();
    co_return ec;
}
}  // namespace

#endif
TEST_CASE_FIXTURE(loop_fixture, "process: co_await async_exit" UVKIT_SKIP_ON_WINDOWS(
                                    "the children are POSIX tools (/bin/echo, /bin/cat, /bin/sh)")) {
#ifndef _WIN32
    auto e = uvkit::run(loop, run_and_wait(loop, "echo co; exit 5"));
    CHECK(e == uvkit::process_exit{5, 0});
    // Closing the process completes a waiting async_exit with canceled (cat then ends on EOF).
    CHECK(uvkit::run(loop, wait_closed(loop)) == uvkit::errc::canceled);
    uvkit::process empty;
    std::error_code ec;
    auto wait_empty = [&]() -> uvkit::task<void> { co_await empty.async_exit(ec); };
    uvkit::run(loop, wait_empty());
    CHECK(is_einval(ec));
#endif
}
