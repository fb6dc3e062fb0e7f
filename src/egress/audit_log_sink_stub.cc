// Used only while src/audit is not built into this binary.
#include "egress/audit_sink.h"

namespace mamori::egress {

Result<std::unique_ptr<AuditSink>> OpenAuditLog(const std::string&, const std::string&,
                                                const Clock*) {
  return Unavailable(
      "the shared audit log (src/audit) is not built into this binary; use --audit-jsonl");
}

}  // namespace mamori::egress
