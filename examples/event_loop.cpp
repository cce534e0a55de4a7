// event_loop: the article's first program, a queue of events dispatched in
// order, on a real event loop.
//
// The article's loop pops an event, handles it (sleeping the thread for a
// Timer) and pops the next. Here a Timer event starts a uvkit::timer instead
// of sleeping, a Message event is posted to the loop, and each event's
// completion dispatches the next one: the same order, without ever blocking
// the thread the loop runs on.
#include <uvkit/uvkit.hpp>

#include <chrono>
#include <deque>
#include <iostream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

using namespace std::chrono_literals;

struct timer_event {
    std::chrono::milliseconds duration;
};
struct message_event {
    std::string text;
};
using event = std::variant<timer_event, message_event>;

class event_loop {
public:
    void add_event(event e) { events_.push_back(std::move(e)); }

    void run() {
        dispatch_next();
        loop_.run();  // returns once the last event completed
    }

private:
    void dispatch_next() {
        if (events_.empty()) return;
        event e = std::move(events_.front());
        events_.pop_front();
        std::visit([this](auto& ev) { handle(ev); }, e);
    }

    void handle(const timer_event& ev) {
        std::cout << "Timer event: waiting for " << std::chrono::duration<double>(ev.duration).count()
                  << " seconds" << std::endl;
        timer_.start(ev.duration, [this] {
            std::cout << "Timer event: done" << std::endl;
            dispatch_next();
        });
    }

    void handle(message_event& ev) {
        loop_.post([this, text = std::move(ev.text)] {
            std::cout << "Message event: " << text << std::endl;
            dispatch_next();
        });
    }

    uvkit::loop loop_;
    uvkit::timer timer_{loop_};
    std::deque<event> events_;
};

int main() {
    event_loop events;
    events.add_event(timer_event{200ms});
    events.add_event(message_event{"Hello, World!"});
    events.run();
}
