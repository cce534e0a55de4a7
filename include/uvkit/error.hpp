// uvkit/error.hpp: libuv's error codes as std::error_code.
//
// What it is: `uvkit::error_category()` is a std::error_category whose values
// are libuv's (negative) error codes. Messages come from uv_strerror, the
// category name is "uvkit"; `uv_err_name` is available through err_name().
// Codes that have a POSIX meaning compare equal to the matching std::errc,
// so `ec == std::errc::connection_refused` works on every platform libuv
// supports (on Windows libuv's codes are not errno values; the mapping is an
// explicit table, never arithmetic on errno).
//
// Errors: synchronous calls throw std::system_error carrying such a code, or
// take a `std::error_code&` and are noexcept; asynchronous results arrive as
// the handler's first std::error_code argument.
#pragma once

#include <uv.h>

#include <string>
#include <system_error>
#include <type_traits>

#include "uvkit/export.hpp"

namespace uvkit {

/// libuv-only conditions that have no std::errc equivalent. Their values are
/// libuv's codes, so `std::error_code{uvkit::errc::eof}` is exactly UV_EOF.
enum class errc : int {
    eof = UV_EOF,             ///< end of stream (read side closed by the peer)
    canceled = UV_ECANCELED,  ///< the operation was cancelled (its handle was closed)
    unknown = UV_UNKNOWN,     ///< libuv could not map the system error
};

/// The category of libuv error codes. A singleton; compare by address.
UVKIT_API const std::error_category& error_category() noexcept;

/// Makes an error_code from a libuv return value (negative), e.g. UV_EINVAL.
inline std::error_code make_uv_error(int uv_code) noexcept { return {uv_code, error_category()}; }

/// std::error_code support for uvkit::errc (found by argument-dependent lookup).
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

/// libuv's short name of a code ("ECONNREFUSED"); "UNKNOWN" for other categories.
UVKIT_API std::string err_name(const std::error_code& ec);

namespace detail {
/// Throws std::system_error for a negative libuv return value; `what` names the call.
[[noreturn]] UVKIT_API void throw_uv_error(int uv_code, const char* what);

/// std::system_category(), looked up once: a success code is made for every
/// completion, and std::error_code{} calls into the C++ runtime for it.
inline const std::error_category& system_category_ref = std::system_category();

/// std::error_code{} (success), without that call.
inline std::error_code no_error() noexcept { return {0, system_category_ref}; }

/// A libuv completion status as an error_code: success for 0 (or more).
inline std::error_code status_code(int status) noexcept {
    return status < 0 ? make_uv_error(status) : no_error();
}

/// Stores a libuv return value into `ec` (cleared on success) and returns true on error.
inline bool set_error(std::error_code& ec, int rc) noexcept {
    if (rc < 0) {
        ec = make_uv_error(rc);
        return true;
    }
    ec = no_error();
    return false;
}

/// The throwing twin's body: throws on a negative libuv return value.
inline void check(int rc, const char* what) {
    if (rc < 0) throw_uv_error(rc, what);
}

/// The throwing twin of a std::error_code& form, the one way uvkit writes it:
/// runs `body(ec)`, throws std::system_error(ec, what) if it failed, else
/// returns what `body` returned.
template <class Body>
decltype(auto) throwing(const char* what, Body&& body) {
    std::error_code ec;
    using result = decltype(body(ec));
    if constexpr (std::is_void_v<result>) {
        body(ec);
        if (ec) throw std::system_error(ec, what);
    } else {
        result r = body(ec);
        if (ec) throw std::system_error(ec, what);
        return r;
    }
}
}  // namespace detail

}  // namespace uvkit

template <>
struct std::is_error_code_enum<uvkit::errc> : std::true_type {};
