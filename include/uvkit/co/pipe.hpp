// uvkit/co/pipe.hpp: awaitable pipe connect and accept.
//
//     uvkit::pipe c = co_await uvkit::connect_pipe(loop, "/tmp/app.sock");
//
//     uvkit::pipe server{loop};
//     server.bind("/tmp/app.sock");
//     server.listen(128);                          // no handler: for async_accept()
//     uvkit::pipe client = co_await server.async_accept();
//
// Each has a throwing form and one taking a trailing std::error_code&.
// Cancellation and closing behave as for tcp (uvkit/co/tcp.hpp): a cancelled
// connect closes its pipe and completes with errc::canceled; a cancelled
// accept leaves the connection for the next async_accept().
#pragma once

#include <string>

#include "uvkit/co/stream.hpp"
#include "uvkit/pipe.hpp"

namespace uvkit {

namespace detail {

class UVKIT_API pipe_connect_awaiter final : request_awaiter {
public:
    pipe_connect_awaiter(uvkit::loop& l, std::string name, bool ipc, std::error_code* ec_out) noexcept
        : request_awaiter(conn_, kind::connect, ec_out, &l), name_(std::move(name)), ipc_(ipc) {}
    using request_awaiter::await_ready;
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        conn_ = pipe{*loop_, ipc_};
        return start(h, scope_of(h));
    }
    pipe await_resume() {
        deliver("uvkit::connect_pipe");
        if (ec_) return pipe{};
        return std::move(conn_);
    }
    /// dump_tasks(): "connect pipe <name>".
    void describe(task_dump& d) const override { d << "connect pipe " << name_; }

private:
    void start_connect() noexcept override { conn_.connect_fn(name_, nullptr, ec_, &req_); }
    std::string name_;
    bool ipc_;
    pipe conn_;
};

}  // namespace detail

/// Connects a new pipe to `name` (uv_pipe_connect); the result is the connected
/// pipe. `ipc` makes it an IPC pipe. Throws std::system_error, e.g.
/// std::errc::no_such_file_or_directory.
inline detail::pipe_connect_awaiter connect_pipe(uvkit::loop& l, std::string name,
                                                 bool ipc = false) noexcept {
    return {l, std::move(name), ipc, nullptr};
}
/// Non-throwing form: on failure `ec` is set and the result is an empty pipe.
inline detail::pipe_connect_awaiter connect_pipe(uvkit::loop& l, std::string name, bool ipc,
                                                 std::error_code& ec) noexcept {
    return {l, std::move(name), ipc, &ec};
}

inline detail::accept_awaiter<pipe> pipe::async_accept() noexcept { return {*this, nullptr}; }
inline detail::accept_awaiter<pipe> pipe::async_accept(std::error_code& ec) noexcept { return {*this, &ec}; }

}  // namespace uvkit
