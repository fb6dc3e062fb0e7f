// The milter server: Boost.Asio, TCP (with TCP_NODELAY) or a unix socket.
// Each I/O thread runs its own connections; the end of each message (content
// scan, audit append) runs on a separate pool, so no connection waits behind
// another's scan or fsync.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "mail/session.h"

namespace mamori::mail {

struct ServerOptions {
  // "inet:127.0.0.1:10025", "inet6:[::1]:10025" or "unix:/run/mamori/milter.sock"
  std::string listen;
  int threads = 2;  // I/O threads, each with its own connections
  // Threads that decide ends of messages (content scan, audit append); they
  // block, and concurrent verdicts share one audit fdatasync.
  int verdict_threads = 8;
  uint32_t max_connections = 512;  // concurrent milter connections
  // Called every `tick_seconds` on an io thread (delayed-release timer).
  std::function<void()> on_tick;
  uint32_t tick_seconds = 15;
};

class Server {
 public:
  // Binds at once, so a bad address is reported before Run().
  static Result<std::unique_ptr<Server>> Create(ServerOptions options, SessionDeps deps);
  ~Server();
  // The bound port for inet listeners (useful with port 0).
  uint16_t port() const;
  // Serves until Stop() or SIGINT/SIGTERM (if handle_signals).
  Status Run(bool handle_signals);
  // Thread-safe. Closes the listener at once, then stops.
  void Stop();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mamori::mail
