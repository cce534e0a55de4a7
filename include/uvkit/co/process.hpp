// uvkit/co/process.hpp: co_await a child's exit.
//
//     uvkit::process child{loop, opts};
//     uvkit::process_exit e = co_await child.async_exit();   // {exit_status, term_signal}
//
// Completes at once if the child already exited. One coroutine may wait on a
// process at a time (a second gets UV_EALREADY). Cancellation completes the
// wait with errc::canceled and leaves the child running; so does closing or
// destroying the process. An empty process gives UV_EINVAL. The throwing form
// throws std::system_error; the form taking std::error_code& stores it.
#pragma once

#include "uvkit/co/operation.hpp"
#include "uvkit/process.hpp"

namespace uvkit {

namespace detail {

class UVKIT_API exit_waiter final : public operation, handle_consumer {
public:
    exit_waiter(process& p, std::error_code* ec_out) noexcept : operation(ec_out), proc_(&p) {}
    ~exit_waiter() override;

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return start(h, scope_of(h));
    }
    process_exit await_resume() {
        deliver("uvkit::process::async_exit");
        return result_;
    }

private:
    bool start(std::coroutine_handle<> h, cancel_scope* scope);
    /// The wait ends with `e` (closed, cancelled): resumes soon, from the loop.
    void abort(std::error_code e) noexcept;
    void cancel() noexcept override;
    /// dump_tasks(): "process exit <pid>".
    void describe(task_dump& d) const override;
    // The process's consumer while waiting: its exit, its closing.
    void ready(int) noexcept override;
    void stop() noexcept override;

    process* proc_;  // only until start(): the operation holds the state block
    process_exit result_;
    process_state* st_ = nullptr;
};

}  // namespace detail

inline detail::exit_waiter process::async_exit() noexcept { return {*this, nullptr}; }
inline detail::exit_waiter process::async_exit(std::error_code& ec) noexcept { return {*this, &ec}; }

}  // namespace uvkit
