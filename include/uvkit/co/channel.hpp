// uvkit/co/channel.hpp: channel<T>, a bounded queue between tasks of one loop.
//
// What it is: like Tokio's mpsc or Go's buffered channels, for tasks on the
// same loop (call everything on the loop's thread):
//
//     uvkit::channel<std::string> ch{loop, 64};
//     co_await ch.send("line");                  // waits while 64 values wait
//     while (auto v = co_await ch.recv()) ...    // std::nullopt once closed and drained
//     ch.close();
//
// Rules:
// - Order: values are received in the order their sends completed; waiting
//   senders and waiting receivers are each served first come, first served.
// - A waiter is resumed by the loop, soon, never inside the call (a send, a
//   recv, close()) that woke it.
// - Cancellation loses no value and invents none: a send cancelled while it
//   waits completes with errc::canceled and its value is not delivered; a send
//   whose value was taken (into the buffer or by a receiver) succeeds even if
//   the cancellation arrives after. A recv cancelled while it waits completes
//   with errc::canceled and takes nothing; a recv that was handed a value
//   returns it even if the cancellation arrives after.
// - close(): later sends fail with std::errc::broken_pipe, and so do the
//   sends waiting; receivers get the values still buffered, then std::nullopt.
//
// Errors: std::system_error, or the std::error_code& forms (then a failed
// recv gives std::nullopt).
//
// Lifetime: the channel must outlive its waiters; destroying it with waiters
// completes them with errc::canceled, soon.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "uvkit/co/sync.hpp"

namespace uvkit {

template <class T>
class channel {
public:
    /// A channel holding up to `capacity` values. Throws std::invalid_argument for 0.
    channel(uvkit::loop& l, std::size_t capacity) : loop_(l), capacity_(capacity) {
        if (capacity == 0) throw std::invalid_argument("uvkit::channel: capacity is 0");
    }
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    ~channel() {
        while (detail::list_waiter* w = senders_.pop()) w->wake(make_error_code(errc::canceled));
        while (detail::list_waiter* w = receivers_.pop()) w->wake(make_error_code(errc::canceled));
    }

    class send_awaiter final : public detail::list_waiter {
    public:
        send_awaiter(channel& c, T v, std::error_code* ec)
            : list_waiter(ec, &c.loop_), c_(&c), v_(std::move(v)) {}
        ~send_awaiter() override {
            if (!pending_) return;
            c_->senders_.erase(*this);
            forget();
        }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            detail::cancel_scope* scope = detail::scope_of(h);
            if (!admit(scope)) return false;
            if (c_->closed_) {
                ec_ = std::make_error_code(std::errc::broken_pipe);
                return false;
            }
            if (c_->offer(v_)) return false;
            suspend(h, scope, *loop_);
            c_->senders_.push(*this);
            return true;
        }
        void await_resume() { deliver("uvkit::channel::send"); }
        /// dump_tasks(): "channel send".
        void describe(detail::task_dump& d) const override { d << "channel send"; }

    private:
        friend class channel;
        void cancel() noexcept override {
            if (!pending_) return;
            c_->senders_.erase(*this);
            wake(make_error_code(errc::canceled));
        }
        channel* c_;
        T v_;
    };

    class recv_awaiter final : public detail::list_waiter {
    public:
        recv_awaiter(channel& c, std::error_code* ec) noexcept : list_waiter(ec, &c.loop_), c_(&c) {}
        ~recv_awaiter() override {
            if (!pending_) return;
            c_->receivers_.erase(*this);
            forget();
        }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            detail::cancel_scope* scope = detail::scope_of(h);
            if (!admit(scope)) return false;
            if (c_->take(v_) || c_->closed_) return false;
            suspend(h, scope, *loop_);
            c_->receivers_.push(*this);
            return true;
        }
        std::optional<T> await_resume() {
            deliver("uvkit::channel::recv");
            return std::move(v_);
        }
        /// dump_tasks(): "channel recv".
        void describe(detail::task_dump& d) const override { d << "channel recv"; }

    private:
        friend class channel;
        void cancel() noexcept override {
            if (!pending_) return;
            c_->receivers_.erase(*this);
            wake(make_error_code(errc::canceled));
        }
        channel* c_;
        std::optional<T> v_;
    };

    /// Sends `v`, waiting while the channel is full. Throws std::system_error:
    /// std::errc::broken_pipe once closed, errc::canceled if cancelled while waiting.
    send_awaiter send(T v) { return send_awaiter{*this, std::move(v), nullptr}; }
    /// Non-throwing form.
    send_awaiter send(T v, std::error_code& ec) { return send_awaiter{*this, std::move(v), &ec}; }

    /// The next value, waiting while none is there; std::nullopt once closed
    /// and drained. Throws std::system_error (errc::canceled) if cancelled while waiting.
    recv_awaiter recv() noexcept { return recv_awaiter{*this, nullptr}; }
    /// Non-throwing form.
    recv_awaiter recv(std::error_code& ec) noexcept { return recv_awaiter{*this, &ec}; }

    /// Sends without waiting: false (and `v` left alone) if full or closed.
    bool try_send(T& v) {
        if (closed_) return false;
        return offer(v);
    }
    /// Receives without waiting: std::nullopt if empty.
    std::optional<T> try_recv() {
        std::optional<T> out;
        take(out);
        return out;
    }

    /// Closes the channel (see the header comment). Idempotent.
    void close() noexcept {
        if (closed_) return;
        closed_ = true;
        while (detail::list_waiter* w = senders_.pop()) w->wake(std::make_error_code(std::errc::broken_pipe));
        while (detail::list_waiter* w = receivers_.pop()) w->wake(detail::no_error());  // buffer is empty
    }

    bool closed() const noexcept { return closed_; }
    /// Values waiting in the buffer.
    std::size_t size() const noexcept { return buf_.size(); }
    std::size_t capacity() const noexcept { return capacity_; }

private:
    /// Gives `v` to the first waiting receiver or to the buffer; false if full.
    bool offer(T& v) {
        if (auto* r = static_cast<recv_awaiter*>(receivers_.pop())) {
            r->v_.emplace(std::move(v));
            r->wake(detail::no_error());
            return true;
        }
        if (buf_.size() >= capacity_) return false;
        buf_.push_back(std::move(v));
        return true;
    }
    /// Takes the oldest value into `out`, refilling from the first waiting sender.
    bool take(std::optional<T>& out) {
        if (buf_.empty()) return false;
        out.emplace(std::move(buf_.front()));
        buf_.pop_front();
        if (auto* s = static_cast<send_awaiter*>(senders_.pop())) {
            buf_.push_back(std::move(s->v_));
            s->wake(detail::no_error());
        }
        return true;
    }

    uvkit::loop& loop_;
    std::size_t capacity_;
    std::deque<T> buf_;
    bool closed_ = false;
    detail::waiter_list senders_;
    detail::waiter_list receivers_;
};

}  // namespace uvkit
