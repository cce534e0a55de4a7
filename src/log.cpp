#include "log.hpp"

#ifdef UVKIT_HAVE_SPDLOG
#include <spdlog/sinks/stdout_color_sinks.h>
#endif

namespace uvkit {

namespace detail {

std::atomic<int> log_threshold{static_cast<int>(log_level::warn)};

#ifdef UVKIT_HAVE_SPDLOG
spdlog::logger& logger() {
    // Looked up once: a logger the user registered as "uvkit" wins.
    static std::shared_ptr<spdlog::logger> instance = [] {
        auto l = spdlog::get("uvkit");
        if (!l) l = spdlog::stderr_color_mt("uvkit");
        l->set_level(static_cast<spdlog::level::level_enum>(log_threshold.load()));
        return l;
    }();
    return *instance;
}
#endif

}  // namespace detail

void set_log_level(log_level level) noexcept {
    detail::log_threshold.store(static_cast<int>(level), std::memory_order_relaxed);
#ifdef UVKIT_HAVE_SPDLOG
    try {
        detail::logger().set_level(static_cast<spdlog::level::level_enum>(level));
    } catch (...) {
        // Creating the logger can fail (a name clash in a user's registry); the
        // threshold above still applies.
    }
#endif
}

log_level get_log_level() noexcept {
    return static_cast<log_level>(detail::log_threshold.load(std::memory_order_relaxed));
}

bool logging_enabled() noexcept {
#ifdef UVKIT_HAVE_SPDLOG
    return true;
#else
    return false;
#endif
}

}  // namespace uvkit
