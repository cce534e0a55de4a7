// Internal helpers shared by the handle implementations.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

#include "uvkit/endpoint.hpp"
#include "uvkit/handle.hpp"

namespace uvkit::detail {

// Under AddressSanitizer every block goes back to the heap, so that a block
// used after it was freed is caught instead of landing in a recycled one.
#if defined(__SANITIZE_ADDRESS__)
#define UVKIT_NO_BLOCK_POOL 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UVKIT_NO_BLOCK_POOL 1
#endif
#endif

/// The block_pool size class of a State (0: not pooled).
template <class State>
constexpr unsigned char block_class_of() noexcept {
#ifdef UVKIT_NO_BLOCK_POOL
    return 0;
#else
    constexpr std::size_t cls = (sizeof(State) + block_pool::granule - 1) / block_pool::granule;
    if constexpr (cls > block_pool::classes || alignof(State) > __STDCPP_DEFAULT_NEW_ALIGNMENT__ ||
                  !std::is_nothrow_constructible_v<State, uvkit::loop&>)
        return 0;
    else
        return static_cast<unsigned char>(cls);
#endif
}

/// Memory for a block of size class `cls` (1..classes): a recycled one, or new.
inline void* take_block(block_pool& p, unsigned cls) {
#ifdef UVKIT_NO_BLOCK_POOL
    (void)p;
#else
    block_pool::free_block*& head = p.heads[cls - 1];
    if (block_pool::free_block* b = head) {
        head = b->next;
        --p.counts[cls - 1];
        return b;
    }
#endif
    return ::operator new(cls* block_pool::granule);
}

/// Gives back the memory of a destroyed block of size class `cls`: to `p`'s
/// free list while it holds fewer than max_free, else to the heap.
inline void give_block(block_pool* p, void* mem, unsigned cls) noexcept {
#ifdef UVKIT_NO_BLOCK_POOL
    p = nullptr;
#endif
    if (p && p->counts[cls - 1] < block_pool::max_free) {
        auto* b = static_cast<block_pool::free_block*>(mem);
        b->next = p->heads[cls - 1];
        p->heads[cls - 1] = b;
        ++p->counts[cls - 1];
        return;
    }
    ::operator delete(mem);
}

/// The block_pool size class of any T (0: too big or too aligned to pool).
template <class T>
constexpr unsigned char pool_class_of() noexcept {
#ifdef UVKIT_NO_BLOCK_POOL
    return 0;
#else
    constexpr std::size_t cls = (sizeof(T) + block_pool::granule - 1) / block_pool::granule;
    if constexpr (cls > block_pool::classes || alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__)
        return 0;
    else
        return static_cast<unsigned char>(cls);
#endif
}

/// A T made in `l`'s block pool (what uvkit keeps per handle or per request
/// besides state blocks): recycled memory in steady state. nullptr if out of memory.
template <class T, class... Args>
T* pool_new(uvkit::loop& l, Args&&... args) noexcept {
    static_assert(std::is_nothrow_constructible_v<T, Args&&...>);
    constexpr unsigned char cls = pool_class_of<T>();
    void* mem;
    if constexpr (cls == 0)
        mem = ::operator new(sizeof(T), std::nothrow);
    else
        try {
            mem = take_block(l.blocks(), cls);
        } catch (...) {
            mem = nullptr;
        }
    return mem ? ::new (mem) T(std::forward<Args>(args)...) : nullptr;
}

/// Destroys a T of pool_new() and gives its memory back to `l`'s pool (to the
/// heap if `l` is null: the loop is gone).
template <class T>
void pool_delete(uvkit::loop* l, T* p) noexcept {
    constexpr unsigned char cls = pool_class_of<T>();
    p->~T();
    if constexpr (cls == 0)
        ::operator delete(p);
    else
        give_block(l ? &l->blocks() : nullptr, p, cls);
}

/// A socket's local or peer address through libuv's `fn` (uv_tcp_getsockname, uv_udp_getpeername, ...).
template <class H>
endpoint name_of(const H* h, int (*fn)(const H*, sockaddr*, int*), std::error_code& ec) noexcept {
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (set_error(ec, fn(h, reinterpret_cast<sockaddr*>(&ss), &len))) return {};
    return endpoint::from(reinterpret_cast<const sockaddr*>(&ss));
}

/// Allocates a state block, initialises its libuv handle with `init(loop, &s->h, args...)`
/// and registers it with the loop. Throws std::system_error naming `what`.
template <class State, class Init, class... Args>
State* create_state(uvkit::loop& l, const char* what, Init init, Args... args) {
    constexpr unsigned char cls = block_class_of<State>();
    State* s;
    if constexpr (cls == 0) {
        s = new State(l);
    } else {
        s = ::new (take_block(l.blocks(), cls)) State(l);
        s->block_class = cls;
    }
    int rc = init(l.raw(), &s->h, args...);
    if (rc < 0) {
        handle_state::destroy(s, &l);
        throw_uv_error(rc, what);
    }
    s->attach(reinterpret_cast<uv_handle_t*>(&s->h));
    return s;
}

/// Hands the exception being handled to `s`'s loop. Out of line, so that the
/// handler trampolines keep no exception state in their own frames.
[[gnu::noinline, gnu::cold]] inline void fail_current(handle_state* s) noexcept {
    s->fail(std::current_exception());
}

/// Runs a handler from a libuv callback: an exception stops the loop instead of
/// unwinding through libuv's C frames.
template <class State, class F>
void guarded(State* s, F&& f) noexcept {
    try {
        f();
    } catch (...) {
        fail_current(s);
    }
}

}  // namespace uvkit::detail
