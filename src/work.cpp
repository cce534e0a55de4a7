#include "uvkit/work.hpp"

#include "log.hpp"

namespace uvkit::detail {

bool pool_op::cancel() noexcept {
    if (canceled) return true;
    // 0: taken out of the pool's queue, completes with UV_ECANCELED from the
    // loop. UV_EBUSY: a pool thread runs it (or ran it); it completes normally.
    if (req && uv_cancel(req) == 0) canceled = true;
    return canceled;
}

void pool_op::started(uv_req_t* r) noexcept {
    req = r;  // r->data was set before libuv got the request: a pool thread may read it now
    next = owner->pool_ops();
    if (next) next->prev = this;
    owner->pool_ops() = this;
}

void pool_op::finish(pool_op* op, int status) noexcept {
    uvkit::loop& l = *op->owner;
    if (op->prev)
        op->prev->next = op->next;
    else
        l.pool_ops() = op->next;
    if (op->next) op->next->prev = op->prev;
    // The request object becomes empty before the handler runs, so that the
    // handler may destroy or reuse it.
    if (op->slot) *op->slot = nullptr;
    op->slot = nullptr;
    if (!op->silenced) {
        try {
            op->complete(status);
        } catch (...) {
            l.fail(std::current_exception());
        }
    }
    delete op;
}

void pool_op::finish_all(uvkit::loop& l) noexcept {
    // A handler run here may start another request: it is cancelled in the next round.
    while (l.pool_ops()) {
        for (pool_op* op = l.pool_ops(); op; op = op->next) op->cancel();
        // Completions arrive through libuv's internal async handle, which
        // keeps the loop alive while a request is pending.
        if (uv_run(l.raw(), UV_RUN_ONCE) == 0 && l.pool_ops()) {
            UVKIT_LOG(warn, "loop destroyed with thread-pool requests that did not complete");
            break;
        }
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
    if (set_error(ec, uv_queue_work(op->owner->raw(), &op->work, &on_work, &on_after_work))) return;
    op->started(reinterpret_cast<uv_req_t*>(&op->work));
}

}  // namespace uvkit::detail
