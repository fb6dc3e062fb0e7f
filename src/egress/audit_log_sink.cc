// AuditSink backed by the shared tamper-evident audit log (src/audit).
#include "egress/audit_sink.h"

namespace mamori::egress {
namespace {

class LogSink : public AuditSink {
 public:
  explicit LogSink(std::unique_ptr<audit::Log> log) : log_(std::move(log)) {}
  Result<uint64_t> Append(audit::Record record) override { return log_->Append(std::move(record)); }
  void AppendAsync(audit::Record record, Done done, audit::Durability durability) override {
    log_->AppendAsync(std::move(record), std::move(done), durability);
  }

 private:
  std::unique_ptr<audit::Log> log_;
};

}  // namespace

Result<std::unique_ptr<AuditSink>> OpenAuditLog(const std::string& path,
                                                const std::string& signing_key_path,
                                                const Clock* clock) {
  audit::LogOptions o;
  o.path = path;
  o.signing_key_path = signing_key_path;
  o.clock = clock;
  return OpenAuditLog(o);
}

Result<std::unique_ptr<AuditSink>> OpenAuditLog(const audit::LogOptions& options) {
  ASSIGN_OR_RETURN(auto log, audit::Log::Open(options));
  return std::unique_ptr<AuditSink>(std::make_unique<LogSink>(std::move(log)));
}

}  // namespace mamori::egress
