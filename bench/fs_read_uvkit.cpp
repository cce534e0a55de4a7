// fs_read, uvkit callbacks: reads an N MiB file in 64 KiB chunks, each file::read started from
// the previous one's handler.
#include <uvkit/fs.hpp>

#include <span>

#include "bench.h"
#include "fs_read_common.hpp"

namespace {

char buf[BENCH_CHUNK];

struct reader {
    uvkit::file f;
    long long offset = 0;
    long long total = 0;

    void next() {
        f.read(std::span<char>(buf), offset, [this](std::error_code ec, std::size_t n) {
            BENCH_CHECK(!ec, "read");
            BENCH_CHECK(n > 0, "unexpected end of file");
            offset += static_cast<long long>(n);
            if (offset < total) next();
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    long n = bench_count(argc, argv, "fs_read");
    const std::string path = fs_read_path("uvkit");
    reader r;
    r.total = static_cast<long long>(n) * 1024 * 1024;
    {
        uvkit::loop loop;
        uvkit::file::open(loop, path, UV_FS_O_RDWR | UV_FS_O_CREAT | UV_FS_O_TRUNC, 0600,
                          [&](std::error_code ec, uvkit::file f) {
                              BENCH_CHECK(!ec, "open");
                              r.f = std::move(f);
                              r.f.truncate(r.total, [&](std::error_code tec) {
                                  BENCH_CHECK(!tec, "truncate");
                                  r.next();
                              });
                          });
        loop.run();
        BENCH_CHECK(r.offset == r.total, "short read");
        r.f.close();
        uvkit::fs::unlink(loop, path, [](std::error_code ec) { BENCH_CHECK(!ec, "unlink"); });
        loop.run();
    }
    bench_ok("fs_read", n);
    return 0;
}
