// The coroutine half of files is header-only (templates over the result type);
// this unit checks that uvkit/co/fs.hpp compiles on its own.
#include "uvkit/co/fs.hpp"
