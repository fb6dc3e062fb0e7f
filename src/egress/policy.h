// Egress policy: destination categories, content thresholds, volume caps and
// identities, loaded from rules/egress/*.yaml (format in docs/egress.md).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "egress/icap_protocol.h"

namespace mamori::egress {

enum class UploadAction { kAllow, kInspect, kBlock };
std::string_view UploadActionName(UploadAction a);

struct ContentRules {
  std::vector<std::string> block_types;  // any finding of these types blocks
  uint64_t max_individuals = 0;          // block at >= this many people; 0 = no limit
  // A part with no text to inspect (an image, a PDF of scanned pages, an
  // unknown binary format): block the body (`not_inspected: block`, the
  // default, since a photo of a My Number card is personal data no pattern
  // sees) or let it through recorded as not inspected (`allow`).
  bool block_not_inspected = true;
};

struct TenantRule {
  std::vector<std::string> hosts;  // domain suffixes the headers are added on
  HeaderList headers;              // replaced (client copies removed) then added
};

struct Category {
  std::string name;
  std::vector<std::string> domains;  // "example.com" matches it and subdomains
  UploadAction uploads = UploadAction::kInspect;
  bool inspect_downloads = false;  // RESPMOD bodies are inspected too
  uint64_t max_upload_bytes = 0;   // per request; 0 = no limit
  bool fail_closed = true;         // on internal error or exceeded budget: block
  // When settings.memory_budget is used up by other uploads: hold this body
  // in a temp file (true, `over_memory_budget: disk`) or block it (false).
  bool disk_over_budget = true;
  ContentRules content;
  std::vector<TenantRule> tenant_headers;
};

enum class CapScope { kUserDestination, kUser };

struct Cap {
  std::string name;
  CapScope scope = CapScope::kUserDestination;
  int64_t window_seconds = 3600;
  uint64_t max_bytes = 0;               // 0 = no byte cap
  uint64_t max_individuals = 0;         // 0 = no individuals cap
  std::vector<std::string> categories;  // empty = every category
};

struct Settings {
  uint64_t preview_bytes = 4096;
  uint64_t spool_memory_bytes = 8ull << 20;  // body kept in memory up to this
  uint64_t spool_max_bytes = 1ull << 30;     // then a temp file up to this
  uint64_t inspect_max_bytes = 1ull << 30;   // decoded bytes inspected per body
  // Bodies and containers held in memory by all transactions together.
  uint64_t memory_budget_bytes = 256ull << 20;
  uint32_t max_connections = 1000;
  uint32_t options_ttl_seconds = 60;
  int64_t idle_timeout_seconds = 120;
  std::string min_confidence = "medium";
  std::string help_desk = "the IT help desk";  // shown on the block page
  std::string help_desk_ja = "情報システム部門";
};

class Policy {
 public:
  Settings settings;
  std::vector<Category> categories;
  std::map<std::string, std::string> ip_users;  // client IP -> user
  std::vector<Cap> caps;
  std::string version;  // short hash of the files; part of the ISTag

  // The category of a host: the longest matching domain wins; "unknown" if none.
  const Category& Classify(std::string_view host) const;
  // Like Classify, and the matched domain (the site key for caps), or the
  // host's registrable domain (heuristic) when nothing matched.
  const Category& Classify(std::string_view host, std::string* site) const;
  const Category* Find(std::string_view name) const;
  // The user for an identity: X-Client-Username if set, else the IP map, else
  // "ip:<address>", else "anonymous".
  std::string ResolveUser(std::string_view username, std::string_view client_ip) const;
};

// Parses and validates a policy from (file name, YAML text) pairs. Files are
// merged: settings and users keys, category fields and caps from any file;
// category domain lists are concatenated. Errors name the file and key.
Result<std::shared_ptr<const Policy>> ParsePolicy(
    const std::vector<std::pair<std::string, std::string>>& files);

// Loads every *.yaml / *.yml in `dir` (sorted by name).
Result<std::shared_ptr<const Policy>> LoadPolicyDir(const std::string& dir);

// "example.co.jp" from "www.example.co.jp"; a heuristic for two-level public
// suffixes (co.jp, ne.jp, co.uk, ...), not the full Public Suffix List.
std::string RegistrableDomain(std::string_view host);

// Holds the current policy and reloads it when a file in the directory changes
// (mtime/size/name polling). A bad file keeps the old policy; the error is
// returned by Poll() and kept in last_error(). Thread-safe.
class PolicyStore {
 public:
  static Result<std::unique_ptr<PolicyStore>> Open(const std::string& dir);
  std::shared_ptr<const Policy> Current() const;
  // Checks the directory; reloads if it changed. Returns true if a new policy
  // was installed, false if unchanged, or the load error (old policy kept).
  Result<bool> Poll();
  std::string last_error() const;
  const std::string& dir() const { return dir_; }

 private:
  explicit PolicyStore(std::string dir) : dir_(std::move(dir)) {}
  std::string Fingerprint() const;
  std::string dir_;
  mutable std::mutex mu_;
  std::shared_ptr<const Policy> current_;
  std::string fingerprint_;
  std::string last_error_;
};

}  // namespace mamori::egress
