// Internal: the queue of a watcher (fs_event, fs_poll) whose events are pulled
// rather than pushed to a handler. Whoever waits for the next event (the
// coroutine layer's awaiter) is the handle's one handle_consumer: told of a
// queued event through ready(), of the watcher closing or stopping through stop().
#pragma once

#include <cstddef>
#include <deque>
#include <utility>

#include "uvkit/handle.hpp"

namespace uvkit::detail {

/// Events not consumed yet, at most `max_items` (later ones are counted in `dropped`).
template <class Record>
struct event_queue {
    static constexpr std::size_t max_items = 1024;
    std::deque<Record> items;
    std::size_t dropped = 0;

    /// Queues `r` for the watcher whose state is `s`, and tells its consumer.
    void push(handle_state& s, Record&& r) noexcept {
        try {
            if (items.size() < max_items)
                items.push_back(std::move(r));
            else
                ++dropped;
        } catch (...) {
            ++dropped;
        }
        if (!items.empty() && s.consumer) s.consumer->ready(0);
    }
    /// The watcher stopped (or a handler took it over): no event will come for the consumer.
    void stopped(handle_state& s) noexcept {
        items.clear();
        if (s.consumer) s.consumer->stop();
    }
};

}  // namespace uvkit::detail
