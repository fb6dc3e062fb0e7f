#include "egress/audit_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mamori::egress {
namespace {

class JsonlSink : public AuditSink {
 public:
  JsonlSink(int fd, const Clock* clock) : fd_(fd), clock_(clock) {}
  ~JsonlSink() override { ::close(fd_); }
  Result<uint64_t> Append(audit::Record r) override {
    if (r.time_micros == 0) r.time_micros = clock_->NowMicros();
    nlohmann::ordered_json fields = audit::RecordToJson(r);
    std::lock_guard<std::mutex> l(mu_);
    if (failed_) return FailedPrecondition("audit file failed earlier; restart to reopen it");
    // The same fields as `mamori audit export --format jsonl`, without the hash.
    nlohmann::ordered_json j;
    j["seq"] = ++seq_;
    for (auto& [key, value] : fields.items()) j[key] = std::move(value);
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::string_view out = line;
    while (!out.empty()) {
      ssize_t w = ::write(fd_, out.data(), out.size());
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        failed_ = true;
        return Unavailable(std::string("audit write failed: ") + std::strerror(errno));
      }
      out.remove_prefix(static_cast<size_t>(w));
    }
    if (::fdatasync(fd_) != 0) {
      failed_ = true;
      return Unavailable(std::string("audit fsync failed: ") + std::strerror(errno));
    }
    return seq_;
  }

 private:
  int fd_;
  const Clock* clock_;
  std::mutex mu_;
  uint64_t seq_ = 0;
  bool failed_ = false;
};

}  // namespace

Result<std::unique_ptr<AuditSink>> OpenJsonlAudit(const std::string& path, const Clock* clock) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Unavailable("cannot open audit file " + path + ": " + std::strerror(errno));
  }
  return std::unique_ptr<AuditSink>(std::make_unique<JsonlSink>(fd, clock));
}

Result<uint64_t> MemoryAuditSink::Append(audit::Record record) {
  std::lock_guard<std::mutex> l(mu_);
  if (fail_) return Unavailable("test audit sink is set to fail");
  records_.push_back(std::move(record));
  return records_.size();
}

std::vector<audit::Record> MemoryAuditSink::records() const {
  std::lock_guard<std::mutex> l(mu_);
  return records_;
}

}  // namespace mamori::egress
