#include "uvkit/process.hpp"

#include <memory>
#include <vector>

#include "handle_impl.hpp"

namespace uvkit {

using detail::process_state;

namespace detail {

void process_state::exit_cb(uv_process_t* p, std::int64_t exit_status, int term_signal) noexcept {
    auto* s = state_of<process_state>(p);
    s->result = process_exit{exit_status, term_signal};
    guarded(s, [&] { s->on_exit(exit_status, term_signal); });
    // A waiting coroutine (unless the handler closed the process, which stopped it).
    if (s->consumer) s->consumer->ready(0);
}

}  // namespace detail

/// The C view of process_options; it points into `opts`, which must outlive it.
struct process::c_options {
    std::vector<char*> args;
    std::vector<char*> env;
    std::vector<uv_stdio_container_t> stdio;
    uv_process_options_t o{};
};

namespace {
char* c_str(const std::string& s) noexcept { return const_cast<char*>(s.c_str()); }

}  // namespace

int process::to_container(const process_stdio& s, std::size_t index, uv_stdio_container_t& sc) noexcept {
    int flags = s.flags_;
    if (flags == UV_INHERIT_FD) {
        sc.data.fd = s.fd_;
    } else if (flags == UV_INHERIT_STREAM || flags == UV_CREATE_PIPE) {
        if (!s.stream_ || s.stream_->closing() || !s.stream_->raw_stream()) return UV_EINVAL;
        sc.data.stream = s.stream_->raw_stream();
        if (flags == UV_CREATE_PIPE) {
            switch (s.flow_) {
                case stdio_flow::automatic: flags |= index == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE; break;
                case stdio_flow::child_reads: flags |= UV_READABLE_PIPE; break;
                case stdio_flow::child_writes: flags |= UV_WRITABLE_PIPE; break;
                case stdio_flow::both: flags |= UV_READABLE_PIPE | UV_WRITABLE_PIPE; break;
            }
        }
    }
    sc.flags = static_cast<uv_stdio_flags>(flags);
    return 0;
}

int process::prepare(uvkit::loop& l, const process_options& opts, c_options& c) {
    if (opts.file.empty()) return UV_EINVAL;
    if (opts.args.empty()) {
        c.args.push_back(c_str(opts.file));
    } else {
        for (const auto& a : opts.args) c.args.push_back(c_str(a));
    }
    c.args.push_back(nullptr);
    if (opts.env) {
        for (const auto& e : *opts.env) c.env.push_back(c_str(e));
        c.env.push_back(nullptr);
    }
    for (std::size_t i = 0; i < opts.stdio.size(); ++i) {
        uv_stdio_container_t sc{};
        if (int rc = to_container(opts.stdio[i], i, sc); rc < 0) return rc;
        // uv_spawn finds out that a pipe cannot be opened only after the fork,
        // with the child already running and then never reaped: refuse first.
        if (opts.stdio[i].flags_ == UV_CREATE_PIPE) {
            uv_os_fd_t fd;
            uv_stream_t* st = sc.data.stream;
            if (st->loop != l.raw()) return UV_EINVAL;  // libuv opens it on the process's loop
            if (uv_fileno(reinterpret_cast<uv_handle_t*>(st), &fd) == 0) return UV_EINVAL;  // already open
            for (std::size_t j = 0; j < i; ++j)
                if (opts.stdio[j].flags_ == UV_CREATE_PIPE && c.stdio[j].data.stream == st)
                    return UV_EINVAL;  // the same pipe for two descriptors
        }
        c.stdio.push_back(sc);
    }
    uv_process_options_t& o = c.o;
    o.exit_cb = &process_state::exit_cb;
    o.file = opts.file.c_str();
    o.args = c.args.data();
    o.env = opts.env ? c.env.data() : nullptr;
    o.cwd = opts.cwd.empty() ? nullptr : opts.cwd.c_str();
    o.stdio_count = static_cast<int>(c.stdio.size());
    o.stdio = c.stdio.empty() ? nullptr : c.stdio.data();
    unsigned flags = 0;
    if (opts.detached) flags |= UV_PROCESS_DETACHED;
    if (opts.windows_hide) flags |= UV_PROCESS_WINDOWS_HIDE;
    if (opts.windows_verbatim_arguments) flags |= UV_PROCESS_WINDOWS_VERBATIM_ARGUMENTS;
    if (opts.uid) {
        flags |= UV_PROCESS_SETUID;
        o.uid = *opts.uid;
    }
    if (opts.gid) {
        flags |= UV_PROCESS_SETGID;
        o.gid = *opts.gid;
    }
    o.flags = flags;
    return 0;
}

process_state* process::start(uvkit::loop& l, const process_options& opts,
                              detail::unique_function<void(std::int64_t, int)>&& h,
                              std::error_code& ec) noexcept {
    std::unique_ptr<process_state> s;
    c_options c;
    try {
        s = std::make_unique<process_state>(l);
        if (detail::set_error(ec, prepare(l, opts, c))) return nullptr;
    } catch (...) {
        ec = make_uv_error(UV_ENOMEM);
        return nullptr;
    }
    int rc = uv_spawn(l.raw(), &s->h, &c.o);
    if (rc < 0) {
        ec = make_uv_error(rc);
        // uv_spawn initialised the handle before failing: it must still be closed.
        if (s->h.type == UV_PROCESS) {
            s->attach(reinterpret_cast<uv_handle_t*>(&s->h));
            detail::handle_state::release(s.release());
        }
        return nullptr;
    }
    s->attach(reinterpret_cast<uv_handle_t*>(&s->h));
    s->on_exit.set(std::move(h));
    ec.clear();
    return s.release();
}

process::process(uvkit::loop& l, const process_options& opts,
                 detail::unique_function<void(std::int64_t, int)>&& h) {
    state_ =
        detail::throwing("uv_spawn", [&](std::error_code& ec) { return start(l, opts, std::move(h), ec); });
}

process::process(detail::unique_function<void(std::int64_t, int)>&& h, uvkit::loop& l,
                 const process_options& opts, std::error_code& ec) noexcept {
    state_ = start(l, opts, std::move(h), ec);
}

uv_process_t* process::raw() const noexcept {
    return state_ ? &static_cast<process_state*>(state_)->h : nullptr;
}

int process::pid() const noexcept {
    return state_ && state_->uvh ? uv_process_get_pid(&static_cast<process_state*>(state_)->h) : 0;
}

void process::kill(int signum, std::error_code& ec) noexcept {
    auto* s = get<process_state>(ec);
    if (!s) return;
    // After the exit was reaped the pid may belong to someone else already.
    if (s->result) {
        ec = make_uv_error(UV_ESRCH);
        return;
    }
    detail::set_error(ec, uv_process_kill(&s->h, signum));
}

void process::kill(int signum) {
    detail::throwing("uv_process_kill", [&](std::error_code& ec) { kill(signum, ec); });
}

void process::kill(int pid, int signum, std::error_code& ec) noexcept {
    detail::set_error(ec, uv_kill(pid, signum));
}

void process::kill(int pid, int signum) {
    detail::throwing("uv_kill", [&](std::error_code& ec) { kill(pid, signum, ec); });
}

std::optional<process_exit> process::exit_result() const noexcept {
    return state_ ? static_cast<process_state*>(state_)->result : std::nullopt;
}

}  // namespace uvkit
