// The one doctest main shared by every test file.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <cstdio>

#include "doctest_include.hpp"

namespace {

// Skipped cases are named, with their reason (platform.hpp), so that no skip is silent.
struct skip_listener : doctest::IReporter {
    explicit skip_listener(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats&) override {}
    void test_case_start(const doctest::TestCaseData&) override {}
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData& tc) override {
        if (!tc.m_skip) return;  // left out by a filter, not skipped
        std::printf("skipped: %s: %s\n", tc.m_name, tc.m_description ? tc.m_description : "(no reason given)");
        std::fflush(stdout);
    }
};

}  // namespace

DOCTEST_REGISTER_LISTENER("skips", 1, skip_listener);
