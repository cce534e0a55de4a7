// uvkit::idle and the handle base it shares with every handle.
#include <uvkit/uvkit.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
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

TEST_SUITE_BEGIN("idle");

TEST_CASE_FIXTURE(loop_fixture, "start and stop") {
    uvkit::idle i{loop};
    CHECK_FALSE(i.active());
    int n = 0;
    i.start([&] { ++n; });
    CHECK(i.active());
    CHECK(loop.alive());
    i.stop();
    CHECK_FALSE(i.active());
    CHECK_FALSE(loop.alive());
    run_all();
    CHECK(n == 0);  // stopped before the loop ran
    i.stop();       // stopping twice is harmless
}

TEST_CASE_FIXTURE(loop_fixture, "the handler runs once per loop iteration") {
    uvkit::idle i{loop};
    int n = 0;
    i.start([&] { ++n; });
    for (int k = 0; k < 10; ++k) CHECK(loop.run(uvkit::run_mode::nowait));
    CHECK(n == 10);
    i.stop();
    CHECK_FALSE(loop.run(uvkit::run_mode::nowait));
    CHECK(n == 10);
}

TEST_CASE_FIXTURE(loop_fixture, "counting ticks, stopping inside the handler") {
    uvkit::idle i{loop};
    int n = 0;
    i.start([&] {
        if (++n == 100) i.stop();
    });
    run_all();
    CHECK(n == 100);
    CHECK_FALSE(i.active());

    // Restarting with a new handler replaces the old one.
    int m = 0;
    i.start([&] {
        ++m;
        i.stop();
    });
    run_all();
    CHECK(n == 100);
    CHECK(m == 1);
}

TEST_CASE_FIXTURE(loop_fixture, "destroying an idle handle inside its own handler") {
    std::optional<uvkit::idle> i{std::in_place, loop};
    int n = 0;
    i->start([&] {
        ++n;
        i.reset();
    });
    // A timer lets the loop iterate a few more times after the destruction.
    uvkit::timer later{loop};
    later.start(20ms, [] {});
    run_all();
    CHECK(n == 1);
    CHECK_FALSE(i.has_value());
}

TEST_CASE_FIXTURE(loop_fixture, "two idle handles run in the same iteration") {
    uvkit::idle a{loop};
    uvkit::idle b{loop};
    int na = 0;
    int nb = 0;
    a.start([&] { ++na; });
    b.start([&] { ++nb; });
    for (int k = 0; k < 5; ++k) loop.run(uvkit::run_mode::nowait);
    CHECK(na == 5);
    CHECK(nb == 5);
    a.stop();
    b.stop();
}

TEST_CASE_FIXTURE(loop_fixture, "every operation on a moved-from or default idle fails with UV_EINVAL") {
    uvkit::idle original{loop};
    uvkit::idle moved{std::move(original)};
    uvkit::idle def;
    for (uvkit::idle* i : {&original, &def}) {
        CHECK_FALSE(static_cast<bool>(*i));
        check_einval_throw([&] { i->start([] {}); });
        check_einval_throw([&] { (void)i->get_loop(); });
        std::error_code ec;
        i->start([] {}, ec);
        CHECK(ec == einval);
        i->stop();
        CHECK(i->raw() == nullptr);
        CHECK(i->raw_handle() == nullptr);
        CHECK_FALSE(i->active());
        CHECK(i->closing());
        i->ref();
        i->unref();
        CHECK_FALSE(i->has_ref());
        int closed = 0;
        i->close([&] { ++closed; });
        run_all();
        CHECK(closed == 0);
    }
    // Move assignment into the default one makes it usable.
    def = std::move(moved);
    CHECK(static_cast<bool>(def));
    CHECK_FALSE(static_cast<bool>(moved));
    int n = 0;
    def.start([&] {
        ++n;
        def.stop();
    });
    run_all();
    CHECK(n == 1);
    CHECK(&def.get_loop() == &loop);
}

TEST_CASE_FIXTURE(loop_fixture, "handle base: ref, unref, has_ref, active, closing") {
    uvkit::idle i{loop};
    CHECK(i.has_ref());
    CHECK_FALSE(i.active());
    CHECK_FALSE(i.closing());
    i.start([] {});
    CHECK(i.active());
    CHECK(loop.alive());

    i.unref();
    CHECK_FALSE(i.has_ref());
    CHECK(i.active());
    CHECK_FALSE(loop.alive());
    CHECK_FALSE(loop.run(uvkit::run_mode::nowait));  // an unreferenced handle keeps nothing going

    i.ref();
    CHECK(i.has_ref());
    CHECK(loop.alive());

    // raw() is the libuv handle; raw libuv calls and uvkit agree.
    REQUIRE(i.raw() != nullptr);
    CHECK(uv_handle_get_type(i.raw_handle()) == UV_IDLE);
    CHECK(reinterpret_cast<uv_handle_t*>(i.raw()) == i.raw_handle());
    CHECK(uv_is_active(i.raw_handle()) != 0);

    bool closed = false;
    i.close([&] { closed = true; });
    CHECK(i.closing());
    CHECK_FALSE(i.active());
    check_einval_throw([&] { i.start([] {}); });
    run_all();
    CHECK(closed);
    CHECK(i.closing());
    CHECK_FALSE(i.active());
    check_einval_throw([&] { (void)i.get_loop(); });
}

TEST_CASE_FIXTURE(loop_fixture, "an idle handler exception stops the loop; the handle keeps running after") {
    uvkit::idle i{loop};
    int n = 0;
    i.start([&] {
        if (++n == 3) throw std::runtime_error("idle boom");
        if (n == 6) i.stop();
    });
    CHECK_THROWS_WITH_AS(run_all(), "idle boom", std::runtime_error);
    CHECK(n == 3);
    CHECK(i.active());
    run_all();
    CHECK(n == 6);
}

TEST_SUITE_END();
