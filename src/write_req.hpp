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

    /// A request from `l`'s pool; nullptr if out of memory.
    static write_req* acquire(uvkit::loop& l) noexcept {
        write_req*& head = l.write_pool();
        if (!head && !refill(l)) return nullptr;
        write_req* r = head;
        head = r->next;
        return r;
    }
    /// Adds a chunk of requests to `l`'s pool; false if out of memory.
    static bool refill(uvkit::loop& l) noexcept;
    static void release(write_req* r) noexcept;
    static void drain_pool(uvkit::loop& l) noexcept;
    static void on_write(uv_write_t* req, int status) noexcept;
};

}  // namespace uvkit::detail
