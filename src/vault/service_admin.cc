// Admin routes: users, groups, devices, policies and keys. Never content.
#include "vault/service_impl.h"

namespace mamori::vault {

Status Vault::Impl::Admin(Ctx& c, BodySource& body, ResponseSink& out) {
  const auto& p = c.path;
  const std::string& m = c.req->method;
  c.rec.action = "admin";
  RETURN_IF_ERROR(RequireAdmin(c));
  auto num = [](const std::string& s) -> Result<int64_t> {
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
      return InvalidArgument("not an id");
    return std::stoll(s);
  };
  if (p.size() == 3 && p[2] == "users" && m == "GET") {
    c.rec.action = "admin.users.list";
    ASSIGN_OR_RETURN(auto users, db->ListUsers());
    json arr = json::array();
    for (const auto& u : users)
      arr.push_back({{"id", u.id},
                     {"name", u.name},
                     {"role", std::string(RoleName(u.role))},
                     {"status", u.status},
                     {"enrolled", !u.password_hash.empty()},
                     {"locked_until_micros", u.locked_until_micros},
                     {"pledge_micros", u.pledge_micros}});
    return Ok(c, out, {{"users", arr}});
  }
  if (p.size() == 3 && p[2] == "users" && m == "POST") {
    c.rec.action = "admin.users.add";
    ASSIGN_OR_RETURN(json j, ReadJson(c, body));
    User u;
    u.name = JsonStr(j, "name");
    RETURN_IF_ERROR(ValidateUserName(u.name));
    // JsonStr, not json::value: a non-string role must be an error, not a throw.
    ASSIGN_OR_RETURN(u.role, ParseRole(j.contains("role") ? JsonStr(j, "role") : "member"));
    u.allowed_cidrs = JsonStr(j, "allowed_cidrs");
    RETURN_IF_ERROR(ParseCidrList(u.allowed_cidrs).status());
    u.created_micros = Now();
    c.rec.extra["target_user"] = u.name;
    c.rec.extra["role"] = std::string(RoleName(u.role));
    RETURN_IF_ERROR(Allow(c));
    ASSIGN_OR_RETURN(u.id, db->CreateUser(u));
    ASSIGN_OR_RETURN(std::string token, IssueEnrolToken(u.id));
    return SendJson(out, 201, {{"id", u.id}, {"enrol_token", token}}, c.rec.event_id);
  }
  if (p.size() == 5 && p[2] == "users" && p[4] == "token" && m == "POST") {
    c.rec.action = "admin.users.token";
    ASSIGN_OR_RETURN(User u, db->GetUserByName(p[3]));
    if (u.id == c.user->id)
      return PermissionDenied(
          "an admin cannot issue enrolment tokens for itself; ask a second admin");
    c.rec.extra["target_user"] = u.name;
    RETURN_IF_ERROR(Allow(c));
    ASSIGN_OR_RETURN(std::string token, IssueEnrolToken(u.id));
    return SendJson(out, 201, {{"enrol_token", token}}, c.rec.event_id);
  }
  if (p.size() == 3 && p[2] == "groups" && m == "POST") {
    c.rec.action = "admin.groups.add";
    ASSIGN_OR_RETURN(json j, ReadJson(c, body));
    std::string name = JsonStr(j, "name");
    RETURN_IF_ERROR(ValidateUserName(name));
    RETURN_IF_ERROR(Allow(c));
    ASSIGN_OR_RETURN(int64_t id, db->CreateGroup(name));
    return SendJson(out, 201, {{"id", id}}, c.rec.event_id);
  }
  if (p.size() == 5 && p[2] == "groups" && p[4] == "members" && m == "POST") {
    c.rec.action = "admin.groups.member.add";
    ASSIGN_OR_RETURN(json j, ReadJson(c, body));
    ASSIGN_OR_RETURN(int64_t gid, db->GroupId(p[3]));
    ASSIGN_OR_RETURN(User u, db->GetUserByName(JsonStr(j, "user")));
    c.rec.extra["target_user"] = u.name;
    c.rec.extra["group"] = p[3];
    if (u.id == c.user->id)
      return PermissionDenied("an admin cannot grant itself access (separation of duties)");
    RETURN_IF_ERROR(Allow(c));
    RETURN_IF_ERROR(db->AddMember(gid, u.id));
    return SendJson(out, 200, {{"status", "added"}}, c.rec.event_id);
  }
  if (p.size() == 3 && p[2] == "devices" && m == "GET") {
    c.rec.action = "admin.devices.list";
    ASSIGN_OR_RETURN(auto devs, db->ListDevices());
    json arr = json::array();
    for (const auto& d : devs) {
      auto u = db->GetUser(d.user_id);
      arr.push_back({{"id", d.id},
                     {"user", u.ok() ? u->name : ""},
                     {"name", d.name},
                     {"status", d.status},
                     {"last_seen_micros", d.last_seen_micros},
                     {"last_ip", d.last_ip}});
    }
    return Ok(c, out, {{"devices", arr}});
  }
  if (p.size() == 5 && p[2] == "devices" && m == "POST") {
    ASSIGN_OR_RETURN(int64_t id, num(p[3]));
    ASSIGN_OR_RETURN(Device d, db->GetDevice(id));
    c.rec.extra["target_device"] = id;
    if (p[4] == "approve") {
      c.rec.action = "admin.devices.approve";
      if (d.status != "pending")
        return FailedPrecondition("the device is " + d.status + ", not pending");
      if (d.user_id == c.user->id)
        return PermissionDenied("an admin cannot approve its own device; ask a second admin");
      ASSIGN_OR_RETURN(d.cert_pem,
                       SignDeviceCsr(ca, d.csr_pem, d.name, d.id, opt.device_cert_days));
      ASSIGN_OR_RETURN(d.fingerprint, CertFingerprint(d.cert_pem));
      d.status = "active";
      RETURN_IF_ERROR(Allow(c));
      RETURN_IF_ERROR(db->UpdateDevice(d));
      return SendJson(out, 200, {{"device_id", id}, {"status", "active"}}, c.rec.event_id);
    }
    if (p[4] == "lock" || p[4] == "revoke" || p[4] == "unlock") {
      c.rec.action = "admin.devices." + p[4];
      if (p[4] == "unlock" && d.status != "locked")
        return FailedPrecondition("the device is " + d.status + ", not locked");
      if (p[4] == "unlock" && d.user_id == c.user->id)
        return PermissionDenied("an admin cannot unlock its own device; ask a second admin");
      RETURN_IF_ERROR(Allow(c));
      d.status = p[4] == "lock" ? "locked" : p[4] == "revoke" ? "revoked" : "active";
      RETURN_IF_ERROR(db->UpdateDevice(d));
      if (p[4] == "lock") RaiseAlert(&c, "vault.device_locked", {{"target_device", id}});
      ASSIGN_OR_RETURN(int64_t n, db->DeleteSessionsOfDevice(id));
      return SendJson(out, 200, {{"device_id", id}, {"status", d.status}, {"sessions_revoked", n}},
                      c.rec.event_id);
    }
  }
  if (p.size() == 3 && p[2] == "folders" && m == "POST") {
    c.rec.action = "admin.folders.add";
    ASSIGN_OR_RETURN(json j, ReadJson(c, body));
    std::string name = JsonStr(j, "name");
    RETURN_IF_ERROR(ValidateName(name, "the folder name"));
    Folder f;
    f.name_tag = names->IndexTag("folder", name);
    f.name_sealed = names->Seal(name, "folder:" + f.name_tag);
    f.created_micros = Now();
    RETURN_IF_ERROR(Allow(c));
    ASSIGN_OR_RETURN(int64_t id, db->CreateFolder(f));
    return SendJson(out, 201, {{"id", id}}, c.rec.event_id);
  }
  if (p.size() == 5 && p[2] == "folders" && p[4] == "acl" && m == "PUT") {
    c.rec.action = "admin.folders.acl";
    ASSIGN_OR_RETURN(int64_t fid, num(p[3]));
    ASSIGN_OR_RETURN(json j, ReadJson(c, body));
    ASSIGN_OR_RETURN(int64_t gid, db->GroupId(JsonStr(j, "group")));
    std::string perms = JsonStr(j, "perms");
    if (perms != "" && perms != "r" && perms != "rw")
      return InvalidArgument("perms must be \"r\", \"rw\" or \"\" (remove)");
    RETURN_IF_ERROR(db->GetFolder(fid).status());
    c.rec.extra["group"] = JsonStr(j, "group");
    c.rec.extra["perms"] = perms;
    RETURN_IF_ERROR(Allow(c));
    RETURN_IF_ERROR(db->SetAcl({fid, gid, perms}));
    return SendJson(out, 200, {{"status", "ok"}}, c.rec.event_id);
  }
  if (p.size() == 4 && p[2] == "policies" && m == "PUT") {
    c.rec.action = "admin.policies.set";
    if (p[3] != "download_budget")
      return InvalidArgument("unknown policy '" + p[3] + "'; known: download_budget");
    ASSIGN_OR_RETURN(json j, ReadJson(c, body));
    c.rec.extra["policy"] = p[3];
    RETURN_IF_ERROR(Allow(c));
    RETURN_IF_ERROR(db->PutPolicy(p[3], j.dump()));
    return SendJson(out, 200, {{"status", "ok"}}, c.rec.event_id);
  }
  if (p.size() == 4 && p[2] == "keys" && p[3] == "rotate" && m == "POST") {
    c.rec.action = "admin.keys.rotate";
    RETURN_IF_ERROR(Allow(c));
    {
      std::unique_lock<std::shared_mutex> l(ring_mu);
      ASSIGN_OR_RETURN(crypto::Keyring fresh, crypto::Keyring::Load(opt.keyring_path));
      RETURN_IF_ERROR(fresh.Rotate(opt.keyring_path));
    }
    ASSIGN_OR_RETURN(uint64_t n, RotateKeys());
    return SendJson(out, 200, {{"rewrapped", n}, {"kek_version", ring.current_version()}},
                    c.rec.event_id);
  }
  return NotFound("unknown admin API path or method; see docs/api.yaml");
}

}  // namespace mamori::vault
