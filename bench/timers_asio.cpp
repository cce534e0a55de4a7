// timers, standalone Asio callbacks: per timer construct, wait, cancel, wait again, fire
// (expiry now), destroy. Asio's "stop" is cancel(), which also runs the first handler with
// operation_aborted: that is Asio's model, so it is part of its cost.
#define ASIO_STANDALONE
#include <asio.hpp>

#include <chrono>
#include <memory>

#include "bench.h"

namespace {

struct bench_state {
    asio::io_context io{1};
    std::unique_ptr<asio::steady_timer> current;
    long total = 0;
    long fired = 0;
    long aborted = 0;

    void start_one() {
        current = std::make_unique<asio::steady_timer>(io);
        current->expires_after(std::chrono::milliseconds(BENCH_TIMER_FAR));
        current->async_wait([this](const std::error_code& ec) {
            if (ec == asio::error::operation_aborted) ++aborted;
        });
        current->cancel();
        current->expires_after(std::chrono::milliseconds(0));
        current->async_wait([this](const std::error_code& ec) {
            BENCH_CHECK(!ec, "the second wait fires");
            if (++fired < total) start_one();
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    bench_state b;
    b.total = bench_count(argc, argv, "timers");
    b.start_one();
    b.io.run();
    b.current.reset();
    BENCH_CHECK(b.fired == b.total && b.aborted == b.total, "every timer fired once");
    bench_ok("timers", b.total);
    return 0;
}
