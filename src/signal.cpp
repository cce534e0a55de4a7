#include "uvkit/signal.hpp"

#include "handle_impl.hpp"

namespace uvkit {

namespace detail {
void signal_state::on_signal(uv_signal_t* h, int signum) noexcept {
    auto* s = state_of<signal_state>(h);
    guarded(s, [s, signum] { s->cb(signum); });
}
}  // namespace detail

using detail::signal_state;

signal::signal(uvkit::loop& l)
    : handle(detail::create_state<signal_state>(l, "uv_signal_init", &uv_signal_init)) {}

void signal::start_fn(int signum, bool oneshot, detail::unique_function<void(int)>&& h,
                      std::error_code& ec) noexcept {
    auto* s = get<signal_state>(ec);
    if (!s) return;
    if (!h) {  // libuv: a NULL callback is UV_EINVAL
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    // libuv asserts on signal 0 and only range-checks the upper end.
    if (signum <= 0) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    // The new handler is installed only once libuv accepted the signal, so
    // that a failed start never calls it.
    int rc = oneshot ? uv_signal_start_oneshot(&s->h, &signal_state::on_signal, signum)
                     : uv_signal_start(&s->h, &signal_state::on_signal, signum);
    if (detail::set_error(ec, rc)) return;
    s->cb.set(std::move(h));
}

void signal::start_fn(int signum, bool oneshot, detail::unique_function<void(int)>&& h) {
    detail::throwing(oneshot ? "uv_signal_start_oneshot" : "uv_signal_start",
                     [&](std::error_code& ec) { start_fn(signum, oneshot, std::move(h), ec); });
}

void signal::stop() noexcept {
    if (usable()) uv_signal_stop(&static_cast<signal_state*>(state_)->h);
}

int signal::signum() const noexcept { return active() ? static_cast<signal_state*>(state_)->h.signum : 0; }

uv_signal_t* signal::raw() const noexcept {
    return state_ ? &static_cast<signal_state*>(state_)->h : nullptr;
}

}  // namespace uvkit
