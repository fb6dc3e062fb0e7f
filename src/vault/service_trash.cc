// Content routes added for issue 4: the route table of the newer content
// features, the trash (list, restore, purge on a timer and by an admin) and
// move/rename.
#include "vault/service_impl.h"

namespace mamori::vault {

namespace {
Result<int64_t> Id(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
    return InvalidArgument("'" + s.substr(0, 20) + "' is not an id");
  return std::stoll(s);
}
}  // namespace

Status Vault::Impl::RouteContentExtras(Ctx& c, BodySource& body, ResponseSink& out, bool* handled) {
  const auto& p = c.path;
  const std::string& m = c.req->method;
  *handled = true;
  if (p[1] == "folders" && p.size() >= 4) {
    ASSIGN_OR_RETURN(int64_t folder, Id(p[2]));
    c.rec.extra["folder"] = folder;
    if (p[3] == "trash" && p.size() == 4 && m == "GET") {
      c.rec.action = "trash.list";
      return ListTrash(c, folder, out);
    }
    if (p[3] == "files" && p.size() == 6) {
      RETURN_IF_ERROR(ValidateName(p[4], "a file name"));
      if (p[5] == "restore" && m == "POST") {
        c.rec.action = "restore";
        return Restore(c, folder, p[4], body, out);
      }
      if (p[5] == "move" && m == "POST") {
        c.rec.action = "move";
        return Move(c, folder, p[4], body, out);
      }
      if (p[5] == "shares" && m == "POST") {
        c.rec.action = "share.create";
        return CreateShare(c, folder, p[4], body, out);
      }
      if (p[5] == "shares" && m == "GET") {
        c.rec.action = "share.list";
        return ListFileShares(c, folder, p[4], out);
      }
    }
    if (p[3] == "uploads") {
      if (p.size() == 4 && m == "POST") {
        c.rec.action = "upload.create";
        return UploadCreate(c, folder, body, out);
      }
      if (p.size() >= 5) {
        c.rec.object = p[4].substr(0, 64);
        if (p.size() == 5 && m == "PUT") {
          c.rec.action = "upload.append";
          return UploadAppend(c, folder, p[4], body, out);
        }
        if (p.size() == 5 && m == "GET") {
          c.rec.action = "upload.status";
          return UploadStatus(c, folder, p[4], out);
        }
        if (p.size() == 5 && m == "DELETE") {
          c.rec.action = "upload.abort";
          return UploadAbort(c, folder, p[4], out);
        }
        if (p.size() == 6 && p[5] == "complete" && m == "POST") {
          c.rec.action = "upload.complete";
          return UploadComplete(c, folder, p[4], body, out);
        }
      }
    }
  }
  if (p[1] == "shares") {
    if (p.size() == 2 && m == "GET") {
      c.rec.action = "share.mine";
      return ListMyShares(c, out);
    }
    if (p.size() >= 3) {
      ASSIGN_OR_RETURN(int64_t id, Id(p[2]));
      c.rec.extra["share"] = id;
      if (p.size() == 3 && m == "DELETE") {
        c.rec.action = "share.revoke";
        return RevokeShare(c, id, out);
      }
      if (p.size() == 4 && p[3] == "content" && m == "GET") {
        c.rec.action = "share.get";
        return GetShared(c, id, out);
      }
    }
  }
  if (p[1] == "links" && p.size() == 3 && m == "GET") {
    c.rec.action = "link.download";
    return LinkDownload(c, p[2], out);
  }
  if (p[1] == "admin" && p.size() == 4 && p[2] == "trash" && p[3] == "purge" && m == "POST") {
    c.rec.action = "trash.purge";
    RETURN_IF_ERROR(RequireAdmin(c));
    json result;
    RETURN_IF_ERROR(PurgeExpired(c, &result));
    return SendJson(out, 200, result, c.rec.event_id);
  }
  if (p[1] == "admin" && p.size() == 4 && p[2] == "policies" &&
      (m == "GET" || p[3] == "trash" || p[3] == "external_links" || p[3] == "labels"))
    return ContentPolicy(c, body, out);
  *handled = false;
  return Status::Ok();
}

int64_t Vault::Impl::TrashRetentionMicros() {
  auto p = PolicyObject("trash");
  if (p.ok() && p->contains("retention_days") && (*p)["retention_days"].is_number_unsigned())
    return (*p)["retention_days"].get<int64_t>() * 86400LL * 1000000;
  return opt.trash_retention_micros;
}

Status Vault::Impl::ListTrash(Ctx& c, int64_t folder, ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'r'));
  ASSIGN_OR_RETURN(auto objs, db->ListObjects(folder, true));
  int64_t retention = TrashRetentionMicros();
  json arr = json::array();
  for (const auto& o : objs) {
    ASSIGN_OR_RETURN(std::string name, names->Open(o.name_sealed, "obj:" + o.id));
    ASSIGN_OR_RETURN(ObjectVersion v, db->GetVersion(o.id, o.current_version));
    arr.push_back({{"name", name},
                   {"id", o.id},
                   {"version", v.version},
                   {"size", v.size},
                   {"deleted_micros", o.deleted_micros},
                   {"purge_after_micros", o.deleted_micros + retention}});
  }
  return Ok(c, out, {{"trash", arr}});
}

Status Vault::Impl::Restore(Ctx& c, int64_t folder, const std::string& name, BodySource& body,
                            ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  ASSIGN_OR_RETURN(json j, ReadJson(c, body));
  std::string name_tag = names->IndexTag("f:" + std::to_string(folder), name);
  auto o = db->FindObject(folder, name_tag);
  if (!o.ok()) return NotFound("no such file in this folder or its trash");
  c.rec.object = o->id;
  int64_t version = o->current_version;
  if (j.contains("version")) {
    if (!j["version"].is_number_unsigned() || j["version"].get<int64_t>() < 1)
      return InvalidArgument("version must be a positive number (see `mamori versions`)");
    version = j["version"].get<int64_t>();
  } else if (o->deleted_micros == 0) {
    return FailedPrecondition(
        "the file is not in the trash; give --version N to bring back an older version");
  }
  ASSIGN_OR_RETURN(ObjectVersion v, db->GetVersion(o->id, version));
  c.rec.extra["version"] = version;
  c.rec.extra["from_trash"] = o->deleted_micros != 0;
  c.rec.labels = json::parse(v.label_json, nullptr, false);
  RETURN_IF_ERROR(Allow(c));
  RETURN_IF_ERROR(db->SetCurrentVersion(o->id, version));
  return SendJson(out, 200, {{"id", o->id}, {"version", version}, {"status", "restored"}},
                  c.rec.event_id);
}

Status Vault::Impl::Move(Ctx& c, int64_t folder, const std::string& name, BodySource& body,
                         ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  ASSIGN_OR_RETURN(json j, ReadJson(c, body));
  int64_t to_folder = folder;
  if (j.contains("folder")) {
    if (!j["folder"].is_number_unsigned()) return InvalidArgument("folder must be a folder id");
    to_folder = j["folder"].get<int64_t>();
  }
  std::string to_name = j.contains("name") ? JsonStr(j, "name") : name;
  RETURN_IF_ERROR(ValidateName(to_name, "the new file name"));
  if (to_folder == folder && to_name == name)
    return InvalidArgument("give a new name (name) or another folder (folder)");
  std::string name_tag = names->IndexTag("f:" + std::to_string(folder), name);
  auto o = db->FindObject(folder, name_tag);
  if (!o.ok() || o->deleted_micros != 0) return NotFound("no such file in this folder");
  c.rec.object = o->id;
  c.rec.extra["to_folder"] = to_folder;
  // Write access to both folders: moving out removes, moving in adds.
  if (to_folder != folder) RETURN_IF_ERROR(RequireContent(c, to_folder, 'w'));
  // Every version moves, so every version's label must be allowed there.
  ASSIGN_OR_RETURN(auto versions, db->ListVersions(o->id));
  for (const auto& v : versions) {
    json label = json::parse(v.label_json, nullptr, false);
    c.rec.labels = label;
    RETURN_IF_ERROR(CheckLabelPolicy(c, to_folder, label));
  }
  std::string to_tag = names->IndexTag("f:" + std::to_string(to_folder), to_name);
  std::string sealed = names->Seal(to_name, "obj:" + o->id);  // the name stays encrypted
  RETURN_IF_ERROR(Allow(c));
  RETURN_IF_ERROR(db->MoveObject(o->id, to_folder, sealed, to_tag));
  return SendJson(out, 200, {{"id", o->id}, {"folder", to_folder}, {"name", to_name}},
                  c.rec.event_id);
}

Status Vault::Impl::PurgeExpired(Ctx& c, json* result) {
  int64_t now = Now();
  int64_t cutoff = now - TrashRetentionMicros();
  ASSIGN_OR_RETURN(auto objs, db->TrashedBefore(cutoff));
  ASSIGN_OR_RETURN(auto uploads, db->ExpiredUploads(now));
  json ids = json::array();
  for (size_t i = 0; i < objs.size() && i < 1000; ++i) ids.push_back(objs[i].id);
  c.rec.extra["objects"] = ids;
  c.rec.extra["object_count"] = objs.size();
  c.rec.extra["expired_uploads"] = uploads.size();
  c.rec.extra["cutoff_micros"] = cutoff;
  if (objs.empty() && uploads.empty()) {
    *result = {{"purged_files", 0}, {"deleted_blobs", 0}, {"expired_uploads", 0}};
    return Allow(c);
  }
  RETURN_IF_ERROR(Allow(c));  // recorded before anything is deleted
  ASSIGN_OR_RETURN(auto blob_ids, db->PurgeTrash(cutoff));
  uint64_t deleted = 0;
  for (const auto& b : blob_ids)
    if (blobs->Delete(b).ok()) ++deleted;
  ASSIGN_OR_RETURN(uint64_t cleaned, CleanUploads(false));
  *result = {
      {"purged_files", objs.size()}, {"deleted_blobs", deleted}, {"expired_uploads", cleaned}};
  if (deleted != blob_ids.size())
    return DataLoss(std::to_string(blob_ids.size() - deleted) +
                    " blob(s) of purged files could not be deleted; check the blob directory");
  return Status::Ok();
}

void Vault::Impl::RunJanitor() {
  Ctx c;
  HttpRequest none;
  none.method = "TIMER";
  c.req = &none;
  c.rec.component = "vault";
  c.rec.event_id = audit::NewEventId();
  c.rec.time_micros = Now();
  c.rec.action = "trash.purge";
  c.rec.user = "system:janitor";
  json result;
  Status s = PurgeExpired(c, &result);
  if (!s.ok() && !c.audited)
    (void)Audit(c, "error", std::string(StatusCodeName(s.code())) + ": " + s.message());
}

}  // namespace mamori::vault
