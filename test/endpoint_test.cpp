// uvkit::endpoint: parsing, formatting and comparing IPv4/IPv6 endpoints.
#include <uvkit/uvkit.hpp>

#ifndef _WIN32
#include <sys/un.h>
#endif
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "fixture.hpp"

TEST_SUITE_BEGIN("endpoint");

TEST_CASE("bad text throws std::invalid_argument naming the text") {
    const char* bad[] = {
        "",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:80x",
        "127.0.0.1: 80",
        "127.0.0.1:+80",
        "127.0.0.1:123456",
        "999.1.1.1:80",
        "1.2.3:80",
        "garbage:80",
        "localhost:80",
        ":80",
        "::1:80",
        "[::1]",
        "[::1]80",
        "[::1]:",
        "[::1]:65536",
        "[zz::1]:80",
        "[127.0.0.1]:80",
        "[]:80",
        "[::1:80",
    };
    for (std::string_view text : bad) {
        CAPTURE(text);
        try {
            (void)uvkit::endpoint::parse(text);
            FAIL("parse accepted bad text");
        } catch (const std::invalid_argument& e) {
            std::string msg = e.what();
            CHECK(msg.find("'" + std::string(text) + "'") != std::string::npos);
        }
        std::error_code ec;
        uvkit::endpoint ep = uvkit::endpoint::parse(text, ec);
        CHECK(ec == std::errc::invalid_argument);
        CHECK_FALSE(static_cast<bool>(ep));
        CHECK(ep.family() == AF_UNSPEC);
    }
}

TEST_CASE("the error_code form clears the code on success") {
    std::error_code ec = std::make_error_code(std::errc::io_error);
    uvkit::endpoint ep = uvkit::endpoint::parse("10.1.2.3:4", ec);
    CHECK_FALSE(ec);
    CHECK(ep.to_string() == "10.1.2.3:4");
}

TEST_CASE("good IPv4 text") {
    auto ep = uvkit::endpoint::parse("127.0.0.1:8080");
    CHECK(static_cast<bool>(ep));
    CHECK(ep.family() == AF_INET);
    CHECK(ep.port() == 8080);
    CHECK(ep.address() == "127.0.0.1");
    CHECK(ep.to_string() == "127.0.0.1:8080");
    CHECK(ep.size() == sizeof(sockaddr_in));
    REQUIRE(ep.data() != nullptr);
    CHECK(ep.data()->sa_family == AF_INET);
    auto* in = reinterpret_cast<const sockaddr_in*>(ep.data());
    CHECK(ntohs(in->sin_port) == 8080);
    CHECK(ntohl(in->sin_addr.s_addr) == 0x7f000001u);

    auto any = uvkit::endpoint::parse("0.0.0.0:0");
    CHECK(any.family() == AF_INET);
    CHECK(any.port() == 0);
    CHECK(any.address() == "0.0.0.0");
    CHECK(any.to_string() == "0.0.0.0:0");

    CHECK(uvkit::endpoint::parse("255.255.255.255:65535").port() == 65535);
}

TEST_CASE("good IPv6 text") {
    auto ep = uvkit::endpoint::parse("[::1]:80");
    CHECK(ep.family() == AF_INET6);
    CHECK(ep.port() == 80);
    CHECK(ep.address() == "::1");
    CHECK(ep.to_string() == "[::1]:80");
    CHECK(ep.size() == sizeof(sockaddr_in6));
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(ep.data());
    CHECK(ntohs(in6->sin6_port) == 80);
    CHECK(std::memcmp(&in6->sin6_addr, &in6addr_loopback, sizeof(in6_addr)) == 0);

    auto any = uvkit::endpoint::parse("[::]:0");
    CHECK(any.family() == AF_INET6);
    CHECK(any.port() == 0);
    CHECK(any.address() == "::");
    CHECK(any.to_string() == "[::]:0");

    auto mapped = uvkit::endpoint::parse("[::ffff:127.0.0.1]:9");
    CHECK(mapped.family() == AF_INET6);
    CHECK(mapped.port() == 9);
}

TEST_CASE("with_port: the same address with another port") {
    auto v4 = uvkit::endpoint::parse("10.1.2.3:80");
    auto e = v4.with_port(8080);
    CHECK(e.to_string() == "10.1.2.3:8080");
    CHECK(v4.port() == 80);  // the original is unchanged
    CHECK(e.with_port(80) == v4);
    auto v6 = uvkit::endpoint::parse("[fe80::1%1]:443");
    CHECK(v6.with_port(0).port() == 0);
    CHECK(v6.with_port(65535).address() == v6.address());  // the scope too
    CHECK(v6.with_port(65535).port() == 65535);
    CHECK(v6.with_port(443) == v6);
    CHECK_FALSE(uvkit::endpoint().with_port(80));  // empty stays empty
    CHECK(uvkit::endpoint().with_port(80).port() == 0);
}

TEST_CASE("equality") {
    CHECK(uvkit::endpoint::parse("127.0.0.1:80") == uvkit::endpoint::parse("127.0.0.1:80"));
    CHECK_FALSE(uvkit::endpoint::parse("127.0.0.1:80") == uvkit::endpoint::parse("127.0.0.1:81"));
    CHECK_FALSE(uvkit::endpoint::parse("127.0.0.1:80") == uvkit::endpoint::parse("127.0.0.2:80"));
    CHECK_FALSE(uvkit::endpoint::parse("0.0.0.0:0") == uvkit::endpoint::parse("[::]:0"));
    CHECK(uvkit::endpoint::parse("[::1]:80") == uvkit::endpoint::parse("[0:0:0:0:0:0:0:1]:80"));
    CHECK_FALSE(uvkit::endpoint::parse("[::1]:80") == uvkit::endpoint::parse("[::2]:80"));
    CHECK(uvkit::endpoint{} == uvkit::endpoint{});
    CHECK_FALSE(uvkit::endpoint{} == uvkit::endpoint::parse("0.0.0.0:0"));
}

TEST_CASE("constructing from an address and a port") {
    uvkit::endpoint v6{"::1", 80};
    CHECK(v6.family() == AF_INET6);
    CHECK(v6 == uvkit::endpoint::parse("[::1]:80"));
    CHECK(v6.to_string() == "[::1]:80");

    uvkit::endpoint v4{"192.168.1.2", 443};
    CHECK(v4.family() == AF_INET);
    CHECK(v4 == uvkit::endpoint::parse("192.168.1.2:443"));

    for (const char* bad : {"", "localhost", "1.2.3.4.5", "[::1]", "zz::1"}) {
        CAPTURE(bad);
        try {
            uvkit::endpoint e{bad, 80};
            FAIL("accepted a bad address: ", e.to_string());
        } catch (const std::invalid_argument& e) {
            CHECK(std::string(e.what()).find("'" + std::string(bad) + "'") != std::string::npos);
        }
    }
}

TEST_CASE("from(sockaddr*)") {
    auto v4 = uvkit::endpoint::parse("10.0.0.1:1234");
    CHECK(uvkit::endpoint::from(v4.data()) == v4);
    auto v6 = uvkit::endpoint::parse("[fe80::1]:5678");
    CHECK(uvkit::endpoint::from(v6.data()) == v6);

    sockaddr_in raw{};
    REQUIRE(uv_ip4_addr("1.2.3.4", 99, &raw) == 0);
    auto e = uvkit::endpoint::from(reinterpret_cast<const sockaddr*>(&raw));
    CHECK(e.to_string() == "1.2.3.4:99");

    CHECK_FALSE(static_cast<bool>(uvkit::endpoint::from(nullptr)));
#ifdef _WIN32
    sockaddr_storage un{};  // any family but AF_INET[6]
    un.ss_family = AF_UNIX;
#else
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
#endif
    auto u = uvkit::endpoint::from(reinterpret_cast<const sockaddr*>(&un));
    CHECK(u.family() == AF_UNSPEC);
    CHECK(u.size() == 0);
}

TEST_CASE("an empty endpoint") {
    uvkit::endpoint e;
    CHECK_FALSE(static_cast<bool>(e));
    CHECK(e.family() == AF_UNSPEC);
    CHECK(e.port() == 0);
    CHECK(e.address().empty());
    CHECK(e.to_string().empty());
    CHECK(e.size() == 0);
}

TEST_CASE("to_string() round-trips through parse()") {
    for (const char* text : {"127.0.0.1:1", "0.0.0.0:65535", "[::1]:80", "[::]:0", "[2001:db8::7]:443"}) {
        CAPTURE(text);
        auto ep = uvkit::endpoint::parse(text);
        CHECK(ep.to_string() == text);
        CHECK(uvkit::endpoint::parse(ep.to_string()) == ep);
    }
}

// Found by fuzz/endpoint_fuzzer: the scope of a link-local address was dropped
// by to_string(), so the text named a different endpoint.
TEST_CASE("an IPv6 scope survives to_string() and parse()") {
    char name[UV_IF_NAMESIZE] = {};
    std::size_t len = sizeof name;
    REQUIRE(uv_if_indextoiid(1, name, &len) == 0);  // interface 1 is loopback on every system
    const std::string text = std::string("[fe80::1%") + std::string(name, len) + "]:443";
    auto ep = uvkit::endpoint::parse(text);
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(ep.data());
    CHECK(in6->sin6_scope_id == 1);
    CHECK(ep.address() == "fe80::1%" + std::string(name, len));
    CHECK(ep.to_string() == text);
    CHECK(uvkit::endpoint::parse(ep.to_string()) == ep);
}

TEST_SUITE_END();
