// Internal: libuv requests with a completion handler, the one way uvkit makes them.
#pragma once

#include "handle_impl.hpp"

namespace uvkit::detail {

/// A libuv request R (uv_connect_t, uv_shutdown_t, ...) with its completion
/// handler, allocated from its loop's block pool: in steady state a request
/// costs no malloc. It never outlives its loop: closing the handle completes
/// it, before the close callback. (Writes come from a pool of their own,
/// write_req, that also keeps what an owned write holds.)
template <class R>
struct pooled_request final : request_base {
    R req;  // not zeroed: the uv_* call that starts it initialises it (only `data` is ours)

    /// A request of `l`, its `data` pointing to it; nullptr if out of memory.
    static pooled_request* make(uvkit::loop& l) noexcept {
        auto* r = pool_new<pooled_request>(l);
        if (r) {
            r->req.data = r;
            r->owner = &l;
        }
        return r;
    }
    /// Frees a request (completed, or whose start failed: its handler is not called).
    static void free(pooled_request* r) noexcept { pool_delete(r->owner, r); }
    /// The libuv completion callback: the handler, then the request goes back to the pool.
    static void done(R* req, int status) noexcept {
        auto* r = static_cast<pooled_request*>(req->data);
        r->complete(status);
        free(r);
    }
};

using connect_request = pooled_request<uv_connect_t>;
using shutdown_request = pooled_request<uv_shutdown_t>;

}  // namespace uvkit::detail
