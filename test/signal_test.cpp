// uvkit::signal: SIGUSR1 raised by the test itself (uv_kill on our own pid).
#include <uvkit/uvkit.hpp>

#include <csignal>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>

#include "fixture.hpp"
#include "platform.hpp"

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

// Windows has no SIGUSR1; SIGBREAK is one that libuv watches there (a console event).
#ifdef _WIN32
constexpr int test_signum = SIGBREAK;
#else
constexpr int test_signum = SIGUSR1;
#endif

void raise_usr1() { REQUIRE(uv_kill(uv_os_getpid(), test_signum) == 0); }

}  // namespace

TEST_SUITE("signal") {

TEST_CASE_FIXTURE(loop_fixture,
                  "SIGUSR1 raised by the test reaches the handler with its number" UVKIT_SKIP_ON_WINDOWS(
                      "a process cannot raise a signal to itself: libuv delivers only console events "
                      "(SIGINT, SIGBREAK, SIGHUP, SIGWINCH)")) {
    uvkit::signal sig{loop};
    CHECK(sig.signum() == 0);
    std::vector<int> got;
    sig.start(test_signum, [&](int signum) { got.push_back(signum); });
    CHECK(sig.active());
    CHECK(sig.signum() == test_signum);
    raise_usr1();
    run_until([&] { return got.size() == 1; });
    CHECK(got == std::vector<int>{test_signum});
    // A repeating handle goes on watching.
    CHECK(sig.active());
    raise_usr1();
    run_until([&] { return got.size() == 2; });
    CHECK(got.back() == test_signum);
    sig.stop();
    CHECK_FALSE(sig.active());
    CHECK(sig.signum() == 0);
    sig.stop();  // twice is harmless
}

TEST_CASE_FIXTURE(loop_fixture,
                  "start_oneshot fires once and stops; another handle keeps watching" UVKIT_SKIP_ON_WINDOWS(
                      "a process cannot raise a signal to itself: libuv delivers only console events "
                      "(SIGINT, SIGBREAK, SIGHUP, SIGWINCH)")) {
    uvkit::signal keeper{loop};  // catches the second test_signum (the default action would end the process)
    uvkit::signal once{loop};
    int keeper_n = 0;
    int once_n = 0;
    keeper.start(test_signum, [&](int) { ++keeper_n; });
    once.start_oneshot(test_signum, [&](int signum) {
        CHECK(signum == test_signum);
        CHECK(once.signum() == test_signum);
        ++once_n;
    });
    CHECK(once.active());
    raise_usr1();
    run_until([&] { return keeper_n == 1 && once_n == 1; });
    CHECK_FALSE(once.active());
    CHECK(once.signum() == 0);
    raise_usr1();
    run_until([&] { return keeper_n == 2; });
    CHECK(once_n == 1);
    keeper.stop();
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "restarting replaces the handler; two handles on one signal are both called" UVKIT_SKIP_ON_WINDOWS(
        "a process cannot raise a signal to itself: libuv delivers only console events (SIGINT, SIGBREAK, "
        "SIGHUP, SIGWINCH)")) {
    uvkit::signal a{loop};
    uvkit::signal b{loop};
    int first = 0;
    int second = 0;
    int other = 0;
    a.start(test_signum, [&](int) { ++first; });
    a.start(test_signum, [&](int) { ++second; });
    b.start(test_signum, [&](int) { ++other; });
    raise_usr1();
    run_until([&] { return second == 1 && other == 1; });
    CHECK(first == 0);
    a.stop();
    b.stop();
    CHECK_FALSE(a.active());
    CHECK_FALSE(b.active());
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "invalid signal numbers fail with UV_EINVAL and the handler never runs" UVKIT_SKIP_ON_WINDOWS(
        "a process cannot raise a signal to itself: libuv delivers only console events (SIGINT, SIGBREAK, "
        "SIGHUP, SIGWINCH)")) {
    uvkit::signal sig{loop};
    std::error_code ec;
    int calls = 0;
    for (int bad : {0, -1, 100000}) {
        INFO("signum ", bad);
        sig.start(
            bad, [&](int) { ++calls; }, ec);
        CHECK(ec == einval);
        sig.start_oneshot(
            bad, [&](int) { ++calls; }, ec);
        CHECK(ec == einval);
        check_einval_throw([&] { sig.start(bad, [&](int) { ++calls; }); });
    }
    // SIGKILL cannot be caught: sigaction refuses it.
    sig.start(
        SIGKILL, [&](int) { ++calls; }, ec);
    CHECK(ec);
    CHECK_FALSE(sig.active());
    // Still usable afterwards.
    sig.start(
        test_signum, [&](int) { ++calls; }, ec);
    CHECK_FALSE(ec);
    raise_usr1();
    run_until([&] { return calls == 1; });
    sig.stop();
}

TEST_CASE_FIXTURE(loop_fixture, "an unreferenced signal handle does not keep the loop alive") {
    uvkit::signal sig{loop};
    sig.start(test_signum, [](int) {});
    CHECK(loop.alive());
    sig.unref();
    CHECK_FALSE(loop.alive());
    CHECK_FALSE(loop.run(uvkit::run_mode::nowait));
    CHECK(sig.active());
}

TEST_CASE_FIXTURE(loop_fixture, "destroying a signal handle inside its own handler" UVKIT_SKIP_ON_WINDOWS(
                                    "a process cannot raise a signal to itself: libuv delivers only console "
                                    "events (SIGINT, SIGBREAK, SIGHUP, SIGWINCH)")) {
    std::optional<uvkit::signal> sig{std::in_place, loop};
    uvkit::signal keeper{loop};  // catches later signals once `sig` is gone
    int n = 0;
    int kept = 0;
    keeper.start(test_signum, [&](int) { ++kept; });
    sig->start(test_signum, [&](int) {
        ++n;
        sig.reset();
    });
    raise_usr1();
    run_until([&] { return n == 1 && kept == 1; });
    CHECK_FALSE(sig.has_value());
    raise_usr1();
    run_until([&] { return kept == 2; });
    CHECK(n == 1);
    keeper.stop();
}

TEST_CASE_FIXTURE(
    loop_fixture,
    "every operation on a moved-from or default signal fails with UV_EINVAL" UVKIT_SKIP_ON_WINDOWS(
        "a process cannot raise a signal to itself: libuv delivers only console events (SIGINT, SIGBREAK, "
        "SIGHUP, SIGWINCH)")) {
    uvkit::signal original{loop};
    uvkit::signal moved{std::move(original)};
    uvkit::signal def;
    for (uvkit::signal* s : {&original, &def}) {
        CHECK_FALSE(static_cast<bool>(*s));
        check_einval_throw([&] { s->start(test_signum, [](int) {}); });
        check_einval_throw([&] { s->start_oneshot(test_signum, [](int) {}); });
        std::error_code ec;
        s->start(
            test_signum, [](int) {}, ec);
        CHECK(ec == einval);
        s->start_oneshot(
            test_signum, [](int) {}, ec);
        CHECK(ec == einval);
        s->stop();
        CHECK(s->signum() == 0);
        CHECK(s->raw() == nullptr);
        CHECK_FALSE(s->active());
        s->close();
    }
    def = std::move(moved);
    int n = 0;
    def.start_oneshot(test_signum, [&](int) { ++n; });
    raise_usr1();
    run_until([&] { return n == 1; });
    REQUIRE(def.raw() != nullptr);
    CHECK(uv_handle_get_type(def.raw_handle()) == UV_SIGNAL);
    // Closed: operations fail, the number reads 0.
    def.close();
    check_einval_throw([&] { def.start(test_signum, [](int) {}); });
    CHECK(def.signum() == 0);
    run_all();
}

TEST_CASE_FIXTURE(loop_fixture,
                  "a signal handler exception stops the loop and leaves run()" UVKIT_SKIP_ON_WINDOWS(
                      "a process cannot raise a signal to itself: libuv delivers only console events "
                      "(SIGINT, SIGBREAK, SIGHUP, SIGWINCH)")) {
    uvkit::signal sig{loop};
    sig.start(test_signum, [](int) { throw std::runtime_error("signal boom"); });
    raise_usr1();
    CHECK_THROWS_WITH_AS(run_until([] { return false; }), "signal boom", std::runtime_error);
    CHECK(sig.active());
    sig.stop();
}

TEST_CASE("signal: destroying the loop while a signal handle is active") {
    uvkit::signal sig;
    auto lp = std::make_unique<uvkit::loop>();
    sig = uvkit::signal{*lp};
    int n = 0;
    sig.start(test_signum, [&](int) { ++n; });
    lp.reset();
    CHECK(sig);
    CHECK(sig.closing());
    CHECK_FALSE(sig.active());
    CHECK(sig.signum() == 0);
    check_einval_throw([&] { sig.start(test_signum, [](int) {}); });
    check_einval_throw([&] { (void)sig.get_loop(); });
    CHECK(n == 0);
}

}  // TEST_SUITE("signal")
