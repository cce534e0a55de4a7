// uvkit::prepare: runs once per iteration, before the loop polls for I/O.
#include <uvkit/uvkit.hpp>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "fixture.hpp"

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

TEST_SUITE("prepare") {

TEST_CASE_FIXTURE(loop_fixture, "prepare: start, once per iteration, stop") {
    uvkit::prepare p{loop};
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
    CHECK(uv_handle_get_type(p.raw_handle()) == UV_PREPARE);
}

TEST_CASE_FIXTURE(loop_fixture, "prepare: stopping and restarting from inside the handler") {
    uvkit::prepare p{loop};
    uvkit::idle spin{loop};  // an active prepare alone lets the loop block for I/O: keep it iterating
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

TEST_CASE_FIXTURE(loop_fixture, "prepare: runs after idle and timers, before the I/O of the same iteration") {
    uvkit::idle i{loop};
    uvkit::prepare p{loop};
    uvkit::timer t{loop};
    std::string trace;
    i.start([&] { trace += 'I'; });
    p.start([&] { trace += 'P'; });
    t.start(0ms, [&] { trace += 'T'; });
    loop.run(uvkit::run_mode::nowait);
    loop.run(uvkit::run_mode::nowait);
    CHECK(trace == "TIPIP");
    i.stop();
    p.stop();
}

TEST_CASE_FIXTURE(loop_fixture, "prepare: destroying it inside its own handler") {
    std::optional<uvkit::prepare> p{std::in_place, loop};
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
                  "prepare: every operation on a moved-from, default or closed handle fails with UV_EINVAL") {
    uvkit::prepare original{loop};
    uvkit::prepare moved{std::move(original)};
    uvkit::prepare def;
    for (uvkit::prepare* p : {&original, &def}) {
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
    int n = 0;
    def.start([&] {
        ++n;
        def.stop();
    });
    run_all();
    CHECK(n == 1);
    def.close();
    check_einval_throw([&] { def.start([] {}); });
    run_all();
}

TEST_CASE_FIXTURE(loop_fixture, "prepare: a handler exception stops the loop; run() rethrows") {
    uvkit::prepare p{loop};
    uvkit::idle spin{loop};
    spin.start([] {});
    int n = 0;
    p.start([&] {
        if (++n == 2) throw std::runtime_error("prepare boom");
        if (n == 4) {
            p.stop();
            spin.stop();
        }
    });
    CHECK_THROWS_WITH_AS(run_all(), "prepare boom", std::runtime_error);
    CHECK(n == 2);
    run_all();
    CHECK(n == 4);
}

TEST_CASE("prepare: destroying the loop while the handle is active") {
    uvkit::prepare p;
    auto lp = std::make_unique<uvkit::loop>();
    p = uvkit::prepare{*lp};
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

}  // TEST_SUITE("prepare")
