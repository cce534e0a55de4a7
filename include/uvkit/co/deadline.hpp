// uvkit/co/deadline.hpp: loop_clock, the clock of loop.now(), for deadlines.
//
// What it is: a std::chrono clock whose time points are those of loop.now()
// (libuv's millisecond loop time, uv_now/uv_hrtime, monotonic). Deadlines for
// with_deadline() are its time points:
//
//     auto until = uvkit::loop_clock::now(loop) + 2s;
//     auto a = co_await uvkit::with_deadline(loop, until, c.async_read());
//     auto b = co_await uvkit::with_deadline(loop, until, c.async_read());   // same deadline
//
// loop_clock::now(loop) is the loop's cached time (that of its current
// iteration), the time libuv's timers count from; loop_clock::now() reads
// the clock itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>

#include <uv.h>

#include "uvkit/loop.hpp"

namespace uvkit {

struct loop_clock {
    using rep = std::int64_t;
    using period = std::milli;
    using duration = std::chrono::duration<rep, period>;
    using time_point = std::chrono::time_point<loop_clock>;
    static constexpr bool is_steady = true;

    /// The clock itself, now (uv_hrtime in milliseconds, the base of uv_now).
    static time_point now() noexcept { return time_point{duration{static_cast<rep>(uv_hrtime() / 1000000)}}; }
    /// The loop's time, cached at the start of its iteration (uv_now).
    static time_point now(const uvkit::loop& l) noexcept { return time_point{duration{l.now().count()}}; }

    /// What is left until `tp` from the loop's time (negative once past). A
    /// time point of another clock is taken relative to that clock's now().
    template <class Clock, class Dur>
    static auto remaining(const uvkit::loop& l, std::chrono::time_point<Clock, Dur> tp) {
        if constexpr (std::is_same_v<Clock, loop_clock>)
            return tp - now(l);
        else
            return tp - Clock::now();
    }
};

}  // namespace uvkit
