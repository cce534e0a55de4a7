// Internal logging macros: a disabled level costs one relaxed load and a compare.
#pragma once

#include <atomic>
#include <utility>

#include "uvkit/log.hpp"

#ifdef UVKIT_HAVE_SPDLOG
#include <spdlog/spdlog.h>
#endif

namespace uvkit::detail {

extern std::atomic<int> log_threshold;

/// Takes spdlog's global level as uvkit's, unless a level was chosen already
/// (called by every loop's constructor; one relaxed load after the first).
void log_follow_global_level() noexcept;

inline bool log_on(log_level l) noexcept {
    return static_cast<int>(l) >= log_threshold.load(std::memory_order_relaxed);
}

#ifdef UVKIT_HAVE_SPDLOG
/// The logger in use (made on first use; may throw: out of memory).
std::shared_ptr<spdlog::logger> logger();

// Logging never throws out: it runs in noexcept paths (closing, a handler's
// exception), and making the logger or formatting a line can fail (out of
// memory, a name clash in the user's registry). Such a line is dropped. Out of
// line, so that the functions that may log keep a lean frame.
template <class... Args>
[[gnu::noinline, gnu::cold]] void log_line(spdlog::level::level_enum lvl,
                                           spdlog::format_string_t<Args...> fmt, Args&&... args) noexcept {
    try {
        logger()->log(lvl, fmt, std::forward<Args>(args)...);
    } catch (...) {
    }
}
#endif

}  // namespace uvkit::detail

#ifdef UVKIT_HAVE_SPDLOG
#define UVKIT_LOG(lvl, ...)                                             \
    do {                                                                \
        if (::uvkit::detail::log_on(::uvkit::log_level::lvl))           \
            ::uvkit::detail::log_line(spdlog::level::lvl, __VA_ARGS__); \
    } while (0)
#else
#define UVKIT_LOG(lvl, ...) \
    do {                    \
    } while (0)
#endif
