#include "uvkit/timer.hpp"

#include <cstdint>
#include <limits>

#include "handle_impl.hpp"

namespace uvkit {

namespace detail {
void timer_state::on_timer(uv_timer_t* t) noexcept {
    auto* s = state_of<timer_state>(t);
    guarded(s, [s] { s->cb(); });
}
}  // namespace detail

using detail::timer_state;

timer::timer(uvkit::loop& l)
    : handle(detail::create_state<timer_state>(l, "uv_timer_init", &uv_timer_init)) {}

namespace {
// Both twins of start(): 0 or a libuv error code.
int start_timer(detail::handle_state* base, timer::duration timeout, timer::duration repeat,
                detail::unique_function<void()>& h) noexcept {
    if (!base || !base->open()) return UV_EINVAL;  // libuv: UV_EINVAL if raw code closed it
    if (!h) return UV_EINVAL;                      // libuv: a NULL callback is UV_EINVAL
    if (timeout.count() < 0 || repeat.count() < 0) return UV_EINVAL;
    auto* s = static_cast<timer_state*>(base);
    // The handler goes in once libuv took the timer (it never calls back inside uv_timer_start).
    int rc = uv_timer_start(&s->h, &timer_state::on_timer, static_cast<std::uint64_t>(timeout.count()),
                            static_cast<std::uint64_t>(repeat.count()));
    if (rc == 0) s->cb.set(std::move(h));
    return rc;
}
}  // namespace

void timer::start_fn(duration timeout, duration repeat, detail::unique_function<void()>&& h,
                     std::error_code& ec) noexcept {
    detail::set_error(ec, start_timer(state_, timeout, repeat, h));
}

void timer::start_fn(duration timeout, duration repeat, detail::unique_function<void()>&& h) {
    detail::check(start_timer(state_, timeout, repeat, h), "uv_timer_start");
}

void timer::stop() noexcept {
    if (state_ && state_->open()) uv_timer_stop(&static_cast<timer_state*>(state_)->h);
}

void timer::again(std::error_code& ec) noexcept {
    if (auto* s = get<timer_state>(ec)) detail::set_error(ec, uv_timer_again(&s->h));
}

void timer::again() {
    detail::throwing("uv_timer_again", [&](std::error_code& ec) { again(ec); });
}

void timer::set_repeat(duration repeat) noexcept {
    if (usable() && repeat.count() >= 0)
        uv_timer_set_repeat(&static_cast<timer_state*>(state_)->h,
                            static_cast<std::uint64_t>(repeat.count()));
}

namespace {
// libuv clamps a deadline that overflows to UINT64_MAX; such values do not fit
// a signed duration and would come out negative.
timer::duration clamped(std::uint64_t ms) noexcept {
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<timer::duration::rep>::max());
    return ms > max ? timer::duration::max() : timer::duration(static_cast<timer::duration::rep>(ms));
}
}  // namespace

timer::duration timer::repeat() const noexcept {
    if (!state_) return duration{0};
    return clamped(uv_timer_get_repeat(&static_cast<timer_state*>(state_)->h));
}

timer::duration timer::due_in() const noexcept {
    // libuv 1.44 keeps reporting the old timeout after uv_timer_stop; a stopped timer is due never.
    if (!active()) return duration{0};
    return clamped(uv_timer_get_due_in(&static_cast<timer_state*>(state_)->h));
}

uv_timer_t* timer::raw() const noexcept { return state_ ? &static_cast<timer_state*>(state_)->h : nullptr; }

}  // namespace uvkit
