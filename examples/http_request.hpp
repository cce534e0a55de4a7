// http_request.hpp: uvhttpd's HTTP/1.x request parser, a pure function over
// bytes: no I/O, no uvkit, no allocation beyond the header list. It is what
// test/http_request_test.cpp unit-tests and what a fuzzer can drive:
//
//     http::parse_result r = http::parse_request(bytes, limits);
//     switch (r.state) {
//     case http::parse_state::need_more: /* read more bytes, call again with all of them */
//     case http::parse_state::complete:  /* r.req; drop r.consumed bytes, parse the rest */
//     case http::parse_state::error:     /* answer r.status and close the connection */
//     }
//
// The input is everything received and not yet consumed. The parser keeps no
// state between calls: on need_more, call it again with the same bytes plus
// what arrived since. A complete request's string_views point into `bytes`,
// so they are valid as long as those bytes are. Pipelined requests are parsed
// one per call: r.consumed is where the next one begins.
//
// What it accepts (RFC 9112, strictly, with two tolerances the RFC allows:
// empty lines before the request line are skipped, and a bare LF ends a line):
// - request line `METHOD SP TARGET SP HTTP/1.x`; the method a token, the
//   target any visible ASCII. Any method parses: which ones are served is the
//   server's business (method_status()).
// - header fields `name: value`; the name a token (no space before ':'), the
//   value visible ASCII, SP, HT or bytes >= 0x80. No obs-fold.
// - HTTP/1.1 needs exactly one Host header; HTTP/1.0 none.
// - a body only with Content-Length (digits; repeated only with one value).
//
// Errors, as the status code to answer with:
//   400  malformed request line, header or Content-Length; missing or repeated Host;
//        a stray CR; Content-Length together with Transfer-Encoding
//   413  Content-Length beyond limits.max_body (reported as soon as the header is in)
//   414  the request line alone is longer than limits.max_header
//   431  the header block (request line to the empty line) is longer than
//        limits.max_header, or has more than limits.max_fields fields
//   501  Transfer-Encoding (chunked request bodies are not supported)
//   505  an HTTP version other than 1.0 and 1.1
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace http {

struct limits {
    std::size_t max_header = 8 * 1024;   // request line + fields + empty line, in bytes
    std::size_t max_fields = 100;        // header fields
    std::size_t max_body = 1024 * 1024;  // Content-Length
};

struct header {
    std::string_view name;   // as sent; compare with iequals()
    std::string_view value;  // without surrounding whitespace
};

struct request {
    std::string_view method;  // case-sensitive, as HTTP says ("get" is not GET)
    std::string_view target;  // as sent: origin-form "/a/b?q", absolute-form, "*", ...
    int minor = 1;            // HTTP/1.<minor>: 0 or 1
    std::vector<header> headers;
    std::string_view body;  // Content-Length bytes
    // What the client asked for: HTTP/1.1 unless "Connection: close", HTTP/1.0
    // only with "Connection: keep-alive".
    bool keep_alive = true;

    /// The value of the first field named `name` (any case), or nullptr.
    const std::string_view* find(std::string_view name) const noexcept;
};

enum class parse_state { need_more, complete, error };

struct parse_result {
    parse_state state = parse_state::need_more;
    request req;               // when complete
    std::size_t consumed = 0;  // when complete: bytes of this request, body included
    int status = 0;            // when error: 400, 413, 414, 431, 501, 505
    // Once the head (request line to the empty line) is in and valid, whether
    // the body is complete or still missing (need_more): the head's size in
    // bytes and the body's (Content-Length, 0 without one); both 0 before.
    // In need_more with head_size != 0, `req` is filled in except its body:
    // a server that does not want the body can answer from it and drop the
    // body's bytes as they arrive, instead of keeping them to parse again.
    std::size_t head_size = 0;
    std::size_t body_length = 0;
};

/// Parses the request at the start of `bytes` (see the header comment).
parse_result parse_request(std::string_view bytes, const limits& lim);

/// ASCII case-insensitive equality, as header names and tokens compare.
bool iequals(std::string_view a, std::string_view b) noexcept;

/// True if the comma-separated list `value` (e.g. a Connection header) holds
/// `token`, in any case.
bool has_token(std::string_view value, std::string_view token) noexcept;

/// The methods uvhttpd serves, for the Allow header of a 405.
inline constexpr std::string_view allowed_methods = "GET, HEAD";

/// 0 for GET and HEAD, 405 (Method Not Allowed) for any other method.
int method_status(std::string_view method) noexcept;

/// Maps a request target to a file below the served directory.
struct path_result {
    int status = 0;    // 0: `path` is safe to join to the root; else 400 or 403
    std::string path;  // decoded, relative, '/'-separated, no "." or ".." segments; "" for the root
    // The target names a directory: it ended in '/' (or in a "." or ".."
    // segment, which stands for the directory it leaves you in). "/a.txt/"
    // is then no file, and "/dir" without it is redirected to "/dir/".
    bool directory = false;
    std::string_view query;  // "?..." as sent (no fragment), "" without one: for a redirect's Location
};

/// The safe relative path a target names. The query and fragment are
/// dropped, an absolute-form target ("http://host/p") loses its scheme and
/// authority, %XX escapes are decoded, and then "." and ".." segments are
/// resolved the way a URL's are (RFC 3986, 5.2.4): "/sub/../a.txt" is
/// "a.txt", "/sub/.." is the root. Both the plain and the encoded forms
/// ("%2e%2e") count, as a file system would see them after decoding.
///   400  not origin- or absolute-form (e.g. "*"), or a bad %-escape
///   403  anything that could leave the root or means something else on some
///        system, in whatever encoding: a ".." above the root, an empty
///        segment ("//"), a '\\', ':' or NUL, a control character, an encoded '/'.
/// 403 rather than 404: the request is understood and refused on purpose, and
/// says nothing about which files exist (the answer is the same whether the
/// file outside exists or not). The normalisation is textual: a symbolic
/// link in the path is not resolved here (uvhttpd checks the real path of
/// what it opens separately).
path_result target_path(std::string_view target);

/// `path` (as target_path gives it) as an absolute URL path: "/" followed by
/// it with every byte outside RFC 3986's unreserved set and "/" %-encoded,
/// so that it is safe in a Location header whatever the file names hold.
std::string encode_path(std::string_view path);

/// A Range header against a representation of `size` bytes (RFC 9110, 14.2).
struct range_result {
    enum kind {
        none,           // no usable Range (absent, another unit, several ranges): the whole, 200
        single,         // one satisfiable range: 206 with bytes first..last
        unsatisfiable,  // 416 with "Content-Range: bytes */size"
    } kind = none;
    std::uint64_t first = 0;  // when single: first and last byte, inclusive
    std::uint64_t last = 0;
};

/// Parses the value of a Range header. "bytes=a-b", "bytes=a-" (to the end)
/// and "bytes=-n" (the last n bytes) are one range; b beyond the end is cut
/// to the end. A range starting at or beyond `size`, "bytes=-0", "a-b" with
/// b < a, and a malformed bytes= list are unsatisfiable (416, as nginx
/// answers). Several ranges ("bytes=0-1,5-6") are answered with the whole
/// representation (none: RFC 9110 lets a server ignore Range), never with
/// multipart/byteranges. Another unit ("items=0-1") is ignored (none).
range_result parse_range(std::string_view value, std::uint64_t size) noexcept;

/// An HTTP-date (RFC 9110, 5.6.7) in seconds since 1970: the preferred
/// IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" and the two obsolete forms a
/// recipient must accept, "Sunday, 06-Nov-94 08:49:37 GMT" and
/// "Sun Nov  6 08:49:37 1994". False (and `seconds` untouched) for anything
/// else; the weekday is not checked against the date.
bool parse_http_date(std::string_view text, std::int64_t& seconds) noexcept;

/// `seconds` since 1970 as an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT".
std::string format_http_date(std::int64_t seconds);

/// True if an If-None-Match (or If-Match) value holds `etag` under the weak
/// comparison (RFC 9110, 8.8.3.2: "W/" is ignored on both sides), or is "*".
bool etag_listed(std::string_view value, std::string_view etag) noexcept;

}  // namespace http
