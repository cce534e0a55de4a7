// uvkit/co.hpp: the coroutine layer in one include.
#pragma once

#include "uvkit/co/sleep.hpp"
#include "uvkit/co/task.hpp"
#include "uvkit/co/task_group.hpp"
#include "uvkit/co/tcp.hpp"
#include "uvkit/co/when.hpp"
