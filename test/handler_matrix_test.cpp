// The handler matrix (issue #7, reliability): for every kind of handler uvkit
// has, these must hold:
//   T  throws:  the handler throws; loop.run() rethrows it, the loop runs again
//               afterwards, and nothing is left open (loop_fixture checks).
//   C  close:   the handler close()s its own handle: it is not called again,
//               on_closed runs once, the loop ends.
//   D  destroy: the handler destroys its own handle object (a std::optional or
//               unique_ptr reset): no crash, no second call, the loop ends.
//   P  pending: the object owning a pending request (its stream, udp, request
//               object, process) is destroyed from inside another operation's
//               handler (a timer): the request's handler still runs exactly once
//               (canceled, or its result), or never for a process's exit
//               handler (uvkit/process.hpp: closing a process stops watching it).
// This file fills the gaps the other tests leave. Where each cell is covered:
// "here" = the matrix T/C/D/P template of this file, instantiated for that
// kind (plus "matrix: on_closed ..."); [x] = another file, listed below; n/a =
// the scenario does not exist for the kind (post has no handle, a request
// object has no close, a handle that is not a request has no P).
//
// clang-format off
//   kind         | T throws    | C closes own handle | D destroys own handle | P owner destroyed, pending
//   -------------+-------------+---------------------+-----------------------+-------------------------------
//   timer        | [a]         | [b]                 | [c]                   | n/a
//   idle         | [d]         | here                | [e]                   | n/a
//   prepare      | [f]         | here                | [g]                   | n/a
//   check        | [h]         | here                | [i]                   | n/a
//   signal       | here (+[j]) | here                | [k]                   | n/a
//   poll         | here (+[l]) | here                | [m]                   | n/a
//   tcp read     | [n]         | here                | [o]                   | n/a
//   pipe read    | here        | here                | [p]                   | n/a
//   tty read     | here (pty)  | here (pty)          | here (pty)            | n/a
//   tcp connect  | [q]         | here                | here                  | here (+[r]: closed)
//   pipe connect | here        | here                | here                  | here (+[s]: closed)
//   tcp listen   | [q]         | here                | here                  | n/a
//   pipe listen  | here        | here                | here                  | n/a
//   write        | [q]         | here                | [t]                   | here (+[t], [u])
//   shutdown     | [q]         | here                | here                  | here (+[v]: closed)
//   udp recv     | [w]         | here                | [x]                   | n/a
//   udp send     | [w]         | here                | [x]                   | here (+[y]: closed)
//   process exit | here        | here                | [z]                   | here: never called
//   work done    | [A]         | n/a                 | [B]                   | here, queued + running (+[C])
//   resolve done | here        | n/a                 | here                  | here (+[D] from the test body)
//   loop.post    | [E]         | n/a                 | n/a                   | n/a
//   on_closed    | [F] + here  | here (a no-op)      | [b]                   | n/a
// clang-format on
//
//   [a] loop_test "a handler exception is rethrown by run() and the loop runs again"
//   [b] timer_test "close() from inside the handler, and destroying the timer from on_closed"
//   [c] timer_test "destroying a timer inside its own handler"
//   [d] idle_test "an idle handler exception stops the loop; the handle keeps running after"
//   [e] idle_test "destroying an idle handle inside its own handler"
//   [f] prepare_test "prepare: a handler exception stops the loop; run() rethrows"
//   [g] prepare_test "prepare: destroying it inside its own handler"
//   [h] check_test "check: a handler exception stops the loop; run() rethrows"
//   [i] check_test "check: destroying it inside its own handler"
//   [j] signal_test "a signal handler exception stops the loop and leaves run()" (no second run)
//   [k] signal_test "destroying a signal handle inside its own handler"
//   [l] poll_test "poll: a handler exception stops the loop; run() rethrows" (no second run)
//   [m] poll_test "poll: destroying it inside its own handler; the socket stays open"
//   [n] tcp_test "tcp: a read handler that throws makes run() rethrow"
//   [o] tcp_test "tcp: destroying a tcp inside its own read handler"
//   [p] pipe_test "pipe: destroying a pipe inside its read handler"
//   [q] fault_test "faults: a throwing connect, listen, write or shutdown handler leaves run() ..."
//   [r] tcp_test "tcp: a connect pending when the handle is closed completes once with canceled"
//   [s] pipe_test "pipe: closing before connect completed gives canceled, once"
//   [t] tcp_test "tcp: destroying a tcp inside a write handler"
//   [u] tcp_test "tcp: writes queued when the handle is closed complete once with canceled"
//   [v] conformance/shutdown "shutdown_close_tcp", "shutdown_close_pipe"
//   [w] udp_test "udp: handler exceptions stop the loop; run() rethrows"
//   [x] udp_test "udp: destroying a udp inside its receive handler and inside a send handler"
//   [y] udp_test "udp: each send handler runs exactly once, also when the udp is closed right after"
//   [z] process_test "process: destroying the process in its exit handler"
//   [A] work_test "work: an exception thrown by done leaves loop.run()"
//   [B] work_test "work: destroying the request object inside done is fine"
//   [C] work_test "work: destroying a pending request cancels it; done still runs once"
//   [D] dns_test "dns: destroying the request before completion"
//   [E] loop_test "an exception in a posted function is rethrown; the rest are delivered later"
//   [F] loop_test "an on_closed handler that throws is rethrown by run()"
//
// Every wait is bounded; sockets are on 127.0.0.1 with port 0; signals are
// raised to ourselves and children are /bin/sh (both not on Windows); the tty
// kind needs a pseudo-terminal (skipped, saying so, where none can be made).
#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#ifdef _WIN32
#include <winsock2.h>
#else
#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#endif

#include "fixture.hpp"
#include "platform.hpp"
#include "pool_gate.hpp"

using namespace std::chrono_literals;
using uvkit_test::loop_fixture;

namespace {

using body_t = std::function<void()>;
const uvkit::endpoint any_v4{"127.0.0.1", 0};
constexpr auto limit = 10s;

/// The loop works: a new timer fires and run() ends (nothing else is left).
void check_runs_again(loop_fixture& f) {
    uvkit::timer t{f.loop};
    bool fired = false;
    t.start(1ms, [&] { fired = true; });
    f.run_all(limit);
    CHECK(fired);
}

/// A name for a pipe server: a socket file in the temp dir (removed at
/// destruction), or a named pipe on Windows.
struct pipe_name {
    std::string name;
    pipe_name() {
        static int n = 0;
        std::string tag = "uvkit-matrix-" + std::to_string(uv_os_getpid()) + "-" + std::to_string(++n);
#ifdef _WIN32
        name = "\\\\.\\pipe\\" + tag;
#else
        char buf[256];
        std::size_t size = sizeof buf;
        std::string dir = uv_os_tmpdir(buf, &size) == 0 ? std::string(buf, size) : std::string("/tmp");
        name = dir + "/" + tag;
        unlink_it();
#endif
    }
    ~pipe_name() { unlink_it(); }
    pipe_name(const pipe_name&) = delete;
    pipe_name& operator=(const pipe_name&) = delete;
    void unlink_it() {
#ifndef _WIN32
        uv_fs_t req;
        uv_fs_unlink(nullptr, &req, name.c_str(), nullptr);
        uv_fs_req_cleanup(&req);
#endif
    }
};

// ---------------------------------------------------------------------------
// Handler kinds. Each holds the handle (or request) whose handler is under
// test in `h`, a std::optional that a handler may reset, plus what it needs
// around it. arm(body) installs a handler that calls body(); fire() makes the
// event happen; release() closes the helpers so that the loop can end.
// ---------------------------------------------------------------------------

struct kind_base {
    explicit kind_base(loop_fixture& fx) : f(fx), loop(fx.loop) {}
    loop_fixture& f;
    uvkit::loop& loop;
    void fire() {}
    void release() {}
};

struct idle_kind : kind_base {
    using kind_base::kind_base;
    std::optional<uvkit::idle> h{std::in_place, loop};
    void arm(body_t b) {
        h->start([b] { b(); });
    }
};

/// prepare and check: an idle "spin" keeps the loop from blocking in poll.
template <class H>
struct loop_phase_kind : kind_base {
    explicit loop_phase_kind(loop_fixture& fx) : kind_base(fx) {
        spin.start([] {});
    }
    uvkit::idle spin{loop};
    std::optional<H> h{std::in_place, loop};
    void arm(body_t b) {
        h->start([b] { b(); });
    }
    void release() { spin.close(); }
};
using prepare_kind = loop_phase_kind<uvkit::prepare>;
using check_kind = loop_phase_kind<uvkit::check>;

#ifndef _WIN32
struct signal_kind : kind_base {
    using kind_base::kind_base;
    std::optional<uvkit::signal> h{std::in_place, loop};
    void arm(body_t b) {
        h->start(SIGUSR2, [b](int) { b(); });
    }
    // One signal per test, sent once the handle watches it (never unwatched).
    void fire() { REQUIRE(uv_kill(uv_os_getpid(), SIGUSR2) == 0); }
};
#endif

/// Two connected sockets (uv_socketpair), closed at scope exit.
struct socket_pair {
    uv_os_sock_t fd[2]{};
    socket_pair() { REQUIRE(uv_socketpair(SOCK_STREAM, 0, fd, 0, 0) == 0); }
    ~socket_pair() {
        for (uv_os_sock_t s : fd) {
#ifdef _WIN32
            closesocket(s);
#else
            ::close(s);
#endif
        }
    }
    socket_pair(const socket_pair&) = delete;
    socket_pair& operator=(const socket_pair&) = delete;
};

struct poll_kind : kind_base {
    explicit poll_kind(loop_fixture& fx) : kind_base(fx) { h.emplace(loop, sockets.fd[0]); }
    socket_pair sockets;  // declared first: closed after the poll handle
    std::optional<uvkit::poll> h;
    void arm(body_t b) {
        h->start(uvkit::poll::writable, [b](std::error_code, int) { b(); });
    }
};

/// A connected TCP pair: `h` is the client, `peer` the accepted side.
struct tcp_pair_kind : kind_base {
    explicit tcp_pair_kind(loop_fixture& fx) : kind_base(fx) {
        listener.bind(any_v4);
        bool accepted = false, connected = false;
        listener.listen(8, [&](std::error_code ec) {
            REQUIRE_FALSE(ec);
            listener.accept(peer);
            accepted = true;
        });
        h->connect(listener.local_endpoint(), [&](std::error_code ec) {
            REQUIRE_FALSE(ec);
            connected = true;
        });
        f.run_until([&] { return accepted && connected; }, limit);
        listener.close();
    }
    uvkit::tcp listener{loop};
    uvkit::tcp peer{loop};
    std::optional<uvkit::tcp> h{std::in_place, loop};
    void release() { peer.close(); }
};

struct tcp_read_kind : tcp_pair_kind {
    using tcp_pair_kind::tcp_pair_kind;
    void arm(body_t b) {
        h->read_start([b](std::error_code, std::string_view) { b(); });
    }
    void fire() { peer.write(std::string("x")); }
};

struct write_kind : tcp_pair_kind {
    using tcp_pair_kind::tcp_pair_kind;
    void arm(body_t b) {
        h->write(std::string("x"), [b](std::error_code ec) {
            CHECK_FALSE(ec);
            b();
        });
    }
};

struct shutdown_kind : tcp_pair_kind {
    using tcp_pair_kind::tcp_pair_kind;
    void arm(body_t b) {
        h->shutdown([b](std::error_code ec) {
            CHECK_FALSE(ec);
            b();
        });
    }
};

struct pipe_read_kind : kind_base {
    explicit pipe_read_kind(loop_fixture& fx) : kind_base(fx) {
        uv_file fds[2];
        REQUIRE(uv_pipe(fds, 0, 0) == 0);
        h->open(fds[0]);
        writer.open(fds[1]);
    }
    std::optional<uvkit::pipe> h{std::in_place, loop};
    uvkit::pipe writer{loop};
    void arm(body_t b) {
        h->read_start([b](std::error_code, std::string_view) { b(); });
    }
    void fire() { writer.write(std::string("x")); }
    void release() { writer.close(); }
};

#ifndef _WIN32
/// A pseudo-terminal; `h` is a tty on its terminal side. ok == false if the
/// system cannot make one (the test is then skipped, saying so).
struct tty_read_kind : kind_base {
    explicit tty_read_kind(loop_fixture& fx) : kind_base(fx) {
        master = posix_openpt(O_RDWR | O_NOCTTY);
        const char* name = nullptr;
        if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
            (name = ptsname(master)) == nullptr)
            return;
        slave = ::open(name, O_RDWR | O_NOCTTY);
        if (slave < 0) return;
        h.emplace(loop, slave);
        ok = true;
    }
    ~tty_read_kind() {
        h.reset();  // before the descriptors (libuv reopened its own)
        if (slave >= 0) ::close(slave);
        if (master >= 0) ::close(master);
    }
    tty_read_kind(const tty_read_kind&) = delete;
    tty_read_kind& operator=(const tty_read_kind&) = delete;
    int master = -1;
    int slave = -1;
    bool ok = false;
    std::optional<uvkit::tty> h;
    void arm(body_t b) {
        h->read_start([b](std::error_code, std::string_view) { b(); });
    }
    // A line: the terminal is in its default, line-buffered mode.
    void fire() { REQUIRE(::write(master, "x\n", 2) == 2); }
};
#endif

/// A listening TCP server (accepting into `accepted`); `h` an unconnected client.
struct tcp_connect_kind : kind_base {
    explicit tcp_connect_kind(loop_fixture& fx) : kind_base(fx) {
        server.bind(any_v4);
        server.listen(8, [this](std::error_code ec) {
            if (ec) return;
            accepted.push_back(std::make_unique<uvkit::tcp>(loop));
            std::error_code aec;
            server.accept(*accepted.back(), aec);
        });
    }
    uvkit::tcp server{loop};
    std::vector<std::unique_ptr<uvkit::tcp>> accepted;
    std::optional<uvkit::tcp> h{std::in_place, loop};
    void arm(body_t b) {
        h->connect(server.local_endpoint(), [b](std::error_code) { b(); });
    }
    void release() {
        server.close();
        for (auto& a : accepted) a->close();
    }
};

struct pipe_connect_kind : kind_base {
    explicit pipe_connect_kind(loop_fixture& fx) : kind_base(fx) {
        server.bind(path.name);
        server.listen(8, [this](std::error_code ec) {
            if (ec) return;
            accepted.push_back(std::make_unique<uvkit::pipe>(loop));
            std::error_code aec;
            server.accept(*accepted.back(), aec);
        });
    }
    pipe_name path;
    uvkit::pipe server{loop};
    std::vector<std::unique_ptr<uvkit::pipe>> accepted;
    std::optional<uvkit::pipe> h{std::in_place, loop};
    void arm(body_t b) {
        h->connect(path.name, [b](std::error_code) { b(); });
    }
    void release() {
        server.close();
        for (auto& a : accepted) a->close();
    }
};

/// `h` is a bound server whose listen handler is under test (it does not
/// accept: the connection is dropped when the server closes).
struct tcp_listen_kind : kind_base {
    explicit tcp_listen_kind(loop_fixture& fx) : kind_base(fx) { h->bind(any_v4); }
    std::optional<uvkit::tcp> h{std::in_place, loop};
    uvkit::tcp client{loop};
    void arm(body_t b) {
        h->listen(8, [b](std::error_code) { b(); });
    }
    void fire() {
        client.connect(h->local_endpoint(), [](std::error_code) {});
    }
    void release() { client.close(); }
};

struct pipe_listen_kind : kind_base {
    explicit pipe_listen_kind(loop_fixture& fx) : kind_base(fx) { h->bind(path.name); }
    pipe_name path;
    std::optional<uvkit::pipe> h{std::in_place, loop};
    uvkit::pipe client{loop};
    void arm(body_t b) {
        h->listen(8, [b](std::error_code) { b(); });
    }
    void fire() {
        client.connect(path.name, [](std::error_code) {});
    }
    void release() { client.close(); }
};

uvkit::udp bound_udp(uvkit::loop& l) {
    uvkit::udp u{l};
    u.bind(any_v4);
    return u;
}

struct udp_recv_kind : kind_base {
    using kind_base::kind_base;
    std::optional<uvkit::udp> h{std::in_place, bound_udp(loop)};
    uvkit::udp tx{loop};
    void arm(body_t b) {
        h->recv_start([b](std::error_code, std::string_view, const uvkit::endpoint&, unsigned) { b(); });
    }
    void fire() { tx.send(std::string("x"), h->local_endpoint()); }
    void release() { tx.close(); }
};

struct udp_send_kind : kind_base {
    using kind_base::kind_base;
    uvkit::udp rx = bound_udp(loop);  // never reads: the datagram waits in the kernel
    std::optional<uvkit::udp> h{std::in_place, loop};
    void arm(body_t b) {
        h->send(std::string("x"), rx.local_endpoint(), [b](std::error_code ec) {
            CHECK_FALSE(ec);
            b();
        });
    }
    void release() { rx.close(); }
};

#ifndef _WIN32
uvkit::process_options sh(const char* script) {
    uvkit::process_options opts;
    opts.file = "/bin/sh";
    opts.args = {"sh", "-c", script};
    return opts;
}

struct process_kind : kind_base {
    using kind_base::kind_base;
    std::optional<uvkit::process> h;
    void arm(body_t b) {
        h.emplace(loop, sh("exit 3"), [b](std::int64_t status, int signal) {
            CHECK(status == 3);
            CHECK(signal == 0);
            b();
        });
    }
};
#endif

struct resolve_kind : kind_base {
    using kind_base::kind_base;
    std::optional<uvkit::resolve_request> h;
    void arm(body_t b) {
        h.emplace(uvkit::resolve(loop, "127.0.0.1", "80",
                                 [b](std::error_code ec, std::vector<uvkit::endpoint> eps) {
                                     CHECK_FALSE(ec);
                                     CHECK(eps.size() == 1);
                                     b();
                                 }));
    }
};

// ---------------------------------------------------------------------------
// Pending-request kinds (P). start(done) starts the request(s), each calling
// done(ec) once; destroy() destroys what owns them (from a timer's handler);
// `expected` is how many calls must follow; check() judges their results.
// ---------------------------------------------------------------------------

using done_t = std::function<void(std::error_code)>;
const std::error_code canceled = uvkit::errc::canceled;

void check_each_done_or_canceled(const std::vector<std::error_code>& results) {
    for (auto& ec : results) CHECK((!ec || ec == canceled));
}

/// Writes that stay queued: 4 x 8 MiB to a peer that never reads.
struct pending_write : tcp_pair_kind {
    using tcp_pair_kind::tcp_pair_kind;
    static constexpr std::size_t expected = 4;
    const std::string big = std::string(8 << 20, 'w');
    void start(done_t done) {
        for (std::size_t i = 0; i < expected; ++i)
            h->write(std::string_view(big), [done](std::error_code ec) { done(ec); });
    }
    void destroy() {
        CHECK(h->write_queue_size() > 0);
        h.reset();
    }
    static void check(const std::vector<std::error_code>& results) {
        check_each_done_or_canceled(results);
        if (!results.empty()) CHECK(results.back() == canceled);
    }
};

/// A shutdown queued behind writes that cannot complete.
struct pending_shutdown : pending_write {
    using pending_write::pending_write;
    static constexpr std::size_t expected = 1;
    void start(done_t done) {
        for (int i = 0; i < 4; ++i) h->write(std::string_view(big), [](std::error_code) {});
        h->shutdown([done](std::error_code ec) { done(ec); });
    }
    static void check(const std::vector<std::error_code>& results) {
        for (auto& ec : results) CHECK(ec == canceled);
    }
};

template <class Base>
struct pending_connect : Base {
    using Base::Base;
    static constexpr std::size_t expected = 1;
    void start(done_t done) { this->arm_connect(std::move(done)); }
    void destroy() { this->h.reset(); }
    // Destroyed before libuv reported the connect: canceled (tcp.hpp, pipe.hpp).
    static void check(const std::vector<std::error_code>& results) {
        for (auto& ec : results) CHECK(ec == canceled);
    }
};

struct tcp_connect_base : tcp_connect_kind {
    using tcp_connect_kind::tcp_connect_kind;
    void arm_connect(done_t done) {
        h->connect(server.local_endpoint(), [done](std::error_code ec) { done(ec); });
    }
};
struct pipe_connect_base : pipe_connect_kind {
    using pipe_connect_kind::pipe_connect_kind;
    void arm_connect(done_t done) {
        h->connect(path.name, [done](std::error_code ec) { done(ec); });
    }
};
using pending_tcp_connect = pending_connect<tcp_connect_base>;
using pending_pipe_connect = pending_connect<pipe_connect_base>;

/// Sends queued on a udp; the first may already be in the kernel (success).
struct pending_udp_send : udp_send_kind {
    using udp_send_kind::udp_send_kind;
    static constexpr std::size_t expected = 8;
    void start(done_t done) {
        for (std::size_t i = 0; i < expected; ++i)
            h->send(std::string(512, 's'), rx.local_endpoint(), [done](std::error_code ec) { done(ec); });
    }
    void destroy() { h.reset(); }
    static void check(const std::vector<std::error_code>& results) { check_each_done_or_canceled(results); }
};

/// Work queued behind a pool kept busy: destroying the request cancels it.
struct pending_work_queued : kind_base {
    using kind_base::kind_base;
    static constexpr std::size_t expected = 1;
    uvkit_test::pool_gate gate{loop};
    std::optional<uvkit::work_request> h;
    std::atomic<bool> ran{false};
    void start(done_t done) {
        h.emplace(uvkit::work(
            loop, [this] { ran = true; },
            [done](std::error_code ec, uvkit::work_result<void>) { done(ec); }));
    }
    void destroy() { h.reset(); }
    void check(const std::vector<std::error_code>& results) const {
        for (auto& ec : results) CHECK(ec == canceled);
        CHECK_FALSE(ran);
    }
    void release() { gate.release(); }
};

/// Work already running on a pool thread: it cannot be cancelled; its result arrives.
struct pending_work_running : kind_base {
    using kind_base::kind_base;
    static constexpr std::size_t expected = 1;
    struct sync {
        std::mutex m;
        std::condition_variable cv;
        bool started = false, go = false;
    };
    std::shared_ptr<sync> s = std::make_shared<sync>();
    std::optional<uvkit::work_request> h;
    int value = 0;
    void start(done_t done) {
        h.emplace(uvkit::work(
            loop,
            [st = s] {
                std::unique_lock<std::mutex> lock(st->m);
                st->started = true;
                st->cv.notify_all();
                st->cv.wait_for(lock, limit, [&] { return st->go; });  // bounded
                return 42;
            },
            [this, done](std::error_code ec, uvkit::work_result<int> r) {
                if (r) value = r.value();
                done(ec);
            }));
        std::unique_lock<std::mutex> lock(s->m);
        REQUIRE(s->cv.wait_for(lock, limit, [&] { return s->started; }));
    }
    void destroy() {
        h.reset();  // uv_cancel says EBUSY: nothing changes
        std::lock_guard<std::mutex> lock(s->m);
        s->go = true;
        s->cv.notify_all();
    }
    void check(const std::vector<std::error_code>& results) const {
        for (auto& ec : results) CHECK_FALSE(ec);
        CHECK(value == 42);
    }
};

/// A lookup queued behind a pool kept busy.
struct pending_resolve : kind_base {
    using kind_base::kind_base;
    static constexpr std::size_t expected = 1;
    uvkit_test::pool_gate gate{loop};
    std::optional<uvkit::resolve_request> h;
    void start(done_t done) {
        h.emplace(uvkit::resolve(loop, "127.0.0.1", "80",
                                 [done](std::error_code ec, std::vector<uvkit::endpoint> eps) {
                                     CHECK(eps.empty());
                                     done(ec);
                                 }));
    }
    void destroy() { h.reset(); }
    static void check(const std::vector<std::error_code>& results) {
        for (auto& ec : results) CHECK(ec == canceled);
    }
    void release() { gate.release(); }
};

#ifndef _WIN32
/// A running child: destroying the process (after killing the child) means
/// its exit handler never runs (uvkit/process.hpp).
struct pending_process : kind_base {
    using kind_base::kind_base;
    static constexpr std::size_t expected = 0;
    std::optional<uvkit::process> h;
    void start(done_t done) {
        h.emplace(loop, sh("exec sleep 10"), [done](std::int64_t, int) { done({}); });
    }
    void destroy() {
        h->kill(SIGKILL);
        h.reset();
    }
    static void check(const std::vector<std::error_code>&) {}
};
#endif

}  // namespace

// Kind names in doctest's report (test case names get "<kind>").
TYPE_TO_STRING(idle_kind);
TYPE_TO_STRING(prepare_kind);
TYPE_TO_STRING(check_kind);
TYPE_TO_STRING(poll_kind);
TYPE_TO_STRING(tcp_read_kind);
TYPE_TO_STRING(pipe_read_kind);
TYPE_TO_STRING(tcp_connect_kind);
TYPE_TO_STRING(pipe_connect_kind);
TYPE_TO_STRING(tcp_listen_kind);
TYPE_TO_STRING(pipe_listen_kind);
TYPE_TO_STRING(udp_recv_kind);
TYPE_TO_STRING(udp_send_kind);
TYPE_TO_STRING(write_kind);
TYPE_TO_STRING(shutdown_kind);
TYPE_TO_STRING(resolve_kind);
TYPE_TO_STRING(pending_write);
TYPE_TO_STRING(pending_shutdown);
TYPE_TO_STRING(pending_tcp_connect);
TYPE_TO_STRING(pending_pipe_connect);
TYPE_TO_STRING(pending_udp_send);
TYPE_TO_STRING(pending_work_queued);
TYPE_TO_STRING(pending_work_running);
TYPE_TO_STRING(pending_resolve);
#ifndef _WIN32
TYPE_TO_STRING(signal_kind);
TYPE_TO_STRING(tty_read_kind);
TYPE_TO_STRING(process_kind);
TYPE_TO_STRING(pending_process);
#endif

#ifndef _WIN32
#define MATRIX_SIGNAL_KIND signal_kind,
#define MATRIX_TTY_KIND tty_read_kind,
#define MATRIX_PROCESS_KIND process_kind,
#define MATRIX_PENDING_PROCESS pending_process,
#else
#define MATRIX_SIGNAL_KIND
#define MATRIX_TTY_KIND
#define MATRIX_PROCESS_KIND
#define MATRIX_PENDING_PROCESS
// The kinds left out on Windows stay visible there, as skipped cases named like their instances.
#define MATRIX_WINDOWS_SKIP(name, kind, reason) \
    TEST_CASE(name "<" #kind ">" UVKIT_SKIP_ON_WINDOWS(reason)) {}
#define MATRIX_T "matrix T: a throwing handler leaves run(); the loop runs again, nothing leaks"
#define MATRIX_C "matrix C: a handler that closes its own handle is not called again; the loop ends"
#define MATRIX_D "matrix D: a handler that destroys its own handle object; no second call, the loop ends"
#define MATRIX_P "matrix P: a pending request whose owner is destroyed from another handler completes once"
#define MATRIX_NO_SIGNAL "a process cannot raise a signal to itself"
#define MATRIX_NO_PTY "needs a POSIX pseudo-terminal"
#define MATRIX_NO_SH "the child is /bin/sh"
MATRIX_WINDOWS_SKIP(MATRIX_T, signal_kind, MATRIX_NO_SIGNAL)
MATRIX_WINDOWS_SKIP(MATRIX_T, tty_read_kind, MATRIX_NO_PTY)
MATRIX_WINDOWS_SKIP(MATRIX_T, process_kind, MATRIX_NO_SH)
MATRIX_WINDOWS_SKIP(MATRIX_C, signal_kind, MATRIX_NO_SIGNAL)
MATRIX_WINDOWS_SKIP(MATRIX_C, tty_read_kind, MATRIX_NO_PTY)
MATRIX_WINDOWS_SKIP(MATRIX_C, process_kind, MATRIX_NO_SH)
MATRIX_WINDOWS_SKIP(MATRIX_D, tty_read_kind, MATRIX_NO_PTY)
MATRIX_WINDOWS_SKIP(MATRIX_P, pending_process, MATRIX_NO_SH)
#endif

/// tty kinds need a pseudo-terminal; every other kind is always available.
template <class K>
bool available(const K& k) {
    if constexpr (requires { k.ok; }) {
        if (!k.ok) MESSAGE("skipped: no pseudo-terminal could be made");
        return k.ok;
    } else {
        return true;
    }
}

TEST_SUITE("handler matrix") {

// T: the handler throws.
TEST_CASE_TEMPLATE("matrix T: a throwing handler leaves run(); the loop runs again, nothing leaks", K,
                   MATRIX_SIGNAL_KIND MATRIX_TTY_KIND MATRIX_PROCESS_KIND poll_kind, pipe_read_kind,
                   pipe_connect_kind, pipe_listen_kind, resolve_kind) {
    loop_fixture f;
    {
        K k{f};
        if (!available(k)) return;
        int calls = 0;
        k.arm([&] {
            ++calls;
            throw std::runtime_error("thrown by the handler");
        });
        k.fire();
        CHECK(f.run_until_throw(limit) == "thrown by the handler");
        CHECK(calls == 1);
        // The handle (or request object) and its helpers go; the loop runs on.
        k.h.reset();
        k.release();
        check_runs_again(f);
        CHECK(calls == 1);
    }
    f.run_all(limit);
}

// C: the handler closes its own handle.
TEST_CASE_TEMPLATE("matrix C: a handler that closes its own handle is not called again; the loop ends", K,
                   MATRIX_SIGNAL_KIND MATRIX_TTY_KIND MATRIX_PROCESS_KIND idle_kind, prepare_kind, check_kind,
                   poll_kind, tcp_read_kind, pipe_read_kind, tcp_connect_kind, pipe_connect_kind,
                   tcp_listen_kind, pipe_listen_kind, udp_recv_kind, udp_send_kind, write_kind,
                   shutdown_kind) {
    loop_fixture f;
    K k{f};
    if (!available(k)) return;
    int calls = 0, closed = 0;
    k.arm([&] {
        ++calls;
        k.h->close([&] { ++closed; });
        k.h->close([&] { ++closed; });  // idempotent: this on_closed never runs
    });
    k.fire();
    f.run_until([&] { return closed > 0; }, limit);
    CHECK(k.h->closing());
    k.release();
    f.run_all(limit);
    CHECK(calls == 1);
    CHECK(closed == 1);
}

// D: the handler destroys its own handle object.
TEST_CASE_TEMPLATE("matrix D: a handler that destroys its own handle object; no second call, the loop ends",
                   K, MATRIX_TTY_KIND tcp_connect_kind, pipe_connect_kind, tcp_listen_kind, pipe_listen_kind,
                   shutdown_kind, resolve_kind) {
    loop_fixture f;
    K k{f};
    if (!available(k)) return;
    int calls = 0;
    k.arm([&] {
        ++calls;
        k.h.reset();
    });
    k.fire();
    f.run_until([&] { return calls > 0; }, limit);
    CHECK_FALSE(k.h.has_value());
    k.release();
    f.run_all(limit);
    CHECK(calls == 1);
}

// Under wine the pipe connect is left out of P: closing a named pipe client with its connect
// pending completed the connect with invalid argument, not canceled. It stays visible as a skip.
#ifdef _WIN32
#define MATRIX_PENDING_PIPE_CONNECT
TEST_CASE(
    "matrix P: a pending request whose owner is destroyed from another handler completes "
    "once<pending_pipe_connect>" UVKIT_SKIP_UNDER_WINE("closing a named pipe client with its connect "
                                                       "pending completed it with invalid argument, "
                                                       "not canceled")) {}
#else
#define MATRIX_PENDING_PIPE_CONNECT pending_pipe_connect,
#endif

// P: what owns a pending request is destroyed from inside another handler.
TEST_CASE_TEMPLATE("matrix P: a pending request whose owner is destroyed from another handler completes once",
                   K, MATRIX_PENDING_PROCESS pending_write, pending_shutdown, pending_tcp_connect,
                   MATRIX_PENDING_PIPE_CONNECT pending_udp_send, pending_work_queued, pending_work_running,
                   pending_resolve) {
    loop_fixture f;
    K k{f};
    std::vector<std::error_code> results;
    k.start([&](std::error_code ec) { results.push_back(ec); });
    bool destroyed = false;
    uvkit::timer other{f.loop};
    other.start(0ms, [&] {
        CHECK(results.empty());  // never synchronously: still pending here
        k.destroy();
        destroyed = true;
    });
    f.run_until([&] { return destroyed && results.size() >= K::expected; }, limit);
    // A little longer, so that a second (or, for a process, any) call would show.
    bool later = false;
    other.start(50ms, [&] { later = true; });
    f.run_until([&] { return later; }, limit);
    k.release();
    f.run_all(limit);
    CHECK(results.size() == K::expected);
    k.check(results);
}

// on_closed: a second close() inside it does nothing; its exception leaves
// run(), and the loop runs again with nothing left open.
TEST_CASE_FIXTURE(loop_fixture, "matrix: on_closed that closes again and throws") {
    uvkit::tcp t{loop};
    t.bind(any_v4);
    int first = 0, second = 0;
    t.close([&] {
        ++first;
        t.close([&] { ++second; });
        throw std::runtime_error("thrown by on_closed");
    });
    CHECK(run_until_throw(limit) == "thrown by on_closed");
    check_runs_again(*this);
    loop.run(uvkit::run_mode::nowait);  // the close callback of check_runs_again's timer
    CHECK(loop.handle_count() == 0);
    CHECK(first == 1);
    CHECK(second == 0);
}

}  // TEST_SUITE("handler matrix")
