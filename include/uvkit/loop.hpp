// uvkit/loop.hpp: the event loop.
//
// What it is: a uv_loop_t, either owned (`uvkit::loop l;` creates and closes
// one) or borrowed (`uvkit::loop l{raw};` wraps a loop someone else owns and
// never closes it). Every uvkit handle is created on a loop and runs its
// handlers on the thread that calls run().
//
// Lifetime: a loop is neither copyable nor movable (handles point to it).
// Destroying it closes every uvkit handle still open on it, completes their
// pending requests with errc::canceled, runs until their close callbacks
// ran, and (if owned) closes the uv_loop_t. Not from inside one of its own
// handlers (a timer, a post, an on_closed, a coroutine it resumes): run()
// and libuv are still on the stack then and would use the freed loop, so
// ~loop detects it (run() is running this loop on this thread), prints one
// line on stderr and calls std::abort() before it touches anything. Stop
// the loop there instead (stop(), or let run() return) and destroy it after
// run() returned. A borrowed loop run by uv_run() directly, not by run(),
// cannot be told apart: the rule holds, but is not checked. Handles that uvkit did not create
// are never touched; if an owned loop still has such handles, it cannot be
// closed and a warning is logged. C++ handle objects that outlive their loop
// stay valid: every operation on them fails with UV_EINVAL.
//
// Borrowed loops (moving a C program to uvkit; README "Migrating a C program"):
// - ~loop runs uv_run(UV_RUN_NOWAIT) iterations, at most 1000, until the close
//   callbacks of uvkit's handles (its internal post() wake-up included) ran:
//   at least one iteration, unless close_handles() was called and a later
//   run of the loop finished those closes. An iteration is a whole libuv
//   iteration: due timers, idle, prepare and check callbacks and ready I/O of
//   the C code's handles run inside ~loop too.
// - uv_loop_close(raw) after ~loop succeeds once the C code closed its own
//   handles. Before ~loop it returns UV_EBUSY unless close_handles() was
//   called and the loop was run afterwards; the uv_loop_t must then not be
//   closed while uvkit handles that raw code closed (uv_walk) are still
//   registered, because ~loop asks the loop (uv_walk) when those closes finished.
// - Raw code may uv_close a uvkit handle (a uv_walk that closes everything):
//   uvkit then neither closes it again nor leaks it; the C++ object reads as
//   closed (closing() is true, operations fail with UV_EINVAL). uvkit notices
//   the raw close when the object is closed or destroyed, at close_handles()
//   or at ~loop, and finishes the handle (on_closed, handle_count(), freeing)
//   once uv_walk no longer lists it: checked then, after run() and in ~loop.
//   The raw close callback must leave uvkit handles' `data` alone;
//   is_uvkit_handle() tells uvkit's handles apart.
// - A handler that throws under the C code's own uv_run stops the loop; the
//   exception waits for rethrow_pending() (or the next run()).
//
// Signals: while a loop exists, SIGPIPE is ignored (where it exists), so that
// writing to a peer that went away fails with std::errc::broken_pipe
// instead of killing the process. Only a default disposition is changed (a
// handler or SIG_IGN set by the program stays), and the last loop to go
// restores it, unless the program set a disposition of its own meanwhile.
//
// Errors: a handler that throws stops the loop; run() rethrows the exception.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "uvkit/detail/function.hpp"
#include "uvkit/export.hpp"

namespace uvkit {

/// How run() runs the loop (libuv's uv_run_mode).
enum class run_mode {
    default_ = UV_RUN_DEFAULT,  ///< until no active, referenced handle or request is left, or stop()
    once = UV_RUN_ONCE,         ///< one iteration, waiting for I/O if there is nothing else to do
    nowait = UV_RUN_NOWAIT,     ///< one iteration without waiting
};

namespace detail {
struct handle_state;

/// Internal: freed handle state blocks kept for reuse, per loop, in size classes
/// of `granule` bytes (every block's exact size: no rounding up; at most
/// `max_free` per class). Short-lived handles (a socket per connection) then
/// cost no malloc/free. Used only on the loop's thread, like the handles;
/// freed with the loop.
struct block_pool {
    static constexpr std::size_t granule = 8;
    static constexpr std::size_t classes = 128;  // blocks of up to 1 KiB
    static constexpr unsigned char max_free = 64;
    struct free_block {
        free_block* next;
    };
    free_block* heads[classes] = {};
    unsigned char counts[classes] = {};
};
/// Per-loop state of a subsystem (the coroutine layer, thread-pool requests,
/// request pools): made on its first use on a loop, in a slot of its own
/// (loop::extension_slots), owned and torn down by ~loop, which knows none of
/// them. First those of phase `drain` end (shutdown(), then destroyed): what
/// another thread may still write into (thread-pool requests, whose buffers
/// may live in coroutine frames). Then those of phase `before_handles` are
/// destroyed (suspended coroutines refer to open handles), and the handles
/// close; then every `after_handles` one's shutdown() runs, and they are
/// destroyed last. Within a phase, the newest goes first.
struct loop_extension {
    enum class phase : unsigned char { drain, before_handles, after_handles };
    explicit loop_extension(phase p) noexcept : when(p) {}
    virtual ~loop_extension() = default;
    loop_extension(const loop_extension&) = delete;
    loop_extension& operator=(const loop_extension&) = delete;
    /// Ends what the extension has in flight: for `drain`, first of all; for
    /// `after_handles`, once the handles are closed. Not called for `before_handles`.
    virtual void shutdown() noexcept {}

    const phase when;
    loop_extension* older = nullptr;  // the loop's extensions, newest first
};
}  // namespace detail

/// True if `h` is a handle that uvkit created (a uvkit handle object's, or one
/// of uvkit's own internal handles) and that is still open or closing on a
/// live uvkit::loop. For a uv_walk() over a loop shared with C code: skip
/// uvkit's handles and close them through their C++ objects (or let ~loop do
/// it). Never reads a handle's `data`. Call on the thread that runs h's loop;
/// linear in the number of uvkit handles on that loop.
UVKIT_API bool is_uvkit_handle(const uv_handle_t* h) noexcept;

class UVKIT_API loop {
public:
    /// Creates and owns a new libuv loop (uv_loop_init). Throws std::system_error.
    loop();

    /// Borrows `raw`, a loop initialised by someone else; uvkit never closes it.
    /// `raw` must outlive this object. Throws std::invalid_argument if null.
    explicit loop(uv_loop_t* raw);

    /// Closes the uvkit handles still open on this loop (see the header comment).
    /// Called inside one of this loop's handlers, it aborts with one line on stderr.
    ~loop();

    loop(const loop&) = delete;
    loop& operator=(const loop&) = delete;
    loop(loop&&) = delete;
    loop& operator=(loop&&) = delete;

    /// The process's default loop (uv_default_loop), borrowed: uvkit never closes it.
    static loop& default_loop();

    /// Runs the loop (uv_run). Returns true if there is still work to do (the
    /// loop was stopped, or a `once`/`nowait` iteration left active handles).
    /// Rethrows the first exception that a handler threw; the loop is left
    /// stopped at that point and can be run again. If more handlers threw
    /// before the loop stopped (in the same iteration), each later run()
    /// rethrows the next of them before running anything: none is lost.
    bool run(run_mode mode = run_mode::default_);

    /// Makes run() return after the current iteration (uv_stop).
    void stop() noexcept { uv_stop(raw_); }

    /// True if the loop has active, referenced handles or requests (uv_loop_alive).
    bool alive() const noexcept { return uv_loop_alive(raw_) != 0; }

    /// The loop's cached time at the start of this iteration (uv_now), in milliseconds.
    std::chrono::milliseconds now() const noexcept { return std::chrono::milliseconds(uv_now(raw_)); }

    /// Refreshes the cached time (uv_update_time).
    void update_time() noexcept { uv_update_time(raw_); }

    /// The underlying uv_loop_t, for raw libuv calls.
    uv_loop_t* raw() const noexcept { return raw_; }

    /// True if this object created the uv_loop_t and will close it.
    bool owns_raw() const noexcept { return owned_ != nullptr; }

    /// Runs `f` on the loop's thread, in the order posted (uv_async_t underneath).
    ///
    /// Thread-safe: may be called from any thread while the loop exists. Wake-ups
    /// are coalesced; no message is lost; once the queue has grown to its
    /// working size, posting a small callable allocates nothing. A message
    /// posted while run() is not running is delivered by the next run(). The
    /// internal handle never keeps run() going on its own: a message posted from
    /// another thread to a loop that has nothing else to do waits for the next
    /// run(). If `f` throws, the loop stops and run() rethrows. Posting an
    /// empty function (nullptr) does nothing.
    template <class F>
    void post(F&& f) {
        post_fn(detail::unique_function<void()>(std::forward<F>(f)));
    }

    /// Rethrows the first handler exception that neither run() nor this
    /// function rethrew yet; does nothing if there is none. For C code that runs
    /// the loop with its own uv_run(): a handler that throws stops the loop
    /// (uv_stop) and its exception waits here. Call it after each uv_run();
    /// further exceptions come out of further calls, one each.
    void rethrow_pending() {
        if (error_) rethrow_error();
    }

    /// True if a handler's exception waits for rethrow_pending() or run().
    bool has_pending_exception() const noexcept { return error_ != nullptr; }

    /// Closes every uvkit handle on this loop and uvkit's own internal handle
    /// (the wake-up behind post()), and returns; pending requests complete with
    /// errc::canceled as the closes go on. Their close callbacks run in the next
    /// iteration of the loop, run() or the C code's uv_run(). After that, ~loop
    /// runs no iteration and uv_loop_close() of a borrowed loop succeeds while
    /// this object still exists (see the header comment). post() then throws
    /// std::system_error (UV_EINVAL). Handles created afterwards are closed by
    /// ~loop as usual. Call on the loop's thread, not from inside run().
    void close_handles() noexcept;

    /// Number of uvkit handles currently open (not yet closed) on this loop,
    /// not counting uvkit's own (the coroutine layer's pooled timers and scheduler).
    std::size_t handle_count() const noexcept { return handle_count_; }

private:
    void init_internal();
    void post_fn(detail::unique_function<void()>&& f);
    static void on_async(uv_async_t* a);
    void drain_posted();

public:
    /// Internal: records a handler's exception and stops the loop.
    void fail(std::exception_ptr e) noexcept;

    /// Internal: the head of the registry of open uvkit handles.
    detail::handle_state*& handles() noexcept { return handles_; }
    /// Internal: closed state blocks that a C++ handle object still holds; the
    /// destructor tells them that their loop is gone.
    detail::handle_state*& closed_handles() noexcept { return closed_handles_; }
    /// Internal: recycled state blocks (see src/handle_impl.hpp).
    detail::block_pool& blocks() noexcept { return blocks_; }
    /// Internal: makes the read buffer this loop's streams and udp handles share
    /// (false: out of memory). Reads start only once it exists, so that a
    /// read_start() fails with UV_ENOMEM instead of every read doing so.
    bool prepare_read_buffer() noexcept;
    /// Internal: the read buffer prepare_read_buffer() made (never null after it).
    char* ready_read_buffer() const noexcept { return read_buf_.get(); }
    static constexpr std::size_t read_buffer_size = 64 * 1024;
    /// Internal: the slots of loop extensions (detail::loop_extension). Taken:
    /// 0 the coroutine layer, 1 thread-pool requests, 2 request pools.
    static constexpr std::size_t extension_slots = 8;
    /// Internal: the extension in `slot`; null before its first use, and while
    /// (and after) ~loop tears it down.
    detail::loop_extension* extension(std::size_t slot) const noexcept { return ext_[slot]; }
    /// Internal: makes `e` the extension in `slot` (empty until now); the loop owns it.
    void add_extension(std::size_t slot, std::unique_ptr<detail::loop_extension> e) noexcept;
    void note_open() noexcept { ++handle_count_; }
    void note_closed() noexcept { --handle_count_; }
    /// Internal: a uvkit handle was found closed by raw code (uv_close from a
    /// uv_walk); reap_foreign_closes() frees it once libuv let go of it.
    void note_foreign_close() noexcept { ++foreign_closing_; }
    /// Internal: finishes the handles of note_foreign_close() that uv_walk no
    /// longer lists (their close callback ran).
    void reap_foreign_closes() noexcept;

private:
    // libuv suggests 64 KiB for every read; one buffer per loop (read_buffer_size)
    // serves them all, because a read handler runs to completion before the next read starts.

    uv_loop_t* raw_ = nullptr;
    std::unique_ptr<uv_loop_t> owned_;
    detail::handle_state* handles_ = nullptr;
    detail::handle_state* closed_handles_ = nullptr;
    detail::block_pool blocks_;
    std::size_t handle_count_ = 0;
    std::exception_ptr error_;
    std::vector<std::exception_ptr> more_errors_;  // thrown after error_, before run() returned
    [[noreturn]] void rethrow_error();

    // post(): a uv_async_t plus a mutex-protected queue. Messages are moved to
    // `draining_` under the lock and run outside it; both vectors keep their
    // capacity, so a warm queue does not allocate.
    uv_async_t async_{};
    int internal_open_ = 0;            // uvkit's raw handles above that are not closed yet
    bool async_closed_ = false;        // close_handles() or ~loop closed async_
    bool async_foreign_ = false;       // raw code closed async_: wait for uv_walk to drop it
    bool post_closed_ = false;         // post() refuses (under post_mutex_)
    std::size_t foreign_closing_ = 0;  // handle blocks closed by raw code, not reaped yet
    loop* prev_loop_ = nullptr;        // every live loop, for is_uvkit_handle()
    loop* next_loop_ = nullptr;
    void close_internal() noexcept;
    friend bool is_uvkit_handle(const uv_handle_t* h) noexcept;
    std::mutex post_mutex_;
    std::vector<detail::unique_function<void()>> posted_;
    std::vector<detail::unique_function<void()>> draining_;
    // The thread inside run(), as the address of a thread_local (cheaper to
    // compare than std::this_thread::get_id() on every post); null when not running.
    std::atomic<const void*> running_on_{nullptr};
    std::atomic<bool> has_posted_{false};  // posted_ is not empty (read without the lock by run())

    std::unique_ptr<char[]> read_buf_;
    detail::loop_extension* ext_[extension_slots] = {};
    detail::loop_extension* newest_ext_ = nullptr;
    /// Tears down the extensions of phase `p`, newest first.
    void destroy_extensions(detail::loop_extension::phase p) noexcept;
};

}  // namespace uvkit
