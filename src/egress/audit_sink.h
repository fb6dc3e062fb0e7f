// Where egress decisions are recorded. Production: the shared tamper-evident
// audit log (src/audit). Tests and builds without it: a JSON-lines file that
// is fsynced per record. Append errors mean the caller must fail closed.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "audit/audit.h"
#include "common/status.h"

namespace mamori::egress {

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  virtual Result<uint64_t> Append(audit::Record record) = 0;
};

// Opens the shared audit log (audit::Log) at `path` with the signing key at
// `signing_key_path`.
Result<std::unique_ptr<AuditSink>> OpenAuditLog(const std::string& path,
                                                const std::string& signing_key_path,
                                                const Clock* clock);

// One JSON object per line, fsynced; same fields as `mamori audit export`.
Result<std::unique_ptr<AuditSink>> OpenJsonlAudit(const std::string& path, const Clock* clock);

// Keeps records in memory; for tests. Thread-safe.
class MemoryAuditSink : public AuditSink {
 public:
  Result<uint64_t> Append(audit::Record record) override;
  std::vector<audit::Record> records() const;
  void set_fail(bool fail) { fail_ = fail; }

 private:
  mutable std::mutex mu_;
  std::vector<audit::Record> records_;
  bool fail_ = false;
};

}  // namespace mamori::egress
