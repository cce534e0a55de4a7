#include "uvkit/pipe.hpp"

#include <memory>
#include <vector>

#ifndef _WIN32
#include <sys/un.h>  // only for sizeof(sockaddr_un::sun_path): no calls
#endif

#include "request.hpp"

namespace uvkit {

using detail::pipe_state;

namespace {

/// libuv 1.44 silently truncates a too long name (and '\0' ends it early):
/// refuse such names rather than bind or connect to another path.
bool valid_name(const std::string& name, std::error_code& ec) noexcept {
    if (name.empty() || name.find('\0') != std::string::npos) {
        ec = make_uv_error(UV_EINVAL);
        return false;
    }
#ifndef _WIN32
    if (name.size() >= sizeof(sockaddr_un{}.sun_path)) {
#else
    if (name.size() > 256) {  // the longest name a Windows named pipe may have
#endif
        ec = make_uv_error(UV_ENAMETOOLONG);
        return false;
    }
    return true;
}

using name_fn = int (*)(const uv_pipe_t*, char*, std::size_t*);

std::string name_of(const pipe_state* s, name_fn fn, std::error_code& ec) noexcept {
    try {
        std::string out(128, '\0');
        for (;;) {
            std::size_t len = out.size();
            int rc = fn(&s->h, out.data(), &len);
            if (rc == UV_ENOBUFS && len > out.size()) {
                out.resize(len + 1);
                continue;
            }
            if (detail::set_error(ec, rc)) return {};
            out.resize(len);
            return out;
        }
    } catch (...) {
        ec = make_uv_error(UV_ENOMEM);
        return {};
    }
}
}  // namespace

pipe::pipe(uvkit::loop& l, bool ipc)
    : stream(detail::create_state<pipe_state>(l, "uv_pipe_init", &uv_pipe_init, ipc ? 1 : 0)) {}

uv_pipe_t* pipe::raw() const noexcept { return state_ ? &static_cast<pipe_state*>(state_)->h : nullptr; }

bool pipe::ipc() const noexcept { return state_ && static_cast<pipe_state*>(state_)->h.ipc != 0; }

void pipe::bind(const std::string& name, std::error_code& ec) noexcept {
    auto* s = get<pipe_state>(ec);
    if (!s || !valid_name(name, ec)) return;
    detail::set_error(ec, uv_pipe_bind(&s->h, name.c_str()));
}

void pipe::bind(const std::string& name) {
    detail::throwing("uv_pipe_bind", [&](std::error_code& ec) { bind(name, ec); });
}

void pipe::connect_fn(const std::string& name, detail::write_handler&& h, std::error_code& ec,
                      detail::request_base** started) noexcept {
    auto* s = get<pipe_state>(ec);
    if (!s || !valid_name(name, ec)) return;
    auto* r = detail::connect_request::make(*s->owner);
    if (!r) {
        ec = make_uv_error(UV_ENOMEM);
        return;
    }
    r->cb = std::move(h);
    // uv_pipe_connect cannot fail here: libuv reports every error through the callback.
    uv_pipe_connect(&r->req, &s->h, name.c_str(), &detail::connect_request::done);
    if (started) *started = r;
}

void pipe::open(uv_file fd, std::error_code& ec) noexcept {
    if (auto* s = get<pipe_state>(ec)) detail::set_error(ec, uv_pipe_open(&s->h, fd));
}

void pipe::open(uv_file fd) {
    detail::throwing("uv_pipe_open", [&](std::error_code& ec) { open(fd, ec); });
}

std::string pipe::local_name(std::error_code& ec) const noexcept {
    auto* s = get<pipe_state>(ec);
    return s ? name_of(s, &uv_pipe_getsockname, ec) : std::string{};
}

std::string pipe::local_name() const {
    std::string n;
    detail::throwing("uv_pipe_getsockname", [&](std::error_code& ec) { n = local_name(ec); });
    return n;
}

std::string pipe::peer_name(std::error_code& ec) const noexcept {
    auto* s = get<pipe_state>(ec);
    return s ? name_of(s, &uv_pipe_getpeername, ec) : std::string{};
}

std::string pipe::peer_name() const {
    std::string n;
    detail::throwing("uv_pipe_getpeername", [&](std::error_code& ec) { n = peer_name(ec); });
    return n;
}

void pipe::pending_instances(int count) noexcept {
    if (usable()) uv_pipe_pending_instances(&static_cast<pipe_state*>(state_)->h, count);
}

void pipe::chmod(pipe_access access, std::error_code& ec) noexcept {
    if (auto* s = get<pipe_state>(ec)) detail::set_error(ec, uv_pipe_chmod(&s->h, static_cast<int>(access)));
}

void pipe::chmod(pipe_access access) {
    detail::throwing("uv_pipe_chmod", [&](std::error_code& ec) { chmod(access, ec); });
}

void pipe::write_handle_fn(std::string_view data, stream& send_handle, detail::write_handler&& h,
                           std::error_code& ec) noexcept {
    auto* s = get<pipe_state>(ec);
    if (!s) return;
    uv_stream_t* send = send_handle.raw_stream();
    // libuv asserts on an empty write, and a handle needs bytes to travel with.
    if (data.empty() || !s->h.ipc || !send || send_handle.closing()) {
        ec = make_uv_error(UV_EINVAL);
        return;
    }
    uv_buf_t b = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
    write_fn(&b, 1, std::move(h), nullptr, ec, nullptr, send);
}

int pipe::pending_count() const noexcept {
    return usable() ? uv_pipe_pending_count(&static_cast<pipe_state*>(state_)->h) : 0;
}

uv_handle_type pipe::pending_type() const noexcept {
    if (!usable() || pending_count() == 0) return UV_UNKNOWN_HANDLE;
    return uv_pipe_pending_type(&static_cast<pipe_state*>(state_)->h);
}

}  // namespace uvkit
