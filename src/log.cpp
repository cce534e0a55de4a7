#include "log.hpp"

#include <mutex>

#ifdef UVKIT_HAVE_SPDLOG
#include <spdlog/sinks/stdout_color_sinks.h>
#endif

namespace uvkit {

namespace detail {

std::atomic<int> log_threshold{static_cast<int>(log_level::warn)};

namespace {
// Set once the level was chosen: by set_log_level(), set_logger() or the first loop.
std::atomic<bool> level_chosen{false};

#ifdef UVKIT_HAVE_SPDLOG
std::mutex& logger_mutex() {
    static std::mutex m;
    return m;
}
std::shared_ptr<spdlog::logger>& current_logger() {
    static std::shared_ptr<spdlog::logger> l;
    return l;
}
spdlog::level::level_enum as_spdlog(int level) { return static_cast<spdlog::level::level_enum>(level); }
#endif
}  // namespace

void log_follow_global_level() noexcept {
    if (level_chosen.load(std::memory_order_relaxed)) return;
#ifdef UVKIT_HAVE_SPDLOG
    try {
        const int global = static_cast<int>(spdlog::get_level());
        if (!level_chosen.exchange(true)) log_threshold.store(global, std::memory_order_relaxed);
    } catch (...) {
        // spdlog's registry could not be made (out of memory): keep warn.
    }
#else
    level_chosen.store(true);
#endif
}

#ifdef UVKIT_HAVE_SPDLOG
std::shared_ptr<spdlog::logger> logger() {
    std::lock_guard<std::mutex> lock(logger_mutex());
    auto& l = current_logger();
    if (!l) {
        // A logger the program registered as "uvkit" wins; uvkit's own is not
        // registered, so that the program can still register that name.
        l = spdlog::get("uvkit");
        if (!l) {
            l = std::make_shared<spdlog::logger>("uvkit",
                                                 std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
            l->set_level(as_spdlog(log_threshold.load()));
        }
    }
    return l;
}
#endif

}  // namespace detail

void set_log_level(log_level level) noexcept {
    detail::level_chosen.store(true);
    detail::log_threshold.store(static_cast<int>(level), std::memory_order_relaxed);
#ifdef UVKIT_HAVE_SPDLOG
    std::lock_guard<std::mutex> lock(detail::logger_mutex());
    if (auto& l = detail::current_logger()) l->set_level(detail::as_spdlog(static_cast<int>(level)));
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

bool set_logger(std::shared_ptr<spdlog::logger> logger) noexcept {
#ifdef UVKIT_HAVE_SPDLOG
    std::lock_guard<std::mutex> lock(detail::logger_mutex());
    detail::level_chosen.store(true);
    if (logger) detail::log_threshold.store(static_cast<int>(logger->level()), std::memory_order_relaxed);
    detail::current_logger() = std::move(logger);
    return true;
#else
    (void)logger;
    return false;
#endif
}

}  // namespace uvkit
