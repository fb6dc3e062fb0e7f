// Shares (issue 4). Internal shares give a group or a user read-only access
// to one file, optionally until an expiry. External links are off unless the
// external_links policy enables them; then each needs an expiry (at most the
// policy's max_days), a password (pwquality, stored as Argon2id) and a
// download limit. The link token is only stored as a hash. A link download
// needs no device certificate but is audited with its source address,
// counts against the limit and against its creator's download budgets, and
// is refused after expiry, limit or revocation, when the file's label
// forbids links (My Number always), or past a bulk-export threshold.
#include "vault/service_impl.h"

namespace mamori::vault {

namespace {
constexpr int64_t kMaxLinkPasswordFailures = 10;
constexpr int64_t kHour = 3600LL * 1000000;
}  // namespace

Status Vault::Impl::CreateShare(Ctx& c, int64_t folder, const std::string& name, BodySource& body,
                                ResponseSink& out) {
  // Sharing widens access, so it needs write access to the folder.
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  ASSIGN_OR_RETURN(json j, ReadJson(c, body));
  std::string name_tag = names->IndexTag("f:" + std::to_string(folder), name);
  auto o = db->FindObject(folder, name_tag);
  if (!o.ok() || o->deleted_micros != 0) return NotFound("no such file in this folder");
  c.rec.object = o->id;
  ASSIGN_OR_RETURN(ObjectVersion v, db->GetVersion(o->id, o->current_version));
  json label = json::parse(v.label_json, nullptr, false);
  c.rec.labels = label;
  Share s;
  s.object_id = o->id;
  s.created_by = c.user->id;
  s.created_micros = Now();
  auto hours = [&](const char* key) -> Result<int64_t> {
    if (!j[key].is_number_unsigned() || j[key].get<int64_t>() < 1)
      return InvalidArgument(std::string(key) + " must be a positive number of hours");
    return j[key].get<int64_t>();
  };
  bool external = j.contains("external") && j["external"] == true;
  json resp;
  if (!external) {
    int kinds = j.contains("group") + j.contains("user");
    if (kinds != 1)
      return InvalidArgument(
          "share with exactly one of group or user; an external link needs \"external\": true");
    if (j.contains("group")) {
      s.kind = "group";
      auto g = db->GroupId(JsonStr(j, "group"));
      if (!g.ok()) return NotFound("no group named '" + SanitizeString(JsonStr(j, "group")) + "'");
      s.group_id = *g;
      c.rec.extra["group"] = JsonStr(j, "group");
    } else {
      s.kind = "user";
      auto u = db->GetUserByName(JsonStr(j, "user"));
      if (!u.ok() || u->role != Role::kMember)
        return NotFound("no member named '" + SanitizeString(JsonStr(j, "user")) + "'");
      s.user_id = u->id;
      c.rec.extra["target_user"] = u->name;
    }
    if (j.contains("expires_in_hours")) {
      ASSIGN_OR_RETURN(int64_t h, hours("expires_in_hours"));
      s.expires_micros = Now() + h * kHour;
    }
  } else {
    s.kind = "link";
    ASSIGN_OR_RETURN(json pol, PolicyObject("external_links"));
    if (!(pol.contains("enabled") && pol["enabled"] == true))
      return PermissionDenied(
          "external links are disabled by policy; share internally (--group/--user) or ask an "
          "admin");
    RETURN_IF_ERROR(CheckExternalLinkLabel(label));
    auto num = [&](const char* k, int64_t dflt) {
      return pol.contains(k) && pol[k].is_number_integer() ? pol[k].get<int64_t>() : dflt;
    };
    int64_t max_days = num("max_days", 7);
    int64_t max_dl = num("max_downloads", 10);
    if (!j.contains("expires_in_hours"))
      return InvalidArgument("an external link needs an expiry (expires_in_hours)");
    ASSIGN_OR_RETURN(int64_t h, hours("expires_in_hours"));
    if (h > max_days * 24)
      return InvalidArgument("the expiry is longer than the policy allows (" +
                             std::to_string(max_days * 24) + " hours)");
    if (!j.contains("max_downloads") || !j["max_downloads"].is_number_unsigned() ||
        j["max_downloads"].get<int64_t>() < 1)
      return InvalidArgument("an external link needs a download limit (max_downloads >= 1)");
    if (j["max_downloads"].get<int64_t>() > max_dl)
      return InvalidArgument("the download limit is higher than the policy allows (" +
                             std::to_string(max_dl) + ")");
    std::string password = JsonStr(j, "password");
    if (password.empty()) return InvalidArgument("an external link needs a password (password)");
    RETURN_IF_ERROR(CheckPasswordPolicy(password, c.user->name));
    ASSIGN_OR_RETURN(s.password_hash, HashPassword(password));
    s.expires_micros = Now() + h * kHour;
    s.max_downloads = j["max_downloads"].get<int64_t>();
    std::string token = crypto::RandomToken(32);
    s.token_hash = TokenHash(token);
    resp["token"] = token;
    resp["path"] = "/v1/links/" + token;
    c.rec.extra["max_downloads"] = s.max_downloads;
  }
  c.rec.extra["kind"] = s.kind;
  c.rec.extra["expires_micros"] = s.expires_micros;
  RETURN_IF_ERROR(Allow(c));
  ASSIGN_OR_RETURN(s.id, db->CreateShare(s));
  resp["id"] = s.id;
  resp["kind"] = s.kind;
  resp["expires_micros"] = s.expires_micros;
  return SendJson(out, 201, resp, c.rec.event_id);
}

namespace {
json ShareJson(const Share& s, MetaStore& db) {
  json j = {{"id", s.id},
            {"kind", s.kind},
            {"expires_micros", s.expires_micros},
            {"created_micros", s.created_micros},
            {"revoked_micros", s.revoked_micros}};
  if (s.kind == "group") j["group_id"] = s.group_id;
  if (s.kind == "user") {
    auto u = db.GetUser(s.user_id);
    j["user"] = u.ok() ? u->name : "";
  }
  if (s.kind == "link") {
    j["max_downloads"] = s.max_downloads;
    j["downloads"] = s.downloads;
  }
  return j;
}
}  // namespace

Status Vault::Impl::ListFileShares(Ctx& c, int64_t folder, const std::string& name,
                                   ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'r'));
  std::string name_tag = names->IndexTag("f:" + std::to_string(folder), name);
  auto o = db->FindObject(folder, name_tag);
  if (!o.ok()) return NotFound("no such file in this folder");
  c.rec.object = o->id;
  ASSIGN_OR_RETURN(auto shares, db->ListSharesOfObject(o->id));
  json arr = json::array();
  for (const auto& s : shares) arr.push_back(ShareJson(s, *db));
  return Ok(c, out, {{"shares", arr}});
}

Status Vault::Impl::ListMyShares(Ctx& c, ResponseSink& out) {
  RETURN_IF_ERROR(RequireSession(c));
  if (c.user->role != Role::kMember)
    return PermissionDenied("only members receive shares (separation of duties)");
  ASSIGN_OR_RETURN(auto groups, db->GroupsOf(c.user->id));
  ASSIGN_OR_RETURN(auto shares, db->ListSharesTo(c.user->id, groups));
  json arr = json::array();
  for (const auto& s : shares) {
    if (s.expires_micros != 0 && s.expires_micros <= Now()) continue;
    auto o = db->GetObject(s.object_id);
    if (!o.ok() || o->deleted_micros != 0) continue;
    if (!FolderVisible(c, o->folder_id)) continue;  // contractors: their scope only
    ASSIGN_OR_RETURN(std::string name, names->Open(o->name_sealed, "obj:" + o->id));
    ASSIGN_OR_RETURN(ObjectVersion v, db->GetVersion(o->id, o->current_version));
    json j = ShareJson(s, *db);
    j["name"] = name;
    j["size"] = v.size;
    j["label"] = json::parse(v.label_json, nullptr, false);
    arr.push_back(j);
  }
  return Ok(c, out, {{"shares", arr}});
}

Status Vault::Impl::RevokeShare(Ctx& c, int64_t id, ResponseSink& out) {
  RETURN_IF_ERROR(RequireSession(c));
  ASSIGN_OR_RETURN(Share s, db->GetShare(id));
  auto o = db->GetObject(s.object_id);
  if (!o.ok()) return NotFound("no such share");
  c.rec.object = s.object_id;
  // The creator, or anyone who may write the folder, can revoke.
  if (s.created_by != c.user->id) RETURN_IF_ERROR(RequireContent(c, o->folder_id, 'w'));
  if (s.revoked_micros != 0) return FailedPrecondition("the share is already revoked");
  RETURN_IF_ERROR(Allow(c));
  RETURN_IF_ERROR(db->RevokeShare(id, Now()));
  return SendJson(out, 200, {{"id", id}, {"status", "revoked"}}, c.rec.event_id);
}

Status Vault::Impl::GetShared(Ctx& c, int64_t id, ResponseSink& out) {
  RETURN_IF_ERROR(RequireSession(c));
  if (c.user->role != Role::kMember)
    return PermissionDenied("the " + std::string(RoleName(c.user->role)) +
                            " role cannot read content (separation of duties)");
  if (c.user->pledge_micros == 0)
    return PermissionDenied(
        "accept the data-handling pledge (誓約書) first: `mamori pledge --accept`");
  auto s = db->GetShare(id);
  ASSIGN_OR_RETURN(auto groups, db->GroupsOf(c.user->id));
  bool mine = s.ok() && ((s->kind == "user" && s->user_id == c.user->id) ||
                         (s->kind == "group" &&
                          std::find(groups.begin(), groups.end(), s->group_id) != groups.end()));
  if (!mine) return NotFound("no such share, or not shared with you");
  c.rec.object = s->object_id;
  if (s->revoked_micros != 0) return PermissionDenied("the share was revoked");
  if (s->expires_micros != 0 && s->expires_micros <= Now())
    return PermissionDenied("the share expired");
  auto o = db->GetObject(s->object_id);
  if (!o.ok() || o->deleted_micros != 0) return NotFound("the shared file was deleted");
  ASSIGN_OR_RETURN(ObjectVersion v, db->GetVersion(o->id, o->current_version));
  json label = json::parse(v.label_json, nullptr, false);
  uint64_t individuals = label.is_object() ? label.value("individuals", uint64_t{0}) : 0;
  c.rec.bytes = v.size;
  c.rec.labels = label;
  c.rec.extra["version"] = v.version;
  // Contractors stay inside their scope, and bulk exports need their approval,
  // through a share as through the folder.
  RETURN_IF_ERROR(CheckOrgScope(c, o->folder_id));
  RETURN_IF_ERROR(CheckBudget(c, v, individuals));
  RETURN_IF_ERROR(CheckBulkExport(c, o->folder_id, o->id, v, individuals));
  RETURN_IF_ERROR(StreamVersion(c, v, label, out));
  return Status::Ok();
}

Status Vault::Impl::LinkDownload(Ctx& c, const std::string& token, ResponseSink& out) {
  // No device certificate and no session: the link is the credential, and
  // the audit record carries the source address.
  c.rec.user = "link";
  auto s = db->GetShareByToken(TokenHash(token));
  if (!s.ok() || s->kind != "link") return NotFound("no such link");
  c.rec.object = s->object_id;
  c.rec.extra["share"] = s->id;
  // The creator is named in the audit record, and is charged for the download.
  auto creator = db->GetUser(s->created_by);
  if (creator.ok()) c.rec.extra["shared_by"] = creator->name;
  ASSIGN_OR_RETURN(json pol, PolicyObject("external_links"));
  if (!(pol.contains("enabled") && pol["enabled"] == true))
    return PermissionDenied("external links are disabled by policy");
  if (s->revoked_micros != 0) return PermissionDenied("the link was revoked");
  if (s->expires_micros <= Now()) return PermissionDenied("the link expired");
  if (s->downloads >= s->max_downloads)
    return ResourceExhausted("the link reached its download limit");
  std::string password = c.req->header("x-mamori-link-password");
  if (!VerifyPassword(s->password_hash, password)) {
    ASSIGN_OR_RETURN(int64_t n,
                     db->CountLinkPasswordFailure(s->id, kMaxLinkPasswordFailures, Now()));
    c.rec.extra["failed_passwords"] = n;
    return PermissionDenied(
        n >= kMaxLinkPasswordFailures
            ? "wrong link password; the link is now revoked after too many attempts"
            : "wrong or missing link password (send it in the X-Mamori-Link-Password header)");
  }
  auto o = db->GetObject(s->object_id);
  if (!o.ok() || o->deleted_micros != 0) return NotFound("the linked file was deleted");
  ASSIGN_OR_RETURN(ObjectVersion v, db->GetVersion(o->id, o->current_version));
  json label = json::parse(v.label_json, nullptr, false);
  c.rec.bytes = v.size;
  c.rec.labels = label;
  c.rec.extra["version"] = v.version;
  // The current version may differ from the shared one: check again.
  RETURN_IF_ERROR(CheckExternalLinkLabel(label));
  // A link is its creator's way out of the vault, so its downloads count
  // against the creator's user budgets, and a download past a bulk-export
  // threshold is refused: a link cannot carry a second person's approval.
  if (!creator.ok()) return PermissionDenied("the link's creator no longer exists");
  c.charged_user_id = creator->id;
  uint64_t individuals = label.is_object() ? label.value("individuals", uint64_t{0}) : 0;
  RETURN_IF_ERROR(CheckBudgetFor(c, creator->id, std::nullopt, v, individuals));
  ASSIGN_OR_RETURN(BulkOver bulk, BulkExportOver(creator->id, v, individuals));
  if (bulk.what) {
    c.rec.extra["bulk_export"] = bulk.what;
    RaiseAlert(&c, "vault.bulk_export.link_refused",
               {{"share", s->id}, {"threshold", bulk.what}, {"shared_by", creator->name}});
    return PermissionDenied(
        std::string("this download would pass the bulk-export threshold (") + bulk.what +
        ") of the link's creator; external links cannot carry an approval, so the creator "
        "must share the file internally and ask for a bulk-export approval");
  }
  Status counted = db->CountLinkDownload(s->id, Now());
  if (!counted.ok()) return ResourceExhausted("the link expired or reached its download limit");
  return StreamVersion(c, v, label, out);
}

Status Vault::Impl::StreamVersion(Ctx& c, const ObjectVersion& v, const json& label,
                                  ResponseSink& out) {
  crypto::SecretKey dek;
  {
    std::shared_lock<std::shared_mutex> l(ring_mu);
    ASSIGN_OR_RETURN(dek, crypto::UnwrapKey(ring, v.wrapped_key, BlobAd(v.blob_id)));
  }
  ASSIGN_OR_RETURN(auto reader, blobs->Open(v.blob_id));
  if (reader->size() != crypto::CiphertextSize(v.size))
    return DataLoss("the stored content has the wrong size (damaged or tampered); restore it");
  ASSIGN_OR_RETURN(auto dec, crypto::StreamDecryptor::Create(dek, BlobAd(v.blob_id)));
  RETURN_IF_ERROR(Allow(c));  // fail closed before any byte leaves
  uint64_t individuals = label.is_object() ? label.value("individuals", uint64_t{0}) : 0;
  if (c.user && c.device) {
    RETURN_IF_ERROR(db->RecordDownload(Now(), c.user->id, c.device->id, v.size, individuals));
  } else if (c.charged_user_id) {
    // Device 0: no device (ids start at 1), so device windows never see it.
    RETURN_IF_ERROR(db->RecordDownload(Now(), *c.charged_user_id, 0, v.size, individuals));
  }
  RETURN_IF_ERROR(out.Start(200,
                            {{"content-type", "application/octet-stream"},
                             {"x-mamori-sha256", v.sha256},
                             {"x-mamori-version", std::to_string(v.version)},
                             {"x-mamori-label", label.dump()},
                             {"x-mamori-event", c.rec.event_id}},
                            v.size));
  std::string buf(kIoChunk, '\0'), plain;
  plain.reserve(kIoChunk + crypto::kChunkOverhead + 64);
  while (true) {
    ASSIGN_OR_RETURN(size_t n, reader->Read(buf.data(), buf.size()));
    if (n == 0) break;
    plain.clear();
    RETURN_IF_ERROR(dec->Feed(std::string_view(buf.data(), n), &plain));
    if (!plain.empty()) RETURN_IF_ERROR(out.Write(plain));
  }
  plain.clear();
  RETURN_IF_ERROR(dec->Finish(&plain));
  if (!plain.empty()) RETURN_IF_ERROR(out.Write(plain));
  return out.Finish();
}

}  // namespace mamori::vault
