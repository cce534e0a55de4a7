// uvkit::resolve, uvkit::resolve_name and uvkit::async_resolve. No external
// DNS is reachable here: every lookup is answered by /etc/hosts, is numeric,
// or fails before any query is sent.
#include "fixture.hpp"
#include "platform.hpp"

#include <uvkit/uvkit.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "co_util.hpp"
#include "pool_gate.hpp"

using namespace std::chrono_literals;
using uvkit_test::pool_gate;

namespace {

bool is_loopback(const uvkit::endpoint& ep) {
    std::string a = ep.address();
    return a.rfind("127.", 0) == 0 || a == "::1";
}

struct lookup {
    int calls = 0;
    std::error_code ec = uvkit::errc::unknown;
    std::vector<uvkit::endpoint> eps;
    auto handler() {
        return [this](std::error_code e, std::vector<uvkit::endpoint> v) {
            ++calls;
            ec = e;
            eps = std::move(v);
        };
    }
};

}  // namespace

TEST_SUITE("dns") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "dns: localhost resolves to a loopback endpoint") {
    lookup r;
    auto req = uvkit::resolve(loop, "localhost", "", r.handler());
    CHECK(req.pending());
    run_until([&] { return r.calls == 1; });
    REQUIRE_FALSE(r.ec);
    REQUIRE_FALSE(r.eps.empty());
    for (auto& ep : r.eps) {
        CHECK(is_loopback(ep));
        CHECK(ep.port() == 0);
    }
    // socktype defaults to stream: each address appears once.
    auto sorted = r.eps;
    std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.to_string() < b.to_string(); });
    CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
    CHECK_FALSE(req.pending());
    run_all();
    CHECK(r.calls == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "dns: numeric host and service") {
    lookup r;
    auto req = uvkit::resolve(loop, "127.0.0.1", "80", r.handler());
    run_until([&] { return r.calls == 1; });
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.eps.size() == 1);
    CHECK(r.eps[0] == uvkit::endpoint::parse("127.0.0.1:80"));

    lookup v6;
    uvkit::resolve_hints h;
    h.flags = uvkit::resolve_hints::numeric_host | uvkit::resolve_hints::numeric_service;
    auto req6 = uvkit::resolve(loop, "::1", "8080", v6.handler(), h);
    run_until([&] { return v6.calls == 1; });
    REQUIRE_FALSE(v6.ec);
    REQUIRE(v6.eps.size() == 1);
    CHECK(v6.eps[0].to_string() == "[::1]:8080");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "dns: socket_type::any lists an address once per type" UVKIT_SKIP_UNDER_WINE(
                      "getaddrinfo with no socket type returned one address instead of one per type")) {
    lookup any, dgram;
    uvkit::resolve_hints h;
    h.family = AF_INET;
    h.socktype = uvkit::socket_type::any;
    auto a = uvkit::resolve(loop, "127.0.0.1", "53", any.handler(), h);
    h.socktype = uvkit::socket_type::dgram;
    auto b = uvkit::resolve(loop, "127.0.0.1", "53", dgram.handler(), h);
    run_until([&] { return any.calls == 1 && dgram.calls == 1; });
    REQUIRE_FALSE(any.ec);
    REQUIRE_FALSE(dgram.ec);
    CHECK(any.eps.size() > 1);
    CHECK(dgram.eps.size() == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "dns: passive with no host gives the wildcard address") {
    lookup r;
    uvkit::resolve_hints h;
    h.family = AF_INET;
    h.flags = uvkit::resolve_hints::passive;
    auto req = uvkit::resolve(loop, "", "9000", r.handler(), h);
    run_until([&] { return r.calls == 1; });
    REQUIRE_FALSE(r.ec);
    REQUIRE(r.eps.size() == 1);
    CHECK(r.eps[0].to_string() == "0.0.0.0:9000");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "dns: a name that cannot exist fails fast with a clear error") {
    // A name with characters no host name may have: the resolver refuses it
    // without sending a query. And a numeric-only lookup of a name.
    lookup bad, numeric;
    auto a = uvkit::resolve(loop, "no such host!", "", bad.handler());
    uvkit::resolve_hints h;
    h.flags = uvkit::resolve_hints::numeric_host;
    auto b = uvkit::resolve(loop, "localhost", "", numeric.handler(), h);
    run_until([&] { return bad.calls == 1 && numeric.calls == 1; }, 10s);
    REQUIRE(bad.ec);
    CHECK(bad.ec.category() == uvkit::error_category());
    CHECK(bad.ec.value() == UV_EAI_NONAME);
    CHECK(uvkit::err_name(bad.ec) == "EAI_NONAME");
    CHECK(bad.ec.message() == "unknown node or service");
    CHECK(bad.eps.empty());
    CHECK(numeric.ec.value() == UV_EAI_NONAME);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "dns: an unknown .invalid name fails without hanging") {
    // RFC 6761: .invalid never resolves. The resolver may ask the configured
    // name server; offline that must still fail within the bound.
    lookup r;
    auto req = uvkit::resolve(loop, "no-such-host.invalid", "", r.handler());
    run_until([&] { return r.calls == 1; }, 30s);
    REQUIRE(r.ec);
    CHECK(r.ec != uvkit::errc::canceled);
    CHECK_FALSE(r.ec.message().empty());
    CHECK(uvkit::err_name(r.ec).rfind("EAI_", 0) == 0);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "dns: a failed start throws and never calls the handler") {
    int calls = 0;
    auto h = [&](std::error_code, std::vector<uvkit::endpoint>) { ++calls; };
    uvkit::resolve_hints bad_family;
    bad_family.family = 12345;
    CHECK_THROWS_AS((void)uvkit::resolve(loop, "localhost", "", h, bad_family), std::system_error);
    std::error_code ec;
    auto r1 = uvkit::resolve(loop, "localhost", "", h, bad_family, ec);
    CHECK(ec.value() == UV_EAI_FAMILY);
    CHECK_FALSE(r1.pending());

    uvkit::resolve_hints bad_type;
    bad_type.socktype = static_cast<uvkit::socket_type>(999);
    auto r2 = uvkit::resolve(loop, "localhost", "", h, bad_type, ec);
    CHECK(ec.value() == UV_EAI_SOCKTYPE);

    uvkit::resolve_hints bad_flags;
    bad_flags.flags = 0x40000000;
    auto r3 = uvkit::resolve(loop, "localhost", "", h, bad_flags, ec);
    CHECK(ec.value() == UV_EAI_BADFLAGS);
    CHECK(ec.message() == "bad ai_flags value");

    auto r4 = uvkit::resolve(loop, "", "", h, {}, ec);  // nothing to look up
    CHECK(ec == std::errc::invalid_argument);
    auto r5 = uvkit::resolve(loop, std::string_view("local\0host", 10), "", h, {}, ec);
    CHECK(ec == std::errc::invalid_argument);

    auto r6 = uvkit::resolve_name(
        loop, uvkit::endpoint{}, [&](std::error_code, std::string, std::string) { ++calls; }, 0, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK_THROWS_AS(
        (void)uvkit::resolve_name(loop, uvkit::endpoint{}, [&](std::error_code, std::string, std::string) {}),
        std::system_error);
    run_all();
    CHECK(calls == 0);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "dns: cancel before the lookup runs gives errc::canceled") {
    pool_gate gate{loop};  // no pool thread is free: the lookup waits in the queue
    lookup r;
    auto req = uvkit::resolve(loop, "localhost", "80", r.handler());
    CHECK(req.cancel());
    CHECK(r.calls == 0);  // never from inside cancel()
    run_until([&] { return r.calls == 1; });
    CHECK(r.ec == uvkit::errc::canceled);
    CHECK(r.ec == std::errc::operation_canceled);
    CHECK(r.eps.empty());
    gate.release();
    run_until([&] { return gate.all_finished(); });
    CHECK(r.calls == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "dns: destroying the request before completion") {
    lookup queued, detached;
    {
        pool_gate gate{loop};
        {
            auto req = uvkit::resolve(loop, "localhost", "", queued.handler());
        }  // destroyed while queued: cancelled, the handler still runs once
        uvkit::resolve(loop, "localhost", "", detached.handler()).detach();  // not cancelled
        run_until([&] { return queued.calls == 1; });
        CHECK(queued.ec == uvkit::errc::canceled);
        gate.release();
        run_until([&] { return gate.all_finished() && detached.calls == 1; });
    }
    CHECK(queued.calls == 1);
    REQUIRE_FALSE(detached.ec);
    CHECK_FALSE(detached.eps.empty());

    // Destroyed after the lookup started: it cannot be cancelled; the result arrives.
    lookup late;
    { auto req = uvkit::resolve(loop, "127.0.0.1", "", late.handler()); }
    run_until([&] { return late.calls == 1; });
    CHECK((late.ec == uvkit::errc::canceled || (!late.ec && late.eps.size() == 1)));
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "dns: reverse lookup of 127.0.0.1") {
    int calls = 0;
    std::error_code err = uvkit::errc::unknown;
    std::string host, service;
    auto req = uvkit::resolve_name(loop, uvkit::endpoint::parse("127.0.0.1:80"),
                                   [&](std::error_code ec, std::string h, std::string s) {
                                       ++calls;
                                       err = ec;
                                       host = std::move(h);
                                       service = std::move(s);
                                   });
    run_until([&] { return calls == 1; });
    REQUIRE_FALSE(err);
    CHECK_FALSE(host.empty());  // "localhost" from /etc/hosts (or the numeric form)
    CHECK((service == "http" || service == "80"));

    // Numeric flags: no lookup at all.
    calls = 0;
    auto req2 = uvkit::resolve_name(
        loop, uvkit::endpoint::parse("[::1]:8080"),
        [&](std::error_code ec, std::string h, std::string s) {
            ++calls;
            err = ec;
            host = std::move(h);
            service = std::move(s);
        },
        uvkit::name_flags::numeric_host | uvkit::name_flags::numeric_service);
    run_until([&] { return calls == 1; });
    REQUIRE_FALSE(err);
    CHECK(host == "::1");
    CHECK(service == "8080");
}

TEST_CASE("dns: destroying the loop with a lookup pending") {
    int calls = 0;
    {
        uvkit::loop l;
        uvkit::resolve(l, "localhost", "", [&](std::error_code, std::vector<uvkit::endpoint>) {
            ++calls;
        }).detach();
    }
    CHECK(calls == 1);  // cancelled or completed, during the destructor
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "dns: a host name over 255 bytes is refused, never looked up") {
    // libuv 1.44.2 would cut it to 256 bytes and look up another name (CVE-2024-24806).
    int calls = 0;
    auto h = [&](std::error_code, std::vector<uvkit::endpoint>) { ++calls; };
    const std::string longest = "no such host!" + std::string(uvkit::max_host_name - 13, 'a');
    REQUIRE(longest.size() == 255);
    const std::string too_long = longest + "a";
    std::error_code ec;
    for (const std::string& name : {too_long, too_long + ".localhost", std::string(100000, 'x')}) {
        auto r = uvkit::resolve(loop, name, "80", h, {}, ec);
        CHECK(ec == std::errc::invalid_argument);
        CHECK_FALSE(r.pending());
        CHECK_THROWS_AS((void)uvkit::resolve(loop, name, "80", h), std::system_error);
    }
    run_all();
    CHECK(calls == 0);
    // 255 bytes still go to the resolver, which refuses this one for its '!'.
    lookup at_limit;
    auto r = uvkit::resolve(loop, longest, "", at_limit.handler(), {}, ec);
    CHECK_FALSE(ec);
    run_until([&] { return at_limit.calls == 1; }, 30s);
    REQUIRE(at_limit.ec);
    CHECK(uvkit::err_name(at_limit.ec).rfind("EAI_", 0) == 0);
}

}  // TEST_SUITE("dns")

namespace {

uvkit::task<std::vector<uvkit::endpoint>> co_resolve(uvkit::loop& l, std::string host, std::string service) {
    co_return co_await uvkit::async_resolve(l, host, service);
}

uvkit::task<std::vector<uvkit::endpoint>> co_resolve_ec(uvkit::loop& l, std::string host,
                                                        std::error_code& ec) {
    co_return co_await uvkit::async_resolve(l, host, "", ec);
}

}  // namespace

TEST_SUITE("co: dns") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_resolve") {
    auto eps = uvkit::run(loop, co_resolve(loop, "localhost", "443"));
    REQUIRE_FALSE(eps.empty());
    for (auto& ep : eps) {
        CHECK(is_loopback(ep));
        CHECK(ep.port() == 443);
    }
    try {
        uvkit::run(loop, co_resolve(loop, "no such host!", ""));
        FAIL("expected an error");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == UV_EAI_NONAME);
        CHECK(std::string(e.what()).find("unknown node or service") != std::string::npos);
    }
    std::error_code ec;
    auto none = uvkit::run(loop, co_resolve_ec(loop, "no such host!", ec));
    CHECK(ec.value() == UV_EAI_NONAME);
    CHECK(none.empty());
    auto some = uvkit::run(loop, co_resolve_ec(loop, "127.0.0.1", ec));
    CHECK_FALSE(ec);
    CHECK(some.size() == 1);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_resolve refuses a host name over 255 bytes") {
    const std::string too_long(uvkit::max_host_name + 1, 'a');
    std::error_code ec;
    auto none = uvkit::run(loop, co_resolve_ec(loop, too_long, ec));
    CHECK(ec == std::errc::invalid_argument);
    CHECK(none.empty());
    CHECK_THROWS_AS(uvkit::run(loop, co_resolve(loop, too_long, "80")), std::system_error);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: async_resolve with bad hints fails at the co_await") {
    auto body = [&]() -> uvkit::task<void> {
        uvkit::resolve_hints h;
        h.family = -1;
        co_await uvkit::async_resolve(loop, "localhost", "", h);
    };
    CHECK_THROWS_AS(uvkit::run(loop, body()), std::system_error);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: with_timeout cancels a queued async_resolve") {
    pool_gate gate{loop};
    bool after = false;
    auto body = [&]() -> uvkit::task<void> {
        co_await uvkit::async_resolve(loop, "localhost", "");
        after = true;
    };
    try {
        uvkit::run(loop, uvkit::with_timeout(loop, 10ms, body()));
        FAIL("expected timed_out");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::timed_out);
    }
    CHECK_FALSE(after);
    gate.release();
    run_until([&] { return gate.all_finished(); });
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: destroying a task suspended on async_resolve") {
    pool_gate gate{loop};
    bool after = false;
    auto body = [&]() -> uvkit::task<void> {
        co_await uvkit::async_resolve(loop, "localhost", "");
        after = true;
    };
    {
        auto t = body();
        uvkit_co_test::start(t);
    }
    gate.release();
    run_until([&] { return gate.all_finished(); });
    run_all();
    CHECK_FALSE(after);

    // And while the lookup runs (no gate): its completion must not touch the frame.
    {
        auto t = body();
        uvkit_co_test::start(t);
    }
    run_all();
    CHECK_FALSE(after);
}

}  // TEST_SUITE("co: dns")
