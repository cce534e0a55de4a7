// Symbol visibility for uvkit's compiled parts.
//
// The library is built with hidden visibility; only what is marked UVKIT_API
// is exported from the shared library. Header-only templates need no mark.
#pragma once

#if defined(_WIN32) && defined(UVKIT_SHARED)
#if defined(UVKIT_BUILDING)
#define UVKIT_API __declspec(dllexport)
#else
#define UVKIT_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define UVKIT_API __attribute__((visibility("default")))
#else
#define UVKIT_API
#endif
