#include "uvkit/handle.hpp"

#include "log.hpp"

namespace uvkit {

namespace detail {

void handle_state::attach(uv_handle_t* h) noexcept {
    uvh = h;
    h->data = this;
    next = owner->handles();
    if (next) next->prev = this;
    owner->handles() = this;
    owner->note_open();
    UVKIT_LOG(debug, "open {} {}", uv_handle_type_name(h->type), static_cast<void*>(h));
}

void handle_state::make_internal() noexcept {
    if (internal || !uvh || uv_closed) return;
    internal = true;
    owner->note_closed();
}

void handle_state::close(unique_function<void()>&& cb) noexcept {
    if (!uvh || closing) return;
    closing = true;
    on_closed = std::move(cb);
    on_closing();
    uv_close(uvh, &close_cb);
}

void handle_state::close_cb(uv_handle_t* h) noexcept {
    auto* s = static_cast<handle_state*>(h->data);
    UVKIT_LOG(debug, "closed {} {}", uv_handle_type_name(h->type), static_cast<void*>(h));
    uvkit::loop& l = *s->owner;
    // Unlink first: the registry only holds handles that still need closing.
    if (s->prev)
        s->prev->next = s->next;
    else
        l.handles() = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = nullptr;
    if (!s->internal) l.note_closed();
    if (s->on_closed) {
        // uv_closed stays false while on_closed runs, so that the owner
        // releasing the block from inside it does not free it under our feet.
        try {
            s->on_closed();
        } catch (...) {
            l.fail(std::current_exception());
        }
        s->on_closed = nullptr;
    }
    s->uv_closed = true;
    if (!s->owner_alive) delete s;
}

void handle_state::release(handle_state* s) noexcept {
    if (!s) return;
    if (!s->uvh || s->uv_closed) {
        // Never initialised, or fully closed: nothing of libuv holds it.
        delete s;
        return;
    }
    s->owner_alive = false;
    s->close();
}

void handle_state::fail(std::exception_ptr e) noexcept { owner->fail(std::move(e)); }

void handle_state::close_all(uvkit::loop& l) noexcept {
    for (handle_state* s = l.handles(); s; s = s->next) s->close();
}

}  // namespace detail

uvkit::loop& handle::get_loop() const {
    if (!state_ || state_->uv_closed) detail::throw_uv_error(UV_EINVAL, "uvkit::handle::get_loop");
    return *state_->owner;
}

}  // namespace uvkit
