#include "uvkit/detail/loop_watcher.hpp"

#include "handle_impl.hpp"

namespace uvkit::detail {

namespace {
// libuv's functions and names per watcher type.
template <class H>
struct watcher_api;
template <>
struct watcher_api<uv_idle_t> {
    static constexpr auto init = &uv_idle_init;
    static constexpr auto start = &uv_idle_start;
    static constexpr auto stop = &uv_idle_stop;
    static constexpr const char* init_name = "uv_idle_init";
    static constexpr const char* start_name = "uv_idle_start";
};
template <>
struct watcher_api<uv_prepare_t> {
    static constexpr auto init = &uv_prepare_init;
    static constexpr auto start = &uv_prepare_start;
    static constexpr auto stop = &uv_prepare_stop;
    static constexpr const char* init_name = "uv_prepare_init";
    static constexpr const char* start_name = "uv_prepare_start";
};
template <>
struct watcher_api<uv_check_t> {
    static constexpr auto init = &uv_check_init;
    static constexpr auto start = &uv_check_start;
    static constexpr auto stop = &uv_check_stop;
    static constexpr const char* init_name = "uv_check_init";
    static constexpr const char* start_name = "uv_check_start";
};

template <class H>
void on_watcher(H* w) noexcept {
    auto* s = state_of<loop_watcher_state<H>>(w);
    guarded(s, [s] { s->cb(); });
}
}  // namespace

template <class H>
loop_watcher<H>::loop_watcher(uvkit::loop& l)
    : handle(create_state<loop_watcher_state<H>>(l, watcher_api<H>::init_name, watcher_api<H>::init)) {}

template <class H>
void loop_watcher<H>::start_fn(unique_function<void()>&& h, std::error_code& ec) noexcept {
    auto* s = get<loop_watcher_state<H>>(ec);
    if (!s) return;
    if (!h) {  // libuv: a NULL callback is UV_EINVAL
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    s->cb.set(std::move(h));
    set_error(ec, watcher_api<H>::start(&s->h, &on_watcher<H>));
}

template <class H>
void loop_watcher<H>::start_fn(unique_function<void()>&& h) {
    throwing(watcher_api<H>::start_name, [&](std::error_code& ec) { start_fn(std::move(h), ec); });
}

template <class H>
void loop_watcher<H>::stop() noexcept {
    if (usable()) watcher_api<H>::stop(&static_cast<loop_watcher_state<H>*>(state_)->h);
}

template class loop_watcher<uv_idle_t>;
template class loop_watcher<uv_prepare_t>;
template class loop_watcher<uv_check_t>;

}  // namespace uvkit::detail
