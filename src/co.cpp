#include "uvkit/co/cancel_token.hpp"
#include "uvkit/co/context.hpp"
#include "uvkit/co/join_handle.hpp"
#include "uvkit/co/operation.hpp"
#include "uvkit/co/stream.hpp"
#include "uvkit/co/task_group.hpp"

#include <memory>
#include <stdexcept>
#include <vector>

namespace uvkit {

namespace detail {

thread_local constinit trampoline* current_trampoline = nullptr;

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
    // Groups and run() tasks that outlive the context: no longer listed.
    while (task_group* g = groups_) unlist_group(*g);
    runs_ = nullptr;
}

void co_context::enter_run(promise_base& p) noexcept {
    p.sibling_next = nullptr;
    promise_base** at = &runs_;
    while (*at) at = &(*at)->sibling_next;
    *at = &p;
}

void co_context::leave_run(promise_base& p) noexcept {
    for (promise_base** at = &runs_; *at; at = &(*at)->sibling_next) {
        if (*at == &p) {
            *at = p.sibling_next;
            p.sibling_next = nullptr;
            return;
        }
    }
}

void co_context::list_group(task_group& g) noexcept {
    g.dump_ctx_ = this;
    g.dump_prev_ = nullptr;
    g.dump_next_ = groups_;
    if (groups_) groups_->dump_prev_ = &g;
    groups_ = &g;
}

void co_context::unlist_group(task_group& g) noexcept {
    if (g.dump_prev_)
        g.dump_prev_->dump_next_ = g.dump_next_;
    else
        groups_ = g.dump_next_;
    if (g.dump_next_) g.dump_next_->dump_prev_ = g.dump_prev_;
    g.dump_prev_ = g.dump_next_ = nullptr;
    g.dump_ctx_ = nullptr;
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

void co_context::queue_remote(remote_cancel& r) noexcept {
    bool post = false;
    {
        std::lock_guard lk(remote_mutex_);
        if (r.queued) return;
        r.queued = true;
        r.next = remote_head_;
        remote_head_ = &r;
        post = !std::exchange(remote_posted_, true);
    }
    if (!post) return;
    try {
        uvkit::loop* l = &loop_;
        loop_.post([l] {
            if (co_context* c = existing_context(*l)) c->run_remote();
        });
    } catch (...) {
        // The loop is closing (its tasks go with it) or out of memory: the
        // request stays queued and the next queue_remote() posts again.
        std::lock_guard lk(remote_mutex_);
        remote_posted_ = false;
    }
}

void co_context::unqueue_remote(remote_cancel& r) noexcept {
    std::lock_guard lk(remote_mutex_);
    if (!r.queued) return;
    for (remote_cancel** at = &remote_head_; *at; at = &(*at)->next) {
        if (*at == &r) {
            *at = r.next;
            break;
        }
    }
    r.queued = false;
    r.next = nullptr;
}

void co_context::run_remote() noexcept {
    // One at a time: a link taken out of the queue may be queued again by its
    // callback's thread (it is not: a token fires once), and fire() runs
    // without the lock, so that a cancel hook may cancel other sources.
    for (;;) {
        remote_cancel* r;
        {
            std::lock_guard lk(remote_mutex_);
            r = remote_head_;
            if (!r) {
                remote_posted_ = false;
                return;
            }
            remote_head_ = r->next;
            r->next = nullptr;
            r->queued = false;
        }
        r->fire();
    }
}

remote_cancel::remote_cancel(uvkit::loop& l, cancel_scope* scope, const cancel_token& token)
    : ctx_(&co_context::of(l)), scope_(scope) {
    // Already cancelled: at once, before the task's first operation.
    if (token.cancel_requested()) fire();
    cb_.emplace(token, notify{this});
}

remote_cancel::~remote_cancel() {
    cb_.reset();  // waits for a callback running on another thread
    ctx_->unqueue_remote(*this);
}

void remote_cancel::notify::operator()() noexcept { self->ctx_->queue_remote(*self); }

bool is_canceled(const std::exception_ptr& e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const std::system_error& se) {
        return se.code() == errc::canceled;
    } catch (...) {
        return false;
    }
}

namespace {
std::coroutine_handle<> spawned_done(void* ctx, promise_base& p) noexcept {
    if (p.joiner) return {};  // its handle keeps the finished frame
    auto* c = static_cast<co_context*>(ctx);
    if (p.error && !(p.handle_cancelled && is_canceled(p.error))) c->get_loop().fail(p.error);
    c->detached().erase(p);
    p.self.destroy();
    return {};
}
}  // namespace

void retire(uvkit::loop* l, task_list& list, promise_base& p, bool taken) noexcept {
    if (l && p.error && !taken) l->fail(p.error);
    list.erase(p);
    p.self.destroy();
}

task_list& adopt_spawned(uvkit::loop& l, std::coroutine_handle<> h, promise_base& p) {
    co_context& c = co_context::of(l);
    p.self = h;
    p.on_done = &spawned_done;
    p.on_done_ctx = &c;
    c.detached().push(p);
    return c.detached();
}

void drive(uvkit::loop& l, std::coroutine_handle<> h, promise_base& p) {
    // The loop runs in its default mode and the task's end stops it: one
    // run() for the whole task, not one per iteration.
    struct driver {
        uvkit::loop* loop;
        bool running = false;
    } d{&l};
    // Listed for dump_tasks() while it runs (the context may go, with the
    // loop, before the task ends).
    struct listed {
        uvkit::loop& l;
        promise_base& p;
        ~listed() {
            if (co_context* c = existing_context(l)) c->leave_run(p);
        }
    };
    co_context::of(l).enter_run(p);
    listed guard{l, p};
    p.self = h;
    p.on_done = [](void* ctx, promise_base&) noexcept -> std::coroutine_handle<> {
        auto* dr = static_cast<driver*>(ctx);
        if (dr->running) dr->loop->stop();
        return {};
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

task_group::~task_group() {
    if (dump_ctx_) dump_ctx_->unlist_group(*this);
    while (slot_waiter* w = waiters_head_) {
        w->unlist();
        w->orphan();
    }
    if (joiner_) {
        joiner_->g_.scope_.unlink();
        joiner_ = nullptr;
    }
    queued_.destroy_all();
    children_.destroy_all();
    finished_.destroy_all();
}

void task_group::admit(std::coroutine_handle<> h, detail::promise_base& p) {
    if (!dump_ctx_) [[unlikely]] {
        try {
            detail::co_context::of(loop_).list_group(*this);
        } catch (...) {
            // Out of memory: the group still works; dump_tasks() cannot see it unjoined.
        }
    }
    p.self = h;
    p.own_scope.link(&scope_);
    p.scope = &p.own_scope;
    p.on_done = &child_done;
    p.on_done_ctx = this;
    if (max_ != 0 && children_.size() >= max_) {
        queued_.push(p);
        return;
    }
    children_.push(p);
    detail::resume(h);
}

std::coroutine_handle<> task_group::enlist(std::coroutine_handle<> h, detail::promise_base& p) noexcept {
    p.self = h;
    p.own_scope.link(&scope_);
    p.scope = &p.own_scope;
    p.on_done = &child_done;
    p.on_done_ctx = this;
    children_.push(p);
    return h;
}

std::coroutine_handle<> task_group::child_done(void* ctx, detail::promise_base& p) noexcept {
    auto* g = static_cast<task_group*>(ctx);
    if (p.error && !g->error_ && !(p.handle_cancelled && detail::is_canceled(p.error))) {
        g->error_ = p.error;
        g->scope_.request();
    }
    g->children_.erase(p);
    if (p.joiner)
        g->finished_.push(p);  // its handle frees it
    else
        p.self.destroy();
    // The slot is free: the next queued child starts (control passes to it),
    // or the first waiting async_spawn() gets it.
    if (detail::promise_base* next = g->queued_.oldest()) {
        g->queued_.erase(*next);
        g->children_.push(*next);
        return next->self;
    }
    if (slot_waiter* w = g->waiters_head_) {
        w->unlist();
        std::coroutine_handle<> start = w->grant();
        w->granted();
        return start;
    }
    if (g->children_.empty() && g->joiner_) return std::exchange(g->joiner_, nullptr)->handoff();
    return {};
}

void task_group::slot_waiter::list(std::coroutine_handle<> h, detail::cancel_scope* scope) {
    suspend(h, scope, g_->loop_);
    prev_ = g_->waiters_tail_;
    next_ = nullptr;
    if (prev_)
        prev_->next_ = this;
    else
        g_->waiters_head_ = this;
    g_->waiters_tail_ = this;
}

void task_group::slot_waiter::unlist() noexcept {
    if (!g_) return;
    if (prev_)
        prev_->next_ = next_;
    else if (g_->waiters_head_ == this)
        g_->waiters_head_ = next_;
    else
        return;  // not listed
    if (next_)
        next_->prev_ = prev_;
    else
        g_->waiters_tail_ = prev_;
    next_ = prev_ = nullptr;
}

void task_group::join_awaiter::describe(detail::task_dump& d) const {
    std::size_t n = g_.children_.size();
    d << "join " << n << (n == 1 ? " child" : " children");
    if (!g_.queued_.empty()) d << ", " << g_.queued_.size() << " queued";
    d.group_children(g_);
}

task_group::join_awaiter::~join_awaiter() {
    // The joiner was destroyed while suspended: the group, which may live on,
    // must neither resume it nor stay linked to its scope.
    if (pending_ && g_.joiner_ == this) {
        g_.joiner_ = nullptr;
        g_.scope_.unlink();
        forget();
    }
}

void task_group::join_awaiter::await_resume() {
    g_.scope_.unlink();
    if (g_.error_) std::rethrow_exception(std::exchange(g_.error_, nullptr));
    if (joiner_scope_ && joiner_scope_->requested()) ec_ = make_error_code(errc::canceled);
    deliver("uvkit::task_group::join");
}

}  // namespace uvkit

// dump_tasks ------------------------------------------------------------------

namespace uvkit {

namespace detail {

void operation::describe(task_dump& d) const { d << "operation"; }

task_dump& task_dump::name(std::string_view what) {
    if (what.starts_with("uvkit::")) what.remove_prefix(7);
    while (!what.empty()) {
        std::size_t sep = what.find("::");
        out_.append(what.substr(0, sep));
        if (sep == std::string_view::npos) break;
        what.remove_prefix(sep + 2);
        if (what.starts_with("async_")) what.remove_prefix(6);
        out_ += ' ';
    }
    return *this;
}

void task_dump::end_line() {
    if (!open_) return;
    out_ += '\n';
    open_ = false;
}

void task_dump::task(const promise_base& p, std::string_view label) {
    if (p.self && p.self.done()) return;  // finished, kept for its handle: not live
    end_line();
    out_.append(static_cast<std::size_t>(depth_) * 2, ' ');
    out_.append(label);
    out_ += ": ";
    open_ = true;
    ++depth_;
    // The scope's operation is the one the innermost awaited task waits on.
    if (const cancellable* op = p.scope ? p.scope->waiting_op() : nullptr)
        op->describe(*this);
    else
        out_ += "running";
    --depth_;
    end_line();
}

void task_dump::child(const promise_base& p) { task(p, "task"); }

void task_dump::group_children(const task_group& g) {
    // From the oldest on: sibling_prev leads to the next pushed.
    for (const promise_base* p = g.children_.oldest(); p; p = p->sibling_prev)
        if (p->on_done == &task_group::child_done) child(*p);  // else a join_handle await shows it
}

void task_dump::roots(co_context& c) {
    for (const promise_base* p = c.runs_; p; p = p->sibling_next) task(*p, "task (run)");
    for (const promise_base* p = c.detached_.oldest(); p; p = p->sibling_prev)
        if (p->on_done == &spawned_done) task(*p, "task (spawned)");  // else a join_handle await shows it
    std::vector<const task_group*> groups;
    for (const task_group* g = c.groups_; g; g = g->dump_next_) groups.push_back(g);
    for (auto it = groups.rbegin(); it != groups.rend(); ++it) {
        const task_group& g = **it;
        if (g.joiner_ || (g.children_.empty() && g.queued_.empty())) continue;
        end_line();
        out_.append(static_cast<std::size_t>(depth_) * 2, ' ');
        std::size_t n = g.children_.size();
        out_ += "task_group (not joined): ";
        *this << n << (n == 1 ? " child" : " children");
        if (!g.queued_.empty()) *this << ", " << g.queued_.size() << " queued";
        out_ += '\n';
        ++depth_;
        group_children(g);
        --depth_;
    }
}

}  // namespace detail

std::string dump_tasks(uvkit::loop& l) {
    auto* c = static_cast<detail::co_context*>(l.extension(detail::co_context::slot));
    if (!c) return {};
    detail::task_dump d;
    d.roots(*c);
    return d.take();
}

}  // namespace uvkit
