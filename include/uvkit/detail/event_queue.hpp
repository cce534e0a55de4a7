// Internal: the queue of a watcher (fs_event, fs_poll) whose events are pulled
// rather than pushed to a handler, and the one neutral hook a consumer (the
// coroutine layer's awaiter) plugs into.
#pragma once

#include <cstddef>
#include <deque>
#include <utility>

namespace uvkit::detail {

/// Whoever waits for a watcher's next event.
struct event_consumer {
    /// An event was queued (called from the libuv callback; the queue is not touched afterwards).
    virtual void events_ready() noexcept = 0;
    /// The watcher is closing: no event will come.
    virtual void watcher_closing() noexcept = 0;

protected:
    ~event_consumer() = default;
};

/// Events not consumed yet, at most `max_items` (later ones are counted in `dropped`).
template <class Record>
struct event_queue {
    static constexpr std::size_t max_items = 1024;
    std::deque<Record> items;
    event_consumer* consumer = nullptr;
    std::size_t dropped = 0;

    void push(Record&& r) noexcept {
        try {
            if (items.size() < max_items)
                items.push_back(std::move(r));
            else
                ++dropped;
        } catch (...) {
            ++dropped;
        }
        if (!items.empty() && consumer) std::exchange(consumer, nullptr)->events_ready();
    }
    void closing() noexcept {
        if (consumer) std::exchange(consumer, nullptr)->watcher_closing();
    }
};

}  // namespace uvkit::detail
