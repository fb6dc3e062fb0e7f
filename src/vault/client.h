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

// A resumable upload (issue 4) into folder `folder` as `name`: creates an
// upload session, sends the content in requests of up to `part_bytes`, and
// after a failed request (dropped connection, timeout, 5xx) reconnects, asks
// the server for its committed offset and continues from there, up to
// `max_retries` times in a row. Completes with `sha256` (hex of the whole
// content), so the server refuses a corrupted result. `read_at(offset, buf,
// n)` reads local content at `offset` (0 = end). Returns the server's final
// answer; a refusal (4xx) is returned at once, never retried.
struct ResumableUploadOptions {
  uint64_t part_bytes = uint64_t{256} << 20;
  int max_retries = 8;
  int retry_delay_ms = 500;
};
Result<ClientResponse> UploadResumable(
    const ClientOptions& options, const std::map<std::string, std::string>& headers,
    const std::string& folder, const std::string& name, uint64_t size, const std::string& sha256,
    const std::function<Result<size_t>(uint64_t offset, char* buf, size_t n)>& read_at,
    const ResumableUploadOptions& resumable = {});

// Percent-encodes a path segment (RFC 3986 unreserved kept).
std::string UrlEncode(std::string_view s);

}  // namespace mamori::vault
