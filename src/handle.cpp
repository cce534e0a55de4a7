#include "uvkit/handle.hpp"

#include "handle_impl.hpp"
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
    on_closed = std::move(cb);
    begin_close();
}

void handle_state::begin_close() noexcept {
    closing = true;
    on_closing();
    if (uv_is_closing(uvh)) {
        // Raw code closed it (a uv_walk that closes every handle): a second
        // uv_close would abort, and libuv calls that code's close callback, not
        // ours. The loop finishes the block once uv_walk no longer lists it.
        foreign_close = true;
        owner->note_foreign_close();
        return;
    }
    uv_close(uvh, &close_cb);
}

void handle_state::close_cb(uv_handle_t* h) noexcept { finish_close(static_cast<handle_state*>(h->data)); }

void handle_state::finish_close(handle_state* s) noexcept {
    UVKIT_LOG(debug, "closed {} {}", uv_handle_type_name(s->uvh->type), static_cast<void*>(s->uvh));
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
    if (!s->owner_alive) {
        destroy(s, &l);
        return;
    }
    // The C++ owner still holds the block: list it, so that the block can go
    // back to this loop's pool when released, or learn that the loop is gone.
    s->next = l.closed_handles();
    if (s->next) s->next->prev = s;
    l.closed_handles() = s;
}

void handle_state::release(handle_state* s) noexcept {
    if (!s) return;
    if (s->uv_closed) {
        // Fully closed: nothing of libuv holds it.
        uvkit::loop* l = s->owner;
        if (l) {
            if (s->prev)
                s->prev->next = s->next;
            else
                l->closed_handles() = s->next;
            if (s->next) s->next->prev = s->prev;
        }
        destroy(s, l);
        return;
    }
    if (!s->uvh) {
        // Never initialised; its loop may be gone.
        destroy(s, nullptr);
        return;
    }
    s->owner_alive = false;
    if (!s->closing) s->begin_close();
}

void handle_state::destroy(handle_state* s, uvkit::loop* l) noexcept {
    const unsigned cls = s->block_class;
    if (cls == 0) {
        delete s;
        return;
    }
    s->~handle_state();
    give_block(l ? &l->blocks() : nullptr, s, cls);
}

void handle_state::forget_loop(uvkit::loop& l) noexcept {
    handle_state* s = l.closed_handles();
    l.closed_handles() = nullptr;
    while (s) {
        handle_state* next = s->next;
        s->owner = nullptr;
        s->prev = s->next = nullptr;
        s = next;
    }
    for (std::size_t i = 0; i < block_pool::classes; ++i) {
        while (block_pool::free_block* b = l.blocks().heads[i]) {
            l.blocks().heads[i] = b->next;
            ::operator delete(b);
        }
        l.blocks().counts[i] = 0;
    }
}

void handle_state::fail(std::exception_ptr e) noexcept { owner->fail(std::move(e)); }

void handle_state::close_all(uvkit::loop& l) noexcept {
    for (handle_state* s = l.handles(); s; s = s->next)
        if (!s->closing) s->begin_close();
}

}  // namespace detail

int handle::socket_buffer_size(bool send, bool set, int bytes, std::error_code& ec) const noexcept {
    if (!usable() || (set && bytes <= 0)) {
        ec = make_uv_error(UV_EINVAL);
        return 0;
    }
    int value = set ? bytes : 0;
    int rc = send ? uv_send_buffer_size(state_->uvh, &value) : uv_recv_buffer_size(state_->uvh, &value);
    if (detail::set_error(ec, rc)) return 0;
    return set ? 0 : value;
}

uvkit::loop& handle::get_loop() const {
    if (!state_ || state_->uv_closed) detail::throw_uv_error(UV_EINVAL, "uvkit::handle::get_loop");
    return *state_->owner;
}

}  // namespace uvkit
