#include "uvkit/co/fs.hpp"

namespace uvkit::detail {

void file_io_awaiter::request_done(void* self, int result) noexcept {
    auto* a = static_cast<file_io_awaiter*>(self);
    if (result < 0)
        a->ec_ = make_uv_error(result);
    else
        a->result_ = static_cast<std::size_t>(result);
    a->finish();
}

}  // namespace uvkit::detail
