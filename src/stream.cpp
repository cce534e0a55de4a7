#include "uvkit/stream.hpp"

#include <memory>
#include <vector>

#include "request.hpp"
#include "write_req.hpp"

namespace uvkit {

namespace detail {

struct write_chunk {
    write_chunk* next = nullptr;
    write_req reqs[write_req::chunk_size];
};

write_pool::~write_pool() {
    while (write_chunk* c = chunks) {
        chunks = c->next;
        delete c;
    }
}

write_req* write_req::refill(uvkit::loop& l) noexcept {
    auto* pool = static_cast<write_pool*>(l.extension(write_pool::slot));
    if (!pool) {
        std::unique_ptr<write_pool> p(new (std::nothrow) write_pool);
        if (!p) return nullptr;
        pool = p.get();
        l.add_extension(write_pool::slot, std::move(p));
    }
    auto* c = new (std::nothrow) write_chunk;
    if (!c) return nullptr;
    c->next = pool->chunks;
    pool->chunks = c;
    for (write_req& r : c->reqs) {
        r.owner = &l;
        r.pool = pool;
        r.req.data = &r;  // uv_write leaves `data` alone
        r.next = pool->head;
        pool->head = &r;
    }
    write_req* r = pool->head;
    pool->head = r->next;
    return r;
}

void write_req::release(write_req* r) noexcept {
    r->cb = nullptr;
    r->consumer = nullptr;
    // A pooled request must not keep an owned string's bytes (clear() would
    // keep the capacity; swapping with an empty string frees it).
    if (r->owned.capacity() > std::string().capacity())
        std::string().swap(r->owned);
    else
        r->owned.clear();
    recycle(r);
}

void write_req::on_write(uv_write_t* req, int status) noexcept {
    auto* r = static_cast<write_req*>(req->data);
    r->complete(status);
    release(r);
}

namespace {
// alloc_cb's slow path: a buffer from the stream's provider, which may throw.
[[gnu::noinline]] void alloc_from_provider(stream_state* s, std::size_t suggested, uv_buf_t* buf) noexcept {
    try {
        std::span<char> span = s->provider(suggested);
        buf->base = span.data();
        buf->len = static_cast<decltype(buf->len)>(span.size());
    } catch (...) {
        // libuv reports an empty buffer to read_cb as UV_ENOBUFS.
        s->fail(std::current_exception());
        buf->base = nullptr;
        buf->len = 0;
    }
}

[[gnu::noinline]] void read_failed(stream_state* s, ssize_t nread) noexcept {
    guarded(s, [&] { s->on_read(make_uv_error(static_cast<int>(nread)), std::string_view{}); });
}
}  // namespace

void stream_state::alloc_cb(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf) noexcept {
    auto* s = static_cast<stream_state*>(h->data);
    if (s->provider) {
        alloc_from_provider(s, suggested, buf);
        return;
    }
    // read_start_fn made the loop's buffer before it installed this callback.
    buf->base = s->owner->ready_read_buffer();
    buf->len = static_cast<decltype(buf->len)>(uvkit::loop::read_buffer_size);
}

void stream_state::read_cb(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* s = static_cast<stream_state*>(st->data);
    if (nread > 0) [[likely]] {
        guarded(
            s, [&] { s->on_read(no_error(), std::string_view(buf->base, static_cast<std::size_t>(nread))); });
    } else if (nread < 0) {
        read_failed(s, nread);
    }
    // 0 is EAGAIN: the buffer goes back unused.
}

void stream_state::connection_cb(uv_stream_t* st, int status) noexcept {
    auto* s = static_cast<stream_state*>(st->data);
    listen_state* l = s->listener.get();
    if (l->on_connection) {
        guarded(s, [&] { l->on_connection(status_code(status)); });
        return;
    }
    // listen(backlog) without a handler: the connection waits to be taken.
    if (status < 0)
        l->accept_error = make_uv_error(status);
    else
        ++l->pending_connections;
    if (s->consumer) s->consumer->ready(status);
}

}  // namespace detail

using detail::stream_state;
using detail::write_req;

void stream::listen_fn(int backlog, detail::unique_function<void(std::error_code)>&& h,
                       std::error_code& ec) noexcept {
    auto* s = get<stream_state>(ec);
    if (!s) return;
    detail::listen_state* l = s->listening();
    if (!l) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    l->on_connection.set(std::move(h));
    detail::set_error(ec, uv_listen(s->stream(), backlog, &stream_state::connection_cb));
}

void stream::listen_fn(int backlog, detail::unique_function<void(std::error_code)>&& h) {
    detail::throwing("uv_listen", [&](std::error_code& ec) { listen_fn(backlog, std::move(h), ec); });
}

void stream::listen(int backlog, std::error_code& ec) noexcept { listen_fn(backlog, nullptr, ec); }

void stream::listen(int backlog) { listen_fn(backlog, nullptr); }

void stream::accept(stream& client, std::error_code& ec) noexcept {
    auto* s = get<stream_state>(ec);
    if (!s) return;
    auto* c = client.get<stream_state>(ec);
    if (!c) return;
    if (detail::set_error(ec, uv_accept(s->stream(), c->stream()))) return;
    if (s->listener && s->listener->pending_connections > 0) --s->listener->pending_connections;
}

void stream::accept(stream& client) {
    detail::throwing("uv_accept", [&](std::error_code& ec) { accept(client, ec); });
}

void stream::read_start_fn(detail::unique_function<void(std::error_code, std::string_view)>&& h,
                           std::error_code& ec) noexcept {
    auto* s = get<stream_state>(ec);
    if (!s) return;
    // A coroutine layer reading the stream lets go of it first, or refuses.
    if (s->consumer && !s->consumer->yield()) {
        ec = make_uv_error(UV_EBUSY);
        return;
    }
    if (!s->owner->prepare_read_buffer()) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    s->on_read.set(std::move(h));
    int rc = uv_read_start(s->stream(), &stream_state::alloc_cb, &stream_state::read_cb);
    // libuv < 1.38 said UV_EALREADY for a second read_start; the handler was replaced either way.
    if (rc == UV_EALREADY) rc = 0;
    detail::set_error(ec, rc);
}

void stream::read_start_fn(detail::unique_function<void(std::error_code, std::string_view)>&& h) {
    detail::throwing("uv_read_start", [&](std::error_code& ec) { read_start_fn(std::move(h), ec); });
}

void stream::read_stop() noexcept {
    if (!usable()) return;
    auto* s = static_cast<stream_state*>(state_);
    uv_read_stop(s->stream());
    if (s->consumer) s->consumer->stop();
}

void stream::set_provider_fn(detail::unique_function<std::span<char>(std::size_t)>&& f) {
    detail::throwing("uvkit::stream::set_buffer_provider", [&](std::error_code& ec) {
        if (auto* s = get<stream_state>(ec)) s->provider = std::move(f);
    });
}

int stream::write_start(const uv_buf_t* bufs, unsigned n, detail::write_handler&& h, std::string* owned,
                        detail::request_base** started, uv_stream_t* send_handle) noexcept {
    if (!state_ || !state_->open()) return UV_EINVAL;
    auto* s = static_cast<stream_state*>(state_);
    if (n == 0 && !owned) return UV_EINVAL;  // libuv asserts on a write of no buffers
    write_req* r = write_req::take(*s->owner);
    if (!r) return UV_ENOMEM;
    uv_buf_t one;
    if (owned) {
        r->owned = std::move(*owned);
        one = detail::make_buf(r->owned);
        bufs = &one;
        n = 1;
    }
    int rc = send_handle ? uv_write2(&r->req, s->stream(), bufs, n, send_handle, &write_req::on_write)
                         : uv_write(&r->req, s->stream(), bufs, n, &write_req::on_write);
    if (rc < 0) {
        // The handler must not run; an owned string goes back to the caller.
        if (owned) *owned = std::move(r->owned);
        write_req::release(r);
        return closed_by_raw_code(s, rc);
    }
    r->cb.assign_to_empty(std::move(h));
    if (started) *started = r;
    return 0;
}

int stream::write_borrowed(const uv_buf_t* bufs, unsigned n, detail::write_handler&& h,
                           detail::request_base** started) noexcept {
    if (!state_ || !state_->open() || n == 0) return UV_EINVAL;  // libuv asserts on a write of no buffers
    int rc;
    write_req* r = detail::start_write(static_cast<stream_state*>(state_), bufs, n, &write_req::on_write, rc);
    if (!r) return rc;  // the handler is destroyed without being called
    r->cb.assign_to_empty(std::move(h));
    if (started) *started = r;
    return 0;
}

void stream::write_views(std::span<const std::string_view> views, detail::write_handler&& h,
                         std::error_code& ec) noexcept {
    constexpr std::size_t small = 16;
    uv_buf_t local[small]{};
    std::unique_ptr<uv_buf_t[]> big;
    uv_buf_t* bufs = local;
    if (views.size() > small) {
        big.reset(new (std::nothrow) uv_buf_t[views.size()]);
        if (!big) {
            ec = make_uv_error(UV_ENOMEM);
            return;
        }
        bufs = big.get();
    }
    for (std::size_t i = 0; i < views.size(); ++i) bufs[i] = detail::make_buf(views[i]);
    // uv_write copies the uv_buf_t array, so it may live on the stack.
    detail::set_error(ec, write_borrowed(bufs, static_cast<unsigned>(views.size()), std::move(h)));
}

std::size_t stream::try_write(std::string_view data, std::error_code& ec) noexcept {
    auto* s = get<stream_state>(ec);
    if (!s) return 0;
    uv_buf_t b = detail::make_buf(data);
    int rc = uv_try_write(s->stream(), &b, 1);
    if (rc == UV_EAGAIN) return 0;
    if (detail::set_error(ec, rc)) return 0;
    return static_cast<std::size_t>(rc);
}

std::size_t stream::try_write(std::string_view data) {
    std::size_t n = 0;
    detail::throwing("uv_try_write", [&](std::error_code& ec) { n = try_write(data, ec); });
    return n;
}

void stream::shutdown_fn(detail::write_handler&& h, std::error_code& ec,
                         detail::request_base** started) noexcept {
    auto* s = get<stream_state>(ec);
    if (!s) return;
    auto* r = detail::shutdown_request::make(*s->owner);
    if (!r) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    if (detail::set_error(ec, uv_shutdown(&r->req, s->stream(), &detail::shutdown_request::done))) {
        detail::shutdown_request::free(r);
        return;
    }
    r->cb = std::move(h);
    if (started) *started = r;
}

std::size_t stream::write_queue_size() const noexcept {
    return usable() ? uv_stream_get_write_queue_size(static_cast<stream_state*>(state_)->stream()) : 0;
}

bool stream::readable() const noexcept {
    return usable() && uv_is_readable(static_cast<stream_state*>(state_)->stream()) != 0;
}

bool stream::writable() const noexcept {
    return usable() && uv_is_writable(static_cast<stream_state*>(state_)->stream()) != 0;
}

}  // namespace uvkit
