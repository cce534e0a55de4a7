#include "uvkit/loop.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "log.hpp"
#include "uvkit/handle.hpp"

namespace uvkit {

namespace {
// Its address tells threads apart (see loop::running_on_).
thread_local const char this_thread_token = 0;

// Every live loop, for is_uvkit_handle(); loops come and go rarely.
std::mutex& loops_mutex() {
    static std::mutex m;
    return m;
}
loop* loops_head = nullptr;

#ifdef SIGPIPE
// SIGPIPE is ignored while a loop exists, so that a write to a vanished peer
// fails with broken_pipe instead of killing the process. std::signal() is the
// portable way to ask for the disposition (by setting one): a default one is
// replaced by SIG_IGN and restored by the last loop; anything else the program
// set (SIG_IGN, a handler) is put back at once and never touched again.
std::mutex& sigpipe_mutex() {
    static std::mutex m;
    return m;
}
int sigpipe_users = 0;
bool sigpipe_restore = false;  // we replaced SIG_DFL by SIG_IGN

void sigpipe_acquire() noexcept {
    std::lock_guard<std::mutex> lock(sigpipe_mutex());
    if (sigpipe_users++ > 0) return;
    auto prev = std::signal(SIGPIPE, SIG_IGN);
    sigpipe_restore = prev == SIG_DFL;
    if (prev != SIG_DFL && prev != SIG_IGN && prev != SIG_ERR) std::signal(SIGPIPE, prev);
}

void sigpipe_release() noexcept {
    std::lock_guard<std::mutex> lock(sigpipe_mutex());
    if (--sigpipe_users > 0 || !sigpipe_restore) return;
    sigpipe_restore = false;
    auto cur = std::signal(SIGPIPE, SIG_DFL);
    // The program set a disposition of its own meanwhile: keep it.
    if (cur != SIG_IGN && cur != SIG_ERR) std::signal(SIGPIPE, cur);
}
#else
void sigpipe_acquire() noexcept {}
void sigpipe_release() noexcept {}
#endif

// libuv on unix assumes that its own descriptors (the epoll or kqueue fd, the
// signal pipe, sockets) are never 0, 1 or 2, and aborts when it closes one that
// is (uv__close's assertion). A program started with a standard stream closed
// would then get them: its error messages would go into libuv's signal pipe,
// and the loop would abort at exit. So before libuv opens anything, every
// closed standard descriptor is filled with /dev/null (what daemons do):
// fopen() takes the lowest free descriptor, which is the closed one when the
// lower ones are open. The FILE is kept for the life of the process. Windows
// has no such assumption.
void reserve_standard_descriptors() noexcept {
#ifndef _WIN32
    static std::mutex m;
    std::lock_guard<std::mutex> lock(m);
    for (uv_file fd = 0; fd <= 2; ++fd) {
        if (uv_guess_handle(fd) != UV_UNKNOWN_HANDLE) continue;  // open
        // Closed, or open on something libuv has no name for (a directory, an
        // odd socket): only in the first case does /dev/null land on it.
        std::FILE* f = std::fopen("/dev/null", "r+");
        if (!f) return;
        if (uv_guess_handle(fd) == UV_UNKNOWN_HANDLE) std::fclose(f);  // landed elsewhere
    }
#endif
}
}  // namespace

loop::loop() : owned_(std::make_unique<uv_loop_t>()) {
    reserve_standard_descriptors();
    detail::check(uv_loop_init(owned_.get()), "uv_loop_init");
    raw_ = owned_.get();
    try {
        init_internal();
    } catch (...) {
        uv_loop_close(raw_);
        throw;
    }
}

loop::loop(uv_loop_t* raw) : raw_(raw) {
    if (!raw) throw std::invalid_argument("uvkit::loop: null uv_loop_t*");
    reserve_standard_descriptors();  // for what libuv opens from now on
    init_internal();
}

void loop::init_internal() {
    detail::check(uv_async_init(raw_, &async_, &loop::on_async), "uv_async_init");
    async_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
    ++internal_open_;
    detail::log_follow_global_level();
    sigpipe_acquire();
    std::lock_guard<std::mutex> lock(loops_mutex());
    next_loop_ = loops_head;
    if (next_loop_) next_loop_->prev_loop_ = this;
    loops_head = this;
}

void loop::close_internal() noexcept {
    if (async_closed_) return;
    async_closed_ = true;
    {
        std::lock_guard<std::mutex> lock(post_mutex_);
        post_closed_ = true;
    }
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&async_))) {
        async_foreign_ = true;  // raw code closed it; reap_foreign_closes() sees it go
        return;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&async_),
             [](uv_handle_t* h) { --static_cast<loop*>(h->data)->internal_open_; });
}

void loop::close_handles() noexcept {
    detail::handle_state::close_all(*this);
    close_internal();
    reap_foreign_closes();
}

void loop::reap_foreign_closes() noexcept {
    if (foreign_closing_ == 0 && !async_foreign_) return;
    // A closed handle has left the loop's handle list: what uv_walk no longer
    // lists, libuv has let go of. A list of the handles uv_walk shows, sorted.
    std::vector<const uv_handle_t*> live;
    try {
        uv_walk(
            raw_,
            [](uv_handle_t* h, void* arg) {
                static_cast<std::vector<const uv_handle_t*>*>(arg)->push_back(h);
            },
            &live);
    } catch (const std::bad_alloc&) {
        return;  // try again later
    }
    std::sort(live.begin(), live.end());
    auto listed = [&](const void* h) {
        return std::binary_search(live.begin(), live.end(), static_cast<const uv_handle_t*>(h));
    };
    if (async_foreign_ && !listed(&async_)) {
        async_foreign_ = false;
        --internal_open_;
    }
    for (detail::handle_state* s = handles_; s && foreign_closing_ > 0;) {
        detail::handle_state* next = s->next;
        if (s->foreign_close && !listed(s->uvh)) {
            s->foreign_close = false;
            --foreign_closing_;
            detail::handle_state::finish_close(s);  // may free s
        }
        s = next;
    }
}

loop::~loop() {
    // Inside one of its own handlers, uv_run and the handler's frames are
    // still on this thread's stack and use the loop after we return: no
    // teardown can make that safe, so stop before touching anything.
    if (running_on_.load(std::memory_order_relaxed) == &this_thread_token) {
        std::fputs(
            "uvkit: a loop was destroyed inside one of its own handlers (while run() runs it on this "
            "thread); destroy it after run() returned. Aborting.\n",
            stderr);
        std::abort();
    }
    // What other threads write into (thread-pool requests) ends first: cancelled, or waited for.
    destroy_extensions(detail::loop_extension::phase::drain);
    // Then suspended coroutines: their awaiters still refer to open handles.
    destroy_extensions(detail::loop_extension::phase::before_handles);
    detail::handle_state::close_all(*this);
    // A close callback may have started thread-pool requests again.
    destroy_extensions(detail::loop_extension::phase::drain);
    for (detail::loop_extension* e = newest_ext_; e; e = e->older) e->shutdown();
    close_internal();
    reap_foreign_closes();
    // Close callbacks run in the next iteration; NOWAIT never blocks for I/O.
    // A close callback may open and close further handles, so iterate, bounded.
    for (int i = 0; i < 1000 && (handles_ || internal_open_ > 0); ++i) {
        detail::handle_state::close_all(*this);
        uv_run(raw_, UV_RUN_NOWAIT);
        reap_foreign_closes();
    }
    {
        std::lock_guard<std::mutex> lock(loops_mutex());
        if (prev_loop_)
            prev_loop_->next_loop_ = next_loop_;
        else
            loops_head = next_loop_;
        if (next_loop_) next_loop_->prev_loop_ = prev_loop_;
    }
    sigpipe_release();
    if (error_)
        UVKIT_LOG(warn, "{} exception(s) thrown by handlers were never rethrown", 1 + more_errors_.size());
    if (handles_ || internal_open_ > 0) UVKIT_LOG(warn, "loop destroyed with handles that did not close");
    destroy_extensions(detail::loop_extension::phase::after_handles);
    detail::handle_state::forget_loop(*this);
    if (owned_) {
        int rc = uv_loop_close(raw_);
        if (rc < 0) {
            // Handles that uvkit did not create are still open on the loop;
            // freeing it would leave them dangling, so it is left allocated.
            UVKIT_LOG(warn, "uv_loop_close: {} (raw handles still open); loop memory left allocated",
                      uv_strerror(rc));
            (void)owned_.release();
        }
    }
}

loop& loop::default_loop() {
    static loop instance{(reserve_standard_descriptors(), uv_default_loop())};
    return instance;
}

bool loop::run(run_mode mode) {
    if (error_) rethrow_error();  // a further exception left over from the last run()
    if (!async_closed_ && has_posted_.load(std::memory_order_acquire))
        uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
    // Restored, not cleared: run() called from a handler returns into the outer run().
    const void* outer = running_on_.exchange(&this_thread_token, std::memory_order_relaxed);
    int r = uv_run(raw_, static_cast<uv_run_mode>(mode));
    running_on_.store(outer, std::memory_order_relaxed);
    reap_foreign_closes();
    if (error_) rethrow_error();
    return r != 0;
}

void loop::rethrow_error() {
    std::exception_ptr e = std::exchange(error_, nullptr);
    if (!more_errors_.empty()) {
        error_ = std::move(more_errors_.front());
        more_errors_.erase(more_errors_.begin());
    }
    std::rethrow_exception(e);
}

void loop::fail(std::exception_ptr e) noexcept {
    if (!error_) {
        error_ = std::move(e);
    } else {
        // Another handler threw before the loop stopped: keep it for the next run().
        try {
            more_errors_.push_back(std::move(e));
        } catch (const std::bad_alloc&) {
            UVKIT_LOG(warn, "out of memory: a handler's exception was dropped");
        }
    }
    uv_stop(raw_);
}

bool loop::prepare_read_buffer() noexcept {
    if (!read_buf_) read_buf_.reset(new (std::nothrow) char[read_buffer_size]);
    return read_buf_ != nullptr;
}

void loop::post_fn(detail::unique_function<void()>&& f) {
    // Nothing to run (post(nullptr), a null function pointer): like an async
    // handle without a callback, it is a no-op, not a crash at delivery.
    if (!f) return;
    {
        std::lock_guard<std::mutex> lock(post_mutex_);
        if (post_closed_) detail::throw_uv_error(UV_EINVAL, "uvkit::loop::post after close_handles()");
        posted_.push_back(std::move(f));
        has_posted_.store(true, std::memory_order_release);
    }
    if (running_on_.load(std::memory_order_relaxed) == &this_thread_token) {
        // Posted from a handler: make sure this run() delivers it.
        uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
    }
    uv_async_send(&async_);
}

void loop::add_extension(std::size_t slot, std::unique_ptr<detail::loop_extension> e) noexcept {
    detail::loop_extension* x = e.release();
    x->older = newest_ext_;
    newest_ext_ = x;
    ext_[slot] = x;
}

void loop::destroy_extensions(detail::loop_extension::phase p) noexcept {
    detail::loop_extension** link = &newest_ext_;
    while (detail::loop_extension* e = *link) {
        if (e->when != p) {
            link = &e->older;
            continue;
        }
        if (p == detail::loop_extension::phase::drain) {
            e->shutdown();  // may add extensions, in front of the list: start again
            if (*link != e) continue;
        }
        *link = e->older;
        // Out of its slot before it is destroyed: null while it tears down.
        for (detail::loop_extension*& slot : ext_)
            if (slot == e) slot = nullptr;
        delete e;
    }
}

void loop::on_async(uv_async_t* a) { static_cast<loop*>(a->data)->drain_posted(); }

void loop::drain_posted() {
    {
        std::lock_guard<std::mutex> lock(post_mutex_);
        // The two vectors trade places on every drain: grow both, so that one
        // round is enough to warm the queue up (no allocation per post after it).
        if (draining_.capacity() < posted_.capacity()) draining_.reserve(posted_.capacity());
        draining_.swap(posted_);
        has_posted_.store(false, std::memory_order_release);
    }
    std::size_t i = 0;
    try {
        for (; i < draining_.size(); ++i) draining_[i]();
    } catch (...) {
        fail(std::current_exception());
        ++i;
        // Keep what was not run yet, in order, ahead of anything posted since.
        std::lock_guard<std::mutex> lock(post_mutex_);
        posted_.insert(posted_.begin(),
                       std::make_move_iterator(draining_.begin() + static_cast<std::ptrdiff_t>(i)),
                       std::make_move_iterator(draining_.end()));
        has_posted_.store(!posted_.empty(), std::memory_order_release);
        draining_.clear();
        uv_async_send(&async_);
        return;
    }
    draining_.clear();
    std::lock_guard<std::mutex> lock(post_mutex_);
    if (posted_.empty()) uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
}

bool is_uvkit_handle(const uv_handle_t* h) noexcept {
    if (!h) return false;
    std::lock_guard<std::mutex> lock(loops_mutex());
    for (const loop* l = loops_head; l; l = l->next_loop_) {
        if (l->raw_ != h->loop) continue;
        if (h == reinterpret_cast<const uv_handle_t*>(&l->async_)) return true;
        for (const detail::handle_state* s = l->handles_; s; s = s->next)
            if (s->uvh == h) return true;
    }
    return false;
}

}  // namespace uvkit
