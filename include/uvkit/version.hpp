// uvkit/version.hpp: the library's version (kept equal to meson.build's).
#pragma once

#define UVKIT_VERSION_MAJOR 0
#define UVKIT_VERSION_MINOR 1
#define UVKIT_VERSION_PATCH 0
#define UVKIT_VERSION_STRING "0.1.0"
