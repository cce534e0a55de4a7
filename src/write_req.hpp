// Internal: pooled write requests.
#pragma once

#include <string>

#include "uvkit/stream.hpp"

namespace uvkit::detail {

/// A uv_write_t with its handler and, for owned writes, the bytes. Requests are
/// allocated per loop in blocks of `chunk_size` and recycled through a free
/// list: a warm stream's writes do not allocate, and a burst of N writes
/// allocates N / chunk_size times. The pool keeps as many requests as were
/// once in flight at the same time, until the loop is destroyed.
struct write_req : request_base {
    uv_write_t req;  // not zeroed: uv_write initialises it (only `data` is ours)
    std::string owned;
    write_req* next = nullptr;

    static constexpr std::size_t chunk_size = 32;

    /// A request from `l`'s pool (a loop extension); nullptr if out of memory.
    static write_req* take(uvkit::loop& l) noexcept;
    /// Adds a chunk of requests to `l`'s pool and takes one; nullptr if out of memory.
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

inline void write_req::recycle(write_req* r) noexcept {
    auto* pool = static_cast<write_pool*>(r->owner->extension(write_pool::slot));
    r->next = pool->head;
    pool->head = r;
}

}  // namespace uvkit::detail
