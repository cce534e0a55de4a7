// uvkit::check: runs once per iteration, after the loop polled for I/O.
#include <uvkit/uvkit.hpp>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "fixture.hpp"
#include "platform.hpp"

using namespace std::chrono_literals;
using uvkit_test::loop_fixture;

namespace {

const std::error_code einval = uvkit::make_uv_error(UV_EINVAL);

template <class F>
void check_einval_throw(F&& f) {
    try {
        f();
        FAIL("expected std::system_error(UV_EINVAL)");
    } catch (const std::system_error& e) {
        CHECK(e.code() == einval);
    }
}

}  // namespace

TEST_SUITE("check") {

TEST_CASE_FIXTURE(loop_fixture, "check: start, once per iteration, stop") {
    uvkit::check p{loop};
    CHECK_FALSE(p.active());
    int n = 0;
    p.start([&] { ++n; });
    CHECK(p.active());
    CHECK(loop.alive());
    for (int k = 0; k < 10; ++k) CHECK(loop.run(uvkit::run_mode::nowait));
    CHECK(n == 10);
    p.stop();
    CHECK_FALSE(p.active());
    CHECK_FALSE(loop.run(uvkit::run_mode::nowait));
    CHECK(n == 10);
    p.stop();  // twice is harmless
    REQUIRE(p.raw() != nullptr);
    CHECK(uv_handle_get_type(p.raw_handle()) == UV_CHECK);
}

TEST_CASE_FIXTURE(loop_fixture, "check: stopping and restarting from inside the handler") {
    uvkit::check p{loop};
    uvkit::idle spin{loop};  // an active check alone lets the loop block for I/O: keep it iterating
    spin.start([] {});
    int n = 0;
    int m = 0;
    p.start([&] {
        if (++n == 5) {
            p.start([&] {  // replaces the running handler
                ++m;
                p.stop();
                spin.stop();
            });
        }
    });
    run_all();
    CHECK(n == 5);
    CHECK(m == 1);
    CHECK_FALSE(p.active());
}

TEST_CASE_FIXTURE(loop_fixture, "check: prepare, then the iteration's I/O, then check" UVKIT_SKIP_ON_WINDOWS(
                                    "libuv on Windows runs the I/O callbacks that completed before idle and "
                                    "prepare, so the trace reads RIPCIPC")) {
    // A datagram already waiting in the kernel is received during the poll
    // phase of the next iteration: between prepare and check.
    uvkit::udp rx{loop};
    rx.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    uvkit::udp tx{loop};
    REQUIRE(tx.try_send("x", rx.local_endpoint()) == 1);
    uvkit::idle i{loop};
    uvkit::prepare p{loop};
    uvkit::check c{loop};
    std::string trace;
    i.start([&] { trace += 'I'; });
    c.start([&] { trace += 'C'; });
    p.start([&] { trace += 'P'; });
    rx.recv_start([&](std::error_code ec, std::string_view data, const uvkit::endpoint&, unsigned) {
        CHECK_FALSE(ec);
        CHECK(data == "x");
        trace += 'R';
    });
    loop.run(uvkit::run_mode::nowait);
    loop.run(uvkit::run_mode::nowait);
    CHECK(trace == "IPRCIPC");
    i.stop();
    p.stop();
    c.stop();
    rx.close();
    tx.close();
    run_all();
}

TEST_CASE_FIXTURE(loop_fixture, "check: destroying it inside its own handler") {
    std::optional<uvkit::check> p{std::in_place, loop};
    int n = 0;
    p->start([&] {
        ++n;
        p.reset();
    });
    uvkit::timer later{loop};
    later.start(10ms, [] {});
    run_all();
    CHECK(n == 1);
    CHECK_FALSE(p.has_value());
}

TEST_CASE_FIXTURE(loop_fixture,
                  "check: every operation on a moved-from, default or closed handle fails with UV_EINVAL") {
    uvkit::check original{loop};
    uvkit::check moved{std::move(original)};
    uvkit::check def;
    for (uvkit::check* p : {&original, &def}) {
        CHECK_FALSE(static_cast<bool>(*p));
        check_einval_throw([&] { p->start([] {}); });
        std::error_code ec;
        p->start([] {}, ec);
        CHECK(ec == einval);
        p->stop();
        CHECK(p->raw() == nullptr);
        CHECK_FALSE(p->active());
    }
    def = std::move(moved);
    uvkit::idle spin{loop};  // check runs after the poll: keep the poll from blocking
    spin.start([] {});
    int n = 0;
    def.start([&] {
        ++n;
        def.stop();
        spin.stop();
    });
    run_all();
    CHECK(n == 1);
    def.close();
    check_einval_throw([&] { def.start([] {}); });
    run_all();
}

TEST_CASE_FIXTURE(loop_fixture, "check: a handler exception stops the loop; run() rethrows") {
    uvkit::check p{loop};
    uvkit::idle spin{loop};
    spin.start([] {});
    int n = 0;
    p.start([&] {
        if (++n == 2) throw std::runtime_error("check boom");
        if (n == 4) {
            p.stop();
            spin.stop();
        }
    });
    CHECK_THROWS_WITH_AS(run_all(), "check boom", std::runtime_error);
    CHECK(n == 2);
    run_all();
    CHECK(n == 4);
}

TEST_CASE("check: destroying the loop while the handle is active") {
    uvkit::check p;
    auto lp = std::make_unique<uvkit::loop>();
    p = uvkit::check{*lp};
    int n = 0;
    p.start([&] { ++n; });
    lp->run(uvkit::run_mode::nowait);
    CHECK(n == 1);
    lp.reset();
    CHECK(p.closing());
    CHECK_FALSE(p.active());
    check_einval_throw([&] { p.start([] {}); });
    CHECK(n == 1);
}

}  // TEST_SUITE("check")
