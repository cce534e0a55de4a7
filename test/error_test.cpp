// uvkit::error_category, uvkit::errc and std::errc comparisons.
#include <uvkit/uvkit.hpp>

#include <cstring>
#include <string>
#include <system_error>

#include "fixture.hpp"

TEST_SUITE_BEGIN("error");

TEST_CASE("the category's name and messages come from libuv") {
    const std::error_category& cat = uvkit::error_category();
    CHECK(&cat == &uvkit::error_category());
    CHECK(std::string(cat.name()) == "uvkit");
    for (int code : {UV_ECONNREFUSED, UV_EOF, UV_ECANCELED, UV_EINVAL, UV_EADDRINUSE}) {
        CAPTURE(code);
        CHECK(cat.message(code) == uv_strerror(code));
    }
    CHECK(uvkit::make_uv_error(UV_ETIMEDOUT).message() == uv_strerror(UV_ETIMEDOUT));
    CHECK(uvkit::make_uv_error(UV_EOF).message() == "end of file");
}

TEST_CASE("libuv codes compare equal to the matching std::errc") {
    CHECK(uvkit::make_uv_error(UV_ECONNREFUSED) == std::errc::connection_refused);
    CHECK(uvkit::make_uv_error(UV_ECONNRESET) == std::errc::connection_reset);
    CHECK(uvkit::make_uv_error(UV_EADDRINUSE) == std::errc::address_in_use);
    CHECK(uvkit::make_uv_error(UV_ETIMEDOUT) == std::errc::timed_out);
    CHECK(uvkit::make_uv_error(UV_EINVAL) == std::errc::invalid_argument);
    CHECK(uvkit::make_uv_error(UV_EPIPE) == std::errc::broken_pipe);
    CHECK(uvkit::make_uv_error(UV_EAGAIN) == std::errc::resource_unavailable_try_again);
    CHECK(uvkit::make_uv_error(UV_ENOENT) == std::errc::no_such_file_or_directory);
    CHECK(uvkit::make_uv_error(UV_ECANCELED) == std::errc::operation_canceled);

    // ... and only to the matching one.
    CHECK_FALSE(uvkit::make_uv_error(UV_ECONNREFUSED) == std::errc::connection_reset);
    CHECK_FALSE(uvkit::make_uv_error(UV_ECONNREFUSED) == std::errc::invalid_argument);
    CHECK(uvkit::make_uv_error(UV_ECONNREFUSED) != std::errc::timed_out);

    // Two uvkit codes compare by value; a uvkit code is not the generic code object.
    CHECK(uvkit::make_uv_error(UV_EINVAL) == uvkit::make_uv_error(UV_EINVAL));
    CHECK(uvkit::make_uv_error(UV_EINVAL) != uvkit::make_uv_error(UV_EIO));
    CHECK(uvkit::make_uv_error(UV_EINVAL).category() == uvkit::error_category());
    CHECK(uvkit::make_uv_error(UV_EINVAL).default_error_condition() ==
          std::make_error_condition(std::errc::invalid_argument));
}

TEST_CASE("errc::eof and errc::canceled") {
    std::error_code eof = uvkit::errc::eof;
    CHECK(eof.value() == UV_EOF);
    CHECK(eof.category() == uvkit::error_category());
    CHECK(eof == uvkit::errc::eof);
    CHECK(eof == uvkit::make_uv_error(UV_EOF));
    CHECK(eof != uvkit::errc::canceled);
    CHECK(static_cast<bool>(eof));
    // EOF has no POSIX meaning: it matches no std::errc.
    CHECK(eof.default_error_condition().category() == uvkit::error_category());
    CHECK(eof != std::errc::io_error);
    CHECK(eof != std::errc::invalid_argument);

    std::error_code canceled = uvkit::make_error_code(uvkit::errc::canceled);
    CHECK(canceled.value() == UV_ECANCELED);
    CHECK(canceled == uvkit::errc::canceled);
    CHECK(canceled == std::errc::operation_canceled);
    CHECK(canceled != uvkit::errc::eof);

    std::error_code unknown = uvkit::errc::unknown;
    CHECK(unknown.value() == UV_UNKNOWN);

    // A code of another category is never a uvkit errc.
    CHECK(std::make_error_code(std::errc::operation_canceled) != uvkit::errc::canceled);
}

TEST_CASE("err_name") {
    CHECK(uvkit::err_name(uvkit::make_uv_error(UV_ECONNREFUSED)) == "ECONNREFUSED");
    CHECK(uvkit::err_name(uvkit::errc::eof) == "EOF");
    CHECK(uvkit::err_name(uvkit::errc::canceled) == "ECANCELED");
    CHECK(uvkit::err_name(std::make_error_code(std::errc::io_error)) == "UNKNOWN");
}

TEST_CASE_FIXTURE(uvkit_test::loop_fixture, "a failing call throws std::system_error in the uvkit category") {
    uvkit::timer t{loop};
    try {
        t.again();  // never started: libuv says UV_EINVAL
        FAIL("again() on a never-started timer did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code().category() == uvkit::error_category());
        CHECK(e.code().value() == UV_EINVAL);
        CHECK(e.code() == std::errc::invalid_argument);
        CHECK(std::string(e.what()).find("uv_timer_again") != std::string::npos);
    }
    std::error_code ec;
    t.again(ec);
    CHECK(ec.category() == uvkit::error_category());
    CHECK(uvkit::err_name(ec) == "EINVAL");
}

TEST_CASE("no_error() and status_code() make the same codes as std::error_code{} and make_uv_error") {
    // Completions build their success code with no_error(): it must be exactly std::error_code{}.
    CHECK(uvkit::detail::no_error() == std::error_code{});
    CHECK(&uvkit::detail::no_error().category() == &std::system_category());
    CHECK_FALSE(uvkit::detail::no_error());
    CHECK(uvkit::detail::status_code(0) == std::error_code{});
    CHECK(uvkit::detail::status_code(7) == std::error_code{});  // a byte count is success too
    CHECK(uvkit::detail::status_code(UV_EOF) == uvkit::errc::eof);
    CHECK(uvkit::detail::status_code(UV_ECONNRESET) == std::errc::connection_reset);
    std::error_code ec = uvkit::make_uv_error(UV_EINVAL);
    CHECK_FALSE(uvkit::detail::set_error(ec, 0));
    CHECK(ec == std::error_code{});
}

TEST_SUITE_END();
