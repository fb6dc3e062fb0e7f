#include "vault/report.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace mamori::vault {

using json = nlohmann::json;

Status ContractorReport(const ContractorReportOptions& o, std::ostream& out) {
  if (o.org.empty()) return InvalidArgument("name the contractor organisation");
  audit::Filter f;
  f.component = "vault";
  f.org = o.org;
  f.since_micros = o.since_micros;
  f.until_micros = o.until_micros;
  ASSIGN_OR_RETURN(auto reader, audit::Reader::Open(o.log, f));
  uint64_t records = 0, allowed = 0, denied = 0, bytes = 0;
  std::map<std::string, uint64_t> per_user, per_action;
  std::set<std::string> objects;
  if (o.json)
    out << "{\"org\":" << json(o.org).dump() << ",\"records\":[";
  else
    out << "contractor organisation " << o.org << "\n";
  while (true) {
    ASSIGN_OR_RETURN(auto rec, reader->Next());
    if (!rec) break;
    const audit::Record& r = rec->record;
    ++records;
    if (r.result == "allow") {
      ++allowed;
      bytes += r.bytes;
    } else {
      ++denied;
    }
    per_user[r.user]++;
    per_action[r.action]++;
    if (!r.object.empty()) {
      if (objects.size() >= o.max_distinct_objects && !objects.count(r.object))
        return ResourceExhausted("more than " + std::to_string(o.max_distinct_objects) +
                                 " distinct objects; narrow the report with --since/--until");
      objects.insert(r.object);
    }
    std::string time = audit::FormatRfc3339Micros(r.time_micros);
    if (o.json) {
      json j = {{"seq", rec->seq},    {"time", time},       {"event_id", r.event_id},
                {"user", r.user},     {"device", r.device}, {"source_ip", r.source_ip},
                {"action", r.action}, {"object", r.object}, {"bytes", r.bytes},
                {"result", r.result}, {"reason", r.reason}};
      if (!r.labels.is_null()) j["labels"] = r.labels;
      if (r.extra.is_object() && r.extra.contains("folder")) j["folder"] = r.extra["folder"];
      out << (records > 1 ? "," : "") << j.dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      out << time << "  " << r.user << "  " << r.device << "  " << r.source_ip << "  " << r.action
          << "  " << (r.object.empty() ? "-" : r.object) << "  " << r.bytes << " bytes  "
          << r.result;
      if (r.result != "allow" && !r.reason.empty()) out << " (" << r.reason.substr(0, 120) << ")";
      out << "\n";
    }
  }
  if (o.json) {
    json s = {{"records", records},
              {"allowed", allowed},
              {"denied", denied},
              {"bytes", bytes},
              {"distinct_objects", objects.size()},
              {"per_user", per_user},
              {"per_action", per_action},
              {"torn_tail_bytes", reader->torn_tail_bytes()}};
    out << "],\"summary\":" << s.dump() << "}\n";
  } else {
    out << "summary: " << records << " records, " << allowed << " allowed, " << denied
        << " denied, " << bytes << " bytes, " << objects.size() << " distinct objects\n";
    for (const auto& [u, n] : per_user) out << "  user " << u << ": " << n << "\n";
    for (const auto& [a, n] : per_action) out << "  action " << a << ": " << n << "\n";
  }
  return Status::Ok();
}

}  // namespace mamori::vault
