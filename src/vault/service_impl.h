// Internal to src/vault: the service's shared state and request helpers, so
// that route handlers can live in several files (service*.cc). Not a public
// header; other components use vault/service.h.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <shared_mutex>
#include <thread>

#include "common/file_util.h"
#include "detect/detect.h"
#include "vault/identity.h"
#include "vault/service.h"

namespace mamori::vault {

using json = nlohmann::json;

namespace internal {

inline constexpr const char* kMetaKeyName = "wrapped_metadata_key";
inline constexpr const char* kMetaKeyAd = "mamori.metadata-key";
inline constexpr size_t kIoChunk = 64 * 1024;

inline std::string TokenHash(std::string_view token) {
  crypto::Sha256 h;
  h.Update("mamori.token.v1:");
  h.Update(token);
  return h.FinishHex();
}

inline std::string BlobAd(const std::string& blob_id) { return "blob:" + blob_id; }
// Binds an upload session's wrapped segment key and sealed name to the session.
inline std::string UploadAd(const std::string& upload_id) { return "upload:" + upload_id; }

inline int FromHexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return InvalidArgument("bad % escape in the URL");
      int a = FromHexDigit(s[i + 1]);
      int b = FromHexDigit(s[i + 2]);
      if (a < 0 || b < 0) return InvalidArgument("bad % escape in the URL");
      out.push_back(static_cast<char>(a * 16 + b));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

inline Status ValidateName(const std::string& name, const char* what) {
  if (name.empty() || name.size() > 255)
    return InvalidArgument(std::string(what) + " must be 1..255 bytes");
  if (name == "." || name == "..") return InvalidArgument(std::string(what) + " cannot be . or ..");
  for (unsigned char c : name)
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
      return InvalidArgument(std::string(what) +
                             " must not contain '/', '\\' or control characters");
  return Status::Ok();
}

inline Status ValidateUserName(const std::string& name) {
  if (name.empty() || name.size() > 64) return InvalidArgument("user names are 1..64 characters");
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
          c == '@'))
      return InvalidArgument("user names may contain letters, digits, '.', '_', '-' and '@'");
  return Status::Ok();
}

// Replaces invalid UTF-8 (from URLs, JSON strings) so records and responses
// always serialise; nlohmann::json throws on invalid UTF-8 otherwise.
inline json Sanitize(const json& j) {
  return json::parse(j.dump(-1, ' ', false, json::error_handler_t::replace), nullptr, false);
}
inline std::string SanitizeString(const std::string& s) {
  json j = Sanitize(json(s));
  return j.is_string() ? j.get<std::string>() : std::string();
}

inline std::string JsonStr(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// Runs a task every `interval_seconds` (real time) on its own thread until
// destroyed. Declared last in Vault::Impl so it stops before what it uses.
class PeriodicTask {
 public:
  PeriodicTask() = default;
  ~PeriodicTask() { Stop(); }
  void Start(int64_t interval_seconds, std::function<void()> task) {
    if (interval_seconds <= 0 || thread_.joinable()) return;
    thread_ = std::thread([this, interval_seconds, task = std::move(task)] {
      std::unique_lock<std::mutex> l(mu_);
      while (!cv_.wait_for(l, std::chrono::seconds(interval_seconds), [this] { return stop_; })) {
        l.unlock();
        task();
        l.lock();
      }
    });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace internal

using namespace internal;

// ----------------------------------------------------------------------------
struct Vault::Impl {
  VaultOptions opt;
  std::unique_ptr<AuditSink> audit;
  std::unique_ptr<MetaStore> db;
  std::unique_ptr<BlobStore> blobs;
  std::shared_mutex ring_mu;
  crypto::Keyring ring;
  crypto::SecretKey metadata_key;
  std::unique_ptr<crypto::NameCipher> names;
  KeyAndCert ca;
  std::mutex login_mu;  // serialises failed-login accounting per process

  int64_t Now() const { return opt.clock->NowMicros(); }

  struct Ctx {
    const HttpRequest* req;
    std::vector<std::string> path;
    std::map<std::string, std::string> query;
    audit::Record rec;
    bool audited = false;
    bool audit_failed = false;
    std::optional<User> user;
    std::optional<Device> device;
    std::optional<Session> session;
    std::optional<Org> org;  // contractor organisation of the user, if any
    // An external-link download has no user or device: it is charged to the
    // link's creator (their user budgets and bulk-export thresholds).
    std::optional<int64_t> charged_user_id;
  };

  // ---- audit ----
  Status Audit(Ctx& c, const std::string& result, const std::string& reason) {
    if (c.audited) return c.audit_failed ? Unavailable("audit log unavailable") : Status::Ok();
    c.audited = true;
    c.rec.result = result;
    c.rec.reason = SanitizeString(reason);
    if (!c.rec.extra.is_null()) c.rec.extra = Sanitize(c.rec.extra);
    if (c.user) c.rec.user = c.user->name;
    if (c.device) c.rec.device = "d" + std::to_string(c.device->id);
    Status s = audit->Append(c.rec);
    if (!s.ok()) {
      c.audit_failed = true;
      RaiseAlert(&c, "vault.audit_failure", {{"error", s.message().substr(0, 200)}});
      return Unavailable("the audit log cannot be written, so the request is refused (" +
                         s.message() + ")");
    }
    return Status::Ok();
  }
  // Records the allowed request; the caller must not act if this fails.
  Status Allow(Ctx& c) { return Audit(c, "allow", ""); }

  // ---- responses ----
  static Status SendJson(ResponseSink& out, int status, const json& body,
                         const std::string& event_id) {
    return SendJsonText(out, status, body.dump(-1, ' ', false, json::error_handler_t::replace),
                        event_id);
  }
  // `text` must be valid JSON (built by the caller, e.g. a large listing).
  static Status SendJsonText(ResponseSink& out, int status, const std::string& text,
                             const std::string& event_id) {
    RETURN_IF_ERROR(out.Start(
        status, {{"content-type", "application/json"}, {"x-mamori-event", event_id}}, text.size()));
    RETURN_IF_ERROR(out.Write(text));
    return out.Finish();
  }

  Result<json> ReadJson(Ctx& c, BodySource& body) {
    std::string buf;
    char tmp[4096];
    while (true) {
      ASSIGN_OR_RETURN(size_t n, body.Read(tmp, sizeof tmp));
      if (n == 0) break;
      buf.append(tmp, n);
      if (buf.size() > opt.max_json_bytes)
        return ResourceExhausted("JSON body is larger than " + std::to_string(opt.max_json_bytes) +
                                 " bytes");
    }
    if (buf.empty()) return json::object();
    json j = json::parse(buf, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return InvalidArgument("the body must be a JSON object");
    return j;
  }

  // ---- authentication ----
  Status CheckUserNetwork(Ctx& c, const User& u) {
    RETURN_IF_ERROR(CheckGovernance(c, u));  // group and role networks, contractor expiry
    if (u.allowed_cidrs.empty()) return Status::Ok();
    auto nets = ParseCidrList(u.allowed_cidrs);
    if (!nets.ok()) return PermissionDenied("the user's network rule is invalid; ask an admin");
    for (const auto& n : *nets)
      if (n.Contains(c.req->source_ip)) return Status::Ok();
    return PermissionDenied("this account may not be used from " + c.req->source_ip +
                            " (回線認証)");
  }

  Status RequireDevice(Ctx& c) {
    if (c.req->cert_fingerprint.empty())
      return PermissionDenied(
          "this request needs an enrolled device certificate (端末認証); run `mamori enroll`");
    auto d = db->GetDeviceByFingerprint(c.req->cert_fingerprint);
    if (!d.ok()) {
      if (d.status().code() == StatusCode::kNotFound)
        return PermissionDenied("this device certificate is not enrolled");
      return d.status();
    }
    c.device = *d;
    if (d->status == "locked")
      return PermissionDenied("this device is locked (遠隔ロック); ask an admin");
    if (d->status == "revoked") return PermissionDenied("this device was revoked");
    if (d->status != "active") return PermissionDenied("this device is not approved yet");
    // Last seen: written when the address changes or at most every 30 s, so a
    // busy device does not cost a synchronous database write per request.
    if (d->last_ip != c.req->source_ip || Now() - d->last_seen_micros > 30LL * 1000000)
      RETURN_IF_ERROR(db->TouchDevice(d->id, Now(), c.req->source_ip));
    ASSIGN_OR_RETURN(User u, db->GetUser(d->user_id));
    c.user = u;
    if (u.status != "active") return PermissionDenied("this account is disabled");
    return CheckUserNetwork(c, u);
  }

  Status RequireSession(Ctx& c) {
    RETURN_IF_ERROR(RequireDevice(c));
    std::string auth = c.req->header("authorization");
    if (auth.rfind("Bearer ", 0) != 0)
      return PermissionDenied("this request needs a session; run `mamori login`");
    auto s = db->GetSession(TokenHash(auth.substr(7)));
    if (!s.ok()) {
      if (s.status().code() == StatusCode::kNotFound)
        return PermissionDenied("the session is unknown, expired or revoked; run `mamori login`");
      return s.status();
    }
    if (s->expires_micros <= Now()) {
      (void)db->DeleteSession(s->token_hash);
      return PermissionDenied("the session expired; run `mamori login`");
    }
    if (s->device_id != c.device->id || s->user_id != c.user->id)
      return PermissionDenied("the session belongs to another device");
    c.session = *s;
    return Status::Ok();
  }

  Status RequireAdmin(Ctx& c) {
    RETURN_IF_ERROR(RequireSession(c));
    if (c.user->role != Role::kAdmin) return PermissionDenied("this needs the admin role");
    std::vector<Cidr> nets = opt.admin_networks;
    if (nets.empty()) nets = *ParseCidrList("127.0.0.0/8,::1/128");
    for (const auto& n : nets)
      if (n.Contains(c.req->source_ip)) return Status::Ok();
    return PermissionDenied("the admin API is only reachable from admin networks");
  }

  // Content needs the member role (separation of duties), the pledge, and ACLs.
  Status RequireContent(Ctx& c, int64_t folder_id, char perm) {
    RETURN_IF_ERROR(RequireSession(c));
    if (c.user->role == Role::kAdmin && perm == 'r') {
      ASSIGN_OR_RETURN(bool break_glass, BreakGlassRead(c, folder_id));
      if (break_glass) return Status::Ok();
    }
    if (c.user->role != Role::kMember)
      return PermissionDenied("the " + std::string(RoleName(c.user->role)) +
                              " role cannot read or write content (separation of duties)");
    if (c.user->pledge_micros == 0)
      return PermissionDenied(
          "accept the data-handling pledge (誓約書) first: `mamori pledge --accept`");
    auto folder = db->GetFolder(folder_id);
    if (!folder.ok()) return NotFound("no such folder, or no access to it");
    RETURN_IF_ERROR(CheckOrgScope(c, folder_id));
    ASSIGN_OR_RETURN(auto groups, db->GroupsOf(c.user->id));
    ASSIGN_OR_RETURN(auto acls, db->AclsOf(folder_id));
    for (const auto& a : acls)
      if (std::find(groups.begin(), groups.end(), a.group_id) != groups.end() &&
          a.perms.find(perm) != std::string::npos)
        return Status::Ok();
    return PermissionDenied(perm == 'w' ? "no write access to this folder"
                                        : "no read access to this folder");
  }

  // ---- login ----
  Status CheckCredentials(Ctx& c, User& u, const std::string& password, const std::string& totp) {
    std::lock_guard<std::mutex> l(login_mu);
    auto fresh = db->GetUser(u.id);
    if (fresh.ok()) u = *fresh;
    int64_t now = Now();
    if (u.locked_until_micros > now)
      return PermissionDenied("too many failed logins; the account is locked for " +
                              std::to_string((u.locked_until_micros - now) / 60000000 + 1) +
                              " more minute(s)");
    bool ok = VerifyPassword(u.password_hash, password);
    std::string reason = "bad password";
    if (ok) {
      if (totp.empty()) {
        ok = false;
        reason = "TOTP code missing";
      } else {
        std::string secret;
        auto opened = names->Open(u.totp_sealed, "totp:" + std::to_string(u.id));
        if (!opened.ok()) return Internal("the TOTP secret cannot be opened");
        auto step = TotpVerify(*opened, totp, now / 1000000);
        if (!step.ok()) {
          ok = false;
          reason = "bad TOTP code";
        } else if (*step <= u.totp_last_step) {
          ok = false;
          reason = "TOTP code already used";
        } else {
          u.totp_last_step = *step;
        }
      }
    }
    if (!ok) {
      u.failed_logins++;
      if (u.failed_logins >= opt.max_failed_logins) {
        // Exponential backoff: each further failure doubles the lockout (max 24 h).
        int extra = static_cast<int>(std::min<int64_t>(u.failed_logins - opt.max_failed_logins, 6));
        u.locked_until_micros =
            now + std::min<int64_t>(opt.lockout_micros << extra, 24LL * 3600 * 1000000);
      }
      RETURN_IF_ERROR(db->UpdateUser(u));
      c.rec.extra["failed_logins"] = u.failed_logins;
      if (u.failed_logins >= opt.max_failed_logins)
        RaiseAlert(&c, "vault.login_failures",
                   {{"account", u.name}, {"failed_logins", u.failed_logins}});
      return PermissionDenied("login refused: " + reason);
    }
    u.failed_logins = 0;
    u.locked_until_micros = 0;
    return db->UpdateUser(u);
  }

  // ---- routes ----
  Status Route(Ctx& c, BodySource& body, ResponseSink& out);
  Status Health(Ctx& c, ResponseSink& out);
  Status Enroll(Ctx& c, BodySource& body, ResponseSink& out);
  Status EnrollStatus(Ctx& c, int64_t id, ResponseSink& out);
  Status Login(Ctx& c, BodySource& body, ResponseSink& out);
  Status Logout(Ctx& c, ResponseSink& out);
  Status Me(Ctx& c, ResponseSink& out);
  Status Pledge(Ctx& c, BodySource& body, ResponseSink& out);
  Status ListFolders(Ctx& c, ResponseSink& out);
  Status ListFiles(Ctx& c, int64_t folder, ResponseSink& out);
  Status Put(Ctx& c, int64_t folder, const std::string& name, BodySource& body, ResponseSink& out);
  Status Get(Ctx& c, int64_t folder, const std::string& name, ResponseSink& out);
  Status Delete(Ctx& c, int64_t folder, const std::string& name, ResponseSink& out);
  Status Versions(Ctx& c, int64_t folder, const std::string& name, ResponseSink& out);
  Status LockOwnDevice(Ctx& c, int64_t id, ResponseSink& out);
  Status Admin(Ctx& c, BodySource& body, ResponseSink& out);
  Status AuditRead(Ctx& c, ResponseSink& out);
  Status CheckBudget(Ctx& c, const ObjectVersion& v, uint64_t individuals);
  // The same windows for a download charged to `user_id`; device windows
  // apply only when `device_id` is set, and lock_device only then.
  Status CheckBudgetFor(Ctx& c, int64_t user_id, std::optional<int64_t> device_id,
                        const ObjectVersion& v, uint64_t individuals);
  Result<uint64_t> RotateKeys();
  Result<std::string> IssueEnrolToken(int64_t user_id);
  Status LockDevice(int64_t device_id);

  // ---- governance (service_governance.cc) ----
  struct GovCache {
    struct Rule {
      std::string kind, name;
      int64_t group_id = -1;
      std::vector<Cidr> nets;
      bool invalid = false;
    };
    std::vector<Rule> rules;
    bool any_org = false;
    std::string error;  // the rules could not be read: deny
  };
  std::atomic<int64_t> last_audit_alert{0};
  std::mutex gov_mu;
  std::shared_ptr<const GovCache> gov_cache;  // null = reload on next use
  std::shared_ptr<const GovCache> Governance();
  void InvalidateGovernance();
  Status CheckGovernance(Ctx& c, const User& u);
  Status CheckOrgScope(Ctx& c, int64_t folder_id);
  bool FolderVisible(const Ctx& c, int64_t folder_id) const;
  Status CheckAdminNetwork(Ctx& c);
  // True if an approved, unexpired break-glass grant lets this admin read the
  // folder (and marks the record); false if there is none.
  Result<bool> BreakGlassRead(Ctx& c, int64_t folder_id);
  // Which bulk_export threshold (files/individuals/bytes) this download would
  // pass for `user_id` (what == nullptr: none, or no bulk_export policy).
  struct BulkOver {
    const char* what = nullptr;
    int64_t window_seconds = 0;
    int64_t approval_minutes = 0;
  };
  Result<BulkOver> BulkExportOver(int64_t user_id, const ObjectVersion& v, uint64_t individuals);
  Status CheckBulkExport(Ctx& c, int64_t folder, const std::string& object_id,
                         const ObjectVersion& v, uint64_t individuals);
  Status GovernanceAdmin(Ctx& c, BodySource& body, ResponseSink& out);
  Status Approvals(Ctx& c, BodySource& body, ResponseSink& out);
  Status Maintenance(Ctx& c, BodySource& body, ResponseSink& out);  // service_maintenance.cc
  // Sends an alert (webhook, mail, syslog) if an Alerter is configured.
  void RaiseAlert(Ctx* c, const std::string& kind, json details);
  // ---- content features: trash, move, shares, resumable uploads, label
  // policies (service_trash.cc, service_share.cc, service_upload.cc,
  // service_policy.cc) ----
  Status RouteContentExtras(Ctx& c, BodySource& body, ResponseSink& out, bool* handled);
  Status ListTrash(Ctx& c, int64_t folder, ResponseSink& out);
  Status Restore(Ctx& c, int64_t folder, const std::string& name, BodySource& body,
                 ResponseSink& out);
  Status Move(Ctx& c, int64_t folder, const std::string& name, BodySource& body, ResponseSink& out);
  // Purges trash older than the retention and expired upload sessions; the
  // audit record (in `c`) is written before anything is deleted.
  Status PurgeExpired(Ctx& c, json* result);
  void RunJanitor();
  int64_t TrashRetentionMicros();
  Status CreateShare(Ctx& c, int64_t folder, const std::string& name, BodySource& body,
                     ResponseSink& out);
  Status ListFileShares(Ctx& c, int64_t folder, const std::string& name, ResponseSink& out);
  Status ListMyShares(Ctx& c, ResponseSink& out);
  Status RevokeShare(Ctx& c, int64_t id, ResponseSink& out);
  Status GetShared(Ctx& c, int64_t id, ResponseSink& out);
  Status LinkDownload(Ctx& c, const std::string& token, ResponseSink& out);
  Status StreamVersion(Ctx& c, const ObjectVersion& v, const json& label, ResponseSink& out);
  Status UploadCreate(Ctx& c, int64_t folder, BodySource& body, ResponseSink& out);
  Status UploadAppend(Ctx& c, int64_t folder, const std::string& id, BodySource& body,
                      ResponseSink& out);
  Status UploadStatus(Ctx& c, int64_t folder, const std::string& id, ResponseSink& out);
  Status UploadComplete(Ctx& c, int64_t folder, const std::string& id, BodySource& body,
                        ResponseSink& out);
  Status UploadAbort(Ctx& c, int64_t folder, const std::string& id, ResponseSink& out);
  Result<uint64_t> CleanUploads(bool all_orphans);
  // Encrypts, hashes and labels plaintext from `read` into a new version of
  // (folder, name): checks the hash and the label policy, audits, then makes
  // it visible. Shared by PUT and upload completion.
  Status StoreVersion(Ctx& c, int64_t folder, const std::string& name,
                      const std::function<Result<size_t>(char*, size_t)>& read,
                      std::optional<uint64_t> expected_size, const std::string& expected_sha,
                      ResponseSink& out);
  Status StoreVersionThen(Ctx& c, int64_t folder, const std::string& name,
                          const std::function<Result<size_t>(char*, size_t)>& read,
                          std::optional<uint64_t> expected_size, const std::string& expected_sha,
                          ResponseSink& out, const std::function<void()>& on_stored);
  Result<UploadSession> OwnUpload(Ctx& c, int64_t folder, const std::string& id);
  // Label policies (policy "labels").
  Status CheckLabelPolicy(Ctx& c, int64_t folder, const json& label);
  Status CheckExternalLinkLabel(const json& label);
  Result<json> PolicyObject(const std::string& key);
  Status ContentPolicy(Ctx& c, BodySource& body, ResponseSink& out);
  std::string UploadDir(const std::string& id) const {
    return opt.data_dir + "/uploads" + (id.empty() ? "" : "/" + id);
  }
  std::mutex uploads_mu;
  std::set<std::string> uploads_busy;            // sessions with a request in progress
  std::atomic<uint64_t> label_buffer_in_use{0};  // container bytes held by labelers

  Status Ok(Ctx& c, ResponseSink& out, const json& body, int status = 200) {
    RETURN_IF_ERROR(Allow(c));
    return SendJson(out, status, body, c.rec.event_id);
  }

  PeriodicTask janitor;  // last: stops before the members it uses
};

}  // namespace mamori::vault
