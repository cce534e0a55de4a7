#include "uvkit/co/tls.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#include "tls_impl.hpp"

namespace uvkit::detail {

namespace {
constexpr std::size_t keep_limit = 64 * 1024;
}

/// The coroutine layer's reader of one tls_stream (its tls_read_consumer):
/// bytes that arrive while no read waits are kept here.
struct co_tls_reader final : tls_read_consumer {
    explicit co_tls_reader(tls_state* s) noexcept : st(s) {}

    static co_tls_reader* of(tls_state* s) noexcept {
        if (s->reader) return static_cast<co_tls_reader*>(s->reader);
        auto* r = new (std::nothrow) co_tls_reader(s);
        s->reader = r;
        return r;
    }

    std::string_view kept() const noexcept { return {backlog.data() + pos, backlog.size() - pos}; }
    void consume(std::size_t n) noexcept {
        pos += n;
        if (pos == backlog.size()) {
            backlog.clear();
            pos = 0;
        }
    }

    void tls_data(std::error_code ec, std::string_view data) noexcept override {
        if (ec) {
            ended = true;
            end = ec;
            if (tls_read_waiter* w = std::exchange(waiter, nullptr)) w->ended(ec);
            return;
        }
        tls_read_waiter* w = nullptr;
        std::size_t used = 0;
        try {
            if (waiter && kept().empty()) {
                used = waiter->take(data);
                data.remove_prefix(used);
                w = std::exchange(waiter, nullptr);
            }
            backlog.append(data);
        } catch (...) {
            // Out of memory: the bytes cannot be kept, the stream is of no use.
            ended = true;
            end = make_uv_error(UV_ENOMEM);
            st->begin_close();
            if (!w) w = std::exchange(waiter, nullptr);
            if (w) w->ended(end);  // last: the coroutine may delete this reader
            return;
        }
        if (!w && !waiter && kept().size() >= keep_limit) st->set_reading(false);
        // Last: resuming the coroutine may delete this reader (read_start takes over).
        if (w) w->done(used);
    }
    std::span<char> tls_room() noexcept override {
        // A waiting span read with nothing kept before it: decrypted into its buffer, no copy.
        return waiter && kept().empty() ? waiter->room() : std::span<char>{};
    }
    bool tls_yield() noexcept override { return !waiter && kept().empty(); }
    void tls_stop(bool soon) noexcept override {
        tls_read_waiter* w = std::exchange(waiter, nullptr);
        if (!w) return;
        if (soon)
            w->ended_soon(make_error_code(errc::canceled));
        else
            w->ended(make_error_code(errc::canceled));
    }

    tls_state* st;
    tls_read_waiter* waiter = nullptr;
    std::string backlog;
    std::size_t pos = 0;
    bool ended = false;
    std::error_code end = no_error();
};

tls_state* tls_access::acquire(const tls_stream& t) noexcept {
    tls_state* s = t.state_;
    if (!s || s->closing) return nullptr;
    ++s->refs;
    return s;
}

void tls_access::release(tls_state* s) noexcept { tls_state::unref(s); }

uvkit::loop* tls_access::loop_of(const tls_stream& t) noexcept {
    return t.state_ && !t.state_->closing ? t.state_->owner : nullptr;
}

// ---------------------------------------------------------------------------------------------

tls_request_waiter::~tls_request_waiter() {
    if (op_) {
        // The frame goes away while the core still holds the operation: it
        // must not resume us, nor read borrowed bytes later.
        op_->consumer = nullptr;
        st_->begin_close();
    }
    if (st_) tls_access::release(st_);
}

void tls_request_waiter::start() {
    st_ = tls_access::acquire(*stream_);
    if (!st_) {
        fail(make_uv_error(UV_EINVAL));
        return;
    }
    std::error_code ec;
    switch (kind_) {
        case kind::handshake:
            if (st_->ph == tls_state::phase::established) {
                complete();
                return;
            }
            st_->start_handshake(nullptr, this, &op_, ec);
            break;
        case kind::write:
            st_->start_write(data_, has_owned_ ? &owned_ : nullptr, nullptr, this, &op_, ec);
            break;
        case kind::shutdown: st_->start_shutdown(nullptr, this, &op_, ec); break;
    }
    if (ec) fail(ec);
}

void tls_request_waiter::on_cancel() noexcept {
    // A half-done handshake or write leaves the session of no use: close; the
    // operation completes with errc::canceled from the transport's close.
    if (op_) st_->begin_close();
}

void tls_request_waiter::tls_done(std::error_code ec) noexcept {
    op_ = nullptr;
    if (ec)
        fail(ec);
    else
        complete();
}

// ---------------------------------------------------------------------------------------------

tls_read_waiter::~tls_read_waiter() {
    if (reader_ && reader_->waiter == this) {
        reader_->waiter = nullptr;
        st_->set_reading(false);
    }
    if (st_) tls_access::release(st_);
}

std::size_t tls_read_waiter::take(std::string_view d) {
    if (out_) {
        out_->assign(d);
        return d.size();
    }
    std::size_t n = std::min(d.size(), dst_.size());
    if (n && d.data() != dst_.data()) std::memcpy(dst_.data(), d.data(), n);  // else decrypted in place
    return n;
}

void tls_read_waiter::ended(std::error_code ec) noexcept {
    reader_ = nullptr;
    if (ec == errc::eof)
        complete(std::size_t{0});
    else
        fail(ec);
}

void tls_read_waiter::ended_soon(std::error_code ec) noexcept {
    reader_ = nullptr;
    if (pending_) resume_soon(ec);
}

void tls_read_waiter::start() {
    st_ = tls_access::acquire(*stream_);
    if (!st_) {
        fail(make_uv_error(UV_EINVAL));
        return;
    }
    if (!out_ && dst_.empty()) {
        complete(std::size_t{0});
        return;
    }
    co_tls_reader* r = nullptr;
    if (st_->reader) {
        r = static_cast<co_tls_reader*>(st_->reader);
    } else {
        if (st_->on_read && st_->reading) {
            // A read_start() handler reads this stream (until read_stop()).
            fail(make_uv_error(UV_EALREADY));
            return;
        }
        st_->on_read.set(nullptr);
        r = co_tls_reader::of(st_);
        if (!r) {
            fail(make_uv_error(UV_ENOMEM));
            return;
        }
    }
    if (r->waiter) {
        fail(make_uv_error(UV_EALREADY));
        return;
    }
    if (!r->kept().empty()) {
        std::size_t n = take(r->kept());
        r->consume(n);
        if (r->kept().size() < keep_limit) st_->set_reading(true);
        complete(n);
        return;
    }
    if (r->ended) {
        ended(r->end);
        return;
    }
    if (st_->ph == tls_state::phase::failed) {
        fail(st_->failed_ec);
        return;
    }
    reader_ = r;
    r->waiter = this;
    st_->set_reading(true);
}

void tls_read_waiter::on_cancel() noexcept {
    if (reader_ && reader_->waiter == this) {
        reader_->waiter = nullptr;
        reader_ = nullptr;
        st_->set_reading(false);
    }
    fail(errc::canceled);
}

}  // namespace uvkit::detail
