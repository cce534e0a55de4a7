#include "uvkit/co/context.hpp"
#include "uvkit/co/operation.hpp"
#include "uvkit/co/stream.hpp"

#include <memory>
#include <stdexcept>

namespace uvkit {

namespace detail {

thread_local trampoline* current_trampoline = nullptr;

void resume(std::coroutine_handle<> h) noexcept {
    trampoline t{h, current_trampoline};
    current_trampoline = &t;
    while (std::coroutine_handle<> next = std::exchange(t.next, {})) next.resume();
    current_trampoline = t.outer;
}

void forget_parked(void* frame) noexcept {
    for (trampoline* t = current_trampoline; t; t = t->outer)
        if (t->next && t->next.address() == frame) t->next = {};
}

namespace {
// The loop's coroutine context, or nullptr while the loop destroys it (or has).
co_context* existing_context(uvkit::loop& l) noexcept {
    return static_cast<co_context*>(l.extension(co_context::slot));
}
}  // namespace

void operation::resume_soon(std::error_code e) noexcept {
    pending_ = false;
    unwatch();
    ec_ = e;
    if (co_context* ctx = existing_context(*loop_)) ctx->schedule(node_);
}

void operation::unschedule() noexcept {
    // Queued means the context still exists: ~co_context takes every node out first.
    existing_context(*loop_)->unschedule(node_);
}

namespace {
// Keeps the timer pool from growing without bound after a burst of sleeps.
constexpr std::size_t timer_pool_limit = 256;
}  // namespace

co_context::co_context(uvkit::loop& l) : loop_extension(phase::before_handles), loop_(l), resumer_(l) {
    handle_access::internal(resumer_);
}

co_context::~co_context() {
    // Frames first: their awaiters hand timers back and unschedule themselves.
    detached_.destroy_all();
    while (ready_node* n = head_) unschedule(*n);
}

co_context& co_context::create(uvkit::loop& l) {
    if (loop_extension* e = l.extension(slot)) return static_cast<co_context&>(*e);
    auto ctx = std::make_unique<co_context>(l);
    co_context& c = *ctx;
    l.add_extension(slot, std::move(ctx));
    return c;
}

void co_context::schedule(ready_node& n) noexcept {
    if (n.queued) return;
    n.queued = true;
    n.next = nullptr;
    n.prev = tail_;
    if (tail_)
        tail_->next = &n;
    else
        head_ = &n;
    tail_ = &n;
    if (!resumer_.active()) resumer_.start([this] { run_ready(); });
}

void co_context::unschedule(ready_node& n) noexcept {
    if (!n.queued) return;
    if (n.prev)
        n.prev->next = n.next;
    else
        head_ = n.next;
    if (n.next)
        n.next->prev = n.prev;
    else
        tail_ = n.prev;
    n.prev = n.next = nullptr;
    n.queued = false;
}

void co_context::run_ready() noexcept {
    // Only what is queued now runs in this pass; what it schedules runs next pass.
    ready_node* last = tail_;
    while (ready_node* n = head_) {
        bool was_last = n == last;
        unschedule(*n);
        resume(n->handle);
        if (was_last) break;
    }
    if (!head_) resumer_.stop();
}

uvkit::timer co_context::acquire_timer() {
    if (timers_.empty()) {
        uvkit::timer t{loop_};
        handle_access::internal(t);
        return t;
    }
    uvkit::timer t = std::move(timers_.back());
    timers_.pop_back();
    return t;
}

void co_context::release_timer(uvkit::timer&& t) noexcept {
    uvkit::timer local = std::move(t);
    local.stop();
    if (timers_.size() >= timer_pool_limit) return;  // dropping it closes it
    try {
        timers_.push_back(std::move(local));
    } catch (...) {
        // Out of memory: dropping the timer closes it.
    }
}

std::coroutine_handle<> detached_done(void* ctx, promise_base& p) noexcept {
    auto* c = static_cast<co_context*>(ctx);
    if (p.error) c->get_loop().fail(p.error);
    c->detached().erase(p);
    p.self.destroy();
    return std::noop_coroutine();
}

}  // namespace detail

void spawn(uvkit::loop& l, task<void> t) {
    if (!t) throw std::invalid_argument("uvkit::spawn: empty task");
    auto h = t.release();
    detail::adopt(l, h, h.promise());
    detail::resume(h);
}

namespace detail {

void adopt(uvkit::loop& l, std::coroutine_handle<> h, promise_base& p) {
    co_context& c = co_context::of(l);
    p.self = h;
    p.on_done = &detached_done;
    p.on_done_ctx = &c;
    c.detached().push(p);
}

void drive(uvkit::loop& l, std::coroutine_handle<> h, promise_base& p) {
    // The loop runs in its default mode and the task's end stops it: one
    // run() for the whole task, not one per iteration.
    struct driver {
        uvkit::loop* loop;
        bool running = false;
    } d{&l};
    p.on_done = [](void* ctx, promise_base&) noexcept -> std::coroutine_handle<> {
        auto* dr = static_cast<driver*>(ctx);
        if (dr->running) dr->loop->stop();
        return std::noop_coroutine();
    };
    p.on_done_ctx = &d;
    resume(h);
    while (!h.done()) {
        d.running = true;
        bool more = false;
        try {
            more = l.run();
        } catch (...) {
            d.running = false;
            throw;
        }
        d.running = false;
        if (!h.done() && !more)
            throw std::logic_error("uvkit::run: the loop ran out of work while the task was still waiting");
    }
}

}  // namespace detail

}  // namespace uvkit

#include "uvkit/co/task_group.hpp"

namespace uvkit {

void task_group::spawn(task<void> t) {
    if (!t) throw std::invalid_argument("uvkit::task_group::spawn: empty task");
    auto h = t.release();
    auto& p = h.promise();
    p.self = h;
    p.own_scope.link(&scope_);
    p.scope = &p.own_scope;
    p.on_done = &child_done;
    p.on_done_ctx = this;
    children_.push(p);
    detail::resume(h);
}

std::coroutine_handle<> task_group::child_done(void* ctx, detail::promise_base& p) noexcept {
    auto* g = static_cast<task_group*>(ctx);
    if (p.error && !g->error_) {
        g->error_ = p.error;
        g->scope_.request();
    }
    g->children_.erase(p);
    p.self.destroy();
    if (g->children_.empty() && g->joiner_) return std::exchange(g->joiner_, {});
    return std::noop_coroutine();
}

void task_group::join_awaiter::await_resume() {
    g_.scope_.unlink();
    if (g_.error_) std::rethrow_exception(std::exchange(g_.error_, nullptr));
    std::error_code ec;
    if (joiner_scope_ && joiner_scope_->requested()) ec = make_error_code(errc::canceled);
    if (ec_)
        *ec_ = ec;
    else if (ec)
        throw std::system_error(ec, "uvkit::task_group::join");
}

}  // namespace uvkit
