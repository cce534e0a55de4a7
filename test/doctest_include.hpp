// Debian installs <doctest/doctest.h>; doctest's own meson.build exports the
// folder itself, giving <doctest.h>.
#pragma once
#if __has_include(<doctest/doctest.h>)
#include <doctest/doctest.h>
#else
#include <doctest.h>
#endif
