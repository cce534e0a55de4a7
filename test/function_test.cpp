// uvkit::detail::unique_function and handler_slot: inline storage, move-only
// callables, and a handler that replaces itself while it runs.
#include "uvkit/detail/function.hpp"

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "alloc_counter.hpp"
#include "doctest_include.hpp"

using uvkit::detail::handler_slot;
using uvkit::detail::unique_function;
using uvkit_test::alloc_window;

namespace {

/// Counts constructions and destructions of non-moved-from objects.
struct counted {
    static inline int live = 0;
    static inline int destroyed = 0;
    bool owner = true;
    counted() noexcept { ++live; }
    counted(counted&& o) noexcept : owner(std::exchange(o.owner, false)) {}
    counted& operator=(counted&&) = delete;
    ~counted() {
        if (owner) {
            --live;
            ++destroyed;
        }
    }
    static void reset() noexcept { live = destroyed = 0; }
};

/// Like `counted`, but its move may throw: never stored inline.
struct throwing_move {
    int value = 5;
    throwing_move() = default;
    throwing_move(throwing_move&& o) noexcept(false) : value(o.value) {}
};

/// Makes `x` observable to the compiler, so that it cannot elide the heap
/// allocation behind a unique_function that is otherwise used only locally.
template <class T>
void escape(T& x) {
    asm volatile("" : : "g"(&x) : "memory");
}

}  // namespace

TEST_SUITE_BEGIN("function");

TEST_CASE("a lambda capturing three pointers is stored inline: no allocation") {
    int a = 1, b = 2, c = 3;
    int* pa = &a;
    int* pb = &b;
    int* pc = &c;
    auto small = [pa, pb, pc] { return *pa + *pb + *pc; };
    static_assert(unique_function<int()>::stored_inline<decltype(small)>);
    alloc_window w;
    unique_function<int()> f = small;
    unique_function<int()> g = std::move(f);
    unique_function<int()> h;
    h = std::move(g);
    escape(h);
    int r = h();
    CHECK(w.count() == 0);
    CHECK(r == 6);
}

TEST_CASE("a larger callable lives on the heap: one allocation, freed on destruction") {
    std::array<void*, 8> big_capture{};
    int x = 4;
    big_capture[0] = &x;
    auto big = [big_capture] { return *static_cast<int*>(big_capture[0]); };
    static_assert(!unique_function<int()>::stored_inline<decltype(big)>);
    alloc_window w;
    {
        unique_function<int()> f = big;
        escape(f);
        CHECK(w.count() == 1);
        unique_function<int()> g = std::move(f);  // moves the pointer, not the callable
        unique_function<int()> h;
        h = std::move(g);
        CHECK(w.count() == 1);
        CHECK(h() == 4);
    }
    CHECK(w.count() == 1);
}

TEST_CASE("a callable whose move may throw is stored on the heap") {
    static_assert(!unique_function<int()>::stored_inline<throwing_move>);
    auto f0 = [t = throwing_move{}] { return t.value; };
    static_assert(!unique_function<int()>::stored_inline<decltype(f0)>);
    alloc_window w;
    unique_function<int()> f = std::move(f0);
    escape(f);
    CHECK(w.count() == 1);
    CHECK(f() == 5);
}

TEST_CASE("move-only callables, arguments and return values") {
    unique_function<int(int)> f = [p = std::make_unique<int>(10)](int add) { return *p + add; };
    CHECK(f(5) == 15);

    unique_function<std::unique_ptr<int>(std::unique_ptr<int>)> pass = [](std::unique_ptr<int> p) {
        ++*p;
        return p;
    };
    auto out = pass(std::make_unique<int>(41));
    REQUIRE(out);
    CHECK(*out == 42);

    std::string s = "abc";
    unique_function<void(std::string&)> append = [](std::string& t) { t += "d"; };
    append(s);
    CHECK(s == "abcd");
}

TEST_CASE("moves leave the source empty") {
    unique_function<int()> f = [] { return 1; };
    CHECK(static_cast<bool>(f));
    unique_function<int()> g = std::move(f);
    CHECK_FALSE(static_cast<bool>(f));
    CHECK(static_cast<bool>(g));
    CHECK(g() == 1);

    unique_function<int()> h = [] { return 2; };
    h = std::move(g);
    CHECK_FALSE(static_cast<bool>(g));
    CHECK(h() == 1);

    h = nullptr;
    CHECK_FALSE(static_cast<bool>(h));
    unique_function<int()> n = nullptr;
    CHECK_FALSE(static_cast<bool>(n));
    unique_function<int()> d;
    CHECK_FALSE(static_cast<bool>(d));
}

TEST_CASE("captured objects are destroyed exactly once") {
    SUBCASE("inline") {
        counted::reset();
        {
            unique_function<void()> f = [c = counted{}] { (void)c; };
            static_assert(unique_function<void()>::stored_inline<counted>);
            CHECK(counted::live == 1);
            unique_function<void()> g = std::move(f);
            CHECK(counted::live == 1);
            CHECK(counted::destroyed == 0);
            f = std::move(g);
            CHECK(counted::destroyed == 0);
        }
        CHECK(counted::live == 0);
        CHECK(counted::destroyed == 1);
    }
    SUBCASE("heap") {
        counted::reset();
        {
            std::array<char, 100> pad{};
            unique_function<void()> f = [c = counted{}, pad] { (void)c, (void)pad; };
            CHECK(counted::live == 1);
            unique_function<void()> g = std::move(f);
            CHECK(counted::destroyed == 0);
        }
        CHECK(counted::live == 0);
        CHECK(counted::destroyed == 1);
    }
    SUBCASE("assignment destroys the old callable once") {
        counted::reset();
        unique_function<void()> f = [c = counted{}] { (void)c; };
        unique_function<void()> g = [c = counted{}] { (void)c; };
        CHECK(counted::live == 2);
        f = std::move(g);
        CHECK(counted::live == 1);
        CHECK(counted::destroyed == 1);
        f = nullptr;
        CHECK(counted::live == 0);
        CHECK(counted::destroyed == 2);
        f = nullptr;
        CHECK(counted::destroyed == 2);
    }
    SUBCASE("calling does not copy or destroy") {
        counted::reset();
        unique_function<int()> f = [c = counted{}] {
            (void)c;
            return counted::live;
        };
        CHECK(f() == 1);
        CHECK(f() == 1);
        CHECK(counted::destroyed == 0);
    }
}

TEST_CASE("handler_slot: replacing the handler during dispatch keeps the running closure alive") {
    counted::reset();
    handler_slot<void(int)> slot;
    CHECK_FALSE(static_cast<bool>(slot));
    slot(1);  // empty: nothing happens

    int old_calls = 0;
    int new_calls = 0;
    int live_after_replace = -1;
    std::string text(64, 'q');  // on the heap
    std::string seen;
    slot.set([&, c = counted{}, text](int v) {
        ++old_calls;
        slot.set([&](int w) { new_calls += w; });
        // Still running: captures must be intact.
        live_after_replace = counted::live;
        seen = text;
        (void)v, (void)c;
    });
    CHECK(static_cast<bool>(slot));
    CHECK(counted::live == 1);
    slot(1);
    CHECK(old_calls == 1);
    CHECK(live_after_replace == 1);
    CHECK(seen == std::string(64, 'q'));
    CHECK(counted::live == 0);  // destroyed after the call returned
    CHECK(counted::destroyed == 1);
    slot(7);
    CHECK(old_calls == 1);
    CHECK(new_calls == 7);
}

TEST_CASE("handler_slot: an inline closure replaced during dispatch keeps its captures") {
    handler_slot<void()> slot;
    int a = 0;
    int b = 0;
    int new_calls = 0;
    int* pa = &a;
    int* pb = &b;
    int* pn = &new_calls;
    handler_slot<void()>* ps = &slot;
    auto first = [pa, pb, pn, ps] {
        ps->set([pn] { ++*pn; });
        // The running closure must not have been moved or overwritten.
        *pa = 1;
        *pb = 2;
    };
    static_assert(unique_function<void()>::stored_inline<decltype(first)>);
    slot.set(first);
    slot();
    CHECK(a == 1);
    CHECK(b == 2);
    CHECK(new_calls == 0);
    slot();
    CHECK(new_calls == 1);
    CHECK(a == 1);
}

TEST_CASE("handler_slot: two replacements during one dispatch") {
    counted::reset();
    handler_slot<void()> slot;
    int which = 0;
    int live_inside = -1;
    slot.set([&, c = counted{}] {
        slot.set([&, c2 = counted{}] { which = 2; });
        slot.set([&] { which = 3; });
        live_inside = counted::live;  // the running one, not the discarded middle one
        (void)c;
    });
    slot();
    CHECK(live_inside == 1);
    CHECK(counted::live == 0);
    CHECK(counted::destroyed == 2);
    slot();
    CHECK(which == 3);
}

TEST_CASE("handler_slot: an exception propagates and the parked closure is still released") {
    counted::reset();
    handler_slot<void()> slot;
    int calls = 0;
    slot.set([&, c = counted{}] {
        slot.set([&] { ++calls; });
        (void)c;
        throw 42;
    });
    CHECK_THROWS_AS(slot(), int);
    CHECK(counted::live == 0);
    slot();
    CHECK(calls == 1);
    // After dispatch ended, set() destroys the old handler at once.
    slot.set([c = counted{}] { (void)c; });
    CHECK(counted::live == 1);
    slot.set([] {});
    CHECK(counted::live == 0);
}

TEST_CASE("arguments reach the callable intact however they are passed") {
    // Small trivially copyable arguments travel in registers, the rest by reference:
    // both must arrive with their values, references must alias, move-only values move.
    struct big {  // trivially copyable, but too large for registers
        long a, b, c;
    };
    unique_function<void(std::error_code, std::string_view, big, int&, std::unique_ptr<int>, std::string)> f =
        [](std::error_code ec, std::string_view sv, big b, int& out, std::unique_ptr<int> p, std::string s) {
            out = ec.value() + static_cast<int>(sv.size()) + static_cast<int>(b.a + b.b + b.c) + *p +
                  static_cast<int>(s.size());
        };
    int out = 0;
    std::string text(100, 'x');  // longer than any small-string buffer: moved, not copied
    const char* bytes = text.data();
    std::string taken;
    unique_function<void(std::string)> keep = [&taken](std::string s) { taken = std::move(s); };
    f(std::make_error_code(std::errc::invalid_argument), "abc", big{1, 2, 3}, out,
      std::make_unique<int>(1000), "12345");
    CHECK(out == static_cast<int>(std::errc::invalid_argument) + 3 + 6 + 1000 + 5);
    keep(std::move(text));
    CHECK(taken.size() == 100);
    CHECK(taken.data() == bytes);
    unique_function<int(int, int)> sum = [](int a, int b) { return a - b; };
    CHECK(sum(10, 3) == 7);  // order of arguments kept
}

TEST_SUITE_END();
