// The one doctest main shared by every test file.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <cstdio>
#include <cstdlib>

#include "doctest_include.hpp"

namespace {

// Skipped cases are named, with their reason (platform.hpp), so that no skip is silent.
struct skip_listener : doctest::IReporter {
    explicit skip_listener(const doctest::ContextOptions&)
        : trace_(std::getenv("UVKIT_TEST_TRACE") != nullptr) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats&) override {}
    // UVKIT_TEST_TRACE=1: every case's name as it starts, to find one that hangs.
    void test_case_start(const doctest::TestCaseData& tc) override {
        if (!trace_) return;
        std::printf("start: %s\n", tc.m_name);
        std::fflush(stdout);
    }
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData& tc) override {
        if (!tc.m_skip) return;  // left out by a filter, not skipped
        std::printf("skipped: %s: %s\n", tc.m_name,
                    tc.m_description ? tc.m_description : "(no reason given)");
        std::fflush(stdout);
    }

private:
    bool trace_;
};

}  // namespace

DOCTEST_REGISTER_LISTENER("skips", 1, skip_listener);
