#include "uvkit/prepare.hpp"

#include "handle_impl.hpp"

namespace uvkit {

namespace detail {
void prepare_state::on_prepare(uv_prepare_t* p) noexcept {
    auto* s = state_of<prepare_state>(p);
    guarded(s, [s] { s->cb(); });
}
}  // namespace detail

using detail::prepare_state;

prepare::prepare(uvkit::loop& l)
    : handle(detail::create_state<prepare_state>(l, "uv_prepare_init", &uv_prepare_init)) {}

void prepare::start_fn(detail::unique_function<void()>&& h, std::error_code& ec) noexcept {
    auto* s = get<prepare_state>(ec);
    if (!s) return;
    if (!h) {  // libuv: a NULL callback is UV_EINVAL
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    s->cb.set(std::move(h));
    detail::set_error(ec, uv_prepare_start(&s->h, &prepare_state::on_prepare));
}

void prepare::start_fn(detail::unique_function<void()>&& h) {
    detail::throwing("uv_prepare_start", [&](std::error_code& ec) { start_fn(std::move(h), ec); });
}

void prepare::stop() noexcept {
    if (usable()) uv_prepare_stop(&static_cast<prepare_state*>(state_)->h);
}

uv_prepare_t* prepare::raw() const noexcept {
    return state_ ? &static_cast<prepare_state*>(state_)->h : nullptr;
}

}  // namespace uvkit
