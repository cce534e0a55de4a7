// uvkit/co.hpp: the coroutine layer in one include.
#pragma once

#include "uvkit/co/cancel_token.hpp"
#include "uvkit/co/channel.hpp"
#include "uvkit/co/deadline.hpp"
#include "uvkit/co/dns.hpp"
#include "uvkit/co/join_handle.hpp"
#include "uvkit/co/operation.hpp"
#include "uvkit/co/pipe.hpp"
#include "uvkit/co/process.hpp"
#include "uvkit/co/sleep.hpp"
#include "uvkit/co/sync.hpp"
#include "uvkit/co/task.hpp"
#include "uvkit/co/task_group.hpp"
#include "uvkit/co/tcp.hpp"
#include "uvkit/co/udp.hpp"
#include "uvkit/co/when.hpp"
#include "uvkit/co/work.hpp"
