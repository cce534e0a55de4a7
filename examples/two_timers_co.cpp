// two_timers_co: the article's Tokio program with coroutines. Two tasks wait
// concurrently, 2 s and 1 s, on one thread; Task 2 finishes first and the
// whole run takes about 2 s, not 3.
//
// Line for line the Rust version: `async` blocks become uvkit::task<void>,
// `sleep(..).await` becomes `co_await uvkit::sleep(..)`, tokio::join! becomes
// uvkit::when_all, and #[tokio::main] becomes uvkit::run.
#include <uvkit/uvkit.hpp>

#include <chrono>
#include <iostream>

using namespace std::chrono_literals;

namespace {

uvkit::task<void> task1(uvkit::loop& loop) {
    std::cout << "Task 1: Waiting for 2 seconds" << std::endl;
    co_await uvkit::sleep(loop, 2s);
    std::cout << "Task 1: Done" << std::endl;
}

uvkit::task<void> task2(uvkit::loop& loop) {
    std::cout << "Task 2: Waiting for 1 second" << std::endl;
    co_await uvkit::sleep(loop, 1s);
    std::cout << "Task 2: Done" << std::endl;
}

uvkit::task<void> both(uvkit::loop& loop) {
    co_await uvkit::when_all(task1(loop), task2(loop));  // tokio::join!(task1, task2)
}

}  // namespace

int main() {
    uvkit::loop loop;
    uvkit::run(loop, both(loop));  // drives the loop until both tasks are done
}
