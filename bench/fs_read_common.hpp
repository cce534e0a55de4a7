// What the uvkit variants of fs_read share: the sparse file of N MiB (one ftruncate, as in
// fs_read_uv.c, so making it costs the same at every N).
#pragma once

#include <uv.h>

#include <string>

#include "bench.h"

inline std::string fs_read_path(const char* variant) {
    char dir[4096];
    size_t len = sizeof dir;
    BENCH_UV(uv_os_tmpdir(dir, &len));
    return std::string(dir, len) + "/uvkit-bench-fs-read-" + variant + "-" + std::to_string(uv_os_getpid());
}
