// Governance: network rules per group and role (回線認証), contractor
// organisations (委託先), break-glass content access and bulk-export
// approvals (a second person), and alerts.
#include <chrono>
#include <ctime>

#include "vault/service_impl.h"

namespace mamori::vault {

namespace {

constexpr int64_t kMinute = 60LL * 1000000;
// A request nobody approved within a day is stale: file a new one.
constexpr int64_t kPendingTtl = 24LL * 3600 * 1000000;
constexpr int64_t kMaxWindowSeconds = 366LL * 86400;
constexpr int64_t kMaxApprovalMinutes = 7LL * 24 * 60;

Result<int64_t> ParseId(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
    return InvalidArgument("'" + s.substr(0, 20) + "' is not an id");
  return std::stoll(s);
}

std::string IsoTime(int64_t micros) {
  std::time_t t = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// An optional integer field in min..max; a wrong type or range is an error
// that names the field (json::value would throw on a wrong type).
Result<int64_t> IntField(const json& j, const char* key, int64_t def, int64_t min, int64_t max,
                         const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return def;
  if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max)
    return InvalidArgument(where + key + " must be an integer in " + std::to_string(min) + ".." +
                           std::to_string(max));
  return it->get<int64_t>();
}

bool InScope(const Org& o, int64_t folder) {
  return std::find(o.scope.begin(), o.scope.end(), folder) != o.scope.end();
}

}  // namespace

// ---------------------------------------------------------------- alerts

void Vault::Impl::RaiseAlert(Ctx* c, const std::string& kind, json details) {
  if (!opt.alerter) return;
  // While the audit log is down every request fails: one alert a minute is
  // enough, and keeps the queue for the other kinds.
  if (kind == "vault.audit_failure") {
    int64_t last = last_audit_alert.load();
    if (Now() - last < 60LL * 1000000 && last != 0) return;
    if (!last_audit_alert.compare_exchange_strong(last, Now())) return;
  }
  json a = {{"kind", kind}, {"component", "vault"}, {"time", IsoTime(Now())}};
  if (c) {
    a["event_id"] = c->rec.event_id;
    a["source_ip"] = c->rec.source_ip;
    if (c->user) a["user"] = c->user->name;
    if (c->device) a["device"] = "d" + std::to_string(c->device->id);
    if (!c->rec.org.empty()) a["org"] = c->rec.org;
  }
  if (details.is_object())
    for (auto& [k, v] : details.items()) a[k] = v;
  opt.alerter->Send(Sanitize(a));
}

// ---------------------------------------------------------------- cache

std::shared_ptr<const Vault::Impl::GovCache> Vault::Impl::Governance() {
  std::lock_guard<std::mutex> l(gov_mu);
  if (gov_cache) return gov_cache;
  auto fresh = std::make_shared<GovCache>();
  auto rules = db->ListNetworkRules();
  auto orgs = db->ListOrgs();
  if (!rules.ok() || !orgs.ok()) {
    fresh->error = !rules.ok() ? rules.status().message() : orgs.status().message();
    return fresh;  // not cached: the next request tries again
  }
  fresh->any_org = !orgs->empty();
  for (const auto& r : *rules) {
    GovCache::Rule rule;
    rule.kind = r.kind;
    rule.name = r.name;
    auto nets = ParseCidrList(r.cidrs);
    if (!nets.ok() || nets->empty()) rule.invalid = true;
    if (nets.ok()) rule.nets = *nets;
    if (r.kind == "group") {
      auto gid = db->GroupId(r.name);
      if (!gid.ok()) rule.invalid = true;  // a rule on a vanished group denies
      rule.group_id = gid.ok() ? *gid : -1;
    }
    fresh->rules.push_back(std::move(rule));
  }
  gov_cache = fresh;
  return fresh;
}

void Vault::Impl::InvalidateGovernance() {
  std::lock_guard<std::mutex> l(gov_mu);
  gov_cache.reset();
}

// ---------------------------------------------------------------- checks

Status Vault::Impl::CheckGovernance(Ctx& c, const User& u) {
  auto gov = Governance();
  if (!gov->error.empty())
    return Unavailable("the governance rules cannot be read (" + gov->error + ")");
  if (gov->any_org) {
    ASSIGN_OR_RETURN(auto org, db->OrgOfUser(u.id));
    if (org) {
      c.org = *org;
      c.rec.org = org->name;
      if (org->expires_micros <= Now())
        return PermissionDenied("the contractor organisation '" + org->name + "' expired at " +
                                IsoTime(org->expires_micros) + " (委託先); ask an admin");
    }
  }
  if (gov->rules.empty()) return Status::Ok();
  std::optional<std::vector<int64_t>> groups;
  for (const auto& r : gov->rules) {
    bool applies = false;
    if (r.kind == "role") {
      applies = r.name == RoleName(u.role);
    } else if (r.kind == "group") {
      if (!groups) {
        ASSIGN_OR_RETURN(auto g, db->GroupsOf(u.id));
        groups = std::move(g);
      }
      applies =
          r.group_id >= 0 && std::find(groups->begin(), groups->end(), r.group_id) != groups->end();
    }
    if (!applies) continue;
    if (r.invalid)
      return PermissionDenied("the network rule of " + r.kind + " '" + r.name +
                              "' is invalid; ask an admin");
    bool inside = false;
    for (const auto& n : r.nets)
      if (n.Contains(c.req->source_ip)) inside = true;
    if (!inside) {
      c.rec.extra["network_rule"] = r.kind + ":" + r.name;
      return PermissionDenied("the " + r.kind + " '" + r.name + "' may not be used from " +
                              c.req->source_ip + " (回線認証)");
    }
  }
  return Status::Ok();
}

Status Vault::Impl::CheckOrgScope(Ctx& c, int64_t folder_id) {
  if (c.org && !InScope(*c.org, folder_id))
    return PermissionDenied("this folder is outside the scope of the contractor organisation '" +
                            c.org->name + "' (委託先)");
  return Status::Ok();
}

bool Vault::Impl::FolderVisible(const Ctx& c, int64_t folder_id) const {
  return !c.org || InScope(*c.org, folder_id);
}

Status Vault::Impl::CheckAdminNetwork(Ctx& c) {
  std::vector<Cidr> nets = opt.admin_networks;
  if (nets.empty()) nets = *ParseCidrList("127.0.0.0/8,::1/128");
  for (const auto& n : nets)
    if (n.Contains(c.req->source_ip)) return Status::Ok();
  return PermissionDenied("the admin API is only reachable from admin networks");
}

Result<bool> Vault::Impl::BreakGlassRead(Ctx& c, int64_t folder_id) {
  ASSIGN_OR_RETURN(auto list, db->ListApprovals("break_glass", c.user->id, 200));
  const Approval* active = nullptr;
  const Approval* expired = nullptr;
  for (const auto& a : list) {
    if (a.folder_id != folder_id || a.status != "approved") continue;
    if (a.expires_micros > Now()) {
      active = &a;
      break;
    }
    if (!expired) expired = &a;
  }
  if (!active) {
    if (expired) {
      c.rec.extra["break_glass"] = expired->id;
      return PermissionDenied("the break-glass grant " + std::to_string(expired->id) +
                              " for this folder expired at " + IsoTime(expired->expires_micros) +
                              "; request a new one");
    }
    return false;
  }
  RETURN_IF_ERROR(CheckAdminNetwork(c));
  if (c.user->pledge_micros == 0)
    return PermissionDenied(
        "accept the data-handling pledge (誓約書) first: `mamori pledge --accept`");
  RETURN_IF_ERROR(db->GetFolder(folder_id).status());
  // Loud: a distinct action name on every record, and an alert per read.
  c.rec.action = "breakglass." + c.rec.action;
  c.rec.extra["break_glass"] = active->id;
  c.rec.extra["break_glass_expires"] = IsoTime(active->expires_micros);
  RaiseAlert(&c, "vault.break_glass.read",
             {{"approval_id", active->id}, {"folder", folder_id}, {"action", c.rec.action}});
  return true;
}

Result<Vault::Impl::BulkOver> Vault::Impl::BulkExportOver(int64_t user_id, const ObjectVersion& v,
                                                          uint64_t individuals) {
  BulkOver out;
  ASSIGN_OR_RETURN(auto pol, db->GetPolicy("bulk_export"));
  if (!pol) return out;
  json p = json::parse(*pol, nullptr, false);
  if (!p.is_object()) return FailedPrecondition("the bulk_export policy is not valid JSON");
  ASSIGN_OR_RETURN(out.window_seconds,
                   IntField(p, "window_seconds", 3600, 1, kMaxWindowSeconds, "bulk_export."));
  ASSIGN_OR_RETURN(out.approval_minutes,
                   IntField(p, "approval_minutes", 60, 1, kMaxApprovalMinutes, "bulk_export."));
  ASSIGN_OR_RETURN(auto used,
                   db->UsageSince(Now() - out.window_seconds * 1000000, user_id, std::nullopt));
  auto over = [&](const char* k, uint64_t used_v, uint64_t add) {
    return p.contains(k) && p[k].is_number_unsigned() && used_v + add > p[k].get<uint64_t>();
  };
  out.what = over("files", used.files, 1)                         ? "files"
             : over("individuals", used.individuals, individuals) ? "individuals"
             : over("bytes", used.bytes, v.size)                  ? "bytes"
                                                                  : nullptr;
  return out;
}

Status Vault::Impl::CheckBulkExport(Ctx& c, int64_t folder, const std::string& object_id,
                                    const ObjectVersion& v, uint64_t individuals) {
  ASSIGN_OR_RETURN(BulkOver bulk, BulkExportOver(c.user->id, v, individuals));
  if (!bulk.what) return Status::Ok();
  const char* what = bulk.what;
  const int64_t minutes = bulk.approval_minutes;
  c.rec.extra["bulk_export"] = what;
  ASSIGN_OR_RETURN(auto list, db->ListApprovals("export", c.user->id, 200));
  int64_t pending = 0;
  for (const auto& a : list) {
    if (a.folder_id != folder || a.object_id != object_id || a.version != v.version) continue;
    if (a.status == "approved" && a.expires_micros > Now()) {
      Approval used_a = a;
      used_a.status = "used";
      // Compare-and-set: one approval, one download.
      if (db->UpdateApproval(used_a, "approved").ok()) {
        c.rec.extra["approval_id"] = a.id;
        return Status::Ok();
      }
    }
    if (a.status == "pending" && a.created_micros + kPendingTtl > Now() && !pending) pending = a.id;
  }
  if (!pending) {
    Approval a;
    a.kind = "export";
    a.requester_id = c.user->id;
    a.folder_id = folder;
    a.object_id = object_id;
    a.version = v.version;
    a.created_micros = Now();
    a.duration_micros = minutes * kMinute;
    ASSIGN_OR_RETURN(pending, db->CreateApproval(a));
    RaiseAlert(&c, "vault.bulk_export.approval_requested",
               {{"approval_id", pending}, {"folder", folder}, {"threshold", what}});
  }
  c.rec.extra["approval_id"] = pending;
  return PermissionDenied(
      "this download goes past the bulk-export threshold (" + std::string(what) + " in the last " +
      std::to_string(bulk.window_seconds) +
      " s) and needs a second person: " + "approval request " + std::to_string(pending) +
      " is filed; another admin or a designated approver runs `mamori admin approve " +
      std::to_string(pending) + "`, then repeat this download within " + std::to_string(minutes) +
      " minutes");
}

// ---------------------------------------------------------------- routes

// /v1/admin/network, /v1/admin/orgs, /v1/admin/break-glass,
// /v1/admin/policies/bulk_export
Status Vault::Impl::GovernanceAdmin(Ctx& c, BodySource& body, ResponseSink& out) {
  const auto& p = c.path;
  const std::string& m = c.req->method;
  c.rec.action = "admin";
  RETURN_IF_ERROR(RequireAdmin(c));

  if (p[2] == "network") {
    if (p.size() == 3 && m == "GET") {
      c.rec.action = "admin.network.list";
      ASSIGN_OR_RETURN(auto rules, db->ListNetworkRules());
      json arr = json::array();
      for (const auto& r : rules)
        arr.push_back({{"kind", r.kind}, {"name", r.name}, {"cidrs", r.cidrs}});
      ASSIGN_OR_RETURN(auto users, db->ListUsers());
      for (const auto& u : users)
        if (!u.allowed_cidrs.empty())
          arr.push_back({{"kind", "user"}, {"name", u.name}, {"cidrs", u.allowed_cidrs}});
      json admin = json::array();
      for (const auto& n : opt.admin_networks) admin.push_back(n.text);
      if (admin.empty()) admin = {"127.0.0.0/8", "::1/128"};
      return Ok(c, out, {{"rules", arr}, {"admin_networks", admin}});
    }
    if (p.size() == 5 && m == "PUT") {
      c.rec.action = "admin.network.set";
      const std::string& kind = p[3];
      const std::string& name = p[4];
      ASSIGN_OR_RETURN(json j, ReadJson(c, body));
      std::string cidrs = JsonStr(j, "cidrs");
      if (!cidrs.empty()) {
        ASSIGN_OR_RETURN(auto nets, ParseCidrList(cidrs));
        if (nets.empty()) return InvalidArgument("cidrs lists no network");
      }
      c.rec.extra["rule"] = kind + ":" + name;
      c.rec.extra["cidrs"] = cidrs;
      // Refuse a rule that would shut out the admin setting it (and so,
      // likely, every admin): there is no way back over the API.
      if (!cidrs.empty()) {
        bool covers_caller = (kind == "user" && name == c.user->name) ||
                             (kind == "role" && name == RoleName(c.user->role));
        if (kind == "group") {
          auto gid = db->GroupId(name);
          ASSIGN_OR_RETURN(auto mine, db->GroupsOf(c.user->id));
          covers_caller = gid.ok() && std::find(mine.begin(), mine.end(), *gid) != mine.end();
        }
        bool inside = false;
        ASSIGN_OR_RETURN(auto nets, ParseCidrList(cidrs));
        for (const auto& n : nets)
          if (n.Contains(c.req->source_ip)) inside = true;
        if (covers_caller && !inside)
          return InvalidArgument("this rule applies to you and excludes " + c.req->source_ip +
                                 ", the address you are using: it would lock you out");
      }
      if (kind == "user") {
        ASSIGN_OR_RETURN(User u, db->GetUserByName(name));
        u.allowed_cidrs = cidrs;
        RETURN_IF_ERROR(Allow(c));
        RETURN_IF_ERROR(db->UpdateUser(u));
      } else if (kind == "group" || kind == "role") {
        if (kind == "group") RETURN_IF_ERROR(db->GroupId(name).status());
        if (kind == "role") RETURN_IF_ERROR(ParseRole(name).status());
        RETURN_IF_ERROR(Allow(c));
        RETURN_IF_ERROR(db->PutNetworkRule({kind, name, cidrs}));
        InvalidateGovernance();
      } else {
        return InvalidArgument("network rules are on a user, group or role, not '" + kind + "'");
      }
      return SendJson(out, 200, {{"kind", kind}, {"name", name}, {"cidrs", cidrs}}, c.rec.event_id);
    }
  }

  if (p[2] == "orgs") {
    // A new organisation needs a future expiry; an existing one may be ended
    // at once by setting an expiry in the past.
    auto parse_org = [&](const json& j, Org& o, bool require_future) -> Status {
      if (j.contains("scope")) {
        if (!j["scope"].is_array()) return InvalidArgument("scope must be an array of folder ids");
        o.scope.clear();
        for (const auto& f : j["scope"]) {
          if (!f.is_number_integer()) return InvalidArgument("scope must hold folder ids");
          int64_t id = f.get<int64_t>();
          if (!db->GetFolder(id).ok())
            return InvalidArgument("scope: no folder with id " + std::to_string(id));
          o.scope.push_back(id);
        }
      }
      if (j.contains("expires_micros")) {
        if (!j["expires_micros"].is_number_integer())
          return InvalidArgument("expires_micros must be a time in microseconds");
        o.expires_micros = j["expires_micros"].get<int64_t>();
      }
      if (require_future && o.expires_micros <= Now())
        return InvalidArgument("a contractor organisation needs an expiry in the future");
      return Status::Ok();
    };
    if (p.size() == 3 && m == "GET") {
      c.rec.action = "admin.orgs.list";
      ASSIGN_OR_RETURN(auto orgs, db->ListOrgs());
      json arr = json::array();
      for (const auto& o : orgs) {
        ASSIGN_OR_RETURN(auto members, db->OrgMembers(o.id));
        json names = json::array();
        for (int64_t uid : members) {
          auto u = db->GetUser(uid);
          names.push_back(u.ok() ? u->name : std::to_string(uid));
        }
        arr.push_back({{"name", o.name},
                       {"scope", o.scope},
                       {"expires_micros", o.expires_micros},
                       {"expires", IsoTime(o.expires_micros)},
                       {"expired", o.expires_micros <= Now()},
                       {"members", names}});
      }
      return Ok(c, out, {{"orgs", arr}});
    }
    if (p.size() == 3 && m == "POST") {
      c.rec.action = "admin.orgs.add";
      ASSIGN_OR_RETURN(json j, ReadJson(c, body));
      Org o;
      o.name = JsonStr(j, "name");
      RETURN_IF_ERROR(ValidateUserName(o.name));
      if (!j.contains("scope") || !j.contains("expires_micros"))
        return InvalidArgument("an organisation needs a scope (folder ids) and expires_micros");
      RETURN_IF_ERROR(parse_org(j, o, true));
      o.created_micros = Now();
      c.rec.extra["target_org"] = o.name;
      RETURN_IF_ERROR(Allow(c));
      ASSIGN_OR_RETURN(o.id, db->CreateOrg(o));
      InvalidateGovernance();
      return SendJson(out, 201, {{"id", o.id}, {"name", o.name}}, c.rec.event_id);
    }
    if (p.size() == 4 && m == "PUT") {
      c.rec.action = "admin.orgs.set";
      ASSIGN_OR_RETURN(Org o, db->GetOrgByName(p[3]));
      ASSIGN_OR_RETURN(json j, ReadJson(c, body));
      RETURN_IF_ERROR(parse_org(j, o, false));
      c.rec.extra["target_org"] = o.name;
      RETURN_IF_ERROR(Allow(c));
      RETURN_IF_ERROR(db->UpdateOrg(o));
      InvalidateGovernance();
      return SendJson(out, 200, {{"name", o.name}, {"expires_micros", o.expires_micros}},
                      c.rec.event_id);
    }
    if (p.size() == 5 && p[4] == "members" && (m == "POST" || m == "DELETE")) {
      c.rec.action = m == "POST" ? "admin.orgs.member.add" : "admin.orgs.member.remove";
      ASSIGN_OR_RETURN(Org o, db->GetOrgByName(p[3]));
      ASSIGN_OR_RETURN(json j, ReadJson(c, body));
      ASSIGN_OR_RETURN(User u, db->GetUserByName(JsonStr(j, "user")));
      if (u.role != Role::kMember)
        return InvalidArgument("only member accounts can belong to a contractor organisation");
      ASSIGN_OR_RETURN(auto current, db->OrgOfUser(u.id));
      if (m == "POST" && current && current->id != o.id)
        return FailedPrecondition("'" + u.name + "' already belongs to '" + current->name +
                                  "'; a user belongs to at most one organisation");
      if (m == "DELETE" && (!current || current->id != o.id))
        return NotFound("'" + u.name + "' is not in '" + o.name + "'");
      c.rec.extra["target_org"] = o.name;
      c.rec.extra["target_user"] = u.name;
      RETURN_IF_ERROR(Allow(c));
      RETURN_IF_ERROR(
          db->SetUserOrg(u.id, m == "POST" ? std::optional<int64_t>(o.id) : std::nullopt));
      // The user's sessions carry the old scope in nobody's memory, but end
      // them anyway so the change is visible at once.
      (void)db->DeleteSessionsOfUser(u.id);
      return SendJson(out, 200, {{"status", m == "POST" ? "added" : "removed"}}, c.rec.event_id);
    }
  }

  if (p[2] == "break-glass") {
    if (p.size() == 3 && m == "POST") {
      c.rec.action = "breakglass.request";
      ASSIGN_OR_RETURN(json j, ReadJson(c, body));
      if (!j.contains("folder") || !j["folder"].is_number_integer())
        return InvalidArgument("break-glass needs the folder id (folder)");
      int64_t folder = j["folder"].get<int64_t>();
      std::string reason = JsonStr(j, "reason");
      if (reason.size() < 8 || reason.size() > 1000)
        return InvalidArgument("break-glass needs a reason of 8..1000 bytes (why, which ticket)");
      ASSIGN_OR_RETURN(int64_t minutes, IntField(j, "minutes", 60, 1, 240, "break-glass: "));
      RETURN_IF_ERROR(db->GetFolder(folder).status());
      Approval a;
      a.kind = "break_glass";
      a.requester_id = c.user->id;
      a.folder_id = folder;
      a.reason_sealed = names->Seal(reason, "breakglass:" + std::to_string(c.user->id));
      a.created_micros = Now();
      a.duration_micros = minutes * kMinute;
      c.rec.extra["folder"] = folder;
      c.rec.extra["minutes"] = minutes;
      RETURN_IF_ERROR(Allow(c));
      ASSIGN_OR_RETURN(a.id, db->CreateApproval(a));
      RaiseAlert(&c, "vault.break_glass.requested",
                 {{"approval_id", a.id}, {"folder", folder}, {"minutes", minutes}});
      return SendJson(
          out, 201,
          {{"id", a.id},
           {"status", "pending"},
           {"next", "a second admin runs `mamori admin approve " + std::to_string(a.id) + "`"}},
          c.rec.event_id);
    }
  }

  if (p[2] == "policies" && p.size() == 4 && p[3] == "bulk_export" && m == "PUT") {
    c.rec.action = "admin.policies.set";
    ASSIGN_OR_RETURN(json j, ReadJson(c, body));
    static const char* kKnown[] = {"files",          "individuals",      "bytes",
                                   "window_seconds", "approval_minutes", "approvers"};
    for (auto& [k, v] : j.items()) {
      // (A structured binding cannot be captured by clang 14, which builds the fuzzers.)
      const std::string& key = k;
      if (std::find_if(std::begin(kKnown), std::end(kKnown),
                       [&key](const char* x) { return key == x; }) == std::end(kKnown))
        return InvalidArgument("bulk_export: unknown field '" + k +
                               "'; known: files, individuals, bytes, window_seconds, "
                               "approval_minutes, approvers");
      if (k == "approvers") {
        if (!v.is_array()) return InvalidArgument("bulk_export.approvers is a list of user names");
        for (const auto& n : v)
          if (!n.is_string() || !db->GetUserByName(n.get<std::string>()).ok())
            return InvalidArgument("bulk_export.approvers: unknown user " + n.dump());
      } else if (!v.is_number_unsigned() || v.get<uint64_t>() == 0) {
        return InvalidArgument("bulk_export." + k + " must be a positive integer");
      }
      if (k == "window_seconds")
        RETURN_IF_ERROR(
            IntField(j, "window_seconds", 0, 1, kMaxWindowSeconds, "bulk_export.").status());
      if (k == "approval_minutes")
        RETURN_IF_ERROR(
            IntField(j, "approval_minutes", 0, 1, kMaxApprovalMinutes, "bulk_export.").status());
    }
    c.rec.extra["policy"] = "bulk_export";
    RETURN_IF_ERROR(Allow(c));
    RETURN_IF_ERROR(db->PutPolicy("bulk_export", j.dump()));
    return SendJson(out, 200, {{"status", "ok"}}, c.rec.event_id);
  }
  return NotFound("unknown admin API path or method; see docs/api.yaml");
}

// /v1/approvals: list, approve, deny. Admins (from admin networks) decide
// break-glass; admins or the bulk_export policy's approvers decide exports.
// Nobody decides their own request.
Status Vault::Impl::Approvals(Ctx& c, BodySource& body, ResponseSink& out) {
  const auto& p = c.path;
  const std::string& m = c.req->method;
  c.rec.action = "approvals";
  RETURN_IF_ERROR(RequireSession(c));
  bool admin = c.user->role == Role::kAdmin && CheckAdminNetwork(c).ok();
  bool approver = false;
  {
    ASSIGN_OR_RETURN(auto pol, db->GetPolicy("bulk_export"));
    json pj = pol ? json::parse(*pol, nullptr, false) : json();
    if (pj.is_object() && pj.contains("approvers") && pj["approvers"].is_array())
      for (const auto& n : pj["approvers"])
        if (n.is_string() && n.get<std::string>() == c.user->name) approver = true;
  }
  auto describe = [&](const Approval& a) -> json {
    auto u = db->GetUser(a.requester_id);
    auto d = a.approver_id ? db->GetUser(a.approver_id) : Result<User>(NotFound(""));
    json j = {{"id", a.id},
              {"kind", a.kind},
              {"requester", u.ok() ? u->name : ""},
              {"folder", a.folder_id},
              {"status", a.status},
              {"created", IsoTime(a.created_micros)},
              {"minutes", a.duration_micros / kMinute}};
    if (a.kind == "export") {
      j["object"] = a.object_id;
      j["version"] = a.version;
    }
    if (d.ok()) j["decided_by"] = d->name;
    if (a.expires_micros) {
      j["expires"] = IsoTime(a.expires_micros);
      j["expires_micros"] = a.expires_micros;
    }
    if (a.kind == "break_glass" && admin) {
      auto r = names->Open(a.reason_sealed, "breakglass:" + std::to_string(a.requester_id));
      j["reason"] = r.ok() ? *r : "(cannot be opened)";
    }
    return j;
  };
  if (p.size() == 2 && m == "GET") {
    c.rec.action = "approvals.list";
    ASSIGN_OR_RETURN(auto list, db->ListApprovals(admin      ? ""
                                                  : approver ? "export"
                                                             : "",
                                                  admin || approver ? 0 : c.user->id, 200));
    json arr = json::array();
    for (const auto& a : list) arr.push_back(describe(a));
    return Ok(c, out, {{"approvals", arr}});
  }
  if (p.size() == 4 && m == "POST" && (p[3] == "approve" || p[3] == "deny")) {
    ASSIGN_OR_RETURN(int64_t id, ParseId(p[2]));
    auto found = db->GetApproval(id);
    if (!found.ok()) return NotFound("no approval request " + std::to_string(id));
    Approval a = *found;
    bool bg = a.kind == "break_glass";
    c.rec.action = (bg ? "breakglass." : "export.") + p[3];
    c.rec.extra["approval_id"] = id;
    c.rec.extra["folder"] = a.folder_id;
    if (auto u = db->GetUser(a.requester_id); u.ok()) c.rec.extra["requester"] = u->name;
    if (bg ? !admin : !(admin || approver))
      return PermissionDenied(bg ? "break-glass is approved by a second admin, from an admin "
                                   "network"
                                 : "a bulk export is approved by an admin or a designated "
                                   "approver (bulk_export.approvers)");
    if (a.requester_id == c.user->id)
      return PermissionDenied("nobody approves their own request; ask a second person");
    if (a.status != "pending")
      return FailedPrecondition("approval request " + std::to_string(id) + " is " + a.status +
                                ", not pending");
    if (a.created_micros + kPendingTtl <= Now())
      return FailedPrecondition("approval request " + std::to_string(id) +
                                " is older than a day; the requester files a new one");
    a.approver_id = c.user->id;
    a.decided_micros = Now();
    a.status = p[3] == "approve" ? "approved" : "denied";
    if (a.status == "approved") a.expires_micros = Now() + a.duration_micros;
    if (a.expires_micros) c.rec.extra["expires"] = IsoTime(a.expires_micros);
    RETURN_IF_ERROR(Allow(c));
    RETURN_IF_ERROR(db->UpdateApproval(a, "pending"));
    RaiseAlert(&c, std::string(bg ? "vault.break_glass." : "vault.bulk_export.") + a.status,
               {{"approval_id", id}, {"folder", a.folder_id}});
    return SendJson(out, 200, describe(a), c.rec.event_id);
  }
  return NotFound("unknown approvals API path or method; see docs/api.yaml");
}

}  // namespace mamori::vault
