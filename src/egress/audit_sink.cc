#include "egress/audit_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace mamori::egress {
namespace {

std::string Rfc3339(int64_t micros) {
  time_t secs = static_cast<time_t>(micros / 1'000'000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<long long>(micros % 1'000'000));
  return buf;
}

class JsonlSink : public AuditSink {
 public:
  JsonlSink(int fd, const Clock* clock) : fd_(fd), clock_(clock) {}
  ~JsonlSink() override { ::close(fd_); }
  Result<uint64_t> Append(audit::Record r) override {
    if (r.time_micros == 0) r.time_micros = clock_->NowMicros();
    nlohmann::json j = RecordToJson(r);
    std::lock_guard<std::mutex> l(mu_);
    if (failed_) return FailedPrecondition("audit file failed earlier; restart to reopen it");
    j["seq"] = ++seq_;
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

nlohmann::json RecordToJson(const audit::Record& r) {
  nlohmann::json j;
  j["time"] = Rfc3339(r.time_micros);
  j["component"] = r.component;
  j["event_id"] = r.event_id;
  j["user"] = r.user;
  j["device"] = r.device;
  j["source_ip"] = r.source_ip;
  j["org"] = r.org;
  j["action"] = r.action;
  j["object"] = r.object;
  j["destination"] = r.destination;
  j["bytes"] = r.bytes;
  j["result"] = r.result;
  j["reason"] = r.reason;
  j["labels"] = r.labels.is_null() ? nlohmann::json::object() : r.labels;
  j["extra"] = r.extra.is_null() ? nlohmann::json::object() : r.extra;
  return j;
}

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
