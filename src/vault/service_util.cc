// Small helpers for the vault service: CIDRs, status mapping, audit sink.
#include <arpa/inet.h>

#include <cstring>

#include "vault/service.h"

namespace mamori::vault {

Result<Cidr> Cidr::Parse(std::string_view text) {
  Cidr c;
  c.text = std::string(text);
  std::string addr(text);
  int prefix = -1;
  auto slash = addr.find('/');
  if (slash != std::string::npos) {
    std::string p = addr.substr(slash + 1);
    addr.resize(slash);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos)
      return InvalidArgument("bad prefix length in network '" + c.text + "'");
    prefix = std::stoi(p);
  }
  if (inet_pton(AF_INET, addr.c_str(), c.addr) == 1) {
    c.family = AF_INET;
    if (prefix < 0) prefix = 32;
    if (prefix > 32) return InvalidArgument("IPv4 prefix over 32 in '" + c.text + "'");
  } else if (inet_pton(AF_INET6, addr.c_str(), c.addr) == 1) {
    c.family = AF_INET6;
    if (prefix < 0) prefix = 128;
    if (prefix > 128) return InvalidArgument("IPv6 prefix over 128 in '" + c.text + "'");
  } else {
    return InvalidArgument("'" + c.text + "' is not an IP network (use 10.0.0.0/8 or ::1/128)");
  }
  c.prefix = prefix;
  return c;
}

bool Cidr::Contains(std::string_view ip_text) const {
  unsigned char ip[16] = {0};
  std::string s(ip_text);
  int fam = 0;
  if (inet_pton(AF_INET, s.c_str(), ip) == 1) {
    fam = AF_INET;
  } else if (inet_pton(AF_INET6, s.c_str(), ip) == 1) {
    fam = AF_INET6;
    // IPv4-mapped IPv6 (::ffff:a.b.c.d) matches IPv4 networks.
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET && std::memcmp(ip, kMapped, 12) == 0) {
      std::memmove(ip, ip + 12, 4);
      fam = AF_INET;
    }
  } else {
    return false;
  }
  if (fam != family) return false;
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(ip, addr, static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (ip[full] & mask) == (addr[full] & mask);
}

Result<std::vector<Cidr>> ParseCidrList(std::string_view list) {
  std::vector<Cidr> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = list.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) {
      ASSIGN_OR_RETURN(Cidr c, Cidr::Parse(item));
      out.push_back(std::move(c));
    }
    start = comma + 1;
  }
  return out;
}

int HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kDataLoss:
      return 500;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

namespace {
class LogSink : public AuditSink {
 public:
  explicit LogSink(audit::Log* log) : log_(log) {}
  Status Append(audit::Record r) override {
    auto seq = log_->Append(std::move(r));
    return seq.ok() ? Status::Ok() : seq.status();
  }

 private:
  audit::Log* log_;
};
}  // namespace

std::unique_ptr<AuditSink> MakeAuditLogSink(audit::Log* log) {
  return std::make_unique<LogSink>(log);
}

}  // namespace mamori::vault
