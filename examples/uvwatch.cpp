// uvwatch: runs a command, and again each time a watched file changes (like entr).
//
//     uvwatch [-d MS] PATH... -- COMMAND [ARGS...]
//
// Runs COMMAND at once. A change to any PATH (a file, or an entry of a
// directory) schedules a new run after a quiet time of MS milliseconds
// (default 100: an editor's save makes several events, they make one run). If
// the previous run is still going, it is ended first (SIGTERM to its process
// group, SIGKILL 2 s later) and the new run starts once it exited. A watched
// file is watched through its directory, so that an editor that replaces the
// file (write to a temporary, rename over) is still seen.
//
// Status lines go to stderr ("uvwatch: run 2 started", "uvwatch: run 2
// exited with status 0", "uvwatch: change: NAME", the first change of a quiet
// time, written when it ends); COMMAND's own stdin, stdout and stderr are
// uvwatch's. Output sent to a file in a watched directory is a change too: each
// run then schedules the next. SIGINT or SIGTERM ends the running command
// and uvwatch, with status 0. Exit status 2 for bad arguments, 1 if a PATH
// cannot be watched or COMMAND cannot be started the first time.
//
// Built on uvkit::fs_event, uvkit::process, uvkit::timer and uvkit::fs::stat.
#include <uvkit/uvkit.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

int usage() {
    std::cerr << "usage: uvwatch [-d MS] PATH... -- COMMAND [ARGS...]\n";
    return 2;
}

struct watch_target {
    std::string path;  // as given
    std::string dir;   // what fs_event watches
    std::string name;  // the entry of `dir` that matters; empty: any
};

class watcher {
public:
    watcher(uvkit::loop& l, std::vector<std::string> paths, std::vector<std::string> command,
            std::chrono::milliseconds delay)
        : loop_(l),
          paths_(std::move(paths)),
          command_(std::move(command)),
          delay_(delay),
          debounce_(l),
          grace_(l),
          sigint_(l),
          sigterm_(l) {}

    int run() {
        sigint_.start(SIGINT, [this](int) { stop(); });
        sigterm_.start(SIGTERM, [this](int) { stop(); });
        pending_stats_ = paths_.size();
        for (const std::string& p : paths_)
            uvkit::fs::stat(loop_, p,
                            [this, p](std::error_code ec, uvkit::file_stat st) { stated(p, ec, st); });
        loop_.run();
        return status_;
    }

private:
    void stated(const std::string& p, std::error_code ec, const uvkit::file_stat& st) {
        if (ec) {
            std::cerr << "uvwatch: " << p << ": " << ec.message() << "\n";
            status_ = 1;
        } else if (st.is_directory()) {
            targets_.push_back({p, p, {}});
        } else {
            std::filesystem::path fp(p);
            std::string dir = fp.parent_path().string();
            targets_.push_back({p, dir.empty() ? std::string(".") : dir, fp.filename().string()});
        }
        if (--pending_stats_ > 0) return;
        if (status_ != 0) return shutdown();
        for (const watch_target& t : targets_) {
            uvkit::fs_event& w = events_.emplace_back(loop_);
            std::error_code wec;
            const std::string name = t.name;
            w.start(
                t.dir, 0,
                [this, name](std::error_code e, std::string_view changed, int) {
                    if (e) return;
                    if (!name.empty() && changed != name) return;
                    // Told when the quiet time ends, not here: a line written
                    // per event can itself be an event (stderr into a watched
                    // directory) that libuv reads before it ever waits again,
                    // and uvwatch would do nothing else.
                    if (first_change_.empty()) first_change_ = changed.empty() ? "?" : std::string(changed);
                    debounce_.start(delay_, [this] { rerun(); });
                },
                wec);
            if (wec) {
                std::cerr << "uvwatch: " << t.path << ": " << wec.message() << "\n";
                status_ = 1;
                return shutdown();
            }
        }
        std::cerr << "uvwatch: watching " << targets_.size() << " path(s)" << std::endl;
        if (!start_run()) {
            status_ = 1;
            shutdown();
        }
    }

    bool start_run() {
        uvkit::process_options o;
        o.file = command_[0];
        o.args = command_;
        o.stdio = {uvkit::process_stdio::inherit(0), uvkit::process_stdio::inherit(1),
                   uvkit::process_stdio::inherit(2)};
#ifndef _WIN32
        o.detached = true;  // its own process group: ending a run ends what it started
#endif
        std::error_code ec;
        const int n = ++runs_;
        child_ = uvkit::process::spawn(
            loop_, o, [this, n](std::int64_t status, int sig) { exited(n, status, sig); }, ec);
        if (ec) {
            std::cerr << "uvwatch: " << command_[0] << ": " << ec.message() << "\n";
            return false;
        }
        running_ = true;
        std::cerr << "uvwatch: run " << n << " started" << std::endl;
        return true;
    }

    void exited(int n, std::int64_t status, int sig) {
        running_ = false;
        grace_.stop();
        if (sig)
            std::cerr << "uvwatch: run " << n << " ended by signal " << sig << std::endl;
        else
            std::cerr << "uvwatch: run " << n << " exited with status " << status << std::endl;
        child_.close();
        if (stopping_) return shutdown();
        if (rerun_) {
            rerun_ = false;
            start_run();
        }
    }

    void rerun() {
        if (stopping_) return;
        std::cerr << "uvwatch: change: " << std::exchange(first_change_, std::string()) << std::endl;
        if (!running_) {
            start_run();
            return;
        }
        rerun_ = true;
        end_child();
    }

    void end_child() {
        if (!running_ || killing_run_ == runs_) return;
        killing_run_ = runs_;
        std::cerr << "uvwatch: ending run " << runs_ << std::endl;
        signal_child(SIGTERM);
        grace_.start(2s, [this] { signal_child(SIGKILL); });
    }

    void signal_child(int sig) {
        std::error_code ec;
#ifndef _WIN32
        uvkit::process::kill(-child_.pid(), sig, ec);  // the run's whole process group
        if (!ec) return;
#endif
        child_.kill(sig, ec);
    }

    void stop() {
        if (stopping_) return;
        stopping_ = true;
        debounce_.stop();
        for (uvkit::fs_event& w : events_) w.close();
        if (running_)
            end_child();
        else
            shutdown();
    }

    void shutdown() {
        for (uvkit::fs_event& w : events_) w.close();
        debounce_.close();
        grace_.close();
        sigint_.close();
        sigterm_.close();
        child_.close();
    }

    uvkit::loop& loop_;
    std::vector<std::string> paths_;
    std::vector<std::string> command_;
    std::chrono::milliseconds delay_;
    std::vector<watch_target> targets_;
    std::list<uvkit::fs_event> events_;  // a list: handlers refer to their element
    uvkit::timer debounce_, grace_;
    uvkit::signal sigint_, sigterm_;
    uvkit::process child_;
    std::size_t pending_stats_ = 0;
    int runs_ = 0;
    int killing_run_ = 0;
    bool running_ = false;
    bool rerun_ = false;
    std::string first_change_;  // the first change since the last run was scheduled
    bool stopping_ = false;
    int status_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> paths, command;
    std::chrono::milliseconds delay = 100ms;
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a == "-d") {
            if (++i >= argc) return usage();
            char* end = nullptr;
            long v = std::strtol(argv[i], &end, 10);
            if (!end || *end || v < 0 || v > 3600000) return usage();
            delay = std::chrono::milliseconds(v);
            continue;
        }
        if (!a.empty() && a[0] == '-') return usage();
        paths.push_back(a);
    }
    for (; i < argc; ++i) command.emplace_back(argv[i]);
    if (paths.empty() || command.empty()) return usage();
    uvkit::loop loop;
    watcher w{loop, std::move(paths), std::move(command), delay};
    return w.run();
}
