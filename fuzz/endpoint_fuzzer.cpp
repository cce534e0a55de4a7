// endpoint_fuzzer: endpoint::parse over arbitrary text.
//
// Checks, for every input: both spellings of parse agree (the throwing one
// throws exactly when the non-throwing one reports an error, and only
// std::invalid_argument); an accepted endpoint prints as text that parses back
// to an equal endpoint with the same port and family.
#include <uvkit/endpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include "require.hpp"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    std::error_code ec;
    const uvkit::endpoint quiet = uvkit::endpoint::parse(text, ec);
    bool threw = false;
    uvkit::endpoint loud;
    try {
        loud = uvkit::endpoint::parse(text);
    } catch (const std::invalid_argument&) {
        threw = true;
    }
    require(threw == static_cast<bool>(ec));
    if (ec) {
        require(ec == std::errc::invalid_argument);
        require(!quiet);
        return 0;
    }
    require(quiet && quiet == loud);
    require(quiet.family() == AF_INET || quiet.family() == AF_INET6);

    const std::string printed = quiet.to_string();
    std::error_code again;
    const uvkit::endpoint reparsed = uvkit::endpoint::parse(printed, again);
    require(!again);
    require(reparsed == quiet);
    require(reparsed.port() == quiet.port());
    require(reparsed.to_string() == printed);
    return 0;
}
