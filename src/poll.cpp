#include "uvkit/poll.hpp"

#include "handle_impl.hpp"

namespace uvkit {

namespace detail {
void poll_state::on_poll(uv_poll_t* p, int status, int events) noexcept {
    auto* s = state_of<poll_state>(p);
    guarded(s, [&] {
        if (status < 0) {
            // libuv stopped the watcher; say so in active() too.
            uv_poll_stop(p);
            s->cb(make_uv_error(status), 0);
        } else {
            s->cb(std::error_code{}, events);
        }
    });
}
}  // namespace detail

using detail::poll_state;

poll::poll(uvkit::loop& l, uv_os_sock_t sock)
    : handle(detail::create_state<poll_state>(l, "uv_poll_init_socket", &uv_poll_init_socket, sock)) {}

poll::poll(uvkit::loop& l, int fd, fd_tag)
    : handle(detail::create_state<poll_state>(l, "uv_poll_init", &uv_poll_init, fd)) {}

poll poll::from_fd(uvkit::loop& l, int fd) { return poll(l, fd, fd_tag{}); }

void poll::start_fn(int events, detail::unique_function<void(std::error_code, int)>&& h,
                    std::error_code& ec) noexcept {
    auto* s = get<poll_state>(ec);
    if (!s) return;
    // libuv asserts on unknown bits; report them instead.
    if ((events & ~all_events) != 0) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    int rc = uv_poll_start(&s->h, events, &poll_state::on_poll);
    if (detail::set_error(ec, rc)) return;
    s->cb.set(std::move(h));
}

void poll::start_fn(int events, detail::unique_function<void(std::error_code, int)>&& h) {
    detail::throwing("uv_poll_start", [&](std::error_code& ec) { start_fn(events, std::move(h), ec); });
}

void poll::stop() noexcept {
    if (usable()) uv_poll_stop(&static_cast<poll_state*>(state_)->h);
}

uv_poll_t* poll::raw() const noexcept { return state_ ? &static_cast<poll_state*>(state_)->h : nullptr; }

}  // namespace uvkit
