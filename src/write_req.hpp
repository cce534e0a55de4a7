// Internal: pooled write requests.
#pragma once

#include <string>

#include "uvkit/stream.hpp"

namespace uvkit::detail {

struct write_pool;

/// A uv_write_t with its handler and, for owned writes, the bytes. Requests are
/// allocated per loop in blocks of `chunk_size` and recycled through a free
/// list: a warm stream's writes do not allocate, and a burst of N writes
/// allocates N / chunk_size times. The pool keeps as many requests as were
/// once in flight at the same time, until the loop is destroyed.
struct write_req : request_base {
    uv_write_t req;  // not zeroed: uv_write initialises it (only `data` is ours)
    std::string owned;
    write_req* next = nullptr;
    write_pool* pool = nullptr;  // the pool it goes back to (set once, by refill())

    static constexpr std::size_t chunk_size = 32;

    /// A request from `l`'s pool (a loop extension); nullptr if out of memory.
    static write_req* take(uvkit::loop& l) noexcept;
    /// Makes `l`'s pool if it has none, adds a chunk of requests to it and
    /// takes one; nullptr if out of memory.
    static write_req* refill(uvkit::loop& l) noexcept;
    /// Gives a request back to its loop's pool.
    static void release(write_req* r) noexcept;
    /// release() of a request with no handler, consumer or owned bytes left.
    static void recycle(write_req* r) noexcept;
    static void on_write(uv_write_t* req, int status) noexcept;
};

struct write_chunk;

/// The loop's write requests: a free list, and the chunks they live in (freed
/// with the loop, after every handle closed).
struct write_pool final : loop_extension {
    static constexpr std::size_t slot = 2;  // see loop::extension_slots
    write_pool() noexcept : loop_extension(phase::after_handles) {}
    ~write_pool() override;
    write_req* head = nullptr;
    write_chunk* chunks = nullptr;
};

inline write_req* write_req::take(uvkit::loop& l) noexcept {
    auto* pool = static_cast<write_pool*>(l.extension(write_pool::slot));
    write_req* r = pool ? pool->head : nullptr;
    if (!r) [[unlikely]]
        return refill(l);
    pool->head = r->next;
    return r;
}

/// A write refused by libuv on a stream that raw code closed is UV_EINVAL, as
/// for one uvkit closed: writes check stream_state::open(), not usable()
/// (libuv refuses a write on a closing stream on every platform), and only a
/// refused write asks uv_is_closing.
inline int closed_by_raw_code(const stream_state* s, int rc) noexcept {
    return uv_is_closing(s->uvh) ? UV_EINVAL : rc;
}

/// Starts writing `bufs` to `s` (open) with a request from its loop's pool and
/// `done` as libuv's callback: the request, or nullptr with the libuv error in
/// `rc` (the request back in the pool).
inline write_req* start_write(stream_state* s, const uv_buf_t* bufs, unsigned n, uv_write_cb done,
                              int& rc) noexcept {
    write_req* r = write_req::take(*s->owner);
    if (!r) [[unlikely]] {
        rc = UV_ENOMEM;
        return nullptr;
    }
    rc = uv_write(&r->req, s->stream(), bufs, n, done);
    if (rc < 0) [[unlikely]] {
        write_req::release(r);
        rc = closed_by_raw_code(s, rc);
        return nullptr;
    }
    return r;
}

inline void write_req::recycle(write_req* r) noexcept {
    r->next = r->pool->head;
    r->pool->head = r;
}

}  // namespace uvkit::detail
