#include "uvkit/loop.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "log.hpp"
#include "uvkit/handle.hpp"
#include "uvkit/work.hpp"
#include "write_req.hpp"

namespace uvkit {

namespace {
// Its address tells threads apart (see loop::running_on_).
thread_local const char this_thread_token = 0;
}  // namespace

loop::loop() : owned_(std::make_unique<uv_loop_t>()) {
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
    init_internal();
}

void loop::init_internal() {
    detail::check(uv_async_init(raw_, &async_, &loop::on_async), "uv_async_init");
    async_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
    ++internal_open_;
#ifdef SIGPIPE
    if (uv_signal_init(raw_, &sigpipe_) == 0) {
        sigpipe_.data = this;
        ++internal_open_;
        if (uv_signal_start(
                &sigpipe_, [](uv_signal_t*, int) {}, SIGPIPE) == 0)
            uv_unref(reinterpret_cast<uv_handle_t*>(&sigpipe_));
    }
#endif
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
    // Suspended coroutines go first: their awaiters still refer to open handles.
    ext_.reset();
    detail::handle_state::close_all(*this);
    // Thread-pool requests cannot be closed: cancel them and wait for those running.
    detail::pool_op::finish_all(*this);
    auto internal_closed = [](uv_handle_t* h) { --static_cast<loop*>(h->data)->internal_open_; };
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), internal_closed);
    if (sigpipe_.data) uv_close(reinterpret_cast<uv_handle_t*>(&sigpipe_), internal_closed);
    // Close callbacks run in the next iteration; NOWAIT never blocks for I/O.
    // A close callback may open and close further handles, so iterate, bounded.
    for (int i = 0; i < 1000 && (handles_ || internal_open_ > 0); ++i) {
        detail::handle_state::close_all(*this);
        uv_run(raw_, UV_RUN_NOWAIT);
    }
    if (error_)
        UVKIT_LOG(warn, "{} exception(s) thrown by handlers were never rethrown", 1 + more_errors_.size());
    if (handles_ || internal_open_ > 0) UVKIT_LOG(warn, "loop destroyed with handles that did not close");
    detail::write_req::drain_pool(*this);
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
    static loop instance{uv_default_loop()};
    return instance;
}

bool loop::run(run_mode mode) {
    if (error_) rethrow_error();  // a further exception left over from the last run()
    if (has_posted_.load(std::memory_order_acquire)) uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
    // Restored, not cleared: run() called from a handler returns into the outer run().
    const void* outer = running_on_.exchange(&this_thread_token, std::memory_order_relaxed);
    int r = uv_run(raw_, static_cast<uv_run_mode>(mode));
    running_on_.store(outer, std::memory_order_relaxed);
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
        posted_.push_back(std::move(f));
        has_posted_.store(true, std::memory_order_release);
    }
    if (running_on_.load(std::memory_order_relaxed) == &this_thread_token) {
        // Posted from a handler: make sure this run() delivers it.
        uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
    }
    uv_async_send(&async_);
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

}  // namespace uvkit
