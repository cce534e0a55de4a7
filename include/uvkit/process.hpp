// uvkit/process.hpp: a child process (uv_process_t).
//
// What it is: spawns a program with arguments, environment, working
// directory and standard streams of your choice, and calls a handler when it
// exits. Each of the child's stdio descriptors can be ignored (/dev/null),
// inherit one of ours, or be a new uvkit::pipe that you then read or write:
//
//     uvkit::pipe out{loop};
//     uvkit::process_options opts;
//     opts.file = "/bin/echo";
//     opts.args = {"echo", "hello"};
//     opts.stdio = {uvkit::process_stdio::ignore(), uvkit::process_stdio::create_pipe(out),
//                   uvkit::process_stdio::inherit(2)};
//     uvkit::process child{loop, opts, [&](std::int64_t status, int signal) { ... }};
//     out.read_start([&](std::error_code ec, std::string_view data) { ... });
//
// Lifetime: see uvkit/handle.hpp. The exit handler is called at most once, on
// the loop thread, when the child exits; never if spawning failed, and never
// if the process handle is closed first: closing or destroying a process
// does not kill the child, it only stops watching it (kill() it first if it
// must end). The child's end of a created pipe is closed in the parent, so
// reading the pipe reaches errc::eof once the child (and its children) closed it.
//
// Errors: spawning reports its failure synchronously (std::system_error, or
// the std::error_code& of spawn()), e.g. std::errc::no_such_file_or_directory
// for a missing program or std::errc::permission_denied; the exit handler
// then never runs. The stdio list is checked before anything is spawned:
// create_pipe() of a pipe that is already open, of one pipe for two
// descriptors, or of a pipe on another loop, and inherit(stream) of a closed
// or unopened stream, fail with UV_EINVAL and start no child (libuv would
// notice some of these only after the fork, leaving a child nobody reaps).
// kill() on an empty or closed process fails with UV_EINVAL, on a process
// that already exited with UV_ESRCH.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "uvkit/handle.hpp"
#include "uvkit/pipe.hpp"

namespace uvkit {

/// Which way a created pipe carries data, seen from the child (UV_READABLE_PIPE,
/// UV_WRITABLE_PIPE). automatic: the child reads fd 0 and writes the others.
enum class stdio_flow { automatic, child_reads, child_writes, both };

/// What one of the child's file descriptors is connected to (uv_stdio_container_t).
class UVKIT_API process_stdio {
public:
    /// Not connected: the child gets /dev/null (UV_IGNORE).
    static process_stdio ignore() noexcept { return process_stdio{}; }
    /// The child gets a duplicate of our descriptor `fd` (UV_INHERIT_FD).
    static process_stdio inherit(uv_file fd) noexcept {
        process_stdio s;
        s.flags_ = UV_INHERIT_FD;
        s.fd_ = fd;
        return s;
    }
    /// The child gets the descriptor of an open stream (UV_INHERIT_STREAM).
    static process_stdio inherit(stream& s) noexcept {
        process_stdio r;
        r.flags_ = UV_INHERIT_STREAM;
        r.stream_ = &s;
        return r;
    }
    /// Connects the child to `p`, a new, unopened pipe on the same loop, that
    /// spawning opens (UV_CREATE_PIPE); read or write it like any stream.
    /// One pipe serves one descriptor; an open one is refused (UV_EINVAL).
    static process_stdio create_pipe(pipe& p, stdio_flow flow = stdio_flow::automatic) noexcept {
        process_stdio r;
        r.flags_ = UV_CREATE_PIPE;
        r.stream_ = &p;
        r.flow_ = flow;
        return r;
    }

private:
    friend class process;
    int flags_ = UV_IGNORE;
    int fd_ = -1;
    stream* stream_ = nullptr;
    stdio_flow flow_ = stdio_flow::automatic;
};

/// What to run and how (uv_process_options_t).
struct process_options {
    /// The program: a path, or a name looked up in PATH.
    std::string file;
    /// The argument vector, args[0] included; empty means {file}.
    std::vector<std::string> args;
    /// The environment as "NAME=value" entries; nullopt inherits ours.
    std::optional<std::vector<std::string>> env;
    /// The working directory; empty keeps ours.
    std::string cwd;
    /// The child's descriptors 0, 1, 2, ... in order; those not listed are not open.
    std::vector<process_stdio> stdio;
    /// Runs the child in its own process group/session so that it can outlive
    /// us (UV_PROCESS_DETACHED); unref() the process too to not wait for it.
    bool detached = false;
    /// Hides the child's window on Windows (UV_PROCESS_WINDOWS_HIDE).
    bool windows_hide = false;
    /// Passes args unquoted on Windows (UV_PROCESS_WINDOWS_VERBATIM_ARGUMENTS).
    bool windows_verbatim_arguments = false;
    /// Runs the child as this user / group (UV_PROCESS_SETUID / SETGID; not on Windows).
    std::optional<uv_uid_t> uid;
    std::optional<uv_gid_t> gid;
};

/// How a child ended: its exit code, or the signal that ended it (else 0).
struct process_exit {
    std::int64_t exit_status = 0;
    int term_signal = 0;
    friend bool operator==(const process_exit&, const process_exit&) = default;
};

namespace detail {
class exit_waiter;
struct UVKIT_API process_state final : handle_state {
    using handle_state::handle_state;
    uv_process_t h{};
    handler_slot<void(std::int64_t, int)> on_exit;
    std::optional<process_exit> result;
    static void exit_cb(uv_process_t* p, std::int64_t exit_status, int term_signal) noexcept;
};
}  // namespace detail

class UVKIT_API process : public handle {
public:
    /// An empty process: every operation fails with UV_EINVAL until one is moved in.
    process() noexcept = default;

    /// Spawns a child on `l` (uv_spawn); `on_exit(std::int64_t exit_status,
    /// int term_signal)`, if given, is called once when it exits. Throws
    /// std::system_error if spawning failed (the handler is then dropped).
    template <class F = std::nullptr_t>
    explicit process(uvkit::loop& l, const process_options& opts, F&& on_exit = nullptr)
        : process(l, opts, detail::unique_function<void(std::int64_t, int)>(std::forward<F>(on_exit))) {}

    /// The same, as a function: returns the spawned process.
    template <class F = std::nullptr_t>
    static process spawn(uvkit::loop& l, const process_options& opts, F&& on_exit = nullptr) {
        return process(l, opts, std::forward<F>(on_exit));
    }
    /// Non-throwing form: on failure `ec` is set and the result is an empty process.
    template <class F>
    static process spawn(uvkit::loop& l, const process_options& opts, F&& on_exit,
                         std::error_code& ec) noexcept {
        return process(detail::unique_function<void(std::int64_t, int)>(std::forward<F>(on_exit)), l, opts,
                       ec);
    }

    process(process&&) noexcept = default;
    process& operator=(process&&) noexcept = default;
    ~process() = default;

    /// The child's process id (uv_process_get_pid); 0 when empty.
    int pid() const noexcept;

    /// Sends `signum` to the child (uv_process_kill); on Windows SIGTERM,
    /// SIGKILL and SIGINT terminate it.
    void kill(int signum);
    void kill(int signum, std::error_code& ec) noexcept;

    /// Sends `signum` to any process (uv_kill).
    static void kill(int pid, int signum);
    static void kill(int pid, int signum, std::error_code& ec) noexcept;

    /// How the child ended, once the exit was seen; nullopt before or when empty.
    std::optional<process_exit> exit_result() const noexcept;

    /// Waits for the child to exit (uvkit/co/process.hpp); immediate if it already did.
    detail::exit_waiter async_exit() noexcept;
    detail::exit_waiter async_exit(std::error_code& ec) noexcept;

    /// The libuv handle, or nullptr for an empty process.
    uv_process_t* raw() const noexcept;

private:
    friend class detail::exit_waiter;
    process(uvkit::loop& l, const process_options& opts,
            detail::unique_function<void(std::int64_t, int)>&& h);
    process(detail::unique_function<void(std::int64_t, int)>&& h, uvkit::loop& l, const process_options& opts,
            std::error_code& ec) noexcept;
    struct c_options;
    /// Builds the uv_process_options_t of `opts` into `c`; a negative libuv code on bad options.
    static int prepare(uvkit::loop& l, const process_options& opts, c_options& c);
    /// The libuv form of one stdio entry (child fd `index`); UV_EINVAL for an unusable stream.
    static int to_container(const process_stdio& s, std::size_t index, uv_stdio_container_t& out) noexcept;
    static detail::process_state* start(uvkit::loop& l, const process_options& opts,
                                        detail::unique_function<void(std::int64_t, int)>&& h,
                                        std::error_code& ec) noexcept;
};

}  // namespace uvkit
