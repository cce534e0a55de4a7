// http_request_fuzzer: the request parser of examples/uvhttpd over arbitrary
// bytes, and target_path over every target it accepts.
//
// Checks: a result is one of the documented ones (an error carries 400, 413,
// 414, 431, 501 or 505); a complete request consumed at least one byte and at
// most all, and every view it holds points into the input; parsing just the
// consumed bytes gives the same request, and one byte fewer asks for more;
// the parser never asks for more once the input exceeds what the limits allow.
// A path target_path calls safe is relative and has no "..", NUL or backslash.
// Every header value goes through parse_range (a single range lies inside the
// file), parse_http_date (a date survives format_http_date) and etag_listed.
#include <http_request.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "require.hpp"

namespace {

bool inside(std::string_view part, std::string_view whole) {
    if (part.empty()) return true;
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void check_path(std::string_view target) {
    const http::path_result p = http::target_path(target);
    if (p.status != 0) {
        require(p.status == 400 || p.status == 403);
        return;
    }
    require(p.path.empty() || p.path.front() != '/');
    require(p.path.find('\0') == std::string::npos);
    require(p.path.find('\\') == std::string::npos);
    std::string_view rest = p.path;
    while (!rest.empty()) {  // no "." or ".." segment
        const std::size_t slash = rest.find('/');
        const std::string_view seg = rest.substr(0, slash);
        require(seg != ".." && seg != ".");
        rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    }
}

// The header-value helpers uvhttpd applies to what a client sends: a range
// lies inside the file, a date round-trips through its formatted form.
void check_field(std::string_view v) {
    for (std::uint64_t size : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{1000}}) {
        const http::range_result rr = http::parse_range(v, size);
        if (rr.kind == http::range_result::single) require(rr.first <= rr.last && rr.last < size);
    }
    std::int64_t t = 0;
    if (http::parse_http_date(v, t)) {
        std::int64_t again = -1;
        require(http::parse_http_date(http::format_http_date(t), again) && again == t);
    }
    (void)http::etag_listed(v, "\"a-1\"");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    // Small limits, so that inputs of fuzzing size reach every limit.
    http::limits lim;
    lim.max_header = 512;
    lim.max_fields = 8;
    lim.max_body = 256;

    const http::parse_result r = http::parse_request(in, lim);
    switch (r.state) {
        case http::parse_state::error:
            require(r.status == 400 || r.status == 413 || r.status == 414 || r.status == 431 ||
                    r.status == 501 || r.status == 505);
            break;
        case http::parse_state::need_more:
            // Headers can be at most max_header bytes and a body at most max_body.
            require(in.size() <= lim.max_header + lim.max_body);
            // A head that is in is all there, and the body it announces is not.
            if (r.head_size != 0)
                require(r.head_size <= lim.max_header && r.body_length <= lim.max_body &&
                        in.size() - r.head_size < r.body_length &&
                        inside(r.req.method, in.substr(0, r.head_size)));
            else
                require(r.body_length == 0);
            break;
        case http::parse_state::complete: {
            require(r.consumed > 0 && r.consumed <= in.size());
            const std::string_view used = in.substr(0, r.consumed);
            require(inside(r.req.method, used) && inside(r.req.target, used) && inside(r.req.body, used));
            for (const auto& h : r.req.headers) require(inside(h.name, used) && inside(h.value, used));
            require(r.req.minor == 0 || r.req.minor == 1);
            require(r.req.headers.size() <= lim.max_fields);
            require(r.req.body.size() <= lim.max_body);
            require(r.head_size + r.body_length == r.consumed && r.body_length == r.req.body.size());

            const http::parse_result again = http::parse_request(used, lim);
            require(again.state == http::parse_state::complete && again.consumed == r.consumed);
            require(again.req.method == r.req.method && again.req.target == r.req.target);
            require(again.req.keep_alive == r.req.keep_alive && again.req.body == r.req.body);
            const http::parse_result shorter = http::parse_request(used.substr(0, r.consumed - 1), lim);
            require(shorter.state == http::parse_state::need_more);

            check_path(r.req.target);
            for (const auto& h : r.req.headers) check_field(h.value);
            break;
        }
    }
    return 0;
}
