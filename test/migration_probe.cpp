// A helper of test/migration_test.cpp: process-wide state (the SIGPIPE
// disposition, spdlog's global level) checked in a fresh process.
// Exit status 0: as documented in uvkit/loop.hpp and uvkit/log.hpp; else the step that failed.
#include <uvkit/uvkit.hpp>

#include <csignal>
#include <cstring>

#ifdef UVKIT_HAVE_SPDLOG
#include <spdlog/spdlog.h>
#endif

namespace {
#ifdef SIGPIPE
using handler_t = void (*)(int);
// std::signal reads the disposition only by setting one: put it back at once.
handler_t sigpipe_now() {
    handler_t h = std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGPIPE, h);
    return h;
}
void on_sigpipe(int) {}

int check_sigpipe(handler_t before, handler_t during) {
    std::signal(SIGPIPE, before);
    {
        uvkit::loop a;
        if (sigpipe_now() != during) return 2;
        {
            uvkit::loop b;
            if (sigpipe_now() != during) return 3;
        }
        if (sigpipe_now() != during) return 4;  // a still exists
    }
    if (sigpipe_now() != before) return 5;
    return 0;
}
#endif
}  // namespace

int main(int argc, [[maybe_unused]] char** argv) {
    if (argc != 2) return 64;
#ifdef SIGPIPE
    if (std::strcmp(argv[1], "sigpipe-default") == 0) return check_sigpipe(SIG_DFL, SIG_IGN);
    if (std::strcmp(argv[1], "sigpipe-ignored") == 0) return check_sigpipe(SIG_IGN, SIG_IGN);
    if (std::strcmp(argv[1], "sigpipe-handler") == 0) return check_sigpipe(on_sigpipe, on_sigpipe);
    if (std::strcmp(argv[1], "sigpipe-changed") == 0) {
        // The program sets its own handler while a loop exists: the last loop keeps it.
        std::signal(SIGPIPE, SIG_DFL);
        {
            uvkit::loop a;
            std::signal(SIGPIPE, on_sigpipe);
        }
        return sigpipe_now() == on_sigpipe ? 0 : 2;
    }
#endif
#ifdef UVKIT_HAVE_SPDLOG
    if (std::strcmp(argv[1], "log-global-level") == 0) {
        spdlog::set_level(spdlog::level::debug);
        uvkit::loop l;
        if (uvkit::get_log_level() != uvkit::log_level::debug) return 2;
        spdlog::set_level(spdlog::level::err);  // chosen at the first loop; later changes are not followed
        uvkit::loop m;
        return uvkit::get_log_level() == uvkit::log_level::debug ? 0 : 3;
    }
#endif
    return 65;
}
