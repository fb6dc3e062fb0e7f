// Where egress decisions are recorded. Production: the shared tamper-evident
// audit log (src/audit). Tests and builds without it: a JSON-lines file that
// is fsynced per record. Append errors mean the caller must fail closed.
#pragma once

#include <functional>
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
  // Like Append, but `done` gets the result once the record is durable,
  // possibly on another thread, possibly before AppendAsync returns. The
  // default calls Append (blocking); the audit log's sink does not block, so
  // an I/O thread can serve other connections while a group commit runs.
  // With audit::Durability::kWritten a sink may answer once the record is
  // written, before its fdatasync (the audit log's sink does; the others
  // always sync first).
  using Done = std::function<void(Result<uint64_t>)>;
  virtual void AppendAsync(audit::Record record, Done done,
                           audit::Durability = audit::Durability::kSynced) {
    done(Append(std::move(record)));
  }
};

// Opens the shared audit log (audit::Log) at `path` with the signing key at
// `signing_key_path`.
Result<std::unique_ptr<AuditSink>> OpenAuditLog(const std::string& path,
                                                const std::string& signing_key_path,
                                                const Clock* clock);

// The same with every option of the log (tests pass a fault-injecting Env).
Result<std::unique_ptr<AuditSink>> OpenAuditLog(const audit::LogOptions& options);

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
