// What differs per platform in the suite. A case that cannot run on Windows stays registered
// there and is skipped visibly, with its reason:
//
//   TEST_CASE_FIXTURE(loop_fixture, "signal: ..." UVKIT_SKIP_ON_WINDOWS("no SIGUSR1 on Windows")) {
//   #ifndef _WIN32
//       ... the POSIX-only body ...
//   #endif
//   }
//
// The reason becomes the case's doctest description; main.cpp prints every skipped case with it
// ("skipped: NAME: REASON"), and README.md lists them.
#pragma once

#include "doctest_include.hpp"

#ifdef _WIN32
#define UVKIT_SKIP_ON_WINDOWS(reason) \
    *doctest::skip(true) * doctest::description("skipped on Windows: " reason)
#else
#define UVKIT_SKIP_ON_WINDOWS(reason) *doctest::skip(false)
#endif

// A known wine gap: what a real Windows does but wine 8 does not; the reason says what was observed.
#ifdef _WIN32
#define UVKIT_SKIP_UNDER_WINE(reason) \
    *doctest::skip(true) * doctest::description("skipped under wine: " reason)
#else
#define UVKIT_SKIP_UNDER_WINE(reason) *doctest::skip(false)
#endif
