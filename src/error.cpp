#include "uvkit/error.hpp"

namespace uvkit {

namespace {

// libuv's codes that carry a POSIX meaning, mapped by name so that the table
// is right on Windows too, where libuv's values are not errno values.
std::errc to_errc(int code, bool& found) noexcept {
    found = true;
    switch (code) {
        case UV_E2BIG: return std::errc::argument_list_too_long;
        case UV_EACCES: return std::errc::permission_denied;
        case UV_EADDRINUSE: return std::errc::address_in_use;
        case UV_EADDRNOTAVAIL: return std::errc::address_not_available;
        case UV_EAFNOSUPPORT: return std::errc::address_family_not_supported;
        case UV_EAGAIN: return std::errc::resource_unavailable_try_again;
        case UV_EALREADY: return std::errc::connection_already_in_progress;
        case UV_EBADF: return std::errc::bad_file_descriptor;
        case UV_EBUSY: return std::errc::device_or_resource_busy;
        case UV_ECANCELED: return std::errc::operation_canceled;
        case UV_ECONNABORTED: return std::errc::connection_aborted;
        case UV_ECONNREFUSED: return std::errc::connection_refused;
        case UV_ECONNRESET: return std::errc::connection_reset;
        case UV_EEXIST: return std::errc::file_exists;
        case UV_EFAULT: return std::errc::bad_address;
        case UV_EFBIG: return std::errc::file_too_large;
        case UV_EHOSTUNREACH: return std::errc::host_unreachable;
        case UV_EINTR: return std::errc::interrupted;
        case UV_EINVAL: return std::errc::invalid_argument;
        case UV_EIO: return std::errc::io_error;
        case UV_EISCONN: return std::errc::already_connected;
        case UV_EISDIR: return std::errc::is_a_directory;
        case UV_ELOOP: return std::errc::too_many_symbolic_link_levels;
        case UV_EMFILE: return std::errc::too_many_files_open;
        case UV_EMSGSIZE: return std::errc::message_size;
        case UV_ENAMETOOLONG: return std::errc::filename_too_long;
        case UV_ENETDOWN: return std::errc::network_down;
        case UV_ENETUNREACH: return std::errc::network_unreachable;
        case UV_ENFILE: return std::errc::too_many_files_open_in_system;
        case UV_ENOBUFS: return std::errc::no_buffer_space;
        case UV_ENODEV: return std::errc::no_such_device;
        case UV_ENOENT: return std::errc::no_such_file_or_directory;
        case UV_ENOMEM: return std::errc::not_enough_memory;
        case UV_ENOSPC: return std::errc::no_space_on_device;
        case UV_ENOSYS: return std::errc::function_not_supported;
        case UV_ENOTCONN: return std::errc::not_connected;
        case UV_ENOTDIR: return std::errc::not_a_directory;
        case UV_ENOTEMPTY: return std::errc::directory_not_empty;
        case UV_ENOTSOCK: return std::errc::not_a_socket;
        case UV_ENOTSUP: return std::errc::not_supported;
        case UV_EPERM: return std::errc::operation_not_permitted;
        case UV_EPIPE: return std::errc::broken_pipe;
        case UV_EPROTO: return std::errc::protocol_error;
        case UV_EPROTONOSUPPORT: return std::errc::protocol_not_supported;
        case UV_EPROTOTYPE: return std::errc::wrong_protocol_type;
        case UV_ERANGE: return std::errc::result_out_of_range;
        case UV_EROFS: return std::errc::read_only_file_system;
        case UV_ESPIPE: return std::errc::invalid_seek;
        case UV_ESRCH: return std::errc::no_such_process;
        case UV_ETIMEDOUT: return std::errc::timed_out;
        case UV_ETXTBSY: return std::errc::text_file_busy;
        case UV_EXDEV: return std::errc::cross_device_link;
        case UV_EMLINK: return std::errc::too_many_links;
        case UV_ENOTTY: return std::errc::inappropriate_io_control_operation;
        case UV_EILSEQ: return std::errc::illegal_byte_sequence;
        default: found = false; return std::errc{};
    }
}

class uv_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "uvkit"; }
    std::string message(int code) const override { return uv_strerror(code); }
    std::error_condition default_error_condition(int code) const noexcept override {
        bool found = false;
        std::errc e = to_errc(code, found);
        if (found) return std::make_error_condition(e);
        return {code, *this};
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const uv_category instance;
    return instance;
}

std::string err_name(const std::error_code& ec) {
    if (ec.category() != error_category()) return "UNKNOWN";
    return uv_err_name(ec.value());
}

namespace detail {
void throw_uv_error(int uv_code, const char* what) { throw std::system_error(make_uv_error(uv_code), what); }
}  // namespace detail

}  // namespace uvkit
