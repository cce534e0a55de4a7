// uvkit::fs_event and uvkit::fs_poll: watching paths, with handlers and with co_await async_next().
#include <uvkit/co/fs.hpp>
#include <uvkit/fs_event.hpp>
#include <uvkit/fs_poll.hpp>

#include <uvkit/uvkit.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "co_util.hpp"
#include "fixture.hpp"
#include "platform.hpp"

using namespace std::chrono_literals;
using uvkit_test::loop_fixture;
namespace stdfs = std::filesystem;

namespace {

struct watch_dir {
    stdfs::path path;
    watch_dir() {
        static int n = 0;
        path = stdfs::temp_directory_path() /
               ("uvkit-watch-" + std::to_string(uv_os_getpid()) + "-" + std::to_string(++n));
        stdfs::remove_all(path);
        stdfs::create_directories(path);
    }
    ~watch_dir() {
        std::error_code ec;
        stdfs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void append(const std::string& p, const std::string& text) {
    std::ofstream o(p, std::ios::binary | std::ios::app);
    o << text;
}

}  // namespace

TEST_SUITE("fs_event") {

TEST_CASE_FIXTURE(loop_fixture, "fs_event: a file created in a watched directory is reported by name") {
    watch_dir d;
    uvkit::fs_event w{loop};
    std::vector<std::string> names;
    int events_seen = 0;
    w.start(d.path.string(), 0, [&](std::error_code ec, std::string_view name, int events) {
        REQUIRE_FALSE(ec);
        CHECK((events & (UV_RENAME | UV_CHANGE)) != 0);
        ++events_seen;
        names.emplace_back(name);
    });
    CHECK(w.active());
    CHECK(stdfs::equivalent(w.path(), d.path));
    append(d / "new.txt", "x");
    run_until([&] { return std::find(names.begin(), names.end(), "new.txt") != names.end(); });
    CHECK(events_seen >= 1);
    w.stop();
    CHECK_FALSE(w.active());
    CHECK(w.path().empty());
    w.close();
}

TEST_CASE_FIXTURE(loop_fixture, "fs_event: a watched file that changes reports UV_CHANGE") {
    watch_dir d;
    const std::string p = d / "f";
    append(p, "a");
    uvkit::fs_event w{loop};
    int changes = 0;
    w.start(p, 0, [&](std::error_code ec, std::string_view, int events) {
        REQUIRE_FALSE(ec);
        if (events & UV_CHANGE) ++changes;
    });
    append(p, "b");
    run_until([&] { return changes >= 1; });
    w.close();
}

TEST_CASE_FIXTURE(loop_fixture,
                  "fs_event: errors: missing path, NUL in the path, no handler, empty watcher") {
    watch_dir d;
    uvkit::fs_event w{loop};
    std::error_code ec;
    w.start(
        d / "missing", 0, [](std::error_code, std::string_view, int) {}, ec);
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK_FALSE(w.active());
    ec.clear();
    w.start(
        d.path.string() + std::string("\0x", 2), 0, [](std::error_code, std::string_view, int) {}, ec);
    CHECK(ec == std::errc::invalid_argument);
    ec.clear();
    w.start(d.path.string(), 0, nullptr, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK_THROWS_AS(w.start(d / "missing", 0, [](std::error_code, std::string_view, int) {}),
                    std::system_error);
    uvkit::fs_event empty;
    ec.clear();
    empty.start(d.path.string(), 0, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(empty.path().empty());
    CHECK(empty.raw() == nullptr);
    w.close();
}

TEST_CASE_FIXTURE(loop_fixture, "fs_event: a handler may close and destroy its own watcher") {
    watch_dir d;
    auto w = std::make_unique<uvkit::fs_event>(loop);
    int calls = 0;
    w->start(d.path.string(), 0, [&](std::error_code, std::string_view, int) {
        ++calls;
        w.reset();
    });
    append(d / "a", "1");
    append(d / "b", "2");
    run_until([&] { return calls >= 1; });
    loop.run(uvkit::run_mode::nowait);
    CHECK(calls == 1);
    CHECK_FALSE(w);
}

TEST_CASE_FIXTURE(loop_fixture, "fs_event: co_await async_next() gives queued events; closing ends a wait") {
    watch_dir d;
    uvkit::fs_event w{loop};
    w.start(d.path.string());
    auto t = [&]() -> uvkit::task<std::string> {
        append(d / "co.txt", "x");
        for (int i = 0; i < 100; ++i) {
            uvkit::fs_event_record r = co_await w.async_next();
            if (r.filename == "co.txt") co_return r.filename;
        }
        co_return "";
    };
    CHECK(uvkit::run(loop, t()) == "co.txt");
    // A second waiter while one waits: EALREADY; closing: errc::canceled.
    std::error_code first, second;
    auto waiter = [&](std::error_code& out) -> uvkit::task<void> { co_await w.async_next(out); };
    auto closer = [&]() -> uvkit::task<void> {
        co_await uvkit::sleep(loop, 1ms);
        w.stop();
    };
    auto all = [&]() -> uvkit::task<void> {
        // drain what the write above may still have queued
        w.stop();
        w.start(d.path.string());
        co_await uvkit::when_all(waiter(first), waiter(second), closer());
    };
    uvkit::run(loop, all());
    CHECK(first == uvkit::errc::canceled);
    CHECK(second == uvkit::make_uv_error(UV_EALREADY));
    std::error_code not_queued;
    uvkit::fs_event cb{loop};
    cb.start(d.path.string(), 0, [](std::error_code, std::string_view, int) {});
    auto t2 = [&]() -> uvkit::task<void> { co_await cb.async_next(not_queued); };
    uvkit::run(loop, t2());
    CHECK(not_queued == std::errc::invalid_argument);
    cb.close();
    w.close();
}

TEST_CASE_FIXTURE(loop_fixture, "fs_event: destroying the watcher under a waiting async_next() cancels it") {
    watch_dir d;
    auto w = std::make_unique<uvkit::fs_event>(loop);
    w->start(d.path.string());
    std::error_code got;
    auto t = [&]() -> uvkit::task<void> { co_await w->async_next(got); };
    auto killer = [&]() -> uvkit::task<void> {
        co_await uvkit::sleep(loop, 1ms);
        w.reset();
    };
    auto both = [&]() -> uvkit::task<void> { co_await uvkit::when_all(t(), killer()); };
    uvkit::run(loop, both());
    CHECK(got == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(loop_fixture, "fs_event: a task destroyed while it waits leaves the watcher usable") {
    watch_dir d;
    uvkit::fs_event w{loop};
    w.start(d.path.string());
    {
        auto waiter = [&]() -> uvkit::task<void> { co_await w.async_next(); };  // outlives the task
        auto t = waiter();
        uvkit_co_test::start(t);
    }
    auto t2 = [&]() -> uvkit::task<bool> {
        append(d / "after", "x");
        uvkit::fs_event_record r = co_await w.async_next();
        co_return !r.ec;
    };
    CHECK(uvkit::run(loop, t2()));
    w.close();
}

}  // TEST_SUITE

TEST_SUITE("fs_poll") {

TEST_CASE_FIXTURE(loop_fixture, "fs_poll: a size change is reported with the status before and after") {
    watch_dir d;
    const std::string p = d / "p";
    append(p, "1");
    uvkit::fs_poll poll{loop};
    int grew = 0, shrank = 0;
    poll.start(p, 5ms, [&](std::error_code ec, const uvkit::file_stat& prev, const uvkit::file_stat& curr) {
        REQUIRE_FALSE(ec);
        // A stat can land inside a write, after its mtime and before its size moved: such a
        // report shows the same size; the size itself only ever grows here.
        if (curr.size > prev.size) ++grew;
        if (curr.size < prev.size) ++shrank;
        CHECK((curr.size != prev.size || curr.mtime != prev.mtime || curr.ctime != prev.ctime));
    });
    CHECK(stdfs::equivalent(poll.path(), p));
    // The first poll takes the baseline; keep growing the file until a change was seen.
    uvkit::timer grow{loop};
    grow.start(10ms, 10ms, [&] { append(p, "more"); });
    run_until([&] { return grew >= 1; });
    CHECK(shrank == 0);
    grow.close();
    poll.close();
    run_all();  // fs_poll's close waits for its stat on the thread pool
}

TEST_CASE_FIXTURE(loop_fixture, "fs_poll: a missing path reports ENOENT once, then its creation") {
    watch_dir d;
    const std::string p = d / "later";
    uvkit::fs_poll poll{loop};
    std::vector<std::error_code> seen;
    poll.start(p, 5ms, [&](std::error_code ec, const uvkit::file_stat&, const uvkit::file_stat& curr) {
        seen.push_back(ec);
        if (!ec) CHECK(curr.size == 3);
    });
    run_until([&] { return !seen.empty(); });
    CHECK(seen[0] == std::errc::no_such_file_or_directory);
    append(p, "abc");
    run_until([&] { return seen.size() >= 2; });
    CHECK_FALSE(seen[1]);
    poll.close();
    run_all();  // fs_poll's close waits for its stat on the thread pool
}

TEST_CASE_FIXTURE(loop_fixture, "fs_poll: errors and co_await async_next()") {
    watch_dir d;
    const std::string p = d / "q";
    append(p, "1");
    uvkit::fs_poll poll{loop};
    std::error_code ec;
    poll.start(p + std::string("\0", 1), 5ms, ec);
    CHECK(ec == std::errc::invalid_argument);
    ec.clear();
    poll.start(p, -1ms, ec);
    CHECK(ec == std::errc::invalid_argument);
    ec.clear();
    poll.start(p, 5ms, nullptr, ec);
    CHECK(ec == std::errc::invalid_argument);
    poll.start(p, 5ms);
    uvkit::timer grow{loop};
    grow.start(10ms, 10ms, [&] { append(p, "x"); });
    auto t = [&]() -> uvkit::task<bool> {
        for (int i = 0; i < 1000; ++i) {  // a report may show only a new mtime (see above)
            uvkit::fs_poll_record r = co_await poll.async_next();
            if (r.curr.size > r.prev.size) co_return true;
        }
        co_return false;
    };
    CHECK(uvkit::run(loop, t()));
    grow.close();
    std::error_code got;
    auto w = [&]() -> uvkit::task<void> { co_await poll.async_next(got); };
    auto closer = [&]() -> uvkit::task<void> {
        co_await uvkit::sleep(loop, 1ms);
        poll.close();
    };
    auto both = [&]() -> uvkit::task<void> {
        poll.stop();
        poll.start(p, 1000ms);  // nothing changes from now on
        co_await uvkit::when_all(w(), closer());
    };
    uvkit::run(loop, both());
    CHECK(got == uvkit::errc::canceled);
    run_all();  // fs_poll's close waits for its stat on the thread pool
}

}  // TEST_SUITE
