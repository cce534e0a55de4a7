// co_legacy: a third-party callback API joins uvkit's cancel tree through uvkit::operation.
//
// `legacy_lookup` below stands for a C library you cannot change: it answers
// lookups after a delay through a C callback, and can cancel a lookup by id.
// `lookup_op` wraps it in a dozen lines: start() begins the lookup,
// on_cancel() cancels it, the destructor drops it if the awaiting frame goes.
// The wrapped lookups then work with everything uvkit cancels by:
// with_timeout, when_any, a cancel_source, a join_handle.
//
//     co_legacy            prints four lines (see main) and exits 0
#include <uvkit/uvkit.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

namespace {

// ---- the "third-party" library: plain libuv and C callbacks --------------
struct legacy_lookup {
    using callback = void (*)(void* arg, int status, const char* value);
    struct request {
        uv_timer_t timer;
        legacy_lookup* owner;
        int id;
        std::string key;
        callback cb;
        void* arg;
    };

    explicit legacy_lookup(uv_loop_t* l) : loop(l) {}
    legacy_lookup(const legacy_lookup&) = delete;
    legacy_lookup& operator=(const legacy_lookup&) = delete;

    /// Answers `key` after `delay_ms`; returns the request's id.
    int lookup(const char* key, unsigned delay_ms, callback cb, void* arg) {
        auto* r = new request{{}, this, ++last_id, key, cb, arg};
        uv_timer_init(loop, &r->timer);
        r->timer.data = r;
        uv_timer_start(&r->timer, &on_timer, delay_ms, 0);
        pending[r->id] = r;
        return r->id;
    }
    /// Cancels a pending lookup: its callback runs at once with status -1.
    void cancel(int id) {
        auto it = pending.find(id);
        if (it == pending.end()) return;
        request* r = it->second;
        pending.erase(it);
        r->cb(r->arg, -1, nullptr);
        finish(r);
    }
    /// Forgets a pending lookup: its callback never runs.
    void drop(int id) {
        auto it = pending.find(id);
        if (it == pending.end()) return;
        request* r = it->second;
        pending.erase(it);
        finish(r);
    }

    uv_loop_t* loop;
    int last_id = 0;
    std::map<int, request*> pending;

private:
    static void on_timer(uv_timer_t* t) {
        auto* r = static_cast<request*>(t->data);
        r->owner->pending.erase(r->id);
        std::string value = "value-of-" + r->key;
        r->cb(r->arg, 0, value.c_str());
        finish(r);
    }
    static void finish(request* r) {
        uv_timer_stop(&r->timer);
        uv_close(reinterpret_cast<uv_handle_t*>(&r->timer),
                 [](uv_handle_t* h) { delete static_cast<request*>(h->data); });
    }
};

// ---- the wrapper: one uvkit::operation ------------------------------------
class lookup_op : public uvkit::operation<lookup_op, std::string> {
public:
    lookup_op(uvkit::loop& l, legacy_lookup& lib, std::string key, unsigned delay_ms)
        : operation(l), lib_(lib), key_(std::move(key)), delay_ms_(delay_ms) {}
    lookup_op(const lookup_op&) = delete;
    lookup_op& operator=(const lookup_op&) = delete;
    ~lookup_op() {
        if (pending()) lib_.drop(id_);  // the awaiting frame went away
    }

    void start() { id_ = lib_.lookup(key_.c_str(), delay_ms_, &on_done, this); }
    // The library calls back at once with -1: fail() from inside on_cancel()
    // is resumed by the loop, never here.
    void on_cancel() noexcept { lib_.cancel(id_); }

private:
    static void on_done(void* arg, int status, const char* value) {
        auto* self = static_cast<lookup_op*>(arg);
        if (status == 0)
            self->complete(std::string(value));
        else
            self->fail(uvkit::errc::canceled);
    }

    legacy_lookup& lib_;
    std::string key_;
    unsigned delay_ms_;
    int id_ = 0;
};

uvkit::task<std::string> lookup(uvkit::loop& l, legacy_lookup& lib, std::string key, unsigned delay_ms) {
    co_return co_await lookup_op{l, lib, std::move(key), delay_ms};
}

uvkit::task<int> demo(uvkit::loop& loop, legacy_lookup& lib) {
    // 1. Plain: the value arrives through the C callback.
    std::printf("lookup: %s\n", (co_await lookup_op{loop, lib, "alpha", 1}).c_str());

    // 2. Under a timeout: the slow lookup is cancelled inside the library.
    try {
        co_await uvkit::with_timeout(loop, 5ms, lookup_op{loop, lib, "slow", 60000});
        std::printf("timeout: not reached\n");
    } catch (const std::system_error& e) {
        std::printf("timeout: %s, library requests left %zu\n",
                    e.code() == std::errc::timed_out ? "timed out" : e.what(), lib.pending.size());
    }

    // 3. when_any: the fast one wins, the slow one is cancelled.
    auto first = co_await uvkit::when_any(lookup(loop, lib, "fast", 1), lookup(loop, lib, "slower", 60000));
    std::printf("when_any: %zu %s, library requests left %zu\n", first.index(),
                first.index() == 0 ? std::get<0>(first).c_str() : std::get<1>(first).c_str(),
                lib.pending.size());

    // 4. A join_handle cancels it from outside the task.
    auto h = uvkit::spawn(loop, lookup(loop, lib, "never", 60000));
    co_await uvkit::sleep(loop, 1ms);
    h.cancel();
    try {
        co_await h;
        std::printf("cancel: not reached\n");
    } catch (const std::system_error& e) {
        std::printf("cancel: %s, library requests left %zu\n",
                    e.code() == uvkit::errc::canceled ? "cancelled" : e.what(), lib.pending.size());
    }
    co_return 0;
}

}  // namespace

int main() {
    uvkit::loop loop;
    legacy_lookup lib{loop.raw()};
    return uvkit::run(loop, demo(loop, lib));
}
