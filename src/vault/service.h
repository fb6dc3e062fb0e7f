// The vault service: every API request, independent of the transport.
//
// The HTTPS server (server.h) authenticates the TLS layer (the device
// certificate chains to the vault CA) and hands each request to
// Vault::Handle with the certificate's fingerprint and the peer address.
// Handle then decides everything else: enrolled and unlocked device, session,
// role, network, pledge, ACL, budget; streams content through encryption;
// and writes one audit record per request. If the audit record cannot be
// made durable the request is refused with 503 (fail closed).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "alert/alert.h"
#include "audit/audit.h"
#include "common/clock.h"
#include "common/redact.h"
#include "common/status.h"
#include "crypto/crypto.h"
#include "vault/blob_store.h"
#include "vault/meta_store.h"
#include "vault/pki.h"

namespace mamori::detect {
class RuleSet;
}

namespace mamori::vault {

// Where audit records go. Append must return only once the record is durable.
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  virtual Status Append(audit::Record record) = 0;
};
// Adapts the shared audit log (src/audit). `log` must outlive the sink.
std::unique_ptr<AuditSink> MakeAuditLogSink(audit::Log* log);

// An IPv4 or IPv6 network, e.g. "10.0.0.0/8", "::1/128".
struct Cidr {
  std::string text;
  unsigned char addr[16] = {0};
  int family = 0;  // AF_INET / AF_INET6
  int prefix = 0;
  static Result<Cidr> Parse(std::string_view text);
  bool Contains(std::string_view ip) const;
};
// Parses "a/n,b/m" (empty = empty list).
Result<std::vector<Cidr>> ParseCidrList(std::string_view list);

// The layout on disk (docs/vault.md):
//   DATA/meta.db            SQLite metadata (WAL)
//   DATA/blobs/             encrypted content
//   DATA/pki/               ca.crt ca.key server.crt server.key (0600 keys)
//   KEYS/kek.keyring        key-encryption keys (0600), NOT under DATA
struct VaultOptions {
  std::string data_dir;
  std::string keyring_path;
  const Clock* clock = &Clock::Real();
  int64_t session_ttl_micros = 15LL * 60 * 1000000;  // short-lived sessions
  int64_t enrol_token_ttl_micros = 72LL * 3600 * 1000000;
  int max_failed_logins = 5;  // then lockout
  int64_t lockout_micros = 15LL * 60 * 1000000;
  std::vector<Cidr> admin_networks;                         // empty = loopback only
  int64_t trash_retention_micros = 30LL * 86400 * 1000000;  // policy "trash" overrides
  int64_t janitor_interval_seconds = 600;  // trash purge and upload cleanup; 0 = off
  int64_t upload_session_ttl_micros = 24LL * 3600 * 1000000;  // idle resumable uploads
  uint64_t upload_segment_bytes = 8 << 20;         // resumable uploads commit every segment
  uint64_t max_label_container_bytes = 256 << 20;  // zip/Office/PDF buffered for labels
  uint64_t max_label_buffer_total_bytes = uint64_t{1} << 30;  // all uploads at once
  int max_upload_sessions_per_user = 8;
  uint64_t max_upload_bytes = uint64_t{1} << 40;  // 1 TiB
  size_t max_json_bytes = 64 * 1024;
  int device_cert_days = 365;
  std::string pledge_version = "2026-1";
  // Detection rules for labelling uploads; null = labels are not computed
  // (uploads are then labelled {"scanned":false}).
  std::shared_ptr<const detect::RuleSet> rules;
  HashKey label_hash_key;
  // Alerts (budget exceeded, device locked, break-glass, audit failure,
  // repeated login failures); null = none. Must outlive the Vault.
  alert::Alerter* alerter = nullptr;
  // The audit log the sink writes, for the auditor's read API (GET /v1/audit);
  // empty = that API answers 503.
  std::string audit_log_path;
};

// What the transport knows about a request.
struct HttpRequest {
  std::string method;
  std::string target;                          // path and query, percent-encoded
  std::map<std::string, std::string> headers;  // lower-case names
  std::string source_ip;
  std::string cert_fingerprint;  // hex SHA-256 of the verified client cert; empty if none
  std::optional<uint64_t> content_length;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Pulls the request body. Read returns 0 at the end.
class BodySource {
 public:
  virtual ~BodySource() = default;
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

// Pushes the response. Start exactly once, then Write*, then Finish.
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual Status Start(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                       std::optional<uint64_t> content_length) = 0;
  virtual Status Write(std::string_view data) = 0;
  virtual Status Finish() = 0;
  virtual bool started() const = 0;
};

struct InitResult {
  std::string admin_user;
  std::string enrol_token;  // one-time, for the first admin's first device
  std::string ca_cert_path;
};

class Vault {
 public:
  // Creates a new vault: keyring (refuses to overwrite), CA, server certificate
  // for `server_san` ("DNS:localhost,IP:127.0.0.1"), database, metadata key,
  // and the first admin account with a one-time enrolment token.
  static Result<InitResult> Initialize(const VaultOptions& options, const std::string& admin_name,
                                       const std::string& server_san);
  // Offline recovery for the host operator: a new one-time enrolment token
  // for an existing admin account (e.g. the first token expired). The caller
  // records it in the audit log.
  static Result<std::string> IssueAdminToken(const VaultOptions& options,
                                             const std::string& admin_name);
  static Result<std::unique_ptr<Vault>> Open(VaultOptions options,
                                             std::unique_ptr<AuditSink> audit);
  ~Vault();

  // Handles one request completely (including the audit record).
  void Handle(const HttpRequest& req, BodySource& body, ResponseSink& out);

  // Rewraps every data key and the metadata key with the current KEK after
  // `Keyring::Rotate`. Content is not rewritten. Returns keys rewrapped.
  Result<uint64_t> RotateKeys();

  const std::string& pki_dir() const { return pki_dir_; }

  struct Impl;

 private:
  Vault() = default;
  std::unique_ptr<Impl> impl_;
  std::string pki_dir_;
};

// Maps a Status to an HTTP status code.
int HttpStatusFor(const Status& s);

}  // namespace mamori::vault
