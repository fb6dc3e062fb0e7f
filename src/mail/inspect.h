// Personal-data inspection of a whole message for the mail guard.
#pragma once

#include <memory>
#include <string_view>

#include "common/redact.h"
#include "common/status.h"
#include "mail/policy.h"

namespace mamori::mail {

// Scans every MIME part and attachment (zips included) of one message.
// Thread-safe: one inspector is shared by all milter connections.
class ContentInspector {
 public:
  virtual ~ContentInspector() = default;
  // `message` is the full RFC 5322 message (headers, blank line, body).
  // A budget overrun is kResourceExhausted; the caller must fail closed.
  virtual Result<ContentSummary> Inspect(std::string_view message) = 0;
};

// The real inspector: extract::ExtractBuffer("message.eml") + detect::ScanText
// + detect::PersonCounter, with the default rule set. Fails with kUnavailable
// when mamori was built without the detection engine.
Result<std::unique_ptr<ContentInspector>> MakeDetectInspector(const Budgets& budgets,
                                                              const HashKey& key);

}  // namespace mamori::mail
