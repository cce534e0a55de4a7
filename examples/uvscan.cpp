// uvscan: a concurrent TCP connect scanner, with coroutines.
//
//     uvscan HOST PORTS [-c|--concurrency N] [-t|--timeout MS] [-a|--all]
//
// PORTS is a list of ports and ranges, e.g. 1-1024,8080 (each 1 to 65535;
// duplicates count once). HOST is resolved once and only its first address
// is scanned. For each port uvscan tries a full TCP connect and closes the
// connection at once:
//
//     open      the connect succeeded
//     closed    it was refused (RST)
//     timeout   no answer within --timeout (default 1000 ms): a firewall
//               dropped the SYN, or the host is down
//     error:E   any other failure, with libuv's error name (EHOSTUNREACH, EMFILE, ...)
//
// Output, sorted by port: one "PORT STATE" line per open port (with --all,
// per port), then a summary line:
//
//     22 open
//     8080 open
//     127.0.0.1: 1025 ports, 2 open, 1023 closed, 0 timeout, 0 error
//
// Concurrency: N workers (default 100, at most 10000) share the list; each
// has one connect in flight, so no more than N connects are ever pending.
// SIGINT/SIGTERM stop the scan; the ports done so far are printed and the
// summary says "interrupted".
//
// Exit status: 0 when the scan ran (whatever it found) or was interrupted; 1
// with one line on stderr if HOST cannot be resolved or the results cannot be
// written to stdout; 2 with one line for bad arguments.
#include <uvkit/uvkit.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

const char* const usage_text =
    "usage: uvscan HOST PORTS [-c|--concurrency N] [-t|--timeout MS] [-a|--all]\n"
    "\n"
    "Tries a TCP connect to each port of PORTS on HOST (its first address only).\n"
    "  PORTS              ports and ranges, e.g. 1-1024,8080 (1 to 65535)\n"
    "  -c, --concurrency  connects in flight at most (default 100, 1 to 10000)\n"
    "  -t, --timeout      milliseconds before a port counts as 'timeout' (default 1000)\n"
    "  -a, --all          a line for every port, not only the open ones\n"
    "  -h, --help         this text\n"
    "\n"
    "Output, sorted by port: 'PORT STATE' lines, STATE one of open, closed, timeout,\n"
    "error:NAME; then 'HOST: N ports, N open, N closed, N timeout, N error'.\n"
    "Exit status: 0 scanned (or SIGINT/SIGTERM), 1 HOST not found or stdout not\n"
    "writable, 2 bad arguments.\n";

struct options {
    std::string host;
    std::vector<std::uint16_t> ports;  // sorted, no duplicates
    unsigned concurrency = 100;
    std::chrono::milliseconds timeout = 1000ms;
    bool all = false;
};

bool parse_number(std::string_view text, unsigned min, unsigned max, unsigned& out) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min || value > max)
        return false;
    out = value;
    return true;
}

// "1-1024,8080" -> the sorted ports; returns the problem, or "" if there is none.
std::string parse_ports(std::string_view text, std::vector<std::uint16_t>& ports) {
    std::vector<bool> wanted(65536);
    for (;;) {
        std::size_t comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        std::size_t dash = item.find('-');
        unsigned first = 0, last = 0;
        bool ok = dash == std::string_view::npos
                      ? parse_number(item, 1, 65535, first) && parse_number(item, 1, 65535, last)
                      : parse_number(item.substr(0, dash), 1, 65535, first) &&
                            parse_number(item.substr(dash + 1), 1, 65535, last) && first <= last;
        if (!ok)
            return "bad port or range '" + std::string{item} +
                   "' in PORTS (ports 1 to 65535, ranges LOW-HIGH, commas between)";
        for (unsigned p = first; p <= last; ++p) wanted[p] = true;
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    for (unsigned p = 1; p < wanted.size(); ++p)
        if (wanted[p]) ports.push_back(static_cast<std::uint16_t>(p));
    return "";
}

std::string parse_args(int argc, char** argv, options& opt) {
    std::vector<std::string_view> operands;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "-a" || arg == "--all") {
            opt.all = true;
            continue;
        }
        bool conc = arg == "-c" || arg == "--concurrency";
        bool time = arg == "-t" || arg == "--timeout";
        if (!conc && !time) {
            if (arg.size() > 1 && arg[0] == '-') return "unknown option '" + std::string{arg} + "'";
            operands.push_back(arg);
            continue;
        }
        if (i + 1 == argc) return std::string{arg} + " needs a value";
        std::string_view value = argv[++i];
        unsigned n = 0;
        if (conc) {
            if (!parse_number(value, 1, 10000, n))
                return "bad concurrency '" + std::string{value} + "' (1 to 10000)";
            opt.concurrency = n;
        } else {
            if (!parse_number(value, 1, 600000, n))
                return "bad timeout '" + std::string{value} + "' (1 to 600000 ms)";
            opt.timeout = std::chrono::milliseconds{n};
        }
    }
    if (operands.size() != 2) return "need HOST and PORTS";
    if (operands[0].empty()) return "empty host";
    opt.host = operands[0];
    return parse_ports(operands[1], opt.ports);
}

// ------------------------------------------------------------ the scan

enum class state { pending, open, closed, timeout, error };

struct result {
    state st = state::pending;
    std::error_code ec;  // for state::error
};

struct scan {
    uvkit::loop& loop;
    const options& opt;
    uvkit::endpoint target;       // the one address scanned (its port changes per probe)
    std::vector<result> results;  // parallel to opt.ports
    std::size_t next = 0;         // the next port a worker takes
};

uvkit::task<result> probe(scan& s, std::uint16_t port) {
    const uvkit::endpoint ep = s.target.with_port(port);
    std::error_code ec;
    try {
        // The error_code form: a refused port (nearly all of them) costs no
        // exception; only an expired deadline throws.
        uvkit::tcp c = co_await uvkit::with_timeout(s.loop, s.opt.timeout, uvkit::connect(s.loop, ep, ec));
        if (!ec) {
            // On loopback a connect from an ephemeral port to that same port
            // "succeeds" with itself (TCP simultaneous open): nobody listens there.
            std::error_code lec;
            if (c.local_endpoint(lec) == ep) co_return result{state::closed, {}};
            co_return result{state::open, {}};  // ~tcp closes it
        }
    } catch (const std::system_error& e) {
        ec = e.code();
    }
    if (ec == uvkit::errc::canceled) co_return result{};  // stopping: still pending
    if (ec == std::errc::connection_refused) co_return result{state::closed, {}};
    if (ec == std::errc::timed_out) co_return result{state::timeout, {}};
    co_return result{state::error, ec};
}

// One of the N workers: one connect in flight at a time.
uvkit::task<void> worker(scan& s) {
    while (s.next < s.opt.ports.size()) {
        std::size_t i = s.next++;
        s.results[i] = co_await probe(s, s.opt.ports[i]);
        if (s.results[i].st == state::pending) co_return;  // cancelled
    }
}

void report(const scan& s, bool interrupted) {
    std::size_t count[5] = {};
    for (std::size_t i = 0; i < s.results.size(); ++i) {
        const result& r = s.results[i];
        ++count[static_cast<int>(r.st)];
        if (r.st == state::pending || (r.st != state::open && !s.opt.all)) continue;
        std::cout << s.opt.ports[i] << " ";
        switch (r.st) {
            case state::open: std::cout << "open"; break;
            case state::closed: std::cout << "closed"; break;
            case state::timeout: std::cout << "timeout"; break;
            default: std::cout << "error:" << uvkit::err_name(r.ec); break;
        }
        std::cout << "\n";
    }
    const std::string address = s.target.address();
    std::string who = s.opt.host == address ? address : s.opt.host + " (" + address + ")";
    std::cout << who << ": " << s.results.size() - count[0] << " ports, " << count[1] << " open, " << count[2]
              << " closed, " << count[3] << " timeout, " << count[4] << " error";
    if (interrupted) std::cout << " (interrupted, " << count[0] << " not scanned)";
    std::cout << std::endl;
}

uvkit::task<int> run_scan(uvkit::loop& loop, const options& opt) {
    std::error_code ec;
    std::vector<uvkit::endpoint> eps = co_await uvkit::async_resolve(loop, opt.host, "", ec);
    if (ec) {
        std::cerr << "uvscan: cannot resolve " << opt.host << ": " << ec.message() << "\n";
        co_return 1;
    }
    scan s{loop, opt, eps.front(), std::vector<result>(opt.ports.size())};

    uvkit::task_group workers{loop};
    uvkit::signal sigint{loop};
    uvkit::signal sigterm{loop};
    bool stopping = false;
    auto stop = [&](int) {
        stopping = true;
        workers.cancel();
        sigint.stop();  // a second signal ends a shutdown that hangs
        sigterm.stop();
    };
    sigint.start(SIGINT, stop);
    sigterm.start(SIGTERM, stop);

    std::size_t n = std::min<std::size_t>(opt.concurrency, opt.ports.size());
    for (std::size_t i = 0; i < n; ++i) workers.spawn(worker(s));
    co_await workers.join(ec);
    report(s, stopping);
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::cout << usage_text;
            return 0;
        }
    }
    options opt;
    if (std::string problem = parse_args(argc, argv, opt); !problem.empty()) {
        std::cerr << "uvscan: " << problem << "; see uvscan --help\n";
        return 2;
    }

    try {
        uvkit::loop loop;
        int status = uvkit::run(loop, run_scan(loop, opt));
        std::cout.flush();
        if (!std::cout) {  // e.g. stdout on a full disk: the results are lost, say so
            std::cerr << "uvscan: cannot write the results to stdout\n";
            return 1;
        }
        return status;
    } catch (const std::exception& e) {
        std::cerr << "uvscan: " << e.what() << "\n";
        return 1;
    }
}
