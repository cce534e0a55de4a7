// Internal: pooled write requests.
#pragma once

#include <string>

#include "uvkit/stream.hpp"

namespace uvkit::detail {

/// A uv_write_t with its handler and, for owned writes, the bytes. Requests are
/// recycled through a per-loop free list, so a warm stream's writes do not allocate.
struct write_req : request_base {
    uv_write_t req{};
    std::string owned;
    write_req* next = nullptr;

    /// Most requests kept per loop; beyond, finished ones are freed.
    static constexpr std::size_t pool_limit = 1024;

    static write_req* acquire(uvkit::loop& l);
    static void release(write_req* r) noexcept;
    static void drain_pool(uvkit::loop& l) noexcept;
    static void on_write(uv_write_t* req, int status) noexcept;
};

}  // namespace uvkit::detail
