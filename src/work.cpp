#include "uvkit/work.hpp"

#include "uvkit/handle.hpp"

#include "log.hpp"

namespace uvkit::detail {

bool pool_op::cancel() noexcept {
    if (canceled) return true;
    // 0: taken out of the pool's queue, completes with UV_ECANCELED from the
    // loop. UV_EBUSY: a pool thread runs it (or ran it); it completes normally.
    if (req && uv_cancel(req) == 0) canceled = true;
    return canceled;
}

namespace {
// The loop's thread-pool requests not yet completed: ~loop cancels them and
// waits for those already running (they cannot be closed like handles).
struct pool_registry final : loop_extension {
    static constexpr std::size_t slot = pool_op::registry_slot;
    explicit pool_registry(uvkit::loop& l) noexcept : loop_extension(phase::drain), owner(l) {}
    void shutdown() noexcept override { pool_op::finish_all(owner); }
    uvkit::loop& owner;
    pool_op* head = nullptr;
};

pool_registry& registry(uvkit::loop& l) noexcept {
    return *static_cast<pool_registry*>(l.extension(pool_registry::slot));
}
pool_op*& pending_ops(uvkit::loop& l) noexcept { return registry(l).head; }
}  // namespace

bool pool_op::make_registry(uvkit::loop& l) noexcept {
    std::unique_ptr<pool_registry> r(new (std::nothrow) pool_registry(l));
    if (!r) return false;
    l.add_extension(pool_registry::slot, std::move(r));
    return true;
}

void pool_op::started(uv_req_t* r) noexcept {
    req = r;  // r->data was set before libuv got the request: a pool thread may read it now
    list = &pending_ops(*owner);
    next = *list;
    if (next) next->prev = this;
    *list = this;
}

void pool_op::finish(pool_op* op, int status) noexcept {
    op->unlink();
    if (!op->silenced) {
        try {
            op->complete(status);
        } catch (...) {
            op->owner->fail(std::current_exception());
        }
    }
    delete op;
}

namespace {
/// Cancels every thread-pool request of `l` still in flight; false if there is none.
bool cancel_pending(uvkit::loop& l, pool_registry& r) noexcept {
    bool pending = false;
    for (pool_op* op = r.head; op; op = op->next) {
        op->cancel();
        pending = true;
    }
    // Requests kept by their own blocks (a file's awaited reads and writes).
    for (handle_state* s = l.closed_handles(); s; s = s->next)
        if (s->cancel_requests()) pending = true;
    return pending;
}
}  // namespace

void pool_op::finish_all(uvkit::loop& l) noexcept {
    pool_registry& r = registry(l);
    // A handler run here may start another request: it is cancelled in the next round.
    bool stalled = false;
    while (cancel_pending(l, r)) {
        if (stalled) {
            UVKIT_LOG(warn, "loop destroyed with thread-pool requests that did not complete");
            break;
        }
        // Completions arrive through libuv's internal async handle, which
        // keeps the loop alive while a request is pending.
        stalled = uv_run(l.raw(), UV_RUN_ONCE) == 0;
    }
}

namespace {
void on_work(uv_work_t* w) noexcept { static_cast<work_op_base*>(static_cast<pool_op*>(w->data))->execute(); }
void on_after_work(uv_work_t* w, int status) noexcept {
    pool_op::finish(static_cast<pool_op*>(w->data), status);
}
}  // namespace

void queue_work(work_op_base* op, std::error_code& ec) noexcept {
    op->work.data = static_cast<pool_op*>(op);
    if (!pool_op::ready(*op->owner)) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    if (set_error(ec, uv_queue_work(op->owner->raw(), &op->work, &on_work, &on_after_work))) return;
    op->started(reinterpret_cast<uv_req_t*>(&op->work));
}

}  // namespace uvkit::detail
