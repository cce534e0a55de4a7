// http_request.cpp: see http_request.hpp. Every index is checked against the
// input's size before use: this code is meant to be fuzzed.
#include "http_request.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace http {

namespace {

bool is_tchar(unsigned char c) noexcept {
    // RFC 9110 token: ALPHA / DIGIT / "!#$%&'*+-.^_`|~"
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(static_cast<unsigned char>(c))) return false;
    return true;
}

bool is_field_char(unsigned char c) noexcept { return c == '\t' || (c >= 0x20 && c != 0x7f); }

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

parse_result fail(int status) {
    parse_result r;
    r.state = parse_state::error;
    r.status = status;
    return r;
}

enum class line_status { ok, need_more, too_long, bad };

// The line starting at `pos`, without its LF (and the CR before it). `pos`
// moves past the LF. A line that would end beyond `limit` bytes of input is
// too long, whether or not its end has arrived.
line_status next_line(std::string_view bytes, std::size_t& pos, std::size_t limit, std::string_view& line) {
    std::size_t nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos)
        return bytes.size() > limit ? line_status::too_long : line_status::need_more;
    if (nl + 1 > limit) return line_status::too_long;
    line = bytes.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) return line_status::bad;  // a stray CR
    pos = nl + 1;
    return line_status::ok;
}

// "HTTP/d.d": sets `minor`, returns 0, 400 or 505.
int parse_version(std::string_view v, int& minor) noexcept {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return 400;
    char major = v[5], min = v[7];
    if (major < '0' || major > '9' || min < '0' || min > '9') return 400;
    if (major != '1') return 505;
    // A later 1.x is answered as 1.1, the highest this server speaks (RFC 9110, 6.2).
    minor = min == '0' ? 0 : 1;
    return 0;
}

// Content-Length's digits; false if not all digits. Values beyond `max`
// (including ones too long for any integer) come back as max + 1.
bool parse_length(std::string_view v, std::size_t max, std::size_t& out) noexcept {
    if (v.empty()) return false;
    std::uint64_t n = 0;
    bool over = false;
    for (char c : v) {
        if (c < '0' || c > '9') return false;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (over || d > max || n > (max - d) / 10)  // n * 10 + d > max, asked without overflowing
            over = true;
        else
            n = n * 10 + d;
    }
    out = over ? max + 1 : static_cast<std::size_t>(n);
    return true;
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

bool has_token(std::string_view value, std::string_view token) noexcept {
    while (!value.empty()) {
        std::size_t comma = value.find(',');
        if (iequals(trim(value.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

const std::string_view* request::find(std::string_view name) const noexcept {
    for (const header& h : headers)
        if (iequals(h.name, name)) return &h.value;
    return nullptr;
}

parse_result parse_request(std::string_view bytes, const limits& lim) {
    std::size_t pos = 0;
    // Empty lines before the request line are skipped (RFC 9112, 2.2); they
    // count against the header limit like everything else.
    while (pos < bytes.size() && (bytes[pos] == '\r' || bytes[pos] == '\n')) {
        if (bytes[pos] == '\r') {
            if (pos + 1 == bytes.size()) break;  // the LF may follow
            if (bytes[pos + 1] != '\n') return fail(400);
            ++pos;
        }
        ++pos;
        if (pos > lim.max_header) return fail(431);
    }

    parse_result r;
    std::string_view line;
    switch (next_line(bytes, pos, lim.max_header, line)) {
        case line_status::ok: break;
        case line_status::need_more: return r;
        case line_status::too_long: return fail(414);
        case line_status::bad: return fail(400);
    }

    // METHOD SP TARGET SP VERSION, single spaces.
    std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return fail(400);
    std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return fail(400);
    request& req = r.req;
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (!is_token(req.method) || req.target.empty()) return fail(400);
    for (char c : req.target)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return fail(400);
    if (int status = parse_version(line.substr(sp2 + 1), req.minor)) return fail(status);

    // Header fields up to the empty line.
    for (;;) {
        switch (next_line(bytes, pos, lim.max_header, line)) {
            case line_status::ok: break;
            case line_status::need_more: return r;
            case line_status::too_long: return fail(431);
            case line_status::bad: return fail(400);
        }
        if (line.empty()) break;
        // A leading space or tab is obs-fold (or hides a field): refused, as RFC 9112 allows.
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) return fail(400);
        std::string_view name = line.substr(0, colon);
        if (!is_token(name)) return fail(400);  // also: whitespace before the colon
        std::string_view value = trim(line.substr(colon + 1));
        for (char c : value)
            if (!is_field_char(static_cast<unsigned char>(c))) return fail(400);
        if (req.headers.size() == lim.max_fields) return fail(431);
        req.headers.push_back({name, value});
    }
    const std::size_t header_end = pos;

    std::size_t hosts = 0;
    bool has_length = false;
    bool chunked = false;
    bool close = false;
    bool keep_alive = false;
    std::size_t length = 0;
    for (const header& h : req.headers) {
        if (iequals(h.name, "host")) {
            ++hosts;
        } else if (iequals(h.name, "transfer-encoding")) {
            chunked = true;
        } else if (iequals(h.name, "content-length")) {
            std::size_t n = 0;
            if (!parse_length(h.value, lim.max_body, n)) return fail(400);
            if (has_length && n != length) return fail(400);
            has_length = true;
            length = n;
        } else if (iequals(h.name, "connection")) {
            close = close || has_token(h.value, "close");
            keep_alive = keep_alive || has_token(h.value, "keep-alive");
        }
    }
    if (hosts > 1 || (req.minor == 1 && hosts == 0)) return fail(400);
    // Both framings at once is how requests are smuggled past proxies.
    if (chunked) return fail(has_length ? 400 : 501);
    if (length > lim.max_body) return fail(413);
    req.keep_alive = !close && (req.minor == 1 || keep_alive);
    r.head_size = header_end;
    r.body_length = length;

    if (bytes.size() - header_end < length) return r;  // the body is not all here yet
    req.body = bytes.substr(header_end, length);
    r.consumed = header_end + length;
    r.state = parse_state::complete;
    return r;
}

int method_status(std::string_view method) noexcept { return method == "GET" || method == "HEAD" ? 0 : 405; }

path_result target_path(std::string_view target) {
    path_result r;
    // absolute-form: "http://authority/path" -> "/path" (the authority is not checked).
    for (std::string_view scheme : {"http://", "https://"}) {
        if (target.size() >= scheme.size() && iequals(target.substr(0, scheme.size()), scheme)) {
            target.remove_prefix(scheme.size());
            std::size_t slash = target.find_first_of("/?#");
            target = slash == std::string_view::npos || target[slash] != '/' ? std::string_view("/")
                                                                             : target.substr(slash);
            break;
        }
    }
    if (target.empty() || target.front() != '/') {
        r.status = 400;
        return r;
    }
    target = target.substr(0, target.find('#'));
    if (std::size_t q = target.find('?'); q != std::string_view::npos) {
        r.query = target.substr(q);
        target = target.substr(0, q);
    }
    target.remove_prefix(1);  // the leading '/'

    // The decoded segments that remain after "." and ".." did their work;
    // `ends` holds where each one ends in r.path, so ".." can take one back.
    std::vector<std::size_t> ends;
    std::string segment;
    r.directory = true;  // "/" is the root directory
    while (true) {
        std::size_t slash = target.find('/');
        std::string_view raw = target.substr(0, slash);
        bool last = slash == std::string_view::npos;
        if (raw.empty()) {
            // "" is the root ("/") or a trailing slash ("/dir/"); anywhere else "//".
            if (!last) {
                r.status = 403;
                return r;
            }
            r.directory = true;
            break;
        }
        segment.clear();
        for (std::size_t i = 0; i < raw.size(); ++i) {
            char c = raw[i];
            if (c == '%') {
                if (raw.size() - i < 3 || hex_value(raw[i + 1]) < 0 || hex_value(raw[i + 2]) < 0) {
                    r.status = 400;
                    return r;
                }
                c = static_cast<char>(hex_value(raw[i + 1]) * 16 + hex_value(raw[i + 2]));
                i += 2;
            }
            unsigned char u = static_cast<unsigned char>(c);
            if (u < 0x20 || u == 0x7f || c == '/' || c == '\\' || c == ':') {
                r.status = 403;
                return r;
            }
            segment += c;
        }
        if (segment == "..") {
            if (ends.empty()) {  // above the root
                r.status = 403;
                return r;
            }
            ends.pop_back();
            r.path.resize(ends.empty() ? 0 : ends.back());
            r.directory = true;
        } else if (segment == ".") {
            r.directory = true;
        } else {
            if (!r.path.empty()) r.path += '/';
            r.path += segment;
            ends.push_back(r.path.size());
            r.directory = false;
        }
        if (last) break;
        target.remove_prefix(slash + 1);
    }
    return r;
}

std::string encode_path(std::string_view path) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out = "/";
    for (char c : path) {
        unsigned char u = static_cast<unsigned char>(c);
        if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~' || c == '/') {
            out += c;
        } else {
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    return out;
}

namespace {

// Decimal digits into `out`; values beyond 2^62 are kept at that (beyond any file).
bool parse_u64(std::string_view s, std::uint64_t& out) noexcept {
    if (s.empty()) return false;
    constexpr std::uint64_t cap = std::uint64_t{1} << 62;
    std::uint64_t n = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        const auto d = static_cast<std::uint64_t>(c - '0');
        n = n > (cap - d) / 10 ? cap : n * 10 + d;  // n * 10 + d > cap, asked without overflowing
    }
    out = n;
    return true;
}

}  // namespace

range_result parse_range(std::string_view value, std::uint64_t size) noexcept {
    range_result r;
    value = trim(value);
    if (value.size() < 6 || !iequals(value.substr(0, 6), "bytes=")) return r;  // another unit: ignored
    value.remove_prefix(6);
    unsigned specs = 0;
    bool satisfiable = false;
    range_result one;
    while (true) {
        std::size_t comma = value.find(',');
        std::string_view spec = trim(value.substr(0, comma));
        if (!spec.empty()) {  // empty list elements are allowed (RFC 9110, 5.6.1)
            ++specs;
            std::size_t dash = spec.find('-');
            if (dash == std::string_view::npos) {
                r.kind = range_result::unsatisfiable;
                return r;
            }
            std::uint64_t a = 0, b = 0;
            std::string_view left = spec.substr(0, dash), right = spec.substr(dash + 1);
            if (left.empty()) {  // "-n": the last n bytes
                if (!parse_u64(right, b)) {
                    r.kind = range_result::unsatisfiable;
                    return r;
                }
                if (b > 0 && size > 0) {
                    satisfiable = true;
                    one.first = b >= size ? 0 : size - b;
                    one.last = size - 1;
                }
            } else {
                if (!parse_u64(left, a) || (!right.empty() && !parse_u64(right, b)) ||
                    (!right.empty() && b < a)) {
                    r.kind = range_result::unsatisfiable;
                    return r;
                }
                if (a < size) {
                    satisfiable = true;
                    one.first = a;
                    one.last = right.empty() || b >= size ? size - 1 : b;
                }
            }
        }
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    if (!satisfiable) {
        r.kind = range_result::unsatisfiable;
        return r;
    }
    if (specs > 1) return r;  // several ranges: the whole representation
    one.kind = range_result::single;
    return one;
}

namespace {

constexpr std::string_view month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::string_view day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

bool digits(std::string_view s, int& out) noexcept {
    if (s.empty()) return false;
    int n = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        n = n * 10 + (c - '0');
    }
    out = n;
    return true;
}

int month_of(std::string_view s) noexcept {
    for (int i = 0; i < 12; ++i)
        if (s == month_names[i]) return i + 1;
    return 0;
}

// "hh:mm:ss"
bool time_of_day(std::string_view s, int& h, int& m, int& sec) noexcept {
    return s.size() == 8 && s[2] == ':' && s[5] == ':' && digits(s.substr(0, 2), h) &&
           digits(s.substr(3, 2), m) && digits(s.substr(6, 2), sec) && h < 24 && m < 60 && sec <= 60;
}

bool to_seconds(int year, int month, int day, int h, int m, int s, std::int64_t& out) noexcept {
    const std::chrono::year_month_day ymd{std::chrono::year{year},
                                          std::chrono::month{static_cast<unsigned>(month)},
                                          std::chrono::day{static_cast<unsigned>(day)}};
    if (month == 0 || !ymd.ok()) return false;
    const std::chrono::sys_days d{ymd};
    out = static_cast<std::int64_t>(d.time_since_epoch().count()) * 86400 + h * 3600 + m * 60 + s;
    return true;
}

}  // namespace

bool parse_http_date(std::string_view t, std::int64_t& seconds) noexcept {
    int year = 0, day = 0, h = 0, m = 0, s = 0;
    if (t.size() == 29 && t[3] == ',' && t[4] == ' ' && t[7] == ' ' && t[11] == ' ' && t[16] == ' ' &&
        t.substr(25) == " GMT") {  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        return digits(t.substr(5, 2), day) && digits(t.substr(12, 4), year) &&
               time_of_day(t.substr(17, 8), h, m, s) &&
               to_seconds(year, month_of(t.substr(8, 3)), day, h, m, s, seconds);
    }
    if (t.size() == 24 && t[3] == ' ' && t[7] == ' ' && t[10] == ' ' && t[19] == ' ') {
        // asctime: "Sun Nov  6 08:49:37 1994"
        std::string_view d = t.substr(8, 2);
        if (d[0] == ' ') d.remove_prefix(1);
        return digits(d, day) && digits(t.substr(20, 4), year) && time_of_day(t.substr(11, 8), h, m, s) &&
               to_seconds(year, month_of(t.substr(4, 3)), day, h, m, s, seconds);
    }
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    std::size_t comma = t.find(", ");
    if (comma == std::string_view::npos || comma < 6) return false;
    std::string_view rest = t.substr(comma + 2);
    if (rest.size() != 22 || rest[2] != '-' || rest[6] != '-' || rest[9] != ' ' || rest.substr(18) != " GMT")
        return false;
    if (!digits(rest.substr(0, 2), day) || !digits(rest.substr(7, 2), year) ||
        !time_of_day(rest.substr(10, 8), h, m, s))
        return false;
    year += year < 70 ? 2000 : 1900;  // two digits: 1970..2069
    return to_seconds(year, month_of(rest.substr(3, 3)), day, h, m, s, seconds);
}

std::string format_http_date(std::int64_t seconds) {
    const std::chrono::sys_seconds t{std::chrono::seconds{seconds}};
    const auto day = std::chrono::floor<std::chrono::days>(t);
    const std::chrono::year_month_day ymd{day};
    const std::chrono::hh_mm_ss hms{t - day};
    char text[40];
    std::snprintf(text, sizeof text, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                  day_names[std::chrono::weekday{day}.c_encoding()].data(), static_cast<unsigned>(ymd.day()),
                  month_names[static_cast<unsigned>(ymd.month()) - 1].data(), static_cast<int>(ymd.year()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return text;
}

bool etag_listed(std::string_view value, std::string_view etag) noexcept {
    value = trim(value);
    if (value == "*") return true;
    if (etag.substr(0, 2) == "W/") etag.remove_prefix(2);
    while (!value.empty()) {
        std::size_t comma = value.find(',');
        std::string_view tag = trim(value.substr(0, comma));
        if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
        if (!tag.empty() && tag == etag) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace http
