// two_timers: the article's Tokio program with callbacks. Two tasks wait
// concurrently, 2 s and 1 s, on one thread; Task 2 finishes first and the
// whole run takes about 2 s, not 3.
//
// tokio::join!(task1, task2) becomes: start both timers, then run the loop,
// which returns once neither timer has anything left to do.
#include <uvkit/uvkit.hpp>

#include <chrono>
#include <iostream>

using namespace std::chrono_literals;

int main() {
    uvkit::loop loop;

    uvkit::timer task1{loop};
    std::cout << "Task 1: Waiting for 2 seconds" << std::endl;
    task1.start(2s, [] { std::cout << "Task 1: Done" << std::endl; });

    uvkit::timer task2{loop};
    std::cout << "Task 2: Waiting for 1 second" << std::endl;
    task2.start(1s, [] { std::cout << "Task 2: Done" << std::endl; });

    loop.run();  // the join: returns when both tasks are done
}
