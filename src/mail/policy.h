// The mail guard policy (rules/mail/*.yaml) and its decision function.
//
// Evaluate() is pure: given the envelope, the To/Cc addresses and (when
// asked for) a summary of the personal data in the message, it returns what
// to do. Everything that touches sockets, Postfix or disk lives elsewhere.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace mamori::mail {

struct Budgets {
  uint32_t max_packet_bytes = 1u << 20;            // one milter packet
  uint64_t max_message_bytes = 50ull << 20;        // headers + body kept for inspection
  uint32_t max_recipients = 1000;                  // envelope recipients per message
  uint32_t max_headers = 2000;                     // header fields per message
  uint32_t max_header_bytes = 256u << 10;          // one header field
  uint32_t max_macros = 200;                       // macro values kept per connection
  uint64_t max_total_buffered_bytes = 1ull << 30;  // all connections together
  uint32_t scan_seconds = 60;                      // extraction wall time per message
  uint32_t idle_seconds = 300;                     // silence on a milter connection
};

struct Policy {
  std::vector<std::string> internal_domains;  // lower-case; subdomains included
  std::vector<std::string> partner_domains;   // known external partners (typo targets)
  // "outbound": only mail whose envelope sender is internal; "all": every mail.
  std::string scope = "outbound";

  bool bcc_enabled = true;
  uint32_t bcc_threshold = 3;            // external To/Cc entries that trigger it
  std::string bcc_count = "recipients";  // or "domains" (distinct external domains)
  std::string bcc_to_value = "undisclosed-recipients:;";
  bool bcc_note_header = true;

  bool pd_enabled = true;
  uint64_t pd_hold_my_number_min = 1;     // My Numbers to external => hold
  uint64_t pd_hold_individuals_min = 10;  // distinct people to external => hold
  bool pd_hold_uninspectable = true;      // encrypted/unreadable part to external => hold
  // A part with no text (image, scanned PDF, binary) to external => hold. Off
  // by default: signature logos and inline pictures are in most mail; the
  // audit record counts such parts either way.
  bool pd_hold_not_inspected = false;
  bool pd_scan_internal = false;  // scan internal-only mail too (for the audit)

  bool typo_enabled = true;
  int typo_max_distance = 2;
  uint32_t typo_min_length = 5;  // ignore very short domains

  bool hidden_bcc_hold = true;

  bool delay_enabled = false;    // 一時保留 for every external mail
  uint32_t delay_seconds = 300;  // YAML: minutes (default 5) or seconds

  uint32_t release_approvals = 1;  // 2 = two-person rule for release

  // Notice mail to the sender on hold and Bcc conversion (via sendmail(1)),
  // and cancel by mail. Empty addresses default to mamori@ / mamori-cancel@
  // the first internal domain.
  bool notice_enabled = true;
  std::string notice_from;
  std::string notice_cancel_address;
  std::string notice_sendmail = "/usr/sbin/sendmail";

  Budgets budgets;

  // Loads one YAML file, or every *.yaml in a directory (later files add to
  // list settings and override scalars). Errors name the file and key.
  static Result<Policy> Load(const std::string& path);
  static Result<Policy> Parse(const std::string& yaml_text, const std::string& source_name);
  // rules/mail in the source tree, or MAMORI_MAIL_POLICY.
  static std::string DefaultPath();

  bool IsInternal(const std::string& domain) const;
};

// What the scanner found in the whole message (all parts and attachments).
struct ContentSummary {
  bool scanned = false;
  std::map<std::string, uint64_t> types;  // finding type -> count
  uint64_t my_numbers = 0;
  uint64_t individuals = 0;
  uint64_t units = 0;                   // text units inspected
  std::vector<std::string> unreadable;  // units that could not be read, with reason
  // Parts with no text to inspect (an image, a PDF without a text layer, an
  // unknown binary): how many, and the first few as "path (format)". Never
  // counted as inspected.
  uint64_t not_inspected = 0;
  std::vector<std::string> not_inspected_parts;
};

// What Postfix told us about one message.
struct Envelope {
  std::string sender;                   // normalised, "" for <>
  std::vector<std::string> recipients;  // envelope RCPT TO, normalised
  std::vector<std::string> to_cc;       // addresses in To and Cc headers
  bool header_parse_error = false;      // To/Cc could not be parsed
};

enum class Action { kAccept, kHold, kTempfail };
std::string_view ActionName(Action a);

struct Verdict {
  Action action = Action::kAccept;
  bool in_scope = true;
  std::vector<std::string> reasons;  // machine-readable, e.g. "my_number"
  bool bcc_convert = false;
  uint32_t external_to_cc = 0;                 // as counted for the Bcc rule
  std::vector<std::string> recipient_domains;  // distinct envelope recipient domains
  std::vector<std::string> external_domains;
  std::vector<std::string> typo_domains;  // "partner.co.jq~partner.co.jp"
  bool delay_only = false;                // held only for the 一時保留 delay
  uint32_t delay_seconds = 0;
  std::string note;  // human note for the sender
};

// First pass: do we need to scan the content? (external recipients, or policy says so)
bool NeedsContentScan(const Policy& policy, const Envelope& env);

// Decides. `content` may be unscanned when NeedsContentScan() was false.
Verdict Evaluate(const Policy& policy, const Envelope& env, const ContentSummary& content);

}  // namespace mamori::mail
