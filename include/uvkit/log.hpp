// uvkit/log.hpp: uvkit's diagnostics.
//
// uvkit logs through a spdlog logger named "uvkit" (when built with the
// `logging` feature). Register your own logger under that name before the
// first uvkit call to route the lines elsewhere; otherwise uvkit creates one
// that writes to stderr. The default level is `warn`: a warning is logged only
// for an error that has nowhere else to go (a failing close in a destructor,
// an exception thrown while a loop is being destroyed). At `debug`, handle
// lifecycles are logged. A disabled level costs one comparison, no formatting.
// Built with `-Dlogging=disabled`, uvkit does not depend on spdlog and these
// functions only remember the level.
#pragma once

#include "uvkit/export.hpp"

namespace uvkit {

/// Severity levels, in spdlog's order.
enum class log_level { trace, debug, info, warn, error, critical, off };

/// Sets the level of uvkit's logger (default: warn).
UVKIT_API void set_log_level(log_level level) noexcept;

/// The level currently in force.
UVKIT_API log_level get_log_level() noexcept;

/// True when uvkit was built with spdlog (the `logging` feature).
UVKIT_API bool logging_enabled() noexcept;

}  // namespace uvkit
