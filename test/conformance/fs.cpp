// Conformance ports of libuv's file system tests (test/test-fs.c,
// test/test-fs-copyfile.c, test/test-fs-readdir.c, test/test-fs-event.c,
// test/test-fs-poll.c) against uvkit::file, uvkit::fs, uvkit::fs_event and uvkit::fs_poll.
// libuv's synchronous forms (no callback) have no uvkit spelling: each case
// runs the asynchronous form through co_await or a handler instead.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../co_util.hpp"
#include "../platform.hpp"
#include "common.hpp"

using namespace std::chrono_literals;
using uvkit_conf::loop_fixture;
using uvkit_conf::uv_code;
namespace stdfs = std::filesystem;

namespace {

struct scratch {
    stdfs::path path;
    scratch() {
        static int n = 0;
        path = stdfs::temp_directory_path() /
               ("uvkit-conf-fs-" + std::to_string(uv_os_getpid()) + "-" + std::to_string(++n));
        stdfs::remove_all(path);
        stdfs::create_directories(path);
    }
    ~scratch() {
        std::error_code ec;
        stdfs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void put(const std::string& p, const std::string& text) {
    std::ofstream o(p, std::ios::binary | std::ios::trunc);
    o << text;
}

std::string slurp(const std::string& p) {
    std::ifstream i(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(i), {});
}

template <class F>
void co_run(uvkit::loop& l, F&& body) {
    uvkit::run(l, body());
}

}  // namespace

TEST_SUITE("conformance") {

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_file_noent (test-fs.c)") {
    scratch d;
    int calls = 0;
    std::error_code got;
    uvkit::file::open(loop, d / "does_not_exist", UV_FS_O_RDONLY, 0, [&](std::error_code ec, uvkit::file f) {
        ++calls;
        got = ec;
        CHECK_FALSE(f);
    });
    loop.run();
    CHECK(calls == 1);
    CHECK(got == uv_code(UV_ENOENT));
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: fs_file_nametoolong (test-fs.c)" UVKIT_SKIP_ON_WINDOWS("NAME_MAX is POSIX")) {
#ifndef _WIN32
    scratch d;
    std::error_code ec;
    co_run(loop, [&]() -> uvkit::task<void> {
        co_await uvkit::fs::async_open(loop, d / std::string(4096, 'a'), UV_FS_O_RDONLY, 0, ec);
    });
    CHECK(ec == uv_code(UV_ENAMETOOLONG));
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_file_async (test-fs.c): create, write, read, rename") {
    scratch d;
    co_run(loop, [&]() -> uvkit::task<void> {
        {
            uvkit::file f =
                co_await uvkit::fs::async_open(loop, d / "test_file", UV_FS_O_WRONLY | UV_FS_O_CREAT, 0600);
            CHECK(co_await f.async_write("test-buffer\n", -1) == 12);
            co_await f.async_sync();
            co_await f.async_datasync();
            co_await f.async_truncate(0);
        }
        {
            uvkit::file f = co_await uvkit::fs::async_open(loop, d / "test_file", UV_FS_O_RDWR, 0);
            CHECK(co_await f.async_write("test-buffer\n", -1) == 12);
            char buf[32];
            CHECK(co_await f.async_read(std::span<char>(buf), 0) == 12);
            CHECK(std::string(buf, 12) == "test-buffer\n");
        }
        co_await uvkit::fs::async_rename(loop, d / "test_file", d / "test_file2");
        std::error_code ec;
        co_await uvkit::fs::async_stat(loop, d / "test_file", ec);
        CHECK(ec == uv_code(UV_ENOENT));
    });
    CHECK(slurp(d / "test_file2") == "test-buffer\n");
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: fs_file_write_null_buffer (test-fs.c): an empty write writes 0") {
    scratch d;
    co_run(loop, [&]() -> uvkit::task<void> {
        uvkit::file f = co_await uvkit::fs::async_open(loop, d / "f", UV_FS_O_WRONLY | UV_FS_O_CREAT, 0600);
        CHECK(co_await f.async_write(std::string_view(), 0) == 0);
    });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_read_file_eof (test-fs.c)") {
    scratch d;
    put(d / "f", "test-buffer\n");
    co_run(loop, [&]() -> uvkit::task<void> {
        uvkit::file f = co_await uvkit::fs::async_open(loop, d / "f", UV_FS_O_RDONLY, 0);
        char buf[32];
        CHECK(co_await f.async_read(std::span<char>(buf), 0) == 12);
        CHECK(co_await f.async_read(std::span<char>(buf), 12) == 0);
        // Positional reads leave the file position alone; reads at the position move it.
        CHECK(co_await f.async_read(std::span<char>(buf), -1) == 12);
        CHECK(co_await f.async_read(std::span<char>(buf), -1) == 0);
    });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_file_open_append (test-fs.c)") {
    scratch d;
    put(d / "f", "test-buffer\n");
    co_run(loop, [&]() -> uvkit::task<void> {
        uvkit::file f = co_await uvkit::fs::async_open(loop, d / "f", UV_FS_O_RDWR | UV_FS_O_APPEND, 0);
        co_await f.async_write("test-buffer\n", -1);
    });
    CHECK(slurp(d / "f") == "test-buffer\ntest-buffer\n");
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: fs_file_pos_write (test-fs.c): an offset write keeps the position") {
    scratch d;
    put(d / "f", "aaa");
    co_run(loop, [&]() -> uvkit::task<void> {
        uvkit::file f = co_await uvkit::fs::async_open(loop, d / "f", UV_FS_O_RDWR, 0);
        co_await f.async_write("b", 2);   // positional: the file position stays at 0
        co_await f.async_write("c", -1);  // at the position
    });
    CHECK(slurp(d / "f") == "cab");
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_async_dir (test-fs.c): mkdir, scandir, stat, rmdir") {
    scratch d;
    co_run(loop, [&]() -> uvkit::task<void> {
        co_await uvkit::fs::async_mkdir(loop, d / "test_dir", 0755);
        put(d / "test_dir/file1", "");
        put(d / "test_dir/file2", "");
        auto es = co_await uvkit::fs::async_scandir(loop, d / "test_dir");
        std::sort(es.begin(), es.end(), [](auto& a, auto& b) { return a.name < b.name; });
        REQUIRE(es.size() == 2);
        CHECK(es[0].name == "file1");
        CHECK(es[1].name == "file2");
        CHECK((co_await uvkit::fs::async_stat(loop, d / "test_dir")).is_directory());
        CHECK((co_await uvkit::fs::async_lstat(loop, d / "test_dir")).is_directory());
        std::error_code ec;
        co_await uvkit::fs::async_rmdir(loop, d / "test_dir", ec);
        CHECK(ec == uv_code(UV_ENOTEMPTY));
        co_await uvkit::fs::async_unlink(loop, d / "test_dir/file1");
        co_await uvkit::fs::async_unlink(loop, d / "test_dir/file2");
        co_await uvkit::fs::async_rmdir(loop, d / "test_dir");
    });
    CHECK_FALSE(stdfs::exists(d / "test_dir"));
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_scandir_empty_dir (test-fs.c)") {
    scratch d;
    stdfs::create_directory(d / "empty");
    co_run(loop, [&]() -> uvkit::task<void> {
        CHECK((co_await uvkit::fs::async_scandir(loop, d / "empty")).empty());
    });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_scandir_non_existent_dir (test-fs.c)") {
    scratch d;
    std::error_code ec;
    co_run(loop, [&]() -> uvkit::task<void> { co_await uvkit::fs::async_scandir(loop, d / "nope", ec); });
    CHECK(ec == uv_code(UV_ENOENT));
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_scandir_file (test-fs.c)") {
    scratch d;
    put(d / "f", "x");
    std::error_code ec;
    co_run(loop, [&]() -> uvkit::task<void> { co_await uvkit::fs::async_scandir(loop, d / "f", ec); });
    CHECK(ec == uv_code(UV_ENOTDIR));
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "conformance: fs_readdir_empty_dir, fs_readdir_non_empty_dir (test-fs-readdir.c), as scandir") {
    scratch d;
    stdfs::create_directory(d / "dir");
    put(d / "dir/file1", "");
    put(d / "dir/file2", "");
    stdfs::create_directory(d / "dir/test_subdir");
    co_run(loop, [&]() -> uvkit::task<void> {
        auto es = co_await uvkit::fs::async_scandir(loop, d / "dir");
        std::sort(es.begin(), es.end(), [](auto& a, auto& b) { return a.name < b.name; });
        REQUIRE(es.size() == 3);  // no "." nor ".."
        CHECK(es[2] == uvkit::dir_entry{"test_subdir", uvkit::entry_type::directory});
        CHECK((es[0].type == uvkit::entry_type::file || es[0].type == uvkit::entry_type::unknown));
    });
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "conformance: fs_readdir_non_existing_dir, fs_readdir_file (test-fs-readdir.c), as scandir") {
    scratch d;
    put(d / "f", "");
    std::error_code missing, file;
    co_run(loop, [&]() -> uvkit::task<void> {
        co_await uvkit::fs::async_scandir(loop, d / "none", missing);
        co_await uvkit::fs::async_scandir(loop, d / "f", file);
    });
    CHECK(missing == uv_code(UV_ENOENT));
    CHECK(file == uv_code(UV_ENOTDIR));
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_open_dir (test-fs.c): a directory opens read-only") {
    scratch d;
    co_run(loop, [&]() -> uvkit::task<void> {
        std::error_code ec;
        uvkit::file f = co_await uvkit::fs::async_open(loop, d.path.string(), UV_FS_O_RDONLY, 0, ec);
#ifndef _WIN32
        CHECK_FALSE(ec);
        CHECK(f.is_open());
        char buf[4];
        ec.clear();
        co_await f.async_read(std::span<char>(buf), 0, ec);
        CHECK(ec == uv_code(UV_EISDIR));
#endif
    });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_stat_missing_path (test-fs.c)") {
    scratch d;
    int calls = 0;
    uvkit::fs::stat(loop, d / "missing", [&](std::error_code ec, uvkit::file_stat st) {
        ++calls;
        CHECK(ec == uv_code(UV_ENOENT));
        CHECK(st.size == 0);
    });
    loop.run();
    CHECK(calls == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_fstat (test-fs.c)") {
    scratch d;
    co_run(loop, [&]() -> uvkit::task<void> {
        uvkit::file f = co_await uvkit::fs::async_open(loop, d / "f", UV_FS_O_RDWR | UV_FS_O_CREAT, 0644);
        co_await f.async_write("test-buffer\n", 0);
        uvkit::file_stat a = co_await f.async_stat();
        uvkit::file_stat b = co_await uvkit::fs::async_stat(loop, d / "f");
        CHECK(a.size == 12);
        CHECK(a.ino == b.ino);
        CHECK(a.dev == b.dev);
        CHECK(a.mtime == b.mtime);
        CHECK(a.is_regular());
    });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_access (test-fs.c)") {
    scratch d;
    co_run(loop, [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await uvkit::fs::async_access(loop, d / "f", 0, ec);
        CHECK(ec == uv_code(UV_ENOENT));
        put(d / "f", "");
        co_await uvkit::fs::async_access(loop, d / "f", 0);
        co_await uvkit::fs::async_access(loop, d.path.string(), 0);
    });
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: fs_chmod (test-fs.c)" UVKIT_SKIP_ON_WINDOWS("POSIX mode bits")) {
#ifndef _WIN32
    scratch d;
    put(d / "f", "x");
    co_run(loop, [&]() -> uvkit::task<void> {
        co_await uvkit::fs::async_chmod(loop, d / "f", 0200);
        CHECK(((co_await uvkit::fs::async_stat(loop, d / "f")).mode & 0777) == 0200);
        co_await uvkit::fs::async_chmod(loop, d / "f", 0400);
        uvkit::file f = co_await uvkit::fs::async_open(loop, d / "f", UV_FS_O_RDONLY, 0);
        co_await f.async_chmod(0600);
        CHECK(((co_await uvkit::fs::async_stat(loop, d / "f")).mode & 0777) == 0600);
    });
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_utime, fs_futime (test-fs.c)") {
    scratch d;
    put(d / "f", "x");
    const auto t =
        std::chrono::system_clock::time_point(std::chrono::seconds(400497753));  // 1982-09-10 11:22:33
    co_run(loop, [&]() -> uvkit::task<void> {
        co_await uvkit::fs::async_utime(loop, d / "f", t, t);
        uvkit::file_stat st = co_await uvkit::fs::async_stat(loop, d / "f");
        CHECK(std::chrono::floor<std::chrono::seconds>(st.atime) == t);
        CHECK(std::chrono::floor<std::chrono::seconds>(st.mtime) == t);
        uvkit::file f = co_await uvkit::fs::async_open(loop, d / "f", UV_FS_O_RDWR, 0);
        const auto t2 = t + std::chrono::seconds(86400);
        co_await f.async_utime(t2, t2);
        CHECK(std::chrono::floor<std::chrono::seconds>((co_await f.async_stat()).mtime) == t2);
    });
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: fs_link, fs_symlink, fs_readlink (test-fs.c)" UVKIT_SKIP_ON_WINDOWS(
                      "symlinks need privileges on Windows")) {
#ifndef _WIN32
    scratch d;
    put(d / "f", "test-buffer\n");
    co_run(loop, [&]() -> uvkit::task<void> {
        co_await uvkit::fs::async_link(loop, d / "f", d / "link");
        CHECK(slurp(d / "link") == "test-buffer\n");
        co_await uvkit::fs::async_symlink(loop, d / "f", d / "sym", 0);
        CHECK(co_await uvkit::fs::async_readlink(loop, d / "sym") == d / "f");
        std::error_code ec;
        co_await uvkit::fs::async_readlink(loop, d / "no_such_file", ec);
        CHECK(ec == uv_code(UV_ENOENT));
        ec.clear();
        co_await uvkit::fs::async_link(loop, d / "f", d / "link", ec);
        CHECK(ec == uv_code(UV_EEXIST));
    });
#endif
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_realpath (test-fs.c)") {
    scratch d;
    co_run(loop, [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await uvkit::fs::async_realpath(loop, d / "no_such_file", ec);
        CHECK(ec == uv_code(UV_ENOENT));
        std::string r = co_await uvkit::fs::async_realpath(loop, d.path.string() + "/.");
        CHECK(stdfs::equivalent(r, d.path));
        CHECK(r.find("/.") == std::string::npos);
    });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_rename_to_existing_file (test-fs.c)") {
    scratch d;
    put(d / "a", "from");
    put(d / "b", "to");
    co_run(loop, [&]() -> uvkit::task<void> { co_await uvkit::fs::async_rename(loop, d / "a", d / "b"); });
    CHECK(slurp(d / "b") == "from");
    CHECK_FALSE(stdfs::exists(d / "a"));
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_mkdtemp, fs_mkstemp (test-fs.c)") {
    scratch d;
    co_run(loop, [&]() -> uvkit::task<void> {
        std::string a = co_await uvkit::fs::async_mkdtemp(loop, d / "test_dir_XXXXXX");
        std::string b = co_await uvkit::fs::async_mkdtemp(loop, d / "test_dir_XXXXXX");
        CHECK(a.size() == (d / "test_dir_XXXXXX").size());
        CHECK(a != b);
        uvkit::temp_file f1 = co_await uvkit::fs::async_mkstemp(loop, d / "test_file_XXXXXX");
        uvkit::temp_file f2 = co_await uvkit::fs::async_mkstemp(loop, d / "test_file_XXXXXX");
        CHECK(f1.path != f2.path);
        CHECK(f1.file.fd() != f2.file.fd());
        std::error_code ec;
        co_await uvkit::fs::async_mkstemp(loop, d / "test_file_", ec);  // no XXXXXX
        CHECK(ec == uv_code(UV_EINVAL));
    });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_statfs (test-fs.c)") {
    scratch d;
    co_run(loop, [&]() -> uvkit::task<void> {
        uvkit::fs_stats s = co_await uvkit::fs::async_statfs(loop, d.path.string());
        CHECK(s.bsize > 0);
        CHECK(s.bfree <= s.blocks);
        CHECK(s.bavail <= s.blocks);
    });
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_async_sendfile, fs_async_sendfile_nodata (test-fs.c)") {
    scratch d;
    std::string data(65536, 'a');
    data += "b";
    put(d / "src", data);
    co_run(loop, [&]() -> uvkit::task<void> {
        uvkit::file in = co_await uvkit::fs::async_open(loop, d / "src", UV_FS_O_RDONLY, 0);
        uvkit::file out =
            co_await uvkit::fs::async_open(loop, d / "dst", UV_FS_O_WRONLY | UV_FS_O_CREAT, 0644);
        std::size_t n = co_await in.async_sendfile(out, 1, 65536);
        CHECK(n == 65536);
        CHECK(co_await in.async_sendfile(out, static_cast<std::int64_t>(data.size()), 100) ==
              0);  // nothing left
    });
    CHECK(slurp(d / "dst") == data.substr(1));
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_copyfile (test-fs-copyfile.c)") {
    scratch d;
    put(d / "fixture", "test-buffer\n");
    co_run(loop, [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await uvkit::fs::async_copyfile(loop, d / "fixture", d / "dst", -1, ec);  // bad flags
        CHECK(ec == uv_code(UV_EINVAL));
        ec.clear();
        co_await uvkit::fs::async_copyfile(loop, d / "none", d / "dst", 0, ec);
        CHECK(ec == uv_code(UV_ENOENT));
        CHECK_FALSE(stdfs::exists(d / "dst"));
        co_await uvkit::fs::async_copyfile(loop, d / "fixture", d / "fixture", 0);  // onto itself
        CHECK(slurp(d / "fixture") == "test-buffer\n");
        co_await uvkit::fs::async_copyfile(loop, d / "fixture", d / "dst", 0);
        CHECK(slurp(d / "dst") == "test-buffer\n");
        put(d / "empty", "");
        co_await uvkit::fs::async_copyfile(loop, d / "empty", d / "dst", 0);  // overwrites, truncates
        CHECK(slurp(d / "dst").empty());
        ec.clear();
        co_await uvkit::fs::async_copyfile(loop, d / "fixture", d / "dst", UV_FS_COPYFILE_EXCL, ec);
        CHECK(ec == uv_code(UV_EEXIST));
        co_await uvkit::fs::async_copyfile(loop, d / "fixture", d / "dst2", UV_FS_COPYFILE_FICLONE);
        CHECK(slurp(d / "dst2") == "test-buffer\n");
        ec.clear();
        co_await uvkit::fs::async_copyfile(loop, d / "fixture", d / "dst3", UV_FS_COPYFILE_FICLONE_FORCE, ec);
        if (!ec)
            CHECK(slurp(d / "dst3") ==
                  "test-buffer\n");  // else the file system cannot clone: an error, not a copy
        const std::string big(1 << 20, 'z');
        put(d / "big", big);
        co_await uvkit::fs::async_copyfile(loop, d / "big", d / "dst", 0);
        CHECK(slurp(d / "dst") == big);
        CHECK((co_await uvkit::fs::async_stat(loop, d / "dst")).mode ==
              (co_await uvkit::fs::async_stat(loop, d / "big")).mode);
    });
}

// ---------------------------------------------------------------- fs_event

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_event_watch_dir (test-fs-event.c)") {
    scratch d;
    uvkit::fs_event w{loop};
    std::vector<std::string> names;
    w.start(d.path.string(), 0, [&](std::error_code ec, std::string_view name, int events) {
        CHECK_FALSE(ec);
        CHECK((events == UV_CHANGE || events == UV_RENAME || events == (UV_CHANGE | UV_RENAME)));
        names.emplace_back(name);
    });
    for (int i = 0; i < 4; ++i) put(d / ("file" + std::to_string(i)), "x");
    run_until([&] {
        for (int i = 0; i < 4; ++i)
            if (std::find(names.begin(), names.end(), "file" + std::to_string(i)) == names.end())
                return false;
        return true;
    });
    w.close();
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: fs_event_watch_file, fs_event_watch_file_twice (test-fs-event.c)") {
    scratch d;
    put(d / "file1", "");
    uvkit::fs_event a{loop}, b{loop};
    int ca = 0, cb = 0;
    a.start(d / "file1", 0, [&](std::error_code ec, std::string_view, int) {
        CHECK_FALSE(ec);
        ++ca;
    });
    b.start(d / "file1", 0, [&](std::error_code ec, std::string_view, int) {
        CHECK_FALSE(ec);
        ++cb;
    });
    put(d / "file1", "changed");
    run_until([&] { return ca >= 1 && cb >= 1; });
    a.close();
    b.close();
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_event_watch_invalid_path (test-fs-event.c)") {
    uvkit::fs_event w{loop};
    std::error_code ec;
    w.start(
        "<:;", 0, [](std::error_code, std::string_view, int) {}, ec);
    CHECK(ec);
    CHECK_FALSE(w.active());
    ec.clear();
    w.start(
        "", 0, [](std::error_code, std::string_view, int) {}, ec);
    CHECK(ec);
    CHECK_FALSE(w.active());
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "conformance: fs_event_no_callback_after_close, fs_event_close_with_pending_event (test-fs-event.c)") {
    scratch d;
    put(d / "file1", "");
    uvkit::fs_event w{loop};
    int calls = 0;
    w.start(d / "file1", 0, [&](std::error_code, std::string_view, int) { ++calls; });
    put(d / "file1", "changed");  // an event is pending in the kernel
    bool closed = false;
    w.close([&] { closed = true; });
    loop.run();
    CHECK(closed);
    CHECK(calls == 0);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: fs_event_immediate_close, fs_event_start_and_close (test-fs-event.c)") {
    scratch d;
    {
        uvkit::fs_event w{loop};  // never started
    }
    uvkit::fs_event a{loop}, b{loop};
    a.start(d.path.string(), 0, [](std::error_code, std::string_view, int) {});
    b.start(d.path.string(), 0, [](std::error_code, std::string_view, int) {});
    a.close();
    b.close();
    loop.run();
    CHECK(loop.handle_count() == 0);
}

TEST_CASE_FIXTURE(loop_fixture,
                  "conformance: fs_event_close_in_callback, fs_event_stop_in_cb (test-fs-event.c)") {
    scratch d;
    uvkit::fs_event closer{loop}, stopper{loop};
    int closes = 0, stops = 0;
    closer.start(d.path.string(), 0, [&](std::error_code, std::string_view, int) {
        ++closes;
        closer.close();
    });
    stopper.start(d.path.string(), 0, [&](std::error_code, std::string_view, int) {
        ++stops;
        stopper.stop();
    });
    for (int i = 0; i < 3; ++i) put(d / ("f" + std::to_string(i)), "x");
    run_until([&] { return closes == 1 && stops == 1 && !stopper.active(); });
    loop.run(uvkit::run_mode::nowait);
    CHECK(closes == 1);
    CHECK(stops == 1);
    stopper.close();
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_event_getpath (test-fs-event.c)") {
    scratch d;
    uvkit::fs_event w{loop};
    CHECK(w.path().empty());
    w.start(d.path.string(), 0, [](std::error_code, std::string_view, int) {});
    CHECK(w.path() == d.path.string());
    w.stop();
    CHECK(w.path().empty());
    w.close();
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_event_ref (test-fs-event.c)") {
    scratch d;
    uvkit::fs_event w{loop};
    w.start(d.path.string(), 0, [](std::error_code, std::string_view, int) {});
    CHECK(loop.alive());
    w.unref();
    CHECK_FALSE(loop.alive());
    loop.run();  // returns at once: an unref'd watcher does not keep it going
    w.close();
}

// ---------------------------------------------------------------- fs_poll

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_poll (test-fs-poll.c): missing, created, changed, removed") {
    scratch d;
    const std::string p = d / "fixture";
    uvkit::fs_poll poll{loop};
    std::vector<std::error_code> seen;
    uvkit::timer act{loop};
    int step = 0;
    // Each step waits for the report of the previous one (a stat may also land inside a write
    // and report a half-done change first: those reports are only counted).
    poll.start(p, 1ms, [&](std::error_code ec, const uvkit::file_stat&, const uvkit::file_stat& curr) {
        seen.push_back(ec);
        if (step == 0 && ec == uv_code(UV_ENOENT)) {
            step = 1;
            act.start(5ms, [&] { put(p, "a"); });
        } else if (step == 1 && !ec && curr.size == 1) {
            step = 2;
            act.start(5ms, [&] { put(p, "abcdef"); });
        } else if (step == 2 && !ec && curr.size == 6) {
            step = 3;
            act.start(5ms, [&] { stdfs::remove(p); });
        } else if (step == 3 && ec == uv_code(UV_ENOENT)) {
            step = 4;
        }
    });
    run_until([&] { return step == 4; });
    CHECK(seen.front() == uv_code(UV_ENOENT));
    // ENOENT is reported when it starts, not again while it lasts: twice in all.
    CHECK(std::count(seen.begin(), seen.end(), uv_code(UV_ENOENT)) == 2);
    act.close();
    poll.close();
    run_all();  // fs_poll's close waits for its stat on the thread pool
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_poll_getpath (test-fs-poll.c)") {
    scratch d;
    uvkit::fs_poll poll{loop};
    CHECK(poll.path().empty());
    poll.start(d / "fixture", 100ms,
               [](std::error_code, const uvkit::file_stat&, const uvkit::file_stat&) {});
    CHECK(poll.path() == d / "fixture");
    poll.close();
    run_all();  // fs_poll's close waits for its stat on the thread pool
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_poll_ref (test-fs-poll.c)") {
    scratch d;
    uvkit::fs_poll poll{loop};
    poll.start(d / "fixture", 100ms,
               [](std::error_code, const uvkit::file_stat&, const uvkit::file_stat&) {});
    poll.unref();
    loop.run();  // returns: nothing referenced
    poll.close();
    run_all();  // fs_poll's close waits for its stat on the thread pool
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "conformance: fs_poll_close_request, fs_poll_close_request_multi_start_stop (test-fs-poll.c)") {
    scratch d;
    uvkit::fs_poll poll{loop};
    for (int i = 0; i < 10; ++i) {
        poll.start(d / "fixture", 100ms,
                   [](std::error_code, const uvkit::file_stat&, const uvkit::file_stat&) {});
        poll.stop();
    }
    poll.start(d / "fixture", 100ms,
               [](std::error_code, const uvkit::file_stat&, const uvkit::file_stat&) {});
    bool closed = false;
    poll.close([&] { closed = true; });
    loop.run();
    CHECK(closed);
}

TEST_CASE_FIXTURE(loop_fixture, "conformance: fs_poll_close_request_stop_when_active (test-fs-poll.c)") {
    scratch d;
    uvkit::fs_poll poll{loop};
    poll.start(d / "fixture", 10ms, [](std::error_code, const uvkit::file_stat&, const uvkit::file_stat&) {});
    loop.run(uvkit::run_mode::nowait);  // the first stat is in flight on the pool
    poll.stop();
    bool closed = false;
    poll.close([&] { closed = true; });
    loop.run();
    CHECK(closed);
}

}  // TEST_SUITE
