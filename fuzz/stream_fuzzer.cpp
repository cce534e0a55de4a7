// stream_fuzzer: what goes into a uvkit stream comes out, byte for byte,
// whatever the chunking.
//
// Each input is a script. Its first bytes choose the reader (read_start
// callbacks with read_stop/read_start toggled, or one of the coroutine reads:
// async_read, async_read(span), async_read_exactly, async_read_until), how
// many times the payload repeats, and the sizes of the writes; the rest is the
// payload. A writer task writes it through one end of a uv_socketpair() in
// chunks of those sizes (borrowed and owned writes mixed) and shuts down; a
// reader on the other end collects it until end of stream. The fuzzer aborts
// if what was read differs from what was written, or if anything is left open.
#include <uvkit/uvkit.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "require.hpp"
#include "socket_pair.hpp"

namespace {

enum class reader_kind : std::uint8_t { callbacks, read_string, read_span, read_exactly, read_until, count };

struct script {
    reader_kind reader = reader_kind::callbacks;
    std::vector<std::size_t> write_sizes;  // cycled over the payload
    std::vector<std::size_t> read_sizes;   // for async_read(span) / async_read_exactly
    std::string payload;
};

// Header: [reader] [repeat] [n sizes] n x [size byte]; the rest is the payload.
script parse_script(std::string_view in) {
    script s;
    auto take = [&in]() -> std::uint8_t {
        if (in.empty()) return 0;
        const auto b = static_cast<std::uint8_t>(in.front());
        in.remove_prefix(1);
        return b;
    };
    s.reader = static_cast<reader_kind>(take() % static_cast<std::uint8_t>(reader_kind::count));
    const std::size_t repeat = 1 + take() % 64;  // up to 64 copies: beyond a pipe buffer
    const std::size_t n = 1 + take() % 16;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t b = take();
        // Small sizes mostly, and now and then a large one (the high bit scales by 1 KiB).
        s.write_sizes.push_back((b & 0x80) ? std::size_t{1024} * (b & 0x7f) + 1 : std::size_t{b} + 1);
        s.read_sizes.push_back(std::size_t{(b * 7u) % 200u} + 1);
    }
    for (std::size_t i = 0; i < repeat; ++i) s.payload.append(in);
    return s;
}

uvkit::task<void> write_all(uvkit::pipe& out, const script& s) {
    std::size_t pos = 0;
    for (std::size_t i = 0; pos < s.payload.size(); ++i) {
        const std::size_t n = std::min(s.write_sizes[i % s.write_sizes.size()], s.payload.size() - pos);
        const std::string_view chunk(s.payload.data() + pos, n);
        if (i % 2 == 0) {
            co_await out.async_write(chunk);
        } else {
            co_await out.async_write(std::string(chunk));
        }
        pos += n;
    }
    co_await out.async_shutdown();
}

uvkit::task<void> read_all(uvkit::pipe& in, const script& s, std::string& got) {
    switch (s.reader) {
        case reader_kind::read_string:
            for (;;) {
                std::string chunk = co_await in.async_read();
                if (chunk.empty()) co_return;
                got += chunk;
            }
        case reader_kind::read_span: {
            std::vector<char> buf(256);
            for (std::size_t i = 0;; ++i) {
                const std::span<char> room(buf.data(), s.read_sizes[i % s.read_sizes.size()]);
                const std::size_t n = co_await in.async_read(room);
                if (n == 0) co_return;
                require(n <= room.size());
                got.append(buf.data(), n);
            }
        }
        case reader_kind::read_exactly: {
            std::vector<char> buf(256);
            for (std::size_t i = 0;; ++i) {
                const std::span<char> room(buf.data(), s.read_sizes[i % s.read_sizes.size()]);
                std::error_code ec;
                const std::size_t n = co_await in.async_read_exactly(room, ec);
                got.append(buf.data(), n);
                if (ec) {
                    // Only the last, short piece may end in eof, and then whatever came is kept.
                    require(ec == uvkit::errc::eof && n < room.size());
                    co_return;
                }
                require(n == room.size());
            }
        }
        case reader_kind::read_until: {
            std::string buf;
            for (;;) {
                std::error_code ec;
                const std::size_t n = co_await in.async_read_until(buf, "\n", 64 * 1024, ec);
                if (ec == uvkit::errc::eof) {
                    got += buf;  // the tail without a delimiter stays in buf
                    co_return;
                }
                require(!ec || ec == std::errc::message_size);
                if (ec) {  // a line longer than max: take what is buffered and go on
                    got += buf;
                    buf.clear();
                    continue;
                }
                require(n > 0 && n <= buf.size() && buf[n - 1] == '\n');
                got.append(buf, 0, n);
                buf.erase(0, n);
            }
        }
        case reader_kind::callbacks:
        case reader_kind::count: break;
    }
}

// read_start with a handler; every third chunk pauses reading for one loop turn.
struct callback_reader {
    uvkit::pipe& in;
    uvkit::idle resume;
    std::string& got;
    std::size_t chunks = 0;
    bool eof = false;

    void start() {
        in.read_start([this](std::error_code ec, std::string_view data) { on_read(ec, data); });
    }
    void on_read(std::error_code ec, std::string_view data) {
        if (ec) {
            require(ec == uvkit::errc::eof);
            eof = true;
            return;
        }
        got += data;
        if (++chunks % 3 == 0) {
            in.read_stop();
            resume.start([this] {
                resume.stop();
                start();
            });
        }
    }
};

uvkit::task<void> write_and_read(uvkit::pipe& writer, uvkit::pipe& reader, const script& s,
                                 std::string& got) {
    co_await uvkit::when_all(write_all(writer, s), read_all(reader, s, got));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const script s = parse_script(std::string_view(reinterpret_cast<const char*>(data), size));

    uvkit::loop loop;
    auto ends = socket_pair(loop);
    uvkit::pipe& reader = ends.first;
    uvkit::pipe& writer = ends.second;

    std::string got;
    if (s.reader == reader_kind::callbacks) {
        callback_reader r{reader, uvkit::idle(loop), got};
        r.start();
        uvkit::spawn(loop, write_all(writer, s)).detach();
        loop.run();
        require(r.eof);
    } else {
        uvkit::run(loop, write_and_read(writer, reader, s, got));
    }
    require(got == s.payload);

    reader.close();
    writer.close();
    loop.run();
    require(loop.handle_count() == 0);
    return 0;
}
