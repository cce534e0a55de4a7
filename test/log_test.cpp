// uvkit/log.hpp: which logger uvkit uses, and at what level.
#include <uvkit/log.hpp>
#include <uvkit/loop.hpp>
#include <uvkit/timer.hpp>

#include <doctest/doctest.h>

#ifndef _WIN32
#include <sys/wait.h>  // the probe process's exit status (spdlog builds are POSIX here)
#endif
#include <cstdlib>
#include <string>

#ifdef UVKIT_HAVE_SPDLOG
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

namespace {
// Restores uvkit's logger and level when a case ends.
struct log_guard {
    uvkit::log_level level = uvkit::get_log_level();
    ~log_guard() {
        uvkit::set_logger(nullptr);
        uvkit::set_log_level(level);
    }
};
}  // namespace

TEST_CASE("log: set_logger() takes a user's logger at any time, at its level") {
    log_guard guard;
    uvkit::set_log_level(uvkit::log_level::debug);
    {
        uvkit::loop l;
        uvkit::timer t{l};  // uvkit logs "open timer" through its own logger first
    }
    std::ostringstream out;
    auto mine =
        std::make_shared<spdlog::logger>("mine", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
    mine->set_level(spdlog::level::debug);
    REQUIRE(uvkit::set_logger(mine));
    CHECK(uvkit::get_log_level() == uvkit::log_level::debug);
    {
        uvkit::loop l;
        uvkit::timer t{l};
    }
    CHECK(out.str().find("open timer") != std::string::npos);
    CHECK(out.str().find("closed timer") != std::string::npos);

    mine->set_level(spdlog::level::warn);
    REQUIRE(uvkit::set_logger(mine));
    CHECK(uvkit::get_log_level() == uvkit::log_level::warn);
    out.str("");
    {
        uvkit::loop l;
        uvkit::timer t{l};
    }
    CHECK(out.str().empty());
}

TEST_CASE("log: registering a logger named \"uvkit\" after uvkit's first line does not throw") {
    log_guard guard;
    uvkit::set_log_level(uvkit::log_level::debug);
    {
        uvkit::loop l;
        uvkit::timer t{l};  // a first line: uvkit's logger exists now
    }
    std::ostringstream out;
    auto named =
        std::make_shared<spdlog::logger>("uvkit", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
    CHECK_NOTHROW(spdlog::register_logger(named));
    spdlog::drop("uvkit");
}

TEST_CASE("log: uvkit starts from spdlog's global level (a fresh process)") {
#ifdef UVKIT_MIGRATION_PROBE
    const int status = std::system((std::string("'") + UVKIT_MIGRATION_PROBE + "' log-global-level").c_str());
    CHECK((WIFEXITED(status) ? WEXITSTATUS(status) : 128) == 0);
#endif
}
#else
TEST_CASE("log: without spdlog, set_logger() keeps nothing and says so") {
    CHECK_FALSE(uvkit::logging_enabled());
    CHECK_FALSE(uvkit::set_logger(nullptr));
    uvkit::set_log_level(uvkit::log_level::debug);
    CHECK(uvkit::get_log_level() == uvkit::log_level::debug);
}
#endif
