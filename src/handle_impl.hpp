// Internal helpers shared by the handle implementations.
#pragma once

#include <memory>

#include "uvkit/handle.hpp"

namespace uvkit::detail {

/// Allocates a state block, initialises its libuv handle with `init(loop, &s->h, args...)`
/// and registers it with the loop. Throws std::system_error naming `what`.
template <class State, class Init, class... Args>
State* create_state(uvkit::loop& l, const char* what, Init init, Args... args) {
    auto s = std::make_unique<State>(l);
    check(init(l.raw(), &s->h, args...), what);
    s->attach(reinterpret_cast<uv_handle_t*>(&s->h));
    return s.release();
}

/// Runs a handler from a libuv callback: an exception stops the loop instead of
/// unwinding through libuv's C frames.
template <class State, class F>
void guarded(State* s, F&& f) noexcept {
    try {
        f();
    } catch (...) {
        s->fail(std::current_exception());
    }
}

/// The throwing/non-throwing twin pattern: runs `body(ec)` and throws if it failed.
template <class Body>
void throwing(const char* what, Body&& body) {
    std::error_code ec;
    body(ec);
    if (ec) throw std::system_error(ec, what);
}

}  // namespace uvkit::detail
