// uvkit::operation<Derived, T>: a user's own awaitable in the cancel tree.
#include <uvkit/co/operation.hpp>

#include "fixture.hpp"

#include <uvkit/uvkit.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "co_util.hpp"

using namespace std::chrono_literals;

namespace {

/// A third-party callback API: answers after a delay on a timer, or at once
/// (delay 0 and `sync`), cancellable by id with a callback (status -1) or silently.
struct fake_client {
    explicit fake_client(uvkit::loop& l) : loop(l) {}
    uvkit::loop& loop;
    int next_id = 0;
    int started = 0;
    int cancelled = 0;
    int dropped = 0;
    struct req {
        uvkit::timer t;
        std::function<void(int, std::string)> cb;
    };
    std::map<int, std::unique_ptr<req>> reqs;

    int fetch(std::string key, std::chrono::milliseconds d, bool sync,
              std::function<void(int, std::string)> cb) {
        ++started;
        int id = ++next_id;
        if (sync) {
            cb(0, "now-" + key);
            return id;
        }
        auto r = std::make_unique<req>(req{uvkit::timer{loop}, std::move(cb)});
        r->t.start(d, [this, id, key] {
            auto node = reqs.extract(id);
            node.mapped()->cb(0, "got-" + key);
        });
        reqs[id] = std::move(r);
        return id;
    }
    void cancel(int id) {
        auto node = reqs.extract(id);
        if (node.empty()) return;
        ++cancelled;
        node.mapped()->cb(-1, "");
    }
    void drop(int id) {
        if (reqs.erase(id)) ++dropped;
    }
};

class fetch_op : public uvkit::operation<fetch_op, std::string> {
public:
    fetch_op(uvkit::loop& l, fake_client& c, std::string key, std::chrono::milliseconds d, bool sync = false)
        : operation(l), c_(c), key_(std::move(key)), d_(d), sync_(sync) {}
    fetch_op(uvkit::loop& l, fake_client& c, std::string key, std::chrono::milliseconds d,
             std::error_code& ec)
        : operation(l, ec), c_(c), key_(std::move(key)), d_(d), sync_(false) {}
    ~fetch_op() {
        if (pending()) c_.drop(id_);
    }
    void start() {
        id_ = c_.fetch(key_, d_, sync_, [this](int status, std::string v) {
            if (status == 0)
                complete(std::move(v));
            else
                fail(uvkit::errc::canceled);
        });
    }
    void on_cancel() noexcept { c_.cancel(id_); }

private:
    fake_client& c_;
    std::string key_;
    std::chrono::milliseconds d_;
    bool sync_;
    int id_ = 0;
};

/// Uses the default on_cancel (fail at once); the client's late answer is ignored.
class plain_op : public uvkit::operation<plain_op> {
public:
    plain_op(uvkit::loop& l, fake_client& c) : operation(l), c_(c) {}
    ~plain_op() {
        if (pending()) c_.drop(id_);
    }
    void start() {
        id_ = c_.fetch("p", 1h, false, [this](int, std::string) { complete(); });
    }

private:
    fake_client& c_;
    int id_ = 0;
};

class throwing_op : public uvkit::operation<throwing_op, int> {
public:
    explicit throwing_op(uvkit::loop& l) : operation(l) {}
    void start() { throw std::runtime_error("cannot start"); }
};

bool canceled(const std::system_error& e) { return e.code() == uvkit::errc::canceled; }

}  // namespace

TEST_SUITE("co: operation") {

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: operation completes from a callback, and at once inside start()") {
    fake_client c{loop};
    auto t = [&]() -> uvkit::task<std::string> {
        std::string a = co_await fetch_op{loop, c, "a", 1ms};
        std::string b = co_await fetch_op{loop, c, "b", 0ms, true};  // completes inside start()
        co_return a + "," + b;
    };
    CHECK(uvkit::run(loop, t()) == "got-a,now-b");
    CHECK(c.started == 2);
    // A million synchronous completions do not grow the stack.
    auto many = [&]() -> uvkit::task<int> {
        int n = 0;
        for (int i = 0; i < 100000; ++i) n += (co_await fetch_op{loop, c, "x", 0ms, true}).size() == 5;
        co_return n;
    };
    CHECK(uvkit::run(loop, many()) == 100000);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: a user's operation is cancelled by with_timeout, a handle, a token") {
    fake_client c{loop};
    auto timed = [&]() -> uvkit::task<bool> {
        try {
            co_await uvkit::with_timeout(loop, 1ms, fetch_op{loop, c, "slow", 1h});
        } catch (const std::system_error& e) {
            co_return e.code() == std::errc::timed_out;
        }
        co_return false;
    };
    CHECK(uvkit::run(loop, timed()));
    CHECK(c.cancelled == 1);
    CHECK(c.reqs.empty());

    auto body = [&]() -> uvkit::task<std::string> { co_return co_await fetch_op{loop, c, "h", 1h}; };
    auto h = uvkit::spawn(loop, body());
    h.cancel();
    CHECK(c.cancelled == 2);  // on_cancel ran at once
    CHECK_FALSE(h.done());    // but the task resumes from the loop, not inside cancel()
    auto join = [&]() -> uvkit::task<bool> {
        try {
            co_await h;
        } catch (const std::system_error& e) {
            co_return canceled(e);
        }
        co_return false;
    };
    CHECK(uvkit::run(loop, join()));

    uvkit::cancel_source src;
    uvkit::timer t{loop};
    t.start(1ms, [&] { src.cancel(); });
    CHECK_THROWS_AS(uvkit::run(loop, body(), src.token()), std::system_error);
    CHECK(c.cancelled == 3);

    // The std::error_code& form.
    auto quiet = [&]() -> uvkit::task<bool> {
        std::error_code ec;
        std::string v = co_await uvkit::with_timeout(loop, 1ms, fetch_op{loop, c, "q", 1h, ec});
        co_return ec == uvkit::errc::canceled&& v.empty();
    };
    CHECK_THROWS_AS(uvkit::run(loop, quiet()), std::system_error);  // timed out around it
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture,
                  "co: operation: already cancelled, default on_cancel, start() throwing") {
    fake_client c{loop};
    // A task already cancelled never calls start().
    auto t = [&]() -> uvkit::task<void> {
        std::error_code ec;
        co_await uvkit::sleep(loop, 1h, ec);  // cancelled
        try {
            co_await fetch_op{loop, c, "never", 1h};
        } catch (const std::system_error& e) {
            CHECK(canceled(e));
        }
    };
    auto h = uvkit::spawn(loop, t());
    h.cancel();
    loop.run();
    CHECK(h.done());
    CHECK(c.started == 0);

    // Default on_cancel: fails at once; the late answer is ignored (dropped by the destructor).
    auto p = [&]() -> uvkit::task<void> { co_await plain_op{loop, c}; };
    auto h2 = uvkit::spawn(loop, p());
    h2.cancel();
    auto join = [&]() -> uvkit::task<void> { CHECK_THROWS_AS(co_await h2, std::system_error); };
    uvkit::run(loop, join());
    CHECK(c.started == 1);

    auto th = [&]() -> uvkit::task<int> { co_return co_await throwing_op{loop}; };
    CHECK_THROWS_AS(uvkit::run(loop, th()), std::runtime_error);
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "co: the frame destroyed while a user's operation waits") {
    fake_client c{loop};
    {
        auto body = [&]() -> uvkit::task<std::string> { co_return co_await fetch_op{loop, c, "gone", 1ms}; };
        auto t = body();
        uvkit_co_test::start(t);
        CHECK(c.reqs.size() == 1);
    }
    CHECK(c.dropped == 1);  // its destructor told the client
    CHECK(c.reqs.empty());
    CHECK_FALSE(loop.run(uvkit::run_mode::nowait));
}

}  // TEST_SUITE
