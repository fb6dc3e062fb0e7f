// `mamori serve`: HTTPS (TLS 1.2+, Boost.Beast/Asio + OpenSSL 3) in front of a
// Vault. Client certificates are requested on every connection and verified
// against the vault CA; the vault decides per request whether one is needed.
// One thread per connection with socket timeouts and a connection budget.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "vault/service.h"

namespace mamori::vault {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8443;             // 0 = pick a free port (tests)
  std::string cert_path, key_path;  // server certificate chain and key
  std::string client_ca_path;       // the vault CA that issues device certificates
  int max_connections = 256;        // more are closed at once
  int io_timeout_seconds = 60;      // per read/write on a connection
  size_t max_header_bytes = 16 * 1024;
};

class Server {
 public:
  // Binds and starts accepting in a background thread. `vault` must outlive it.
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options, Vault* vault);
  ~Server();  // Stop()
  uint16_t port() const;
  // Stops accepting, closes open connections and waits for their threads.
  void Stop();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mamori::vault
