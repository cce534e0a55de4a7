// Counts heap allocations made by the current thread (operator new is
// replaced in alloc_counter.cpp for the whole test binary).
#pragma once

#include <cstddef>

namespace uvkit_test {

/// Allocations by this thread since it started.
std::size_t allocations() noexcept;

/// Counts the allocations made between construction and count().
class alloc_window {
public:
    alloc_window() noexcept : start_(allocations()) {}
    std::size_t count() const noexcept { return allocations() - start_; }

private:
    std::size_t start_;
};

}  // namespace uvkit_test
