// The egress decision, without I/O: what the policy says about one HTTP
// message before its body arrives (destination, size, caps) and after it was
// inspected (content thresholds, caps in bytes and individuals).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "egress/inspector.h"
#include "egress/policy.h"
#include "egress/volume.h"

namespace mamori::egress {

// What is known about one HTTP message (an upload in REQMOD, a download in RESPMOD).
struct Exchange {
  std::string user;       // resolved identity
  std::string client_ip;  // from X-Client-IP
  std::string host;       // destination host, lowercased
  std::string site;       // the matched list domain or the registrable domain
  std::string method;     // HTTP method
  const Category* category = nullptr;
  bool is_response = false;  // RESPMOD
  bool has_body = false;
  std::optional<uint64_t> content_length;
};

struct Verdict {
  bool block = false;
  std::string reason;  // machine code: destination_blocked, volume_cap, ...
  std::string detail;  // for the audit log and alert; never personal data
  bool alert = false;
  uint64_t limit = 0;  // the limit that was hit (bytes or individuals), for the page
};

enum class PreAction { kAllow, kBlock, kInspect };

class Decider {
 public:
  explicit Decider(VolumeTracker* volume) : volume_(volume) {}

  // The caps that apply to this exchange, with their keys.
  std::vector<CapCheck> CapsFor(const Policy& policy, const Exchange& ex) const;

  // Decision from headers alone. kAllow with a known Content-Length records
  // the volume at once (it will not be seen again).
  PreAction PreBody(const Policy& policy, const Exchange& ex, Verdict* verdict);

  // Decision once the whole body was read and inspected. `inspection` is an
  // error when inspection failed or exceeded a budget: the category's
  // on_error setting decides. Records the volume when allowed.
  Verdict PostBody(const Policy& policy, const Exchange& ex, uint64_t body_bytes,
                   const Result<InspectionSummary>& inspection);

 private:
  VolumeTracker* volume_;
};

// An HTTP/1.1 403 response (head and HTML body, Japanese and English) that
// says why and gives the event ID to quote to the help desk.
struct BlockPage {
  std::string head;  // "HTTP/1.1 403 Forbidden\r\n...\r\n\r\n"
  std::string body;  // UTF-8 HTML
};
BlockPage MakeBlockPage(const Settings& settings, const Exchange& ex, const Verdict& verdict,
                        const std::string& event_id, int64_t now_micros);

}  // namespace mamori::egress
