// Two uvkit pipes over the ends of a connected pair of stream sockets
// (uv_socketpair): unlike a pipe's write end, either end can be shut down.
#pragma once

#include <uvkit/pipe.hpp>

#include <utility>

#include "require.hpp"

inline std::pair<uvkit::pipe, uvkit::pipe> socket_pair(uvkit::loop& loop) {
    uv_os_sock_t socks[2];
    require(uv_socketpair(SOCK_STREAM, 0, socks, 0, 0) == 0);
    std::pair<uvkit::pipe, uvkit::pipe> p{uvkit::pipe(loop), uvkit::pipe(loop)};
    p.first.open(socks[0]);
    p.second.open(socks[1]);
    return p;
}
