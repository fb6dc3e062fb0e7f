// HTTPS client for the vault API (the `mamori` client subcommands and tests).
// Verifies the server against the vault CA (hostname or IP), presents the
// device certificate if one is configured, and streams bodies both ways.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mamori::vault {

struct ClientOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8443;
  std::string ca_path;    // vault CA certificate (PEM file)
  std::string cert_path;  // device certificate (PEM), optional
  std::string key_path;   // device key (PEM), optional
  int timeout_seconds = 120;
};

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // empty for streamed downloads
  std::string header(const std::string& n) const {
    auto it = headers.find(n);
    return it == headers.end() ? "" : it->second;
  }
};

// Parses "https://host:port" (IPv6 in brackets).
Status ParseServerUrl(const std::string& url, std::string* host, uint16_t* port);

class Client {
 public:
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();
  // A request with a small in-memory body (JSON).
  Result<ClientResponse> Call(const std::string& method, const std::string& target,
                              const std::map<std::string, std::string>& headers,
                              const std::string& body);
  // Streams `size` bytes pulled from `read` (returns bytes, 0 = end) as the body.
  Result<ClientResponse> Upload(const std::string& method, const std::string& target,
                                const std::map<std::string, std::string>& headers, uint64_t size,
                                const std::function<Result<size_t>(char*, size_t)>& read);
  // Streams a 2xx response body into `write`; other statuses come back in body.
  Result<ClientResponse> Download(const std::string& target,
                                  const std::map<std::string, std::string>& headers,
                                  const std::function<Status(std::string_view)>& write);

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes a path segment (RFC 3986 unreserved kept).
std::string UrlEncode(std::string_view s);

}  // namespace mamori::vault
