// The auditor's window on the audit log: GET /v1/audit. Separation of duties:
// only the auditor role reads the log through the API (admins manage, members
// work with content, maintenance sees neither), and the read is itself audited.
#include "vault/service_impl.h"

namespace mamori::vault {

namespace {

// Accepts microseconds since the epoch or ISO 8601 with an offset or Z
// ("2026-11-23T09:00:00+09:00").
Result<int64_t> ParseTime(const std::string& s, const char* what) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() <= 18)
    return std::stoll(s);
  int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
      n <= 0)
    return InvalidArgument(std::string(what) +
                           " must be microseconds or ISO 8601 like 2026-11-23T09:00:00+09:00");
  std::string zone = s.substr(static_cast<size_t>(n));
  int offset_min = 0;
  if (zone == "Z") {
    offset_min = 0;
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    offset_min = std::stoi(zone.substr(1, 2)) * 60 + std::stoi(zone.substr(4, 2));
    if (zone[0] == '-') offset_min = -offset_min;
  } else {
    return InvalidArgument(std::string(what) + " needs a time zone: Z or +09:00");
  }
  // Days from civil (Howard Hinnant's algorithm).
  int yy = y - (mo <= 2);
  int era = (yy >= 0 ? yy : yy - 399) / 400;
  int yoe = yy - era * 400;
  int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = static_cast<int64_t>(era) * 146097 + doe - 719468;
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
  return secs * 1000000;
}

}  // namespace

Status Vault::Impl::AuditRead(Ctx& c, ResponseSink& out) {
  RETURN_IF_ERROR(RequireSession(c));
  if (c.user->role != Role::kAuditor)
    return PermissionDenied("reading the audit log needs the auditor role (separation of duties)");
  if (opt.audit_log_path.empty())
    return Unavailable("this vault was started without an audit log path");
  audit::Filter f;
  auto q = [&](const char* k) {
    auto it = c.query.find(k);
    return it == c.query.end() ? std::string() : it->second;
  };
  if (!q("since").empty()) {
    ASSIGN_OR_RETURN(f.since_micros, ParseTime(q("since"), "since"));
  }
  if (!q("until").empty()) {
    ASSIGN_OR_RETURN(f.until_micros, ParseTime(q("until"), "until"));
  }
  f.user = q("user");
  f.device = q("device");
  f.action = q("action");
  f.result = q("result");
  f.org = q("org");
  uint64_t limit = 1000;
  if (!q("limit").empty()) {
    std::string l = q("limit");
    if (l.size() > 6 || l.find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(l) == 0 || std::stoull(l) > 10000)
      return InvalidArgument("limit must be 1..10000");
    limit = std::stoull(l);
  }
  c.rec.extra["filter"] = {{"user", f.user}, {"action", f.action}, {"limit", limit}};
  audit::ReaderOptions ro;
  ro.path = opt.audit_log_path;
  ASSIGN_OR_RETURN(auto reader, audit::Reader::Open(ro, f));
  // The newest `limit` matching records, oldest first.
  std::deque<nlohmann::ordered_json> kept;
  uint64_t matched = 0;
  while (true) {
    ASSIGN_OR_RETURN(auto rec, reader->Next());
    if (!rec) break;
    ++matched;
    nlohmann::ordered_json j = audit::RecordToJson(rec->record);
    j["seq"] = rec->seq;
    kept.push_back(std::move(j));
    if (kept.size() > limit) kept.pop_front();
  }
  json records = json::array();
  for (auto& j : kept) records.push_back(json::parse(j.dump()));
  c.rec.extra["returned"] = records.size();
  return Ok(
      c, out,
      {{"records", std::move(records)}, {"matched", matched}, {"truncated", matched > limit}});
}

}  // namespace mamori::vault
