#include "uvkit/co/sync.hpp"

namespace uvkit {

namespace {
std::error_code canceled() noexcept { return make_error_code(errc::canceled); }
}  // namespace

async_mutex::~async_mutex() {
    while (detail::list_waiter* w = waiters_.pop()) w->wake(canceled());
}

bool async_mutex::lock_awaiter::start(std::coroutine_handle<> h, detail::cancel_scope* scope) {
    if (!admit(scope)) return false;
    if (!m_->locked_ && m_->waiters_.empty()) {
        m_->locked_ = true;
        owner_ = true;
        return false;
    }
    suspend(h, scope, *loop_);
    m_->waiters_.push(*this);
    return true;
}

void async_mutex::lock_awaiter::cancel() noexcept {
    if (!pending_) return;
    m_->waiters_.erase(*this);
    wake(canceled());
}

async_mutex::lock_awaiter::~lock_awaiter() {
    if (pending_) {  // the waiting frame went away
        m_->waiters_.erase(*this);
        forget();
    } else if (owner_) {  // handed the mutex, never resumed to take it: pass it on
        owner_ = false;
        m_->unlock();
    }
}

async_mutex::guard async_mutex::lock_awaiter::await_resume() {
    deliver("uvkit::async_mutex::lock");
    if (!owner_) return {};
    owner_ = false;
    return guard{*m_};
}

void async_mutex::unlock() noexcept {
    if (auto* w = static_cast<lock_awaiter*>(waiters_.pop())) {
        w->owner_ = true;  // stays locked: handed over
        w->wake(detail::no_error());
        return;
    }
    locked_ = false;
}

event::~event() {
    while (detail::list_waiter* w = waiters_.pop()) w->wake(canceled());
}

void event::set() noexcept {
    set_ = true;
    while (detail::list_waiter* w = waiters_.pop()) w->wake(detail::no_error());
}

bool event::wait_awaiter::start(std::coroutine_handle<> h, detail::cancel_scope* scope) {
    if (!admit(scope)) return false;
    if (e_->set_) return false;
    suspend(h, scope, *loop_);
    e_->waiters_.push(*this);
    return true;
}

void event::wait_awaiter::cancel() noexcept {
    if (!pending_) return;
    e_->waiters_.erase(*this);
    wake(canceled());
}

event::wait_awaiter::~wait_awaiter() {
    if (!pending_) return;
    e_->waiters_.erase(*this);
    forget();
}

}  // namespace uvkit
