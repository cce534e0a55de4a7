// Replaces the global operator new/delete to count allocations per thread.
// libuv allocates with malloc, which these do not see; uvkit's own
// allocations all go through operator new.
#include "alloc_counter.hpp"

#include <cstdlib>
#include <new>

namespace {
thread_local std::size_t count = 0;
thread_local bool failing = false;     // an alloc_failure is alive
thread_local std::size_t allowed = 0;  // successes left before refusing
thread_local std::size_t refused_count = 0;

void refuse_if_failing() {
    if (!failing) return;
    if (allowed > 0) {
        --allowed;
        return;
    }
    ++refused_count;
    throw std::bad_alloc();
}

void* counted(std::size_t n) {
    refuse_if_failing();
    ++count;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* counted_aligned(std::size_t n, std::align_val_t a) {
    refuse_if_failing();
    ++count;
    std::size_t al = static_cast<std::size_t>(a);
    std::size_t size = (n + al - 1) / al * al;
#ifdef _WIN32
    // No aligned_alloc in Microsoft's C runtime; the matching delete calls _aligned_free.
    if (void* p = _aligned_malloc(size ? size : al, al)) return p;
#else
    if (void* p = std::aligned_alloc(al, size ? size : al)) return p;
#endif
    throw std::bad_alloc();
}
}  // namespace

namespace uvkit_test {
std::size_t allocations() noexcept { return count; }

alloc_failure::alloc_failure(std::size_t allow) noexcept {
    failing = true;
    allowed = allow;
    refused_count = 0;
}
alloc_failure::~alloc_failure() { failing = false; }
std::size_t alloc_failure::refused() const noexcept { return refused_count; }
}  // namespace uvkit_test

void* operator new(std::size_t n) { return counted(n); }
void* operator new[](std::size_t n) { return counted(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return counted(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new(std::size_t n, std::align_val_t a) { return counted_aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_aligned(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#ifdef _WIN32
#define UVKIT_TEST_ALIGNED_FREE _aligned_free
#else
#define UVKIT_TEST_ALIGNED_FREE std::free
#endif
void operator delete(void* p, std::align_val_t) noexcept { UVKIT_TEST_ALIGNED_FREE(p); }
void operator delete[](void* p, std::align_val_t) noexcept { UVKIT_TEST_ALIGNED_FREE(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { UVKIT_TEST_ALIGNED_FREE(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { UVKIT_TEST_ALIGNED_FREE(p); }
