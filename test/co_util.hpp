// Helpers shared by the coroutine tests (co_*_test.cpp).
#pragma once

#include <uvkit/uvkit.hpp>

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "alloc_counter.hpp"

namespace uvkit_co_test {

/// Sets `*flag` when destroyed: shows that a coroutine frame was destroyed.
struct destroy_flag {
    bool* flag;
    explicit destroy_flag(bool* f) noexcept : flag(f) {}
    destroy_flag(const destroy_flag&) = delete;
    destroy_flag& operator=(const destroy_flag&) = delete;
    ~destroy_flag() { *flag = true; }
};

/// Starts a task by hand (it runs until its first suspension) without driving
/// the loop: lets a test destroy a task that is suspended.
template <class T>
void start(uvkit::task<T>& t) {
    t.handle().resume();
}

inline uvkit::task<uvkit::tcp> accept_one(uvkit::tcp& server) { co_return co_await server.async_accept(); }

inline uvkit::task<uvkit::tcp> connect_to(uvkit::loop& l, uvkit::endpoint ep) {
    co_return co_await uvkit::connect(l, ep);
}

inline uvkit::task<std::pair<uvkit::tcp, uvkit::tcp>> make_pair_task(uvkit::loop& l, uvkit::tcp& server,
                                                                     uvkit::endpoint ep) {
    auto [a, b] = co_await uvkit::when_all(accept_one(server), connect_to(l, ep));
    co_return std::pair<uvkit::tcp, uvkit::tcp>(std::move(a), std::move(b));
}

/// A connected pair of sockets: {server side, client side}. The tests bind it
/// with `auto ab = ...; auto& a = ab.first;`, not a structured binding: clang 14
/// cannot capture structured bindings in lambdas.
inline std::pair<uvkit::tcp, uvkit::tcp> connected_pair(uvkit::loop& l) {
    uvkit::tcp server{l};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    server.listen(8);
    auto ep = server.local_endpoint();
    return uvkit::run(l, make_pair_task(l, server, ep));
}

/// `warmup` + `n` round trips of one message between `a` and `b` (any two
/// connected streams with async_write(string_view) and async_read(span):
/// tcp, pipe, tls_stream), borrowed writes and span reads; returns the
/// allocations of the last `n`, or SIZE_MAX if a message came back wrong.
template <class A, class B>
uvkit::task<std::size_t> pingpong_allocations(A& a, B& b, int warmup, int n) {
    // The reads are written out twice, not in a helper task: awaiting a task
    // would allocate its frame inside the counted window.
    const std::string_view msg = "ping-pong-message";
    char buf[64];
    bool ok = true;
    std::size_t window_start = 0;
    for (int i = 0; i < warmup + n; ++i) {
        if (i == warmup) window_start = uvkit_test::allocations();
        co_await a.async_write(msg);
        std::size_t got = 0;
        while (got < msg.size()) got += co_await b.async_read(std::span<char>(buf + got, sizeof buf - got));
        ok = ok && std::string_view(buf, got) == msg;
        co_await b.async_write(std::string_view(buf, got));
        got = 0;
        while (got < msg.size()) got += co_await a.async_read(std::span<char>(buf + got, sizeof buf - got));
        ok = ok && std::string_view(buf, got) == msg;
    }
    std::size_t counted = uvkit_test::allocations() - window_start;
    co_return ok ? counted : static_cast<std::size_t>(-1);
}

/// An endpoint on which nothing listens (a port that was just free).
inline uvkit::endpoint closed_endpoint(uvkit::loop& l) {
    uvkit::tcp s{l};
    s.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    return s.local_endpoint();
}

/// Awaits when_any of `ts` and returns the index of the first to finish.
template <class... T>
uvkit::task<std::size_t> any_index(uvkit::task<T>... ts) {
    auto r = co_await uvkit::when_any(std::move(ts)...);
    co_return r.index();
}

/// Milliseconds of loop time between two loop.now() readings.
inline long long ms(std::chrono::milliseconds d) { return static_cast<long long>(d.count()); }

}  // namespace uvkit_co_test
