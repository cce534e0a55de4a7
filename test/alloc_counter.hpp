// Counts heap allocations made by the current thread (operator new is
// replaced in alloc_counter.cpp for the whole test binary).
#pragma once

#include <cstddef>

namespace uvkit_test {

/// Allocations by this thread since it started.
std::size_t allocations() noexcept;

/// While it lives, this thread's allocations through operator new fail after
/// `allow` more succeed: the throwing forms throw std::bad_alloc, the nothrow
/// forms return nullptr. For the out-of-memory paths; not nestable.
class alloc_failure {
public:
    explicit alloc_failure(std::size_t allow = 0) noexcept;
    ~alloc_failure();
    alloc_failure(const alloc_failure&) = delete;
    alloc_failure& operator=(const alloc_failure&) = delete;
    /// Allocations refused so far.
    std::size_t refused() const noexcept;
};

/// Counts the allocations made between construction and count().
class alloc_window {
public:
    alloc_window() noexcept : start_(allocations()) {}
    std::size_t count() const noexcept { return allocations() - start_; }

private:
    std::size_t start_;
};

}  // namespace uvkit_test
