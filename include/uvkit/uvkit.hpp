// uvkit: a thin, modern C++20 wrapper over libuv. One include for everything.
#pragma once

#include "uvkit/check.hpp"
#include "uvkit/dns.hpp"
#include "uvkit/endpoint.hpp"
#include "uvkit/error.hpp"
#include "uvkit/fs.hpp"
#include "uvkit/fs_event.hpp"
#include "uvkit/fs_poll.hpp"
#include "uvkit/handle.hpp"
#include "uvkit/idle.hpp"
#include "uvkit/log.hpp"
#include "uvkit/loop.hpp"
#include "uvkit/pipe.hpp"
#include "uvkit/poll.hpp"
#include "uvkit/prepare.hpp"
#include "uvkit/process.hpp"
#include "uvkit/signal.hpp"
#include "uvkit/stream.hpp"
#include "uvkit/tcp.hpp"
#include "uvkit/timer.hpp"
#include "uvkit/tty.hpp"
#include "uvkit/udp.hpp"
#include "uvkit/version.hpp"
#include "uvkit/work.hpp"

// The coroutine layer, unless uvkit was built without it (-Dcoroutines=false).
#ifndef UVKIT_NO_COROUTINES
#include "uvkit/co.hpp"
#endif
