// Internal: fs_event and fs_poll, written once. Both watch one path, call a
// handler or queue a record per report, and share stop, path, raw and the
// coroutine form async_next; they differ in the libuv type, the record and the
// start arguments (see uvkit/fs_event.hpp, fs_poll.hpp). A Traits type names
// what differs:
//
//     struct traits {
//         using uv_type = uv_fs_event_t;                        // the libuv handle
//         using record = fs_event_record;                       // what async_next() gives
//         using signature = void(std::error_code, ...);         // the handler's
//         static int stop(uv_type*);                            // uv_fs_event_stop
//         static int getpath(uv_type*, char*, std::size_t*);    // uv_fs_event_getpath
//         static constexpr const char* next_name = "uvkit::fs_event::async_next";
//     };
#pragma once

#include <cstddef>
#include <string>

#include "uvkit/detail/event_queue.hpp"
#include "uvkit/handle.hpp"

namespace uvkit::detail {

template <class Record>
class watch_awaiter;

/// The state block of a path watcher: its libuv handle, its handler, or its
/// queue when started without one.
template <class Traits>
struct path_watcher_state : handle_state {
    using handle_state::handle_state;
    typename Traits::uv_type h{};
    handler_slot<typename Traits::signature> cb;
    event_queue<typename Traits::record> queue;
    bool queued = false;  // started without a handler: reports go to the queue
};

/// The handle class of a path watcher; uvkit::fs_event and fs_poll derive from
/// it and add their start() forms (and their state block, `State`).
template <class Traits, class State>
class path_watcher : public handle {
public:
    using record_type = typename Traits::record;

    /// Stops watching (uv_fs_event_stop, uv_fs_poll_stop); queued reports are
    /// dropped and a waiting async_next() ends with errc::canceled. No-op when
    /// stopped or empty.
    void stop() noexcept {
        if (!usable()) return;
        State* s = state();
        Traits::stop(&s->h);
        s->queue.stopped(*s);
    }

    /// The watched path (uv_fs_event_getpath, uv_fs_poll_getpath); empty when
    /// not started (or out of memory).
    std::string path() const {
        if (!usable()) return {};
        char buf[4096];
        std::size_t n = sizeof buf;
        if (Traits::getpath(&state()->h, buf, &n) != 0) return {};
        return std::string(buf, n);
    }

    /// Coroutine form (uvkit/co/fs.hpp): the next queued report (a watcher
    /// started without a handler only, else UV_EINVAL; one waiter at a time,
    /// else UV_EALREADY). Throws std::system_error on co_await, or stores the
    /// error in `ec`.
    watch_awaiter<record_type> async_next() noexcept;
    watch_awaiter<record_type> async_next(std::error_code& ec) noexcept;

    /// The libuv handle, or nullptr for an empty watcher.
    typename Traits::uv_type* raw() const noexcept { return state_ ? &state()->h : nullptr; }

    /// Internal (the coroutine layer): the state whose queue async_next() waits
    /// on; null unless started without a handler and still watching.
    State* queued_state() const noexcept {
        State* s = state();
        return s && s->usable() && s->queued && uv_is_active(s->uvh) ? s : nullptr;
    }

protected:
    path_watcher() noexcept = default;
    explicit path_watcher(handle_state* s) noexcept : handle(s) {}
    path_watcher(path_watcher&&) noexcept = default;
    path_watcher& operator=(path_watcher&&) noexcept = default;
    ~path_watcher() = default;

    State* state() const noexcept { return static_cast<State*>(state_); }
    /// async_next's body (uvkit/co/fs.hpp); `ec`: where the error goes, or null (thrown).
    watch_awaiter<record_type> async_next_into(std::error_code* ec) const noexcept;
    /// Reports a queued watcher dropped because nobody consumed them.
    std::size_t dropped_count() const noexcept { return state_ ? state()->queue.dropped : 0; }
};

}  // namespace uvkit::detail
