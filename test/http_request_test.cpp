// uvhttpd's request parser (examples/http_request.hpp): a pure function over
// bytes, so every case here is a string in and a result out.
#include <http_request.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "doctest_include.hpp"

using http::parse_state;
using namespace std::string_literals;  // "..."s keeps embedded NULs

namespace {

http::parse_result parse(std::string_view bytes, const http::limits& lim = {}) {
    return http::parse_request(bytes, lim);
}

int status_of(std::string_view bytes, const http::limits& lim = {}) {
    http::parse_result r = parse(bytes, lim);
    return r.state == parse_state::error ? r.status : 0;
}

}  // namespace

TEST_SUITE("http_request") {

TEST_CASE("a simple GET, its fields and its length") {
    std::string bytes = "GET /a/b?q=1 HTTP/1.1\r\nHost: example\r\nUser-Agent:  curl/8 \r\nX-Empty:\r\n\r\n";
    http::parse_result r = parse(bytes);
    REQUIRE(r.state == parse_state::complete);
    CHECK(r.consumed == bytes.size());
    CHECK(r.req.method == "GET");
    CHECK(r.req.target == "/a/b?q=1");
    CHECK(r.req.minor == 1);
    CHECK(r.req.keep_alive);
    CHECK(r.req.body.empty());
    REQUIRE(r.req.headers.size() == 3);
    CHECK(r.req.headers[1].name == "User-Agent");
    CHECK(r.req.headers[1].value == "curl/8");  // surrounding whitespace trimmed
    CHECK(r.req.headers[2].value.empty());
}

TEST_CASE("header names are case-insensitive") {
    http::parse_result r =
        parse("GET / HTTP/1.1\r\nhOsT: x\r\nCONNECTION: Close\r\ncontent-LENGTH: 2\r\n\r\nab");
    REQUIRE(r.state == parse_state::complete);
    REQUIRE(r.req.find("Host") != nullptr);
    CHECK(*r.req.find("host") == "x");
    CHECK(r.req.find("missing") == nullptr);
    CHECK_FALSE(r.req.keep_alive);
    CHECK(r.req.body == "ab");
    CHECK(http::iequals("Content-Length", "content-length"));
    CHECK_FALSE(http::iequals("Content-Length", "content-lengt"));
}

TEST_CASE("every strict prefix needs more; the whole request completes") {
    std::string bytes = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        CAPTURE(i);
        CHECK(parse(std::string_view(bytes).substr(0, i)).state == parse_state::need_more);
    }
    http::parse_result r = parse(bytes);
    REQUIRE(r.state == parse_state::complete);
    CHECK(r.req.body == "hello");
    CHECK(r.consumed == bytes.size());
}

TEST_CASE("pipelined requests, each split at every byte boundary") {
    std::string a = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n";
    std::string b = "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz";
    std::string c = "HEAD /3 HTTP/1.0\r\n\r\n";
    std::string all = a + b + c;
    // Fed as if it arrived in two reads cut at `cut`: the requests come out in
    // order with the same bytes consumed, whatever the cut.
    for (std::size_t cut = 0; cut <= all.size(); ++cut) {
        CAPTURE(cut);
        std::string buf = all.substr(0, cut);
        std::string rest = all.substr(cut);
        std::vector<std::string> targets;
        for (int guard = 0; guard < 10; ++guard) {
            http::parse_result r = parse(buf);
            REQUIRE(r.state != parse_state::error);
            if (r.state == parse_state::need_more) {
                if (rest.empty()) break;
                buf += rest;
                rest.clear();
                continue;
            }
            targets.emplace_back(r.req.target);
            buf.erase(0, r.consumed);
        }
        CHECK(buf.empty());
        CHECK(targets == std::vector<std::string>{"/1", "/2", "/3"});
    }
}

TEST_CASE("keep-alive: HTTP/1.1 by default, HTTP/1.0 only when asked") {
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n").req.keep_alive);
    CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").req.keep_alive);
    CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, CLOSE\r\n\r\n").req.keep_alive);
    http::parse_result r10 = parse("GET / HTTP/1.0\r\n\r\n");
    REQUIRE(r10.state == parse_state::complete);
    CHECK(r10.req.minor == 0);
    CHECK_FALSE(r10.req.keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").req.keep_alive);
    CHECK(parse("GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n").req.keep_alive);
    CHECK(http::has_token(" a ,b,  close ", "close"));
    CHECK_FALSE(http::has_token("closed", "close"));
}

TEST_CASE("tolerated: bare LF line ends, empty lines before the request, a later HTTP/1.x") {
    http::parse_result r = parse("GET / HTTP/1.1\nHost: x\n\n");
    REQUIRE(r.state == parse_state::complete);
    CHECK(r.consumed == 24);
    r = parse("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(r.state == parse_state::complete);
    CHECK(r.consumed == 4 + 27);
    CHECK(parse("\r").state == parse_state::need_more);
    CHECK(parse("GET / HTTP/1.1\r").state == parse_state::need_more);
    r = parse("GET / HTTP/1.7\r\nHost: x\r\n\r\n");
    REQUIRE(r.state == parse_state::complete);
    CHECK(r.req.minor == 1);
}

TEST_CASE("400 for malformed request lines") {
    for (std::string_view line : {
             "GET\r\n", "GET /\r\n",
             "GET  / HTTP/1.1\r\n",         // two spaces
             "GET / HTTP/1.1 \r\n",         // trailing space
             "GET / http/1.1\r\n",          // the protocol name is case-sensitive
             "GET / HTTP/1\r\n",            //
             "GET / HTTP/1.x\r\n",          //
             "GET / HTTP/11.1\r\n",         //
             "G(T / HTTP/1.1\r\n",          // not a token
             " GET / HTTP/1.1\r\n",         //
             "GET /a\x01 HTTP/1.1\r\n",     // a control character in the target
             "GET /\xc3\xa9 HTTP/1.1\r\n",  // non-ASCII in the target
             "GET /a\rb HTTP/1.1\r\n",      // a stray CR
             "\rGET / HTTP/1.1\r\n",        //
         }) {
        CAPTURE(line);
        CHECK(status_of(std::string(line) + "Host: x\r\n\r\n") == 400);
    }
    CHECK(status_of("GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n"s) == 400);  // NUL
}

TEST_CASE("400 for malformed header fields") {
    for (std::string_view field : {
             "NoColon",
             "Bad Name: x",           // space in the name
             "Name : x",              // space before the colon
             ": x",                   // empty name
             " folded: x",            // obs-fold / leading whitespace
             "\tfolded: x",           //
             "X: a\x01z",             // control character in the value
             "X: a\x7fz",             //
             "X: a\rb",               // stray CR
             "Content-Length: -1",    //
             "Content-Length: 1 2",   //
             "Content-Length: 0x10",  //
             "Content-Length:",       //
         }) {
        CAPTURE(field);
        CHECK(status_of("GET / HTTP/1.1\r\nHost: x\r\n" + std::string(field) + "\r\n\r\n") == 400);
    }
    CHECK(status_of("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"s) == 400);  // NUL
    // Bytes >= 0x80 are allowed in values (obs-text).
    CHECK(status_of("GET / HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\r\n\r\n") == 0);
}

TEST_CASE("400 for Host missing or repeated, and for conflicting lengths") {
    CHECK(status_of("GET / HTTP/1.1\r\n\r\n") == 400);
    CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
    CHECK(status_of("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n") == 400);
    CHECK(status_of("GET / HTTP/1.0\r\n\r\n") == 0);  // HTTP/1.0 needs none
    CHECK(status_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab") == 400);
    http::parse_result same =
        parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab");
    REQUIRE(same.state == parse_state::complete);
    CHECK(same.req.body == "ab");
    // Both framings: 400 (request smuggling), Transfer-Encoding alone: 501.
    CHECK(
        status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        400);
    CHECK(status_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n") == 501);
}

TEST_CASE("505 for other HTTP versions") {
    CHECK(status_of("GET / HTTP/2.0\r\nHost: x\r\n\r\n") == 505);
    CHECK(status_of("GET / HTTP/0.9\r\nHost: x\r\n\r\n") == 505);
    CHECK(status_of("GET / HTTP/3.1\r\n\r\n") == 505);
}

TEST_CASE("head_size and body_length: known once the head is in, before the body") {
    const std::string head = "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n";
    http::parse_result r = parse("PUT /x HTTP/1.1\r\nHost: x\r\n");  // the head is not all here
    CHECK(r.state == parse_state::need_more);
    CHECK(r.head_size == 0);
    CHECK(r.body_length == 0);
    const std::string partial = head + "0123";  // the head is in, the body is not
    r = parse(partial);
    CHECK(r.state == parse_state::need_more);
    CHECK(r.head_size == head.size());
    CHECK(r.body_length == 10);
    CHECK(r.req.method == "PUT");
    CHECK(r.req.target == "/x");
    CHECK(r.req.keep_alive);
    const std::string whole = head + "0123456789GET";  // complete: the same sizes
    r = parse(whole);
    REQUIRE(r.state == parse_state::complete);
    CHECK(r.head_size == head.size());
    CHECK(r.body_length == 10);
    CHECK(r.consumed == head.size() + 10);
    r = parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // no body
    REQUIRE(r.state == parse_state::complete);
    CHECK(r.body_length == 0);
    CHECK(r.head_size == r.consumed);
}

TEST_CASE("413: Content-Length beyond the limit, known before the body arrives") {
    http::limits lim;
    lim.max_body = 10;
    CHECK(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", lim) == 0);
    CHECK(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", lim) == 413);
    // Longer than any integer: still 413, not an overflow.
    CHECK(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
                    lim) == 413);
    CHECK(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n", lim) ==
          413);  // 2^64, which a 64-bit multiply wraps to 0
    // A digit above a small limit is over it at once (max - d must not wrap): two lengths over
    // the limit both read as limit + 1, so the body is too large, not the lengths different.
    lim.max_body = 3;
    CHECK(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nContent-Length: 8\r\n\r\n", lim) ==
          413);
    CHECK(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n") ==
          413);  // default: 1 MiB
}

TEST_CASE("431: the header block beyond max_header, or too many fields") {
    http::limits lim;
    lim.max_header = 64;
    std::string head = "GET / HTTP/1.1\r\nHost: x\r\n";  // 25 bytes
    std::string exact = head + "X: " + std::string(64 - head.size() - 7, 'a') + "\r\n\r\n";
    REQUIRE(exact.size() == 64);
    CHECK(status_of(exact, lim) == 0);
    std::string over = head + "X: " + std::string(64 - head.size() - 6, 'a') + "\r\n\r\n";
    CHECK(status_of(over, lim) == 431);
    // Known as soon as the limit is passed, without waiting for the end.
    CHECK(status_of(head + std::string(100, 'a'), lim) == 431);
    CHECK(status_of(std::string(100, '\n'), lim) == 431);  // empty lines count too
    // A header that fits but whose body is still to come is not a 431.
    CHECK(parse(head + "Content-Length: 100\r\n\r\n", lim).state == parse_state::need_more);

    http::limits few;
    few.max_fields = 3;
    CHECK(status_of("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", few) == 0);
    CHECK(status_of("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", few) == 431);
}

TEST_CASE("414: a request line longer than max_header") {
    http::limits lim;
    lim.max_header = 64;
    CHECK(status_of("GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", lim) == 414);
    CHECK(status_of("GET /" + std::string(100, 'a'), lim) == 414);  // before its end arrived
    CHECK(parse("GET /" + std::string(50, 'a'), lim).state == parse_state::need_more);
}

TEST_CASE("any method parses; method_status serves GET and HEAD, 405 otherwise") {
    http::parse_result r = parse("BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(r.state == parse_state::complete);
    CHECK(r.req.method == "BREW");
    CHECK(http::method_status("GET") == 0);
    CHECK(http::method_status("HEAD") == 0);
    CHECK(http::method_status("POST") == 405);
    CHECK(http::method_status("DELETE") == 405);
    CHECK(http::method_status("get") == 405);  // methods are case-sensitive
    CHECK(http::allowed_methods == "GET, HEAD");
}

TEST_CASE("target_path: safe relative paths") {
    auto ok = [](std::string_view target) {
        http::path_result p = http::target_path(target);
        CHECK(p.status == 0);
        return p.path;
    };
    CHECK(ok("/") == "");
    CHECK(ok("/hello") == "hello");
    CHECK(ok("/a/b.txt?x=/../y#frag") == "a/b.txt");  // the query is not part of the path
    CHECK(ok("/dir/") == "dir");
    CHECK(ok("/a%20b/%41") == "a b/A");
    CHECK(ok("/.hidden") == ".hidden");
    CHECK(ok("/a..b") == "a..b");
    CHECK(ok("http://host:80/x/y") == "x/y");
    CHECK(ok("HTTP://host") == "");
    // Dot segments are resolved as in a URL, encoded or not, as long as they stay inside.
    CHECK(ok("/sub/../a.txt") == "a.txt");
    CHECK(ok("/a/./b/../c") == "a/c");
    CHECK(ok("/a/%2e%2E/b") == "b");
    CHECK(ok("/./a") == "a");
    CHECK(ok("/a/..") == "");
    CHECK(ok("/a/b/../../c/") == "c");
}

TEST_CASE("target_path: whether a directory is named, and the query") {
    auto dir = [](std::string_view target) {
        http::path_result p = http::target_path(target);
        REQUIRE(p.status == 0);
        return p.directory;
    };
    CHECK(dir("/"));
    CHECK(dir("/dir/"));
    CHECK(dir("/a/.."));
    CHECK(dir("/a/."));
    CHECK(dir("/a/b/..?q"));
    CHECK_FALSE(dir("/dir"));
    CHECK_FALSE(dir("/a.txt"));
    CHECK_FALSE(dir("/a/../b?x=/"));
    CHECK(http::target_path("/d?x=1&y#f").query == "?x=1&y");
    CHECK(http::target_path("/d#f?x").query == "");
    CHECK(http::target_path("/d").query == "");
    CHECK(http::target_path("http://h/d?q").query == "?q");
}

TEST_CASE("encode_path: safe in a Location header whatever the name holds") {
    CHECK(http::encode_path("") == "/");
    CHECK(http::encode_path("a/b-c_d.e~f") == "/a/b-c_d.e~f");
    CHECK(http::encode_path("a b") == "/a%20b");
    CHECK(http::encode_path("x\r\nSet-Cookie: y") == "/x%0D%0ASet-Cookie%3A%20y");
    CHECK(http::encode_path("%?#\xc3\xa9") == "/%25%3F%23%C3%A9");
}

TEST_CASE("parse_range: one range, suffix and open ranges, cut at the end") {
    using k = http::range_result;
    auto one = [](std::string_view v, std::uint64_t size, std::uint64_t first, std::uint64_t last) {
        CAPTURE(v);
        http::range_result r = http::parse_range(v, size);
        CHECK(r.kind == k::single);
        CHECK(r.first == first);
        CHECK(r.last == last);
    };
    one("bytes=0-99", 1000, 0, 99);
    one("bytes=900-", 1000, 900, 999);
    one("bytes=-100", 1000, 900, 999);
    one("bytes=-5000", 1000, 0, 999);  // more than there is: all of it
    one("bytes=900-5000", 1000, 900, 999);
    one("bytes=999-999", 1000, 999, 999);
    one("BYTES=1-2", 1000, 1, 2);  // the unit is case-insensitive
    one(" bytes=1-2 ", 1000, 1, 2);
    one("bytes=1-2, ,", 1000, 1, 2);                   // empty list elements do not count
    one("bytes=0-99999999999999999999999", 10, 0, 9);  // too many digits: cut at the end
    one("bytes=0-18446744073709551616", 10, 0, 9);     // 2^64: not wrapped to 0
}

TEST_CASE("parse_range: unsatisfiable, malformed, several ranges, other units") {
    using k = http::range_result;
    for (std::string_view v :
         {"bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=5-2", "bytes=abc", "bytes=1",
          "bytes=", "bytes=--1", "bytes=1-2-3", "bytes=0x1-2", "bytes=99999999999999999999999-",
          // 2^64 and 2^64 + 1: values that wrap a 64-bit multiply to small ones
          "bytes=18446744073709551616-", "bytes=18446744073709551617-18446744073709551618",
          "bytes=4611686018427387904-", "bytes=1844674407370955162-"}) {
        CAPTURE(v);
        CHECK(http::parse_range(v, 1000).kind == k::unsatisfiable);
    }
    CHECK(http::parse_range("bytes=0-", 0).kind == k::unsatisfiable);  // nothing to send from an empty file
    CHECK(http::parse_range("bytes=-1", 0).kind == k::unsatisfiable);
    CHECK(http::parse_range("bytes=0-1,5-6", 1000).kind == k::none);  // several: the whole file
    CHECK(http::parse_range("bytes=0-1,5000-6000", 1000).kind == k::none);
    CHECK(http::parse_range("bytes=2000-,5000-", 1000).kind == k::unsatisfiable);
    CHECK(http::parse_range("bytes=0-1,x", 1000).kind == k::unsatisfiable);
    CHECK(http::parse_range("items=0-1", 1000).kind == k::none);  // another unit: ignored
    CHECK(http::parse_range("", 1000).kind == k::none);
    CHECK(http::parse_range("bytes", 1000).kind == k::none);
}

TEST_CASE("HTTP dates: the three forms in, IMF-fixdate out") {
    std::int64_t t = -1;
    REQUIRE(http::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", t));
    CHECK(t == 784111777);
    t = -1;
    REQUIRE(http::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", t));
    CHECK(t == 784111777);
    t = -1;
    REQUIRE(http::parse_http_date("Sun Nov  6 08:49:37 1994", t));
    CHECK(t == 784111777);
    REQUIRE(http::parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", t));
    CHECK(t == 0);
    REQUIRE(http::parse_http_date("Wed, 02 Dec 2026 01:43:43 GMT", t));
    CHECK(http::format_http_date(t) == "Wed, 02 Dec 2026 01:43:43 GMT");
    CHECK(http::format_http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(http::format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
    for (std::string_view bad :
         {"", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 1994 08:49:37 GMT",
          "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
          "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 94 08:49:37 GMT", "Sun Nov  6 08:49:37 94",
          "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun, 0x Nov 1994 08:49:37 GMT"}) {
        CAPTURE(bad);
        std::int64_t untouched = 42;
        CHECK_FALSE(http::parse_http_date(bad, untouched));
        CHECK(untouched == 42);
    }
}

TEST_CASE("etag_listed: weak comparison over a list, and *") {
    CHECK(http::etag_listed("\"a-1\"", "\"a-1\""));
    CHECK(http::etag_listed("W/\"a-1\"", "\"a-1\""));
    CHECK(http::etag_listed("\"x\", \"a-1\"", "\"a-1\""));
    CHECK(http::etag_listed(" * ", "\"a-1\""));
    CHECK(http::etag_listed("\"a-1\"", "W/\"a-1\""));
    CHECK_FALSE(http::etag_listed("\"a-2\"", "\"a-1\""));
    CHECK_FALSE(http::etag_listed("a-1", "\"a-1\""));
    CHECK_FALSE(http::etag_listed("", "\"a-1\""));
    CHECK_FALSE(http::etag_listed(",,", "\"a-1\""));
}

TEST_CASE("target_path: 403 for anything that could leave the root, 400 for nonsense") {
    for (std::string_view target : {
             "/..",     "/../etc/passwd", "/a/../../b",   "/a/../..", "/./..",  "/%2e%2e/x", "/%2E%2E",
             "/.%2e/x", "/a/%2e/../..",   "//etc/passwd", "/a//b",    "/a%2fb", "/%2Fetc",   "/a\\b",
             "/a%5cb",  "/c:/x",          "/a%3ab",       "/a%00b",   "/a%0ab", "/a%7f",     "http://h/../x",
         }) {
        CAPTURE(target);
        CHECK(http::target_path(target).status == 403);
    }
    for (std::string_view target : {"*", "", "a/b", "example.com:80", "/a%", "/a%2", "/a%zz", "/%g0"}) {
        CAPTURE(target);
        CHECK(http::target_path(target).status == 400);
    }
}

}  // TEST_SUITE("http_request")
