// resolve: looks a host name up with the system resolver, on libuv's thread
// pool, and prints every address, one a line.
//
//     resolve HOST [SERVICE]
//
// Without a service each line is an address ("127.0.0.1", "::1"); with one,
// an endpoint with the service's port ("127.0.0.1:80", "[::1]:80"). An
// unknown host prints the resolver's message on stderr and exits 1, as does
// output that cannot be written (stdout on a full disk); bad arguments exit 2
// with a usage line (a numeric service must be a port, 0-65535).
#include <uvkit/uvkit.hpp>

#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3 || std::string_view(argv[1]).empty() || argv[1][0] == '-' ||
        (argc == 3 && std::string_view(argv[2]).empty())) {
        std::cerr << "usage: " << argv[0] << " HOST [SERVICE]\n";
        return 2;
    }
    const std::string host = argv[1];
    const std::string service = argc == 3 ? argv[2] : "";
    // The resolver takes any number and wraps it to 16 bits (99999 would be 34463).
    if (!service.empty() && service.find_first_not_of("0123456789") == std::string::npos &&
        (service.size() > 5 || std::stoul(service) > 65535)) {
        std::cerr << argv[0] << ": " << service << ": not a port (0-65535)\n";
        return 2;
    }

    try {
        uvkit::loop loop;
        int status = 0;
        auto req =
            uvkit::resolve(loop, host, service, [&](std::error_code ec, std::vector<uvkit::endpoint> eps) {
                if (ec) {
                    std::cerr << argv[0] << ": " << host << (service.empty() ? "" : " " + service) << ": "
                              << ec.message() << "\n";
                    status = 1;
                    return;
                }
                for (const auto& ep : eps)
                    std::cout << (service.empty() ? ep.address() : ep.to_string()) << "\n";
            });
        loop.run();
        std::cout.flush();
        if (!std::cout) {
            std::cerr << argv[0] << ": cannot write the addresses to stdout\n";
            return 1;
        }
        return status;
    } catch (const std::system_error& e) {
        std::cerr << argv[0] << ": " << e.what() << "\n";
        return 1;
    }
}
