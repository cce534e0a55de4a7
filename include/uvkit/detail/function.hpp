// A move-only, type-erased callable with inline storage.
//
// Why not std::function: handlers may capture move-only state (a socket, a
// unique_ptr, a coroutine handle), and std::function requires copyable
// callables. Why not std::move_only_function: it is C++23. Callables of up to
// four pointers (a lambda capturing three pointers and a reference, say) that
// are nothrow-movable live inside the object: storing one never allocates.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace uvkit::detail {

/// How the type-erased call passes an argument of type T: small trivially
/// copyable values (an error_code, a string_view) in registers, the rest by reference.
template <class T>
using pass_t = std::conditional_t<
    !std::is_reference_v<T> && std::is_trivially_copyable_v<T> && sizeof(T) <= 2 * sizeof(void*), T, T&&>;

template <class Sig>
class unique_function;

template <class R, class... A>
class unique_function<R(A...)> {
public:
    /// Bytes of inline storage: callables this small are never heap-allocated.
    static constexpr std::size_t inline_size = 4 * sizeof(void*);

    unique_function() noexcept = default;
    unique_function(std::nullptr_t) noexcept {}

    template <
        class F, class D = std::decay_t<F>,
        class = std::enable_if_t<!std::is_same_v<D, unique_function> && std::is_invocable_r_v<R, D&, A...>>>
    unique_function(F&& f) {  // NOLINT(google-explicit-constructor): callables convert implicitly
        // A null function pointer makes an empty function (as std::function does),
        // so that handle operations can reject it like libuv rejects a NULL callback.
        if constexpr (std::is_pointer_v<D> || std::is_member_pointer_v<D>) {
            if (f == nullptr) return;
        }
        if constexpr (stored_inline<D>) {
            ::new (static_cast<void*>(buf_)) D(std::forward<F>(f));
            ops_ = &inline_ops<D>;
        } else {
            D* p = new D(std::forward<F>(f));
            std::memcpy(buf_, &p, sizeof p);
            ops_ = &heap_ops<D>;
        }
    }

    unique_function(unique_function&& o) noexcept { take(o); }
    unique_function& operator=(unique_function&& o) noexcept {
        if (this != &o) {
            reset();
            take(o);
        }
        return *this;
    }
    unique_function& operator=(std::nullptr_t) noexcept {
        reset();
        return *this;
    }
    unique_function(const unique_function&) = delete;
    unique_function& operator=(const unique_function&) = delete;
    ~unique_function() { reset(); }

    explicit operator bool() const noexcept { return ops_ != nullptr; }

    /// Move-assignment into a unique_function known to be empty: nothing to destroy first.
    void assign_to_empty(unique_function&& o) noexcept { take(o); }

    /// Calls the stored callable. Calling an empty unique_function is undefined.
    R operator()(A... a) { return ops_->invoke(buf_, static_cast<pass_t<A>>(a)...); }

    /// True when a callable of type F would be stored without allocating.
    template <class F>
    static constexpr bool stored_inline =
        sizeof(F) <= inline_size && alignof(F) <= alignof(void*) && std::is_nothrow_move_constructible_v<F>;

private:
    struct ops_t {
        R (*invoke)(void*, pass_t<A>...);
        void (*move)(void* dst, void* src) noexcept;  // null: bytes may be copied
        void (*destroy)(void*) noexcept;              // null: nothing to do
    };

    template <class D>
    static R invoke_inline(void* p, pass_t<A>... a) {
        return (*std::launder(static_cast<D*>(p)))(static_cast<A&&>(a)...);
    }
    template <class D>
    static void move_inline(void* dst, void* src) noexcept {
        D* s = std::launder(static_cast<D*>(src));
        ::new (dst) D(std::move(*s));
        s->~D();
    }
    template <class D>
    static void destroy_inline(void* p) noexcept {
        std::launder(static_cast<D*>(p))->~D();
    }
    template <class D>
    static D* heap_ptr(void* p) noexcept {
        D* d;
        std::memcpy(&d, p, sizeof d);
        return d;
    }
    template <class D>
    static R invoke_heap(void* p, pass_t<A>... a) {
        return (*heap_ptr<D>(p))(static_cast<A&&>(a)...);
    }
    template <class D>
    static void destroy_heap(void* p) noexcept {
        delete heap_ptr<D>(p);
    }

    template <class D>
    static constexpr bool trivially_relocatable =
        std::is_trivially_copyable_v<D>&& std::is_trivially_destructible_v<D>;

    template <class D>
    static constexpr ops_t inline_ops{&invoke_inline<D>, trivially_relocatable<D> ? nullptr : &move_inline<D>,
                                      std::is_trivially_destructible_v<D> ? nullptr : &destroy_inline<D>};
    template <class D>
    static constexpr ops_t heap_ops{&invoke_heap<D>, nullptr, &destroy_heap<D>};

    void take(unique_function& o) noexcept {
        ops_ = o.ops_;
        if (!ops_) return;
        if (ops_->move)
            ops_->move(buf_, o.buf_);
        else
            std::memcpy(buf_, o.buf_, inline_size);
        o.ops_ = nullptr;
    }
    void reset() noexcept {
        if (ops_ && ops_->destroy) ops_->destroy(buf_);
        ops_ = nullptr;
    }

    alignas(void*) unsigned char buf_[inline_size];
    const ops_t* ops_ = nullptr;
};

/// A handler slot that survives being replaced while its handler runs.
///
/// A handler may restart its own handle with a new handler (`t.start(...)`
/// from inside the timer's handler). Destroying or moving the running callable
/// then would free or relocate (inline storage) the very closure that is
/// executing; instead a handler set during a dispatch is held aside and
/// installed, destroying the old one, after the call returns.
template <class Sig>
class handler_slot;

template <class... A>
class handler_slot<void(A...)> {
public:
    void set(unique_function<void(A...)>&& f) noexcept {
        if (dispatching_) {
            pending_ = std::move(f);
            replaced_ = true;
            return;
        }
        fn_ = std::move(f);
    }
    explicit operator bool() const noexcept {
        return replaced_ ? static_cast<bool>(pending_) : static_cast<bool>(fn_);
    }

    /// Calls the handler (if any). Exceptions propagate to the caller.
    void operator()(A... a) {
        if (!fn_) return;
        dispatching_ = true;
        struct done {
            handler_slot* s;
            ~done() {
                s->dispatching_ = false;
                if (s->replaced_) [[unlikely]]
                    s->install_pending();
            }
        } guard{this};
        fn_(std::forward<A>(a)...);
    }

private:
    // Out of line, so that a dispatch that replaced nothing stays short.
    [[gnu::noinline]] void install_pending() noexcept {
        replaced_ = false;
        fn_ = std::move(pending_);
    }

    unique_function<void(A...)> fn_;
    unique_function<void(A...)> pending_;  // set during a dispatch; installed after it
    bool dispatching_ = false;
    bool replaced_ = false;
};

}  // namespace uvkit::detail
