#include "uvkit/check.hpp"

#include "handle_impl.hpp"

namespace uvkit {

namespace detail {
void check_state::on_check(uv_check_t* p) noexcept {
    auto* s = state_of<check_state>(p);
    guarded(s, [s] { s->cb(); });
}
}  // namespace detail

using detail::check_state;

check::check(uvkit::loop& l)
    : handle(detail::create_state<check_state>(l, "uv_check_init", &uv_check_init)) {}

void check::start_fn(detail::unique_function<void()>&& h, std::error_code& ec) noexcept {
    auto* s = get<check_state>(ec);
    if (!s) return;
    if (!h) {  // libuv: a NULL callback is UV_EINVAL
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    s->cb.set(std::move(h));
    detail::set_error(ec, uv_check_start(&s->h, &check_state::on_check));
}

void check::start_fn(detail::unique_function<void()>&& h) {
    detail::throwing("uv_check_start", [&](std::error_code& ec) { start_fn(std::move(h), ec); });
}

void check::stop() noexcept {
    if (usable()) uv_check_stop(&static_cast<check_state*>(state_)->h);
}

uv_check_t* check::raw() const noexcept { return state_ ? &static_cast<check_state*>(state_)->h : nullptr; }

}  // namespace uvkit
