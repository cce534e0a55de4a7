#include "uvkit/tty.hpp"

#include "handle_impl.hpp"

namespace uvkit {

using detail::tty_state;

tty::tty(uvkit::loop& l, uv_file fd)
    : stream(detail::create_state<tty_state>(l, "uv_tty_init", &uv_tty_init, fd, 0)) {}

uv_tty_t* tty::raw() const noexcept { return state_ ? &static_cast<tty_state*>(state_)->h : nullptr; }

void tty::set_mode(tty_mode mode, std::error_code& ec) noexcept {
    if (auto* s = get<tty_state>(ec))
        detail::set_error(ec, uv_tty_set_mode(&s->h, static_cast<uv_tty_mode_t>(static_cast<int>(mode))));
}

void tty::set_mode(tty_mode mode) {
    detail::throwing("uv_tty_set_mode", [&](std::error_code& ec) { set_mode(mode, ec); });
}

tty_size tty::window_size(std::error_code& ec) const noexcept {
    auto* s = get<tty_state>(ec);
    if (!s) return {};
    tty_size w;
    if (detail::set_error(ec, uv_tty_get_winsize(&s->h, &w.width, &w.height))) return {};
    return w;
}

tty_size tty::window_size() const {
    tty_size w;
    detail::throwing("uv_tty_get_winsize", [&](std::error_code& ec) { w = window_size(ec); });
    return w;
}

void tty::reset_mode(std::error_code& ec) noexcept { detail::set_error(ec, uv_tty_reset_mode()); }

void tty::reset_mode() {
    detail::throwing("uv_tty_reset_mode", [&](std::error_code& ec) { reset_mode(ec); });
}

}  // namespace uvkit
