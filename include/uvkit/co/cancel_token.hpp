// uvkit/co/cancel_token.hpp: cancel_source and cancel_token, cancelling tasks from outside.
//
// What it is: a cancel_source is the owner's side of a cancellation request,
// a cancel_token the observer's side (std::stop_source and std::stop_token,
// with which they interoperate both ways where the standard library has them):
//
//     uvkit::cancel_source stop;
//     auto h = uvkit::spawn(loop, serve(loop), stop.token());
//     std::thread watcher([&] { ...; stop.cancel(); });   // any thread
//     uvkit::run(loop, worker(loop), std::stop_token{...}); // a std::stop_token works too
//
// Rules:
// - cancel() may be called from any thread, any number of times; the first
//   call wins. The task started under the token is cancelled through its
//   loop: the request is handed to the loop's thread (loop.post), which
//   cancels the task's scope there (every rule of cancel.hpp then holds).
// - A token already cancelled when the task starts cancels it before its
//   first operation (that operation completes with errc::canceled).
// - With std::stop_token available (__cpp_lib_jthread), cancel_source is a
//   std::stop_source underneath: `cancel_source{std::stop_source}` adopts one,
//   `source.stop_source()` and `token.stop_token()` (or the implicit
//   conversion) hand them to code that takes the standard types, and a
//   cancel_token is constructible from a std::stop_token. Without it (libc++
//   14), uvkit's own implementation gives the same behaviour without the
//   conversions.
//
// Lifetime: sources and tokens share their state (reference counted); either
// may outlive the other and the tasks they cancel.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <version>

// std::stop_token where the standard library has it and it works. libstdc++
// before GCC 13 on a platform without futexes (mingw-w64: Windows) can
// deadlock when a std::stop_callback is destroyed while another thread runs it
// (its atomic wait misses the wake-up; a stress test hangs under wine within
// 100,000 rounds): there uvkit uses its own stop state, as with libc++ 14.
#if defined(__cpp_lib_jthread) && \
    !(defined(__GLIBCXX__) && !defined(__linux__) && defined(_GLIBCXX_RELEASE) && _GLIBCXX_RELEASE < 13)
#include <stop_token>
#define UVKIT_HAS_STOP_TOKEN 1
#else
#define UVKIT_HAS_STOP_TOKEN 0
#endif

#include "uvkit/co/cancel.hpp"
#include "uvkit/co/task.hpp"

namespace uvkit {

#if !UVKIT_HAS_STOP_TOKEN
namespace detail {

/// uvkit's own stop state where the standard library has none: a flag and a
/// list of callbacks under a mutex; a callback being run on another thread is
/// waited for by the registration that goes away.
struct stop_state {
    struct node {
        void (*fn)(void*) noexcept = nullptr;
        void* ctx = nullptr;
        node* next = nullptr;
        node* prev = nullptr;
        bool listed = false;
        bool done = false;
        std::thread::id runner{};
    };
    std::mutex m;
    std::condition_variable cv;
    std::atomic<bool> requested{false};
    node* head = nullptr;

    bool request() noexcept {
        std::unique_lock lk(m);
        if (requested.load(std::memory_order_relaxed)) return false;
        requested.store(true, std::memory_order_release);
        while (node* n = head) {
            remove(n);
            n->runner = std::this_thread::get_id();
            lk.unlock();
            n->fn(n->ctx);
            lk.lock();
            n->done = true;
            cv.notify_all();
        }
        return true;
    }
    /// Runs `n` now if already requested (returns false), else lists it.
    bool add(node* n) noexcept {
        {
            std::lock_guard lk(m);
            if (!requested.load(std::memory_order_relaxed)) {
                n->next = head;
                n->prev = nullptr;
                if (head) head->prev = n;
                head = n;
                n->listed = true;
                return true;
            }
        }
        n->fn(n->ctx);
        n->done = true;
        return false;
    }
    void drop(node* n) noexcept {
        std::unique_lock lk(m);
        if (n->listed) {
            remove(n);
            return;
        }
        if (n->runner == std::thread::id{} || n->runner == std::this_thread::get_id()) return;
        cv.wait(lk, [&] { return n->done; });
    }

private:
    void remove(node* n) noexcept {
        if (n->prev)
            n->prev->next = n->next;
        else
            head = n->next;
        if (n->next) n->next->prev = n->prev;
        n->next = n->prev = nullptr;
        n->listed = false;
    }
};

}  // namespace detail
#endif

class cancel_source;

/// The observer's side: tells whether cancellation was requested. A
/// default-constructed token is never cancelled.
class cancel_token {
public:
    cancel_token() noexcept = default;

    /// True once the source requested cancellation (any thread may have).
    bool cancel_requested() const noexcept {
#if UVKIT_HAS_STOP_TOKEN
        return t_.stop_requested();
#else
        return s_ && s_->requested.load(std::memory_order_acquire);
#endif
    }
    /// False for a token that no source can ever cancel.
    bool can_be_cancelled() const noexcept {
#if UVKIT_HAS_STOP_TOKEN
        return t_.stop_possible();
#else
        return s_ != nullptr;
#endif
    }

#if UVKIT_HAS_STOP_TOKEN
    /// A std::stop_token cancels uvkit tasks: `spawn(loop, t, jthread.get_stop_token())`.
    cancel_token(std::stop_token t) noexcept : t_(std::move(t)) {}  // NOLINT: implicit on purpose
    /// For code that takes std::stop_token.
    std::stop_token stop_token() const noexcept { return t_; }
    operator std::stop_token() const noexcept { return t_; }  // NOLINT: implicit on purpose
#endif

private:
    friend class cancel_source;
    template <class F>
    friend class cancel_callback;
#if UVKIT_HAS_STOP_TOKEN
    std::stop_token t_;
#else
    explicit cancel_token(std::shared_ptr<detail::stop_state> s) noexcept : s_(std::move(s)) {}
    std::shared_ptr<detail::stop_state> s_;
#endif
};

/// The owner's side: requests cancellation of everything started under its tokens.
class cancel_source {
public:
    /// A new, not yet cancelled source. Throws std::bad_alloc.
    cancel_source()
#if !UVKIT_HAS_STOP_TOKEN
        : s_(std::make_shared<detail::stop_state>())
#endif
    {
    }
#if UVKIT_HAS_STOP_TOKEN
    /// Adopts a std::stop_source: cancelling either cancels both.
    explicit cancel_source(std::stop_source s) noexcept : s_(std::move(s)) {}
    /// The underlying std::stop_source.
    std::stop_source stop_source() const noexcept { return s_; }
#endif

    /// A token that observes this source.
    cancel_token token() const noexcept {
#if UVKIT_HAS_STOP_TOKEN
        return cancel_token{s_.get_token()};
#else
        return cancel_token{s_};
#endif
    }
    /// Requests cancellation; thread-safe. True for the call that made the request.
    bool cancel() noexcept {
#if UVKIT_HAS_STOP_TOKEN
        return s_.request_stop();
#else
        return s_->request();
#endif
    }
    /// True once cancel() was called.
    bool cancel_requested() const noexcept {
#if UVKIT_HAS_STOP_TOKEN
        return s_.stop_requested();
#else
        return s_->requested.load(std::memory_order_acquire);
#endif
    }

private:
#if UVKIT_HAS_STOP_TOKEN
    std::stop_source s_;
#else
    std::shared_ptr<detail::stop_state> s_;
#endif
};

/// Runs `f()` (noexcept) once, on the thread that requests cancellation of
/// `token` (at once, in the constructor, if it already was), unless destroyed
/// first. The destructor waits for a call running on another thread.
template <class F>
class cancel_callback {
public:
    cancel_callback(const cancel_token& token, F f)
#if UVKIT_HAS_STOP_TOKEN
        : cb_(token.t_, std::move(f)){}
#else
        : f_(std::move(f)), s_(token.s_) {
        if (!s_) return;
        node_.fn = [](void* self) noexcept { static_cast<cancel_callback*>(self)->f_(); };
        node_.ctx = this;
        s_->add(&node_);
    }
    ~cancel_callback() {
        if (s_) s_->drop(&node_);
    }
#endif
          cancel_callback(const cancel_callback&) = delete;
    cancel_callback& operator=(const cancel_callback&) = delete;

private:
#if UVKIT_HAS_STOP_TOKEN
    std::stop_callback<F> cb_;
#else
    detail::stop_state::node node_;
    F f_;
    std::shared_ptr<detail::stop_state> s_;
#endif
};

namespace detail {

class co_context;

/// The cancel scope of the awaiting task (nullptr outside a uvkit task).
struct current_scope_awaiter {
    cancel_scope* scope = nullptr;
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        scope = scope_of(h);
        return false;
    }
    cancel_scope* await_resume() const noexcept { return scope; }
};

/// A task's link with a cancel_token: the token's callback, on whatever thread,
/// queues the link in its loop's coroutine context, which cancels `scope` on
/// the loop's thread. Lives in the frame of the task it cancels.
class UVKIT_API remote_cancel {
public:
    remote_cancel(uvkit::loop& l, cancel_scope* scope, const cancel_token& token);
    ~remote_cancel();
    remote_cancel(const remote_cancel&) = delete;
    remote_cancel& operator=(const remote_cancel&) = delete;

    /// On the loop's thread: cancels the scope.
    void fire() noexcept {
        if (scope_) scope_->request();
    }

    // Guarded by the context's remote mutex.
    remote_cancel* next = nullptr;
    bool queued = false;

private:
    struct notify {
        remote_cancel* self;
        void operator()() noexcept;
    };
    co_context* ctx_;
    cancel_scope* scope_;
    std::optional<cancel_callback<notify>> cb_;
};

/// `t` under `token`: the frame that holds the token's link, awaiting `t` in the same scope.
template <class T>
task<T> under_token(uvkit::loop& l, cancel_token token, task<T> t) {
    cancel_scope* scope = co_await current_scope_awaiter{};
    remote_cancel link(l, scope, token);
    co_return co_await std::move(t);
}

}  // namespace detail

/// Runs `t` to completion on `l` under `token`: cancelling the token (from any
/// thread) cancels the task. Otherwise as run(loop, t).
template <class T>
T run(uvkit::loop& l, task<T> t, cancel_token token) {
    if (!t) throw std::logic_error("uvkit::run: empty task");
    if (t.done()) throw std::logic_error("uvkit::run: the task has already run");
    return run(l, detail::under_token(l, std::move(token), std::move(t)));
}

}  // namespace uvkit
