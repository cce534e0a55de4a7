#include "uvkit/idle.hpp"

#include "handle_impl.hpp"

namespace uvkit {

namespace detail {
void idle_state::on_idle(uv_idle_t* t) noexcept {
    auto* s = state_of<idle_state>(t);
    guarded(s, [s] { s->cb(); });
}
}  // namespace detail

using detail::idle_state;

idle::idle(uvkit::loop& l) : handle(detail::create_state<idle_state>(l, "uv_idle_init", &uv_idle_init)) {}

void idle::start_fn(detail::unique_function<void()>&& h, std::error_code& ec) noexcept {
    auto* s = get<idle_state>(ec);
    if (!s) return;
    if (!h) {  // libuv: a NULL callback is UV_EINVAL
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    s->cb.set(std::move(h));
    detail::set_error(ec, uv_idle_start(&s->h, &idle_state::on_idle));
}

void idle::start_fn(detail::unique_function<void()>&& h) {
    detail::throwing("uv_idle_start", [&](std::error_code& ec) { start_fn(std::move(h), ec); });
}

void idle::stop() noexcept {
    if (usable()) uv_idle_stop(&static_cast<idle_state*>(state_)->h);
}

uv_idle_t* idle::raw() const noexcept { return state_ ? &static_cast<idle_state*>(state_)->h : nullptr; }

}  // namespace uvkit
