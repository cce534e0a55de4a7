// uvkit/co/dump.hpp: uvkit::dump_tasks(loop), the tree of a loop's live tasks.
//
// What it is: like Tokio's task dump, a picture of what every task of a loop
// waits on, for a server that hangs or a test that does not end:
//
//     std::fputs(uvkit::dump_tasks(loop).c_str(), stderr);
//
//     task (run): join 3 children
//       task: sleep 250 ms
//       task: read tcp 127.0.0.1:5000
//       task: when_all 2 children
//         task: channel recv
//         task: accept tcp 127.0.0.1:8080
//     task (spawned): join task
//       task: write tcp 127.0.0.1:40312
//     task_group (not joined): 1 child
//       task: event wait
//
// One line per live task, its children indented by two spaces below it:
// - the roots: tasks driven by run() ("task (run)", outermost first), then
//   spawned tasks ("task (spawned)", oldest first), then the task_groups that
//   nobody joins at the moment ("task_group (not joined): N children", with
//   ", M queued" for a bounded group's queue);
// - below a task: the children of what it waits on: a task_group's join()
//   lists the group's running children, when_all/when_any their unfinished
//   tasks, with_timeout/with_deadline/shielded their task, `co_await handle`
//   the joined task (shown there, not among the roots or the group);
// - after "task: ", what the task (or the task it awaits, innermost) is
//   suspended on: `sleep 250 ms`, `read tcp <peer>`, `read until tcp <peer>`,
//   `write tcp <peer>`, `shutdown tcp <peer>`, `connect tcp <target>`,
//   `accept tcp <local address>` (pipes: `pipe <name>`, ttys: `tty`),
//   `udp recv <local>`, `udp send`, `channel send`, `channel recv`,
//   `mutex lock`, `event wait`, `join N children`, `join task`,
//   `when_all N children`, `when_any N children`, `with_timeout 2000 ms`
//   (the duration it was given), `wait for a slot in task_group`,
//   `work`, `fs open <path>` (each fs call by name), `resolve`,
//   `process exit`, a uvkit::operation's what(); `running` for a task that
//   is not suspended on an operation (the one calling dump_tasks(), or one
//   about to be resumed).
// Finished tasks whose join_handle still holds them are not listed.
//
// Cost: nothing unless called. Each operation already stores its vtable
// pointer while it waits, and is found through the cancel scope its task
// already links it to; the description is computed only here.
//
// Call it on the loop's thread (from a task, a callback, or between runs);
// an empty string for a loop without live tasks.
#pragma once

#ifdef UVKIT_NO_COROUTINES
#error \
    "uvkit was built without its coroutine layer (-Dcoroutines=false); the callback core never includes uvkit/co/"
#endif

#include <string>
#include <string_view>

#include "uvkit/export.hpp"

namespace uvkit {

class loop;
class task_group;

/// The tree of `l`'s live tasks, one line per task (see the header comment);
/// "" if none. Loop thread only. Throws std::bad_alloc.
UVKIT_API std::string dump_tasks(uvkit::loop& l);

namespace detail {

struct promise_base;
class co_context;

/// The writer operations describe themselves to (cancellable::describe).
class UVKIT_API task_dump {
public:
    task_dump() = default;
    task_dump(const task_dump&) = delete;
    task_dump& operator=(const task_dump&) = delete;

    /// Appends to the line of the task being described.
    task_dump& operator<<(std::string_view s) {
        out_.append(s);
        return *this;
    }
    task_dump& operator<<(const char* s) { return *this << std::string_view(s); }
    task_dump& operator<<(char c) {
        out_ += c;
        return *this;
    }
    // Numbers, one overload per std::to_string's (not a template: no
    // instantiation of it is exported from a shared libuvkit).
    task_dump& operator<<(int n) { return number(std::to_string(n)); }
    task_dump& operator<<(long n) { return number(std::to_string(n)); }
    task_dump& operator<<(long long n) { return number(std::to_string(n)); }
    task_dump& operator<<(unsigned n) { return number(std::to_string(n)); }
    task_dump& operator<<(unsigned long n) { return number(std::to_string(n)); }
    task_dump& operator<<(unsigned long long n) { return number(std::to_string(n)); }
    /// Appends an operation's what() ("uvkit::fs::async_read") as a name ("fs read").
    task_dump& name(std::string_view what);

    /// Dumps `p`, a child task of the one being described, one level deeper
    /// (nothing if it has finished).
    void child(const promise_base& p);
    /// Dumps the group's running children not joined by a handle, oldest first.
    void group_children(const task_group& g);

    /// Every live task of `c`'s loop.
    void roots(co_context& c);
    std::string take() noexcept { return std::move(out_); }

private:
    task_dump& number(const std::string& digits) { return *this << std::string_view(digits); }
    void task(const promise_base& p, std::string_view label);
    void end_line();

    std::string out_;
    int depth_ = 0;
    bool open_ = false;
};

}  // namespace detail

}  // namespace uvkit
