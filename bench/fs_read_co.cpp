// fs_read, uvkit coroutines: reads an N MiB file in 64 KiB chunks with co_await file::async_read.
#include <uvkit/co.hpp>
#include <uvkit/fs.hpp>

#include <span>

#include "bench.h"
#include "fs_read_common.hpp"

namespace {

char buf[BENCH_CHUNK];

uvkit::task<long long> read_all(uvkit::loop& l, const std::string& path, long long total) {
    uvkit::file f =
        co_await uvkit::fs::async_open(l, path, UV_FS_O_RDWR | UV_FS_O_CREAT | UV_FS_O_TRUNC, 0600);
    co_await f.async_truncate(total);
    long long offset = 0;
    while (offset < total) {
        std::size_t n = co_await f.async_read(std::span<char>(buf), offset);
        BENCH_CHECK(n > 0, "unexpected end of file");
        offset += static_cast<long long>(n);
    }
    co_await uvkit::fs::async_unlink(l, path);
    co_return offset;
}

}  // namespace

int main(int argc, char** argv) {
    long n = bench_count(argc, argv, "fs_read");
    const long long total = static_cast<long long>(n) * 1024 * 1024;
    const std::string path = fs_read_path("co");
    {
        uvkit::loop loop;
        BENCH_CHECK(uvkit::run(loop, read_all(loop, path, total)) == total, "short read");
    }
    bench_ok("fs_read", n);
    return 0;
}
