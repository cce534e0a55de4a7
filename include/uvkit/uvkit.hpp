// uvkit: a thin, modern C++20 wrapper over libuv. One include for everything.
#pragma once

#include "uvkit/endpoint.hpp"
#include "uvkit/error.hpp"
#include "uvkit/handle.hpp"
#include "uvkit/idle.hpp"
#include "uvkit/log.hpp"
#include "uvkit/loop.hpp"
#include "uvkit/stream.hpp"
#include "uvkit/tcp.hpp"
#include "uvkit/timer.hpp"
#include "uvkit/version.hpp"
#include "uvkit/co.hpp"
