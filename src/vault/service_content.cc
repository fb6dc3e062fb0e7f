// Content routes: folders, files, versions and download budgets.
#include "vault/service_impl.h"

namespace mamori::vault {

Status Vault::Impl::ListFolders(Ctx& c, ResponseSink& out) {
  RETURN_IF_ERROR(RequireSession(c));
  if (c.user->role == Role::kMaintenance || c.user->role == Role::kAuditor)
    return PermissionDenied("the " + std::string(RoleName(c.user->role)) +
                            " role cannot list folders (names are personal data)");
  ASSIGN_OR_RETURN(auto folders, db->ListFolders());
  ASSIGN_OR_RETURN(auto groups, db->GroupsOf(c.user->id));
  json arr = json::array();
  for (const auto& f : folders) {
    std::string perms;
    ASSIGN_OR_RETURN(auto acls, db->AclsOf(f.id));
    for (const auto& a : acls)
      if (std::find(groups.begin(), groups.end(), a.group_id) != groups.end())
        for (char ch : a.perms)
          if (perms.find(ch) == std::string::npos) perms += ch;
    if (perms.empty() && c.user->role != Role::kAdmin) continue;
    if (!FolderVisible(c, f.id)) continue;  // contractors see their scope only
    ASSIGN_OR_RETURN(std::string name, names->Open(f.name_sealed, "folder:" + f.name_tag));
    arr.push_back({{"id", f.id}, {"name", name}, {"perms", perms}});
  }
  return Ok(c, out, {{"folders", arr}});
}

Status Vault::Impl::ListFiles(Ctx& c, int64_t folder, ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'r'));
  bool trash = c.query.count("trash") && c.query["trash"] == "1";
  ASSIGN_OR_RETURN(auto objs, db->ListObjectsWithCurrent(folder, trash));
  // Written as text: a JSON object per file, built and then serialised, cost
  // more than the rest of a large listing. Keys are in the order json::dump
  // writes them (sorted), so the bytes are those of the DOM version.
  auto str = [](const std::string& v) {
    return json(v).dump(-1, ' ', false, json::error_handler_t::replace);
  };
  std::string body = "{\"files\":[";
  for (size_t i = 0; i < objs.size(); ++i) {
    const auto& [o, v] = objs[i];
    ASSIGN_OR_RETURN(std::string name, names->Open(o.name_sealed, "obj:" + o.id));
    json label = json::parse(v.label_json, nullptr, false);
    if (label.is_discarded()) label = nullptr;  // an unreadable label is null, never bad JSON
    if (i) body += ',';
    body += "{\"id\":" + str(o.id);
    body += ",\"label\":" + label.dump(-1, ' ', false, json::error_handler_t::replace);
    body += ",\"modified_micros\":" + std::to_string(v.created_micros);
    body += ",\"name\":" + str(name);
    body += ",\"sha256\":" + str(v.sha256);
    body += ",\"size\":" + std::to_string(v.size);
    body += ",\"version\":" + std::to_string(v.version) + "}";
  }
  body += "]}";
  RETURN_IF_ERROR(Allow(c));
  return SendJsonText(out, 200, body, c.rec.event_id);
}

Status Vault::Impl::Put(Ctx& c, int64_t folder, const std::string& name, BodySource& body,
                        ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  if (c.req->content_length && *c.req->content_length > opt.max_upload_bytes)
    return ResourceExhausted("the file is larger than the upload limit of " +
                             std::to_string(opt.max_upload_bytes) + " bytes");
  std::string expected = c.req->header("x-mamori-sha256");
  std::transform(expected.begin(), expected.end(), expected.begin(), ::tolower);
  return StoreVersion(
      c, folder, name, [&](char* b, size_t n) { return body.Read(b, n); }, c.req->content_length,
      expected, out);
}

Status Vault::Impl::CheckBudget(Ctx& c, const ObjectVersion& v, uint64_t individuals) {
  return CheckBudgetFor(c, c.user->id, c.device->id, v, individuals);
}

Status Vault::Impl::CheckBudgetFor(Ctx& c, int64_t user_id, std::optional<int64_t> device_id,
                                   const ObjectVersion& v, uint64_t individuals) {
  ASSIGN_OR_RETURN(auto pol, db->GetPolicy("download_budget"));
  if (!pol) return Status::Ok();
  json p = json::parse(*pol, nullptr, false);
  if (!p.is_object()) return FailedPrecondition("the download_budget policy is not valid JSON");
  struct Window {
    const char* key;
    int64_t micros;
    bool per_device;
  };
  const Window windows[] = {{"device_per_hour", 3600LL * 1000000, true},
                            {"device_per_day", 86400LL * 1000000, true},
                            {"user_per_hour", 3600LL * 1000000, false},
                            {"user_per_day", 86400LL * 1000000, false}};
  for (const auto& w : windows) {
    if (!p.contains(w.key) || !p[w.key].is_object()) continue;
    if (w.per_device && !device_id) continue;
    const json& lim = p[w.key];
    ASSIGN_OR_RETURN(auto used,
                     db->UsageSince(Now() - w.micros,
                                    w.per_device ? std::nullopt : std::optional<int64_t>(user_id),
                                    w.per_device ? device_id : std::nullopt));
    auto over = [&](const char* k, uint64_t used_v, uint64_t add) {
      return lim.contains(k) && lim[k].is_number_unsigned() &&
             used_v + add > lim[k].get<uint64_t>();
    };
    const char* what = over("bytes", used.bytes, v.size)                    ? "bytes"
                       : over("files", used.files, 1)                       ? "files"
                       : over("individuals", used.individuals, individuals) ? "individuals"
                                                                            : nullptr;
    if (what) {
      c.rec.extra["budget"] = std::string(w.key) + "." + what;
      RaiseAlert(&c, "vault.budget_exceeded", {{"budget", c.rec.extra["budget"]}});
      bool lock = device_id && p.contains("lock_device") && p["lock_device"] == true;
      if (lock) {
        RETURN_IF_ERROR(LockDevice(*device_id));
        c.rec.extra["device_locked"] = true;
      }
      return ResourceExhausted("download budget exceeded (" + std::string(w.key) + ", " + what +
                               ")" + (lock ? "; this device is now locked, ask an admin" : ""));
    }
  }
  return Status::Ok();
}

Status Vault::Impl::Get(Ctx& c, int64_t folder, const std::string& name, ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'r'));
  std::string name_tag = names->IndexTag("f:" + std::to_string(folder), name);
  c.rec.object = name_tag.substr(0, 32);
  auto o = db->FindObject(folder, name_tag);
  if (!o.ok() || o->deleted_micros != 0) return NotFound("no such file in this folder");
  int64_t version = o->current_version;
  if (c.query.count("version")) {
    const std::string& vs = c.query["version"];
    if (vs.empty() || vs.size() > 9 || vs.find_first_not_of("0123456789") != std::string::npos)
      return InvalidArgument("version must be a number");
    version = std::stoll(vs);
  }
  ASSIGN_OR_RETURN(ObjectVersion v, db->GetVersion(o->id, version));
  json label = json::parse(v.label_json, nullptr, false);
  uint64_t individuals = label.is_object() ? label.value("individuals", uint64_t{0}) : 0;
  c.rec.object = o->id;
  c.rec.bytes = v.size;
  c.rec.labels = label;
  c.rec.extra["version"] = v.version;
  RETURN_IF_ERROR(CheckBudget(c, v, individuals));
  RETURN_IF_ERROR(CheckBulkExport(c, folder, o->id, v, individuals));
  return StreamVersion(c, v, label, out);
}

Status Vault::Impl::Delete(Ctx& c, int64_t folder, const std::string& name, ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  std::string name_tag = names->IndexTag("f:" + std::to_string(folder), name);
  auto o = db->FindObject(folder, name_tag);
  if (!o.ok() || o->deleted_micros != 0) return NotFound("no such file in this folder");
  c.rec.object = o->id;
  RETURN_IF_ERROR(Allow(c));
  RETURN_IF_ERROR(db->TrashObject(o->id, Now()));
  return SendJson(
      out, 200,
      {{"status", "moved to the trash"}, {"purge_after_micros", Now() + TrashRetentionMicros()}},
      c.rec.event_id);
}

Status Vault::Impl::Versions(Ctx& c, int64_t folder, const std::string& name, ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'r'));
  std::string name_tag = names->IndexTag("f:" + std::to_string(folder), name);
  auto o = db->FindObject(folder, name_tag);
  if (!o.ok()) return NotFound("no such file in this folder");
  c.rec.object = o->id;
  ASSIGN_OR_RETURN(auto vs, db->ListVersions(o->id));
  json arr = json::array();
  for (const auto& v : vs)
    arr.push_back({{"version", v.version},
                   {"size", v.size},
                   {"sha256", v.sha256},
                   {"created_micros", v.created_micros}});
  return Ok(c, out, {{"versions", arr}});
}

}  // namespace mamori::vault
