#include "fixture.hpp"

#include <uvkit/uvkit.hpp>

using namespace std::chrono_literals;

namespace {
uvkit::task<int> answer(uvkit::loop& l) {
    co_await uvkit::sleep(l, 5ms);
    co_return 42;
}
uvkit::task<void> fail_after(uvkit::loop& l, std::chrono::milliseconds d) {
    co_await uvkit::sleep(l, d);
    throw std::runtime_error("boom");
}
uvkit::task<int> slow(uvkit::loop& l, int* cancelled) {
    std::error_code ec;
    co_await uvkit::sleep(l, 10s, ec);
    if (ec == uvkit::errc::canceled) ++*cancelled;
    co_return 1;
}
uvkit::task<std::string> echo_once(uvkit::loop& l, uvkit::endpoint ep) {
    uvkit::tcp c = co_await uvkit::connect(l, ep);
    co_await c.async_write("hello");
    std::string r = co_await c.async_read();
    co_return r;
}
uvkit::task<void> echo_serve(uvkit::tcp& server) {
    uvkit::tcp c = co_await server.async_accept();
    char buf[64];
    std::size_t n = co_await c.async_read(std::span<char>(buf));
    co_await c.async_write(std::string_view(buf, n));
    co_await c.async_shutdown();
}
}  // namespace

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co smoke: run, sleep, when_all, when_any, tcp") {
    CHECK(uvkit::run(loop, answer(loop)) == 42);
    auto both = [&]() -> uvkit::task<int> {
        auto [a, b] = co_await uvkit::when_all(answer(loop), answer(loop));
        co_return a + b;
    };
    CHECK(uvkit::run(loop, both()) == 84);
    int cancelled = 0;
    auto any = [&]() -> uvkit::task<std::size_t> {
        auto r = co_await uvkit::when_any(slow(loop, &cancelled), answer(loop));
        co_return r.index();
    };
    CHECK(uvkit::run(loop, any()) == 1);
    CHECK(cancelled == 1);
    auto all_fail = [&]() -> uvkit::task<void> {
        co_await uvkit::when_all(slow(loop, &cancelled), fail_after(loop, 1ms));
    };
    CHECK_THROWS_WITH(uvkit::run(loop, all_fail()), "boom");
    CHECK(cancelled == 2);
    CHECK_THROWS_AS(uvkit::run(loop, uvkit::with_timeout(loop, 5ms, slow(loop, &cancelled))),
                    std::system_error);

    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(16);
    auto ep = server.local_endpoint();
    auto both_ends = [&]() -> uvkit::task<std::string> {
        auto [s, r] = co_await uvkit::when_all(echo_serve(server), echo_once(loop, ep));
        co_return r;
    };
    CHECK(uvkit::run(loop, both_ends()) == "hello");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: with_timeout over an operation, and join(ec) of a cancelled joiner") {
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(16);
    auto ep = server.local_endpoint();
    // A silent peer: the deadline cancels the read itself (not a task around it).
    auto silent = [&]() -> uvkit::task<std::string> {
        uvkit::tcp c = co_await uvkit::connect(loop, ep);
        uvkit::tcp peer = co_await server.async_accept();
        try {
            co_await uvkit::with_timeout(loop, 20ms, c.async_read());
        } catch (const std::system_error& e) {
            co_return e.code() == std::errc::timed_out ? "timed out" : e.what();
        }
        co_return "read returned";
    };
    CHECK(uvkit::run(loop, silent()) == "timed out");

    // join(ec): the joiner is cancelled by a deadline; its children are
    // cancelled too and join reports canceled through ec instead of throwing.
    int children_cancelled = 0;
    auto child = [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await uvkit::sleep(loop, 10s, ec);
        if (ec == uvkit::errc::canceled) ++children_cancelled;
    };
    std::error_code join_ec;
    auto joiner = [&]() -> uvkit::task<void> {
        uvkit::task_group g{loop};
        g.spawn(child());
        g.spawn(child());
        co_await g.join(join_ec);
    };
    CHECK_THROWS_AS(uvkit::run(loop, uvkit::with_timeout(loop, 10ms, joiner())), std::system_error);
    CHECK(children_cancelled == 2);
    CHECK(join_ec == uvkit::errc::canceled);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: misuse is an exception, not a crash") {
    CHECK_THROWS_AS((void)uvkit::when_all(uvkit::task<int>{}, answer(loop)), std::invalid_argument);
    CHECK_THROWS_AS((void)uvkit::when_any(answer(loop), uvkit::task<int>{}), std::invalid_argument);
    auto t = answer(loop);
    auto h = t.handle();
    // Run the task to its end by hand, then hand it to run(): it must refuse.
    auto outer = [&]() -> uvkit::task<int> { co_return co_await std::move(t); };
    CHECK(uvkit::run(loop, outer()) == 42);
    REQUIRE(h.done());
    CHECK_THROWS_AS(uvkit::run(loop, std::move(t)), std::logic_error);
}
