// The consumer test's program: uvkit used from another project (as a Meson subproject, or
// through uvkit.pc), mixed with raw libuv calls on the same loop. It echoes a message over
// loopback TCP (port 0), fires a uvkit::timer and a raw uv_timer_t, prints one line and
// exits 0, or prints what went wrong and exits 1.
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>

#include <uvkit/uvkit.hpp>

namespace {

int fail(const char* what) {
    std::fprintf(stderr, "consumer: FAILED: %s\n", what);
    return 1;
}

}  // namespace

int main() {
    using namespace std::chrono_literals;
    const std::string message = "hello from a uvkit consumer";

    uvkit::loop loop;

    // A raw libuv handle on uvkit's loop: uvkit never touches handles it did not create.
    uv_timer_t raw_timer;
    int raw_fired = 0;
    uv_timer_init(loop.raw(), &raw_timer);
    raw_timer.data = &raw_fired;
    uv_timer_start(
        &raw_timer,
        [](uv_timer_t* t) {
            ++*static_cast<int*>(t->data);
            uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
        },
        1, 0);

    int timer_fired = 0;
    uvkit::timer timer{loop};
    timer.start(1ms, [&] { ++timer_fired; });

    bool timed_out = false;
    uvkit::timer watchdog{loop};
    watchdog.start(5s, [&] {
        timed_out = true;
        loop.stop();
    });

    // Echo server on 127.0.0.1, port 0 (the kernel picks a free port).
    uvkit::tcp server{loop};
    server.bind(uvkit::endpoint::parse("127.0.0.1:0"));
    const uvkit::endpoint server_ep = server.local_endpoint();
    uvkit::tcp peer;
    std::error_code server_error;
    server.listen(16, [&](std::error_code ec) {
        if (ec) {
            server_error = ec;
            return;
        }
        peer = uvkit::tcp{loop};
        server.accept(peer);
        peer.read_start([&](std::error_code rec, std::string_view data) {
            if (rec) {  // EOF from the client, or an error: either way this connection is done
                if (rec != uvkit::errc::eof) server_error = rec;
                peer.close();
                return;
            }
            peer.write(std::string(data));
        });
    });

    // Client: connect, send the message, read it back, then close everything.
    uvkit::tcp client{loop};
    std::string echoed;
    std::error_code client_error;
    client.connect(server_ep, [&](std::error_code ec) {
        if (ec) {
            client_error = ec;
            loop.stop();
            return;
        }
        client.write(std::string_view{message}, [&](std::error_code wec) {
            if (wec) client_error = wec;
        });
        client.read_start([&](std::error_code rec, std::string_view data) {
            if (rec) {
                client_error = rec;
                loop.stop();
                return;
            }
            echoed.append(data);
            if (echoed.size() >= message.size()) {
                client.close();
                server.close();
                watchdog.stop();
            }
        });
    });

    loop.run();

    if (timed_out) return fail("timed out after 5 s");
    if (client_error) return fail(("client: " + client_error.message()).c_str());
    if (server_error) return fail(("server: " + server_error.message()).c_str());
    if (echoed != message) return fail(("echo mismatch: got '" + echoed + "'").c_str());
    if (timer_fired != 1) return fail("the uvkit::timer did not fire exactly once");
    if (raw_fired != 1) return fail("the raw uv_timer_t did not fire exactly once");

    std::printf("consumer: echoed %zu bytes via %s; uvkit::timer and raw uv_timer_t fired (libuv %s)\n",
                echoed.size(), server_ep.to_string().c_str(), uv_version_string());
    return 0;
}
