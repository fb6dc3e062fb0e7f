// Content policies (issue 4): trash retention, external links, and rules
// that act on labels. Stored as JSON in the policies table, managed with
// `mamori admin policy get|set KEY`.
#include "vault/service_impl.h"

namespace mamori::vault {

namespace {

constexpr const char* kMyNumber = "jp.my_number";

bool InRange(const json& j, const char* key, int64_t lo, int64_t hi) {
  if (!j.contains(key)) return true;
  if (!j[key].is_number_integer()) return false;
  int64_t v = j[key].get<int64_t>();
  return v >= lo && v <= hi;
}

}  // namespace

Result<json> Vault::Impl::PolicyObject(const std::string& key) {
  ASSIGN_OR_RETURN(auto text, db->GetPolicy(key));
  if (!text) return json::object();
  json j = json::parse(*text, nullptr, false);
  // Fail closed: a damaged policy refuses what it governs.
  if (!j.is_object()) return FailedPrecondition("the " + key + " policy is not valid JSON");
  return j;
}

Status Vault::Impl::ContentPolicy(Ctx& c, BodySource& body, ResponseSink& out) {
  const std::string key = c.path[3];
  c.rec.extra["policy"] = key;
  RETURN_IF_ERROR(RequireAdmin(c));
  if (c.req->method == "GET") {
    c.rec.action = "admin.policies.get";
    ASSIGN_OR_RETURN(json j, PolicyObject(key));
    return Ok(c, out, {{"policy", key}, {"value", j}});
  }
  if (c.req->method != "PUT") return NotFound("use GET or PUT on a policy");
  c.rec.action = "admin.policies.set";
  ASSIGN_OR_RETURN(json j, ReadJson(c, body));
  if (key == "trash") {
    if (!j.contains("retention_days") || !InRange(j, "retention_days", 1, 3650))
      return InvalidArgument("trash: set retention_days to a whole number of days, 1..3650");
  } else if (key == "external_links") {
    if (!j.contains("enabled") || !j["enabled"].is_boolean())
      return InvalidArgument("external_links: set enabled to true or false");
    if (!InRange(j, "max_days", 1, 365))
      return InvalidArgument("external_links: max_days must be 1..365");
    if (!InRange(j, "max_downloads", 1, 10000))
      return InvalidArgument("external_links: max_downloads must be 1..10000");
  } else if (key == "labels") {
    if (j.contains("unscanned") && j["unscanned"] != "store" && j["unscanned"] != "refuse")
      return InvalidArgument("labels: unscanned must be \"store\" or \"refuse\"");
    auto known = [&](const json& t) -> Status {
      if (!t.is_string() || t.get<std::string>().empty())
        return InvalidArgument("labels: a detector type must be a string such as jp.my_number");
      if (opt.rules && !opt.rules->Find(t.get<std::string>()))
        return InvalidArgument("labels: unknown detector type '" +
                               SanitizeString(t.get<std::string>()).substr(0, 64) +
                               "'; see `mamori rules list`");
      return Status::Ok();
    };
    if (j.contains("rules")) {
      if (!j["rules"].is_array()) return InvalidArgument("labels: rules must be an array");
      for (const auto& r : j["rules"]) {
        if (!r.is_object() || !r.contains("type") || !r.contains("only_folders") ||
            !r["only_folders"].is_array())
          return InvalidArgument(
              "labels: each rule is {\"type\": \"jp.my_number\", \"only_folders\": [1, 2]}");
        RETURN_IF_ERROR(known(r["type"]));
        for (const auto& f : r["only_folders"]) {
          if (!f.is_number_unsigned()) return InvalidArgument("labels: only_folders holds ids");
          if (!db->GetFolder(f.get<int64_t>()).ok())
            return InvalidArgument("labels: no folder with id " + std::to_string(f.get<int64_t>()));
        }
      }
    }
    if (j.contains("no_external_links")) {
      if (!j["no_external_links"].is_array())
        return InvalidArgument("labels: no_external_links must be an array of detector types");
      for (const auto& t : j["no_external_links"]) RETURN_IF_ERROR(known(t));
    }
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "rules" && it.key() != "unscanned" && it.key() != "no_external_links")
        return InvalidArgument("labels: unknown field '" + SanitizeString(it.key()).substr(0, 64) +
                               "'; known: rules, unscanned, no_external_links");
  }
  RETURN_IF_ERROR(Allow(c));
  RETURN_IF_ERROR(db->PutPolicy(key, j.dump()));
  return SendJson(out, 200, {{"status", "ok"}}, c.rec.event_id);
}

Status Vault::Impl::CheckLabelPolicy(Ctx& c, int64_t folder, const json& label) {
  ASSIGN_OR_RETURN(json p, PolicyObject("labels"));
  bool scanned = label.is_object() && label.value("scanned", false);
  if (!scanned) {
    // Default: stored and flagged by its label ({"scanned": false}).
    if (p.value("unscanned", std::string("store")) == "refuse") {
      c.rec.extra["label_rule"] = "unscanned";
      return PermissionDenied("the content could not be inspected" +
                              (label.is_object() && label.contains("incomplete")
                                   ? " (" + label["incomplete"].get<std::string>() + ")"
                                   : std::string()) +
                              ", and the label policy refuses files that were not inspected");
    }
    return Status::Ok();
  }
  if (!p.contains("rules")) return Status::Ok();
  const json& types = label.contains("types") ? label["types"] : json::object();
  for (const auto& r : p["rules"]) {
    std::string type = r.value("type", std::string());
    if (!types.contains(type)) continue;
    bool allowed = false;
    std::string list;
    for (const auto& f : r["only_folders"]) {
      if (f.get<int64_t>() == folder) allowed = true;
      list += (list.empty() ? "" : ", ") + std::to_string(f.get<int64_t>());
    }
    if (!allowed) {
      c.rec.extra["label_rule"] = type;
      return PermissionDenied("files containing " + type + " may only be stored in folder(s) " +
                              (list.empty() ? "(none)" : list) + " (label policy); folder " +
                              std::to_string(folder) + " is not one of them");
    }
  }
  return Status::Ok();
}

Status Vault::Impl::CheckExternalLinkLabel(const json& label) {
  ASSIGN_OR_RETURN(json p, PolicyObject("labels"));
  if (!label.is_object() || !label.value("scanned", false))
    return PermissionDenied(
        "the file's content was not inspected, so it cannot be shared by external link");
  std::vector<std::string> forbidden{kMyNumber};  // the policy can only widen this
  if (p.contains("no_external_links"))
    for (const auto& t : p["no_external_links"]) forbidden.push_back(t.get<std::string>());
  const json& types = label.contains("types") ? label["types"] : json::object();
  for (const auto& t : forbidden)
    if (types.contains(t))
      return PermissionDenied("files containing " + t +
                              " cannot be shared by external link; share it internally");
  return Status::Ok();
}

}  // namespace mamori::vault
