// Internal: what the file, fs_event and fs_poll sources share.
#pragma once

#include "uvkit/fs.hpp"

namespace uvkit::detail {

/// libuv's uv_stat_t as a file_stat.
file_stat to_file_stat(const uv_stat_t& s) noexcept;

}  // namespace uvkit::detail
