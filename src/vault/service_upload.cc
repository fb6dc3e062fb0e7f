// Storing content: the shared ingest path (encrypt, hash, label, label
// policy, audit, then visible) and resumable upload sessions (issue 4).
//
// A session keeps what has arrived in DATA/uploads/<id>/ as segments, each
// its own secretstream under the session's key (docs/formats.md). A segment
// is durable (fsync, rename, fsync of the directory) before the committed
// offset moves past it, so a dropped connection or kill -9 loses at most the
// segment in flight. Completion decrypts the segments in order and stores
// them like a PUT, so the label covers the whole content and nothing is
// visible before that.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cinttypes>

#include "vault/labeler.h"
#include "vault/service_impl.h"

namespace mamori::vault {

namespace {

Status WriteAll(int fd, std::string_view d, const std::string& what) {
  while (!d.empty()) {
    ssize_t k = ::write(fd, d.data(), d.size());
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return Unavailable("cannot write " + what + ": " + std::strerror(errno));
    d.remove_prefix(static_cast<size_t>(k));
  }
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Unavailable("cannot open " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Unavailable("cannot fsync " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

std::string SegmentName(uint64_t offset) {
  char b[32];
  std::snprintf(b, sizeof b, "%020" PRIu64 ".seg", offset);
  return b;
}

// Segment offsets present in a session directory, sorted.
std::vector<uint64_t> Segments(const std::string& dir) {
  std::vector<uint64_t> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.size() == 24 && n.compare(20, 4, ".seg") == 0 && n.find_first_not_of("0123456789") == 20)
      out.push_back(std::stoull(n.substr(0, 20)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string SegmentAd(const std::string& id, uint64_t offset) {
  return UploadAd(id) + ":" + std::to_string(offset);
}

bool ValidUploadId(const std::string& id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

// ---------------------------------------------------------------- ingest
Status Vault::Impl::StoreVersion(Ctx& c, int64_t folder, const std::string& name,
                                 const std::function<Result<size_t>(char*, size_t)>& read,
                                 std::optional<uint64_t> expected_size,
                                 const std::string& expected_sha, ResponseSink& out) {
  return StoreVersionThen(c, folder, name, read, expected_size, expected_sha, out, nullptr);
}

Status Vault::Impl::StoreVersionThen(Ctx& c, int64_t folder, const std::string& name,
                                     const std::function<Result<size_t>(char*, size_t)>& read,
                                     std::optional<uint64_t> expected_size,
                                     const std::string& expected_sha, ResponseSink& out,
                                     const std::function<void()>& on_stored) {
  std::string name_tag = names->IndexTag("f:" + std::to_string(folder), name);
  c.rec.object = name_tag.substr(0, 32);
  std::string blob_id = crypto::ToHex(crypto::RandomBytes(16));
  std::string object_id = crypto::ToHex(crypto::RandomBytes(16));
  crypto::SecretKey dek = crypto::SecretKey::Random();
  ASSIGN_OR_RETURN(auto enc, crypto::StreamEncryptor::Create(dek, BlobAd(blob_id)));
  ASSIGN_OR_RETURN(auto writer, blobs->Create(blob_id));
  Labeler labeler(opt.rules, opt.label_hash_key, name, opt.max_label_container_bytes,
                  &label_buffer_in_use, opt.max_label_buffer_total_bytes);

  crypto::Sha256 sha;
  uint64_t total = 0;
  std::string buf(kIoChunk, '\0'), cipher;
  cipher.reserve(kIoChunk + 64);
  while (true) {
    ASSIGN_OR_RETURN(size_t n, read(buf.data(), buf.size()));
    if (n == 0) break;
    total += n;
    if (total > opt.max_upload_bytes)
      return ResourceExhausted("the upload exceeded the limit of " +
                               std::to_string(opt.max_upload_bytes) + " bytes");
    std::string_view chunk(buf.data(), n);
    sha.Update(chunk);
    labeler.Feed(chunk);
    cipher.clear();
    RETURN_IF_ERROR(enc->Write(chunk, &cipher));
    RETURN_IF_ERROR(writer->Write(cipher));
  }
  if (expected_size && total != *expected_size)
    return InvalidArgument("the body ended after " + std::to_string(total) + " of " +
                           std::to_string(*expected_size) + " bytes");
  cipher.clear();
  RETURN_IF_ERROR(enc->Finish(&cipher));
  RETURN_IF_ERROR(writer->Write(cipher));
  std::string digest = sha.FinishHex();
  if (!expected_sha.empty() && expected_sha != digest)
    return InvalidArgument(
        "content hash mismatch: the server computed a different SHA-256; "
        "nothing was stored");
  json label = labeler.Finish();
  c.rec.bytes = total;
  c.rec.labels = label;
  RETURN_IF_ERROR(CheckLabelPolicy(c, folder, label));  // the writer aborts: nothing kept
  RETURN_IF_ERROR(writer->Commit());
  // From here, any failure must remove the committed blob.
  auto cleanup = [&](Status s) {
    (void)blobs->Delete(blob_id);
    return s;
  };
  std::string wrapped;
  {
    std::shared_lock<std::shared_mutex> l(ring_mu);
    auto w = crypto::WrapKey(ring, dek, BlobAd(blob_id));
    if (!w.ok()) return cleanup(w.status());
    wrapped = *w;
  }
  Status a = Allow(c);
  if (!a.ok()) return cleanup(a);
  ObjectVersion v;
  v.blob_id = blob_id;
  v.wrapped_key = wrapped;
  v.size = total;
  v.sha256 = digest;
  v.label_json = label.dump();
  v.created_micros = Now();
  v.created_by = c.user->id;
  std::string sealed = names->Seal(name, "obj:" + object_id);
  auto existing = db->FindObject(folder, name_tag);
  if (existing.ok()) sealed = existing->name_sealed;  // keep the object's id binding
  auto added = db->AddVersion(folder, sealed, name_tag, v, object_id);
  if (!added.ok()) return cleanup(added.status());
  if (on_stored) on_stored();
  return SendJson(out, 201,
                  {{"id", added->object_id},
                   {"version", added->version},
                   {"size", total},
                   {"sha256", digest},
                   {"label", label}},
                  c.rec.event_id);
}

// ---------------------------------------------------------------- sessions
namespace {
// Marks a session busy for one request, so two transfers never interleave.
class BusyGuard {
 public:
  BusyGuard(std::mutex& mu, std::set<std::string>& busy, std::string id)
      : mu_(mu), busy_(busy), id_(std::move(id)) {
    std::lock_guard<std::mutex> l(mu_);
    ok_ = busy_.insert(id_).second;
  }
  ~BusyGuard() {
    if (!ok_) return;
    std::lock_guard<std::mutex> l(mu_);
    busy_.erase(id_);
  }
  Status status() const {
    return ok_ ? Status::Ok()
               : FailedPrecondition(
                     "another request for this upload is still in progress; retry shortly");
  }

 private:
  std::mutex& mu_;
  std::set<std::string>& busy_;
  std::string id_;
  bool ok_ = false;
};
}  // namespace

Result<UploadSession> Vault::Impl::OwnUpload(Ctx& c, int64_t folder, const std::string& id) {
  if (!ValidUploadId(id)) return InvalidArgument("an upload id is 32 hex digits");
  auto s = db->GetUpload(id);
  if (!s.ok() || s->folder_id != folder || s->user_id != c.user->id)
    return NotFound("no such upload session in this folder (completed, expired or not yours)");
  if (s->expires_micros <= Now())
    return NotFound("the upload session expired; start the upload again");
  c.rec.object = id;
  return *s;
}

Status Vault::Impl::UploadCreate(Ctx& c, int64_t folder, BodySource& body, ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  ASSIGN_OR_RETURN(json j, ReadJson(c, body));
  std::string name = JsonStr(j, "name");
  RETURN_IF_ERROR(ValidateName(name, "the file name (name)"));
  if (!j.contains("size") || !j["size"].is_number_unsigned())
    return InvalidArgument("give the file's size in bytes (size)");
  uint64_t size = j["size"].get<uint64_t>();
  if (size > opt.max_upload_bytes)
    return ResourceExhausted("the file is larger than the upload limit of " +
                             std::to_string(opt.max_upload_bytes) + " bytes");
  ASSIGN_OR_RETURN(int64_t open_sessions, db->CountUploadsOf(c.user->id, Now()));
  if (open_sessions >= opt.max_upload_sessions_per_user)
    return ResourceExhausted("you have " + std::to_string(open_sessions) +
                             " unfinished uploads (the limit is " +
                             std::to_string(opt.max_upload_sessions_per_user) +
                             "); complete or abort one (DELETE …/uploads/ID)");
  UploadSession s;
  s.id = crypto::ToHex(crypto::RandomBytes(16));
  s.folder_id = folder;
  s.name_tag = names->IndexTag("f:" + std::to_string(folder), name);
  s.name_sealed = names->Seal(name, UploadAd(s.id));
  s.user_id = c.user->id;
  s.device_id = c.device->id;
  s.size = size;
  s.created_micros = Now();
  s.expires_micros = Now() + opt.upload_session_ttl_micros;
  crypto::SecretKey key = crypto::SecretKey::Random();
  {
    std::shared_lock<std::shared_mutex> l(ring_mu);
    ASSIGN_OR_RETURN(s.wrapped_key, crypto::WrapKey(ring, key, UploadAd(s.id)));
  }
  std::error_code ec;
  std::filesystem::create_directories(UploadDir(s.id), ec);
  if (ec) return Unavailable("cannot create the upload directory: " + ec.message());
  ::chmod(UploadDir("").c_str(), 0700);
  ::chmod(UploadDir(s.id).c_str(), 0700);
  c.rec.object = s.id;
  c.rec.extra["size"] = size;
  RETURN_IF_ERROR(Allow(c));
  Status cs = db->CreateUpload(s);
  if (!cs.ok()) {
    std::filesystem::remove_all(UploadDir(s.id), ec);
    return cs;
  }
  return SendJson(
      out, 201, {{"id", s.id}, {"offset", 0}, {"size", size}, {"expires_micros", s.expires_micros}},
      c.rec.event_id);
}

Status Vault::Impl::UploadStatus(Ctx& c, int64_t folder, const std::string& id, ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  ASSIGN_OR_RETURN(UploadSession s, OwnUpload(c, folder, id));
  bool busy;
  {
    std::lock_guard<std::mutex> l(uploads_mu);
    busy = uploads_busy.count(id) != 0;
  }
  return Ok(c, out,
            {{"id", s.id},
             {"offset", s.committed},
             {"busy", busy},  // a request (maybe a dropped one) is still being stored
             {"size", s.size},
             {"expires_micros", s.expires_micros}});
}

Status Vault::Impl::UploadAbort(Ctx& c, int64_t folder, const std::string& id, ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  ASSIGN_OR_RETURN(UploadSession s, OwnUpload(c, folder, id));
  BusyGuard busy(uploads_mu, uploads_busy, id);
  RETURN_IF_ERROR(busy.status());
  RETURN_IF_ERROR(Allow(c));
  RETURN_IF_ERROR(db->DeleteUpload(id));
  std::error_code ec;
  std::filesystem::remove_all(UploadDir(id), ec);
  return SendJson(out, 200, {{"id", id}, {"status", "aborted"}}, c.rec.event_id);
}

Status Vault::Impl::UploadAppend(Ctx& c, int64_t folder, const std::string& id, BodySource& body,
                                 ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  ASSIGN_OR_RETURN(UploadSession s, OwnUpload(c, folder, id));
  BusyGuard busy(uploads_mu, uploads_busy, id);
  RETURN_IF_ERROR(busy.status());
  ASSIGN_OR_RETURN(s, db->GetUpload(id));  // fresh, now that no one else writes
  const std::string& os = c.query.count("offset") ? c.query["offset"] : "";
  if (os.empty() || os.size() > 19 || os.find_first_not_of("0123456789") != std::string::npos)
    return InvalidArgument("give ?offset=N (the session's current offset, see GET)");
  uint64_t offset = std::stoull(os);
  c.rec.extra["offset"] = offset;
  if (offset != s.committed)
    return FailedPrecondition("the upload is at offset " + std::to_string(s.committed) + ", not " +
                              std::to_string(offset) + "; resume from there");
  crypto::SecretKey key;
  {
    std::shared_lock<std::shared_mutex> l(ring_mu);
    ASSIGN_OR_RETURN(key, crypto::UnwrapKey(ring, s.wrapped_key, UploadAd(id)));
  }
  const std::string dir = UploadDir(id);
  // Segments at or past the committed offset are leftovers of a crash
  // between their rename and the offset update.
  for (uint64_t o : Segments(dir))
    if (o >= s.committed) ::unlink((dir + "/" + SegmentName(o)).c_str());

  uint64_t committed = s.committed;
  std::string tmp = dir + "/" + crypto::ToHex(crypto::RandomBytes(8)) + ".tmp";
  int fd = -1;
  std::unique_ptr<crypto::StreamEncryptor> enc;
  uint64_t seg_plain = 0;
  auto drop_tmp = [&] {
    if (fd >= 0) ::close(fd);
    fd = -1;
    ::unlink(tmp.c_str());
  };
  auto open_segment = [&]() -> Status {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
      return Unavailable("cannot create an upload segment: " + std::string(strerror(errno)));
    ASSIGN_OR_RETURN(enc, crypto::StreamEncryptor::Create(key, SegmentAd(id, committed)));
    seg_plain = 0;
    return Status::Ok();
  };
  std::string cipher;
  auto close_segment = [&]() -> Status {
    cipher.clear();
    RETURN_IF_ERROR(enc->Finish(&cipher));
    RETURN_IF_ERROR(WriteAll(fd, cipher, "an upload segment"));
    if (::fsync(fd) != 0) return Unavailable("cannot fsync an upload segment");
    ::close(fd);
    fd = -1;
    std::string seg = dir + "/" + SegmentName(committed);
    if (::rename(tmp.c_str(), seg.c_str()) != 0)
      return Unavailable("cannot commit an upload segment: " + std::string(strerror(errno)));
    RETURN_IF_ERROR(FsyncDir(dir));
    Status a = db->AdvanceUpload(id, committed, committed + seg_plain,
                                 Now() + opt.upload_session_ttl_micros);
    if (!a.ok()) {
      ::unlink(seg.c_str());
      return a;
    }
    committed += seg_plain;
    seg_plain = 0;
    return Status::Ok();
  };
  Status st = [&]() -> Status {
    std::string buf(kIoChunk, '\0');
    while (true) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), opt.upload_segment_bytes));
      ASSIGN_OR_RETURN(size_t n, body.Read(buf.data(), want));
      if (n == 0) break;
      if (committed + seg_plain + n > s.size)
        return ResourceExhausted("more bytes than the declared size of " + std::to_string(s.size) +
                                 " were sent; nothing past the last "
                                 "committed offset was kept");
      if (fd < 0) RETURN_IF_ERROR(open_segment());
      size_t off = 0;
      while (off < n) {
        size_t k =
            static_cast<size_t>(std::min<uint64_t>(n - off, opt.upload_segment_bytes - seg_plain));
        cipher.clear();
        RETURN_IF_ERROR(enc->Write(std::string_view(buf.data() + off, k), &cipher));
        RETURN_IF_ERROR(WriteAll(fd, cipher, "an upload segment"));
        seg_plain += k;
        off += k;
        if (seg_plain == opt.upload_segment_bytes) {
          RETURN_IF_ERROR(close_segment());
          if (off < n) RETURN_IF_ERROR(open_segment());
        }
      }
    }
    if (fd >= 0 && seg_plain > 0) RETURN_IF_ERROR(close_segment());
    return Status::Ok();
  }();
  drop_tmp();
  c.rec.bytes = committed - s.committed;
  c.rec.extra["committed"] = committed;
  if (!st.ok()) return st;
  return Ok(c, out, {{"id", id}, {"offset", committed}, {"size", s.size}});
}

Status Vault::Impl::UploadComplete(Ctx& c, int64_t folder, const std::string& id, BodySource& body,
                                   ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  ASSIGN_OR_RETURN(UploadSession s, OwnUpload(c, folder, id));
  BusyGuard busy(uploads_mu, uploads_busy, id);
  RETURN_IF_ERROR(busy.status());
  ASSIGN_OR_RETURN(s, db->GetUpload(id));
  ASSIGN_OR_RETURN(json j, ReadJson(c, body));
  std::string sha = JsonStr(j, "sha256");
  std::transform(sha.begin(), sha.end(), sha.begin(), ::tolower);
  if (sha.size() != 64 || sha.find_first_not_of("0123456789abcdef") != std::string::npos)
    return InvalidArgument("completing an upload needs the content's SHA-256 (sha256, 64 hex)");
  if (s.committed != s.size)
    return FailedPrecondition("only " + std::to_string(s.committed) + " of " +
                              std::to_string(s.size) + " bytes arrived; send the rest first");
  ASSIGN_OR_RETURN(std::string name, names->Open(s.name_sealed, UploadAd(id)));
  crypto::SecretKey key;
  {
    std::shared_lock<std::shared_mutex> l(ring_mu);
    ASSIGN_OR_RETURN(key, crypto::UnwrapKey(ring, s.wrapped_key, UploadAd(id)));
  }
  const std::string dir = UploadDir(id);
  std::vector<uint64_t> segs;
  for (uint64_t o : Segments(dir))
    if (o < s.committed) segs.push_back(o);
  if (!s.size) segs.clear();
  // Reads the segments back in order; each must start where the last ended.
  size_t si = 0;
  int fd = -1;
  uint64_t pos = 0, seg_start = 0;
  std::unique_ptr<crypto::StreamDecryptor> dec;
  std::string plain, cbuf(kIoChunk, '\0');
  size_t plain_off = 0;
  struct Closer {
    int* fd;
    ~Closer() {
      if (*fd >= 0) ::close(*fd);
    }
  } closer{&fd};
  auto damaged = [&](const std::string& why) {
    return DataLoss("the upload session is damaged (" + why + "); abort it and upload again");
  };
  auto read = [&](char* b, size_t n) -> Result<size_t> {
    while (plain_off == plain.size()) {
      plain.clear();
      plain_off = 0;
      if (fd < 0) {
        if (si == segs.size()) {
          if (pos != s.size) return damaged("content missing at offset " + std::to_string(pos));
          return size_t{0};
        }
        if (segs[si] != pos) return damaged("gap at offset " + std::to_string(pos));
        seg_start = pos;
        fd = ::open((dir + "/" + SegmentName(segs[si])).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return damaged("segment unreadable");
        ASSIGN_OR_RETURN(dec, crypto::StreamDecryptor::Create(key, SegmentAd(id, seg_start)));
      }
      ssize_t k = ::read(fd, cbuf.data(), cbuf.size());
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) return damaged("segment unreadable");
      if (k == 0) {
        Status f = dec->Finish(&plain);
        if (!f.ok()) return damaged("segment failed authentication");
        ::close(fd);
        fd = -1;
        ++si;
      } else {
        Status f = dec->Feed(std::string_view(cbuf.data(), static_cast<size_t>(k)), &plain);
        if (!f.ok()) return damaged("segment failed authentication");
      }
      pos += plain.size();
      if (pos > s.size) return damaged("more content than declared");
    }
    size_t k = std::min(n, plain.size() - plain_off);
    std::memcpy(b, plain.data() + plain_off, k);
    plain_off += k;
    return k;
  };
  c.rec.extra["upload"] = id;
  return StoreVersionThen(c, folder, name, read, s.size, sha, out, [&] {
    // The version exists: the session is done.
    (void)db->DeleteUpload(id);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  });
}

Result<uint64_t> Vault::Impl::CleanUploads(bool all_orphans) {
  uint64_t n = 0;
  ASSIGN_OR_RETURN(auto expired, db->ExpiredUploads(Now()));
  for (const auto& id : expired) {
    BusyGuard busy(uploads_mu, uploads_busy, id);
    if (!busy.status().ok()) continue;
    RETURN_IF_ERROR(db->DeleteUpload(id));
    std::error_code ec;
    std::filesystem::remove_all(UploadDir(id), ec);
    ++n;
  }
  if (all_orphans) {
    // Directories without a session (a crash between mkdir and the insert).
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(UploadDir(""), ec)) {
      std::string id = e.path().filename().string();
      if (!ValidUploadId(id) || db->GetUpload(id).ok()) continue;
      std::error_code rm;
      std::filesystem::remove_all(e.path(), rm);
      ++n;
    }
  }
  return n;
}

}  // namespace mamori::vault
