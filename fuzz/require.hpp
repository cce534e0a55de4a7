// The fuzzers' check: a failed condition names itself on stderr, then aborts,
// so that libFuzzer keeps the input that got there.
#pragma once

#include <cstdio>
#include <cstdlib>

#define require(condition) \
    ((condition)           \
         ? void()          \
         : (std::fprintf(stderr, "check failed: %s (line %d)\n", #condition, __LINE__), std::abort()))
