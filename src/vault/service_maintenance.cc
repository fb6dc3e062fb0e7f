// Maintenance routes: backup. The maintenance role sees no content and no
// personal data: the backup copies sealed metadata and lists encrypted blobs,
// and nothing is decrypted.
#include <ctime>
#include <fstream>

#include "vault/service_impl.h"

namespace mamori::vault {

Status Vault::Impl::Maintenance(Ctx& c, BodySource& body, ResponseSink& out) {
  (void)body;
  const auto& p = c.path;
  c.rec.action = "maintenance";
  RETURN_IF_ERROR(RequireSession(c));
  if (c.user->role != Role::kMaintenance)
    return PermissionDenied("this needs the maintenance role");
  RETURN_IF_ERROR(CheckAdminNetwork(c));
  if (!(p.size() == 3 && p[2] == "backup" && c.req->method == "POST"))
    return NotFound("unknown maintenance API path or method; see docs/api.yaml");
  c.rec.action = "maintenance.backup";
  namespace fs = std::filesystem;
  std::time_t t = static_cast<std::time_t>(Now() / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  fs::path root = fs::path(opt.data_dir) / "backups";
  fs::path dir = root / (std::string(stamp) + "-" + c.rec.event_id);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Unavailable("cannot create " + dir.string() + ": " + ec.message());
  ::chmod(root.c_str(), 0700);
  ::chmod(dir.c_str(), 0700);
  // Half-written backups must not look complete: the manifest is written
  // last, atomically, and names the database's hash.
  auto fail = [&](Status s) {
    fs::remove_all(dir, ec);
    return s;
  };
  Status bs = db->BackupTo((dir / "meta.db").string());
  if (!bs.ok()) return fail(bs);
  // The blob list comes from the copy, so it matches the copy exactly.
  auto copy = OpenSqliteMetaStore((dir / "meta.db").string());
  if (!copy.ok()) return fail(copy.status());
  auto versions = (*copy)->AllVersions();
  if (!versions.ok()) return fail(versions.status());
  int schema = (*copy)->schema_version();
  copy->reset();
  json list = json::array();
  uint64_t total = 0;
  for (const auto& v : *versions) {
    auto r = blobs->Open(v.blob_id);
    if (!r.ok())
      return fail(DataLoss("blob " + v.blob_id + " of object " + v.object_id + " version " +
                           std::to_string(v.version) + " is missing: " + r.status().message()));
    uint64_t size = (*r)->size();
    total += size;
    list.push_back({{"blob_id", v.blob_id}, {"ciphertext_bytes", size}});
  }
  crypto::Sha256 h;
  {
    std::ifstream in(dir / "meta.db", std::ios::binary);
    std::string buf(kIoChunk, '\0');
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      h.Update(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
    }
    if (in.bad()) return fail(Unavailable("cannot read back the database copy"));
  }
  json manifest = {{"format", "mamori.vault.backup.v1"},
                   {"created_micros", Now()},
                   {"schema", schema},
                   {"meta_db", "meta.db"},
                   {"meta_db_sha256", h.FinishHex()},
                   {"blob_root", (fs::path(opt.data_dir) / "blobs").string()},
                   {"blobs", list},
                   {"blob_count", list.size()},
                   {"blob_bytes", total}};
  c.rec.extra["backup"] = dir.filename().string();
  c.rec.extra["blob_count"] = list.size();
  c.rec.bytes = total;
  Status a = Allow(c);
  if (!a.ok()) return fail(a);
  Status w = WriteFileAtomic((dir / "manifest.json").string(), manifest.dump(1), 0600);
  if (!w.ok()) return fail(w);
  return SendJson(out, 201,
                  {{"path", dir.string()},
                   {"blob_count", list.size()},
                   {"blob_bytes", total},
                   {"meta_db_sha256", manifest["meta_db_sha256"]}},
                  c.rec.event_id);
}

}  // namespace mamori::vault
