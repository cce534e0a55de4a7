// uvkit/log.hpp: uvkit's diagnostics.
//
// uvkit logs through a spdlog logger (when built with the `logging` feature).
// Which one, in this order:
// - the one given to set_logger(), at any time (also after uvkit logged);
// - else a logger the program registered in spdlog's registry as "uvkit"
//   before uvkit's first line;
// - else uvkit's own, writing to stderr, named "uvkit" but not registered, so
//   that the program may still register a "uvkit" logger later (spdlog would
//   otherwise throw "logger with name 'uvkit' already exists").
// The level: uvkit starts from spdlog's global level (spdlog::set_level(),
// spdlog's default `info`) as it is when the first uvkit::loop is made;
// set_log_level() or set_logger() (which takes the logger's level) choose
// another one from then on. A warning is logged only for an error that has
// nowhere else to go (a failing close in a destructor, an exception thrown
// while a loop is being destroyed). At `debug`, handle lifecycles are logged. A
// disabled level costs one comparison, no formatting. Built with
// `-Dlogging=disabled`, uvkit does not depend on spdlog, logs nothing and these
// functions only remember the level.
#pragma once

#include <memory>

#include "uvkit/export.hpp"

namespace spdlog {
class logger;
}

namespace uvkit {

/// Severity levels, in spdlog's order.
enum class log_level { trace, debug, info, warn, error, critical, off };

/// Sets the level of uvkit's logger (the one in use, and any later one).
UVKIT_API void set_log_level(log_level level) noexcept;

/// The level currently in force.
UVKIT_API log_level get_log_level() noexcept;

/// True when uvkit was built with spdlog (the `logging` feature).
UVKIT_API bool logging_enabled() noexcept;

/// Routes uvkit's lines to `logger` from now on, at the level `logger` has now
/// (uvkit compares before it formats; for a later level, call set_log_level()).
/// May be called at any time, from any thread; a null pointer goes back to
/// uvkit's own logger (at the level in force).
/// Returns false (and keeps nothing) when uvkit was built without spdlog.
UVKIT_API bool set_logger(std::shared_ptr<spdlog::logger> logger) noexcept;

}  // namespace uvkit
