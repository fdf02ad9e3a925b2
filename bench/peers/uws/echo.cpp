// WebSocket echo on uWebSockets: one thread, no TLS, no compression.
// Every message goes back with the opcode it came with (text or binary).
// usage: uws-echo HOST:PORT   (or just PORT, on 127.0.0.1)
#include "App.h"
#include <cstdio>
#include <string>

int main(int argc, char **argv) {
    if (argc != 2) { std::fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]); return 2; }
    std::string addr = argv[1], host = "127.0.0.1";
    if (auto colon = addr.rfind(':'); colon != std::string::npos) {
        host = addr.substr(0, colon);
        addr = addr.substr(colon + 1);
    }
    int port = std::stoi(addr);
    struct Nothing {};  // no per-connection state
    uWS::App().ws<Nothing>("/*", {
        .compression = uWS::DISABLED,
        .maxPayloadLength = 16 * 1024 * 1024,
        .idleTimeout = 0,     // never close a quiet connection (scenario d holds them idle)
        .maxBackpressure = 0, // no limit: an echo that cannot be written yet waits, it is never dropped
        .message = [](auto *ws, std::string_view message, uWS::OpCode opCode) {
            ws->send(message, opCode);
        },
    }).listen(host, port, [&](auto *listening) {
        if (!listening) { std::fprintf(stderr, "uws-echo: cannot listen on %s:%d\n", host.c_str(), port); std::exit(1); }
        std::fprintf(stderr, "uws-echo listening on %s:%d\n", host.c_str(), port);
    }).run();
}
