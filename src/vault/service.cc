#include "vault/service.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "detect/detect.h"
#include "vault/identity.h"

namespace mamori::vault {

using json = nlohmann::json;

namespace {

constexpr const char* kMetaKeyName = "wrapped_metadata_key";
constexpr const char* kMetaKeyAd = "mamori.metadata-key";
constexpr size_t kIoChunk = 64 * 1024;

std::string TokenHash(std::string_view token) {
  crypto::Sha256 h;
  h.Update("mamori.token.v1:");
  h.Update(token);
  return h.FinishHex();
}

std::string BlobAd(const std::string& blob_id) { return "blob:" + blob_id; }

int FromHexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view s) {
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

Status ValidateName(const std::string& name, const char* what) {
  if (name.empty() || name.size() > 255)
    return InvalidArgument(std::string(what) + " must be 1..255 bytes");
  if (name == "." || name == "..") return InvalidArgument(std::string(what) + " cannot be . or ..");
  for (unsigned char c : name)
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
      return InvalidArgument(std::string(what) +
                             " must not contain '/', '\\' or control characters");
  return Status::Ok();
}

Status ValidateUserName(const std::string& name) {
  if (name.empty() || name.size() > 64) return InvalidArgument("user names are 1..64 characters");
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
          c == '@'))
      return InvalidArgument("user names may contain letters, digits, '.', '_', '-' and '@'");
  return Status::Ok();
}

// Replaces invalid UTF-8 (from URLs, JSON strings) so records and responses
// always serialise; nlohmann::json throws on invalid UTF-8 otherwise.
json Sanitize(const json& j) {
  return json::parse(j.dump(-1, ' ', false, json::error_handler_t::replace), nullptr, false);
}
std::string SanitizeString(const std::string& s) {
  json j = Sanitize(json(s));
  return j.is_string() ? j.get<std::string>() : std::string();
}

std::string JsonStr(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

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
    std::string s = body.dump(-1, ' ', false, json::error_handler_t::replace);
    RETURN_IF_ERROR(out.Start(
        status, {{"content-type", "application/json"}, {"x-mamori-event", event_id}}, s.size()));
    RETURN_IF_ERROR(out.Write(s));
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
    if (c.user->role != Role::kMember)
      return PermissionDenied("the " + std::string(RoleName(c.user->role)) +
                              " role cannot read or write content (separation of duties)");
    if (c.user->pledge_micros == 0)
      return PermissionDenied(
          "accept the data-handling pledge (誓約書) first: `mamori pledge --accept`");
    auto folder = db->GetFolder(folder_id);
    if (!folder.ok()) return NotFound("no such folder, or no access to it");
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
  Status CheckBudget(Ctx& c, const ObjectVersion& v, uint64_t individuals);
  Result<uint64_t> RotateKeys();
  Result<std::string> IssueEnrolToken(int64_t user_id);
  Status LockDevice(int64_t device_id);

  Status Ok(Ctx& c, ResponseSink& out, const json& body, int status = 200) {
    RETURN_IF_ERROR(Allow(c));
    return SendJson(out, status, body, c.rec.event_id);
  }
};

// ----------------------------------------------------------------------------
Vault::~Vault() = default;

Result<InitResult> Vault::Initialize(const VaultOptions& o, const std::string& admin_name,
                                     const std::string& server_san) {
  RETURN_IF_ERROR(crypto::Init());
  RETURN_IF_ERROR(ValidateUserName(admin_name));
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path data = fs::absolute(o.data_dir, ec);
  fs::path keyring = fs::absolute(o.keyring_path, ec);
  auto rel = fs::relative(keyring, data, ec);
  if (!ec && !rel.empty() && rel.native().rfind("..", 0) != 0)
    return InvalidArgument("the keyring " + keyring.string() +
                           " must be outside the data directory " + data.string() +
                           " (a stolen data disk must not carry its keys)");
  if (fs::exists(data / "meta.db"))
    return AlreadyExists(data.string() + " already holds a vault; refusing to initialise again");
  fs::create_directories(data / "pki", ec);
  if (ec) return Unavailable("cannot create " + (data / "pki").string() + ": " + ec.message());
  ::chmod(data.c_str(), 0700);
  ::chmod((data / "pki").c_str(), 0700);
  fs::create_directories(keyring.parent_path(), ec);
  ::chmod(keyring.parent_path().c_str(), 0700);
  ASSIGN_OR_RETURN(crypto::Keyring ring, crypto::Keyring::Create(keyring.string()));

  ASSIGN_OR_RETURN(KeyAndCert ca, CreateCa("mamori vault CA", 3650));
  ASSIGN_OR_RETURN(KeyAndCert server, IssueServerCert(ca, "mamori vault", server_san, 825));
  RETURN_IF_ERROR(WriteFileAtomic((data / "pki/ca.key").string(), ca.key_pem, 0600));
  RETURN_IF_ERROR(WriteFileAtomic((data / "pki/ca.crt").string(), ca.cert_pem, 0644));
  RETURN_IF_ERROR(WriteFileAtomic((data / "pki/server.key").string(), server.key_pem, 0600));
  RETURN_IF_ERROR(WriteFileAtomic((data / "pki/server.crt").string(), server.cert_pem, 0644));

  ASSIGN_OR_RETURN(auto db, OpenSqliteMetaStore((data / "meta.db").string()));
  crypto::SecretKey mk = crypto::SecretKey::Random();
  ASSIGN_OR_RETURN(std::string wrapped, crypto::WrapKey(ring, mk, kMetaKeyAd));
  RETURN_IF_ERROR(db->PutMeta(kMetaKeyName, wrapped));

  User admin;
  admin.name = admin_name;
  admin.role = Role::kAdmin;
  admin.created_micros = o.clock->NowMicros();
  ASSIGN_OR_RETURN(int64_t admin_id, db->CreateUser(admin));
  std::string token = crypto::RandomToken(24);
  RETURN_IF_ERROR(db->CreateEnrolToken(
      {TokenHash(token), admin_id, o.clock->NowMicros() + o.enrol_token_ttl_micros, false}));
  InitResult r;
  r.admin_user = admin_name;
  r.enrol_token = token;
  r.ca_cert_path = (data / "pki/ca.crt").string();
  return r;
}

Result<std::string> Vault::IssueAdminToken(const VaultOptions& o, const std::string& admin_name) {
  RETURN_IF_ERROR(crypto::Init());
  // The keyring must open: only the key holder may issue tokens.
  RETURN_IF_ERROR(crypto::Keyring::Load(o.keyring_path).status());
  ASSIGN_OR_RETURN(auto db, OpenSqliteMetaStore(o.data_dir + "/meta.db"));
  auto u = db->GetUserByName(admin_name);
  if (!u.ok() || u->role != Role::kAdmin)
    return NotFound("no admin account named '" + admin_name + "'");
  std::string token = crypto::RandomToken(24);
  RETURN_IF_ERROR(db->CreateEnrolToken(
      {TokenHash(token), u->id, o.clock->NowMicros() + o.enrol_token_ttl_micros, false}));
  return token;
}

Result<std::unique_ptr<Vault>> Vault::Open(VaultOptions o, std::unique_ptr<AuditSink> audit) {
  RETURN_IF_ERROR(crypto::Init());
  if (!audit) return InvalidArgument("the vault needs an audit log");
  auto impl = std::make_unique<Impl>();
  std::string data = o.data_dir;
  ASSIGN_OR_RETURN(impl->ring, crypto::Keyring::Load(o.keyring_path));
  ASSIGN_OR_RETURN(impl->db, OpenSqliteMetaStore(data + "/meta.db"));
  ASSIGN_OR_RETURN(impl->blobs, OpenLocalBlobStore(data + "/blobs"));
  ASSIGN_OR_RETURN(uint64_t cleaned, impl->blobs->CleanupTemporary());
  (void)cleaned;
  ASSIGN_OR_RETURN(auto wrapped, impl->db->GetMeta(kMetaKeyName));
  if (!wrapped)
    return FailedPrecondition(data + " is not an initialised vault (mamori serve --init)");
  ASSIGN_OR_RETURN(impl->metadata_key, crypto::UnwrapKey(impl->ring, *wrapped, kMetaKeyAd));
  impl->names = std::make_unique<crypto::NameCipher>(impl->metadata_key);
  ASSIGN_OR_RETURN(impl->ca.key_pem, ReadFile(data + "/pki/ca.key", 1 << 20));
  ASSIGN_OR_RETURN(impl->ca.cert_pem, ReadFile(data + "/pki/ca.crt", 1 << 20));
  impl->opt = std::move(o);
  impl->audit = std::move(audit);
  std::unique_ptr<Vault> v(new Vault());
  v->pki_dir_ = data + "/pki";
  v->impl_ = std::move(impl);
  return v;
}

Result<uint64_t> Vault::RotateKeys() { return impl_->RotateKeys(); }

Result<uint64_t> Vault::Impl::RotateKeys() {
  std::unique_lock<std::shared_mutex> l(ring_mu);
  ASSIGN_OR_RETURN(ring, crypto::Keyring::Load(opt.keyring_path));
  uint64_t n = 0;
  ASSIGN_OR_RETURN(auto wrapped, db->GetMeta(kMetaKeyName));
  if (!wrapped) return FailedPrecondition("metadata key missing");
  if (crypto::WrappedKeyVersion(*wrapped) != ring.current_version()) {
    ASSIGN_OR_RETURN(std::string w, crypto::RewrapKey(ring, *wrapped, kMetaKeyAd));
    RETURN_IF_ERROR(db->PutMeta(kMetaKeyName, w));
    ++n;
  }
  ASSIGN_OR_RETURN(auto versions, db->AllVersions());
  for (const auto& v : versions) {
    if (crypto::WrappedKeyVersion(v.wrapped_key) == ring.current_version()) continue;
    ASSIGN_OR_RETURN(std::string w, crypto::RewrapKey(ring, v.wrapped_key, BlobAd(v.blob_id)));
    RETURN_IF_ERROR(db->SetWrappedKey(v.object_id, v.version, w));
    ++n;
  }
  return n;
}

Result<std::string> Vault::Impl::IssueEnrolToken(int64_t user_id) {
  std::string token = crypto::RandomToken(24);
  RETURN_IF_ERROR(
      db->CreateEnrolToken({TokenHash(token), user_id, Now() + opt.enrol_token_ttl_micros, false}));
  return token;
}

Status Vault::Impl::LockDevice(int64_t device_id) {
  ASSIGN_OR_RETURN(Device d, db->GetDevice(device_id));
  d.status = "locked";
  RETURN_IF_ERROR(db->UpdateDevice(d));
  return db->DeleteSessionsOfDevice(device_id).status();
}

void Vault::Handle(const HttpRequest& req, BodySource& body, ResponseSink& out) {
  Impl::Ctx c;
  c.req = &req;
  c.rec.component = "vault";
  c.rec.event_id = audit::NewEventId();
  c.rec.source_ip = req.source_ip;
  c.rec.time_micros = impl_->Now();
  Status st = impl_->Route(c, body, out);
  if (st.ok() && !c.audited) st = impl_->Allow(c);  // never leave a request unrecorded
  if (!st.ok()) {
    Status as = impl_->Audit(
        c,
        st.code() == StatusCode::kPermissionDenied || st.code() == StatusCode::kResourceExhausted
            ? "deny"
            : "error",
        std::string(StatusCodeName(st.code())) + ": " + st.message().substr(0, 200));
    if (!as.ok()) st = as;
    if (out.started()) return;  // mid-stream failure: the transport drops the connection
    json j = {{"error", st.message()},
              {"code", std::string(StatusCodeName(st.code()))},
              {"event_id", c.rec.event_id}};
    (void)Impl::SendJson(out, HttpStatusFor(st), j, c.rec.event_id);
  }
}

Status Vault::Impl::Route(Ctx& c, BodySource& body, ResponseSink& out) {
  const HttpRequest& r = *c.req;
  std::string_view target = r.target;
  std::string_view path = target, query;
  auto q = target.find('?');
  if (q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  if (path.empty() || path[0] != '/') return InvalidArgument("the request target must be a path");
  if (target.size() > 8192) return InvalidArgument("the URL is too long");
  size_t start = 1;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    ASSIGN_OR_RETURN(std::string seg, PercentDecode(path.substr(start, slash - start)));
    c.path.push_back(std::move(seg));
    start = slash + 1;
  }
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    auto eq = kv.find('=');
    ASSIGN_OR_RETURN(std::string k, PercentDecode(kv.substr(0, eq)));
    std::string v;
    if (eq != std::string_view::npos) {
      ASSIGN_OR_RETURN(v, PercentDecode(kv.substr(eq + 1)));
    }
    c.query[k] = v;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  const auto& p = c.path;
  const std::string& m = r.method;
  c.rec.action = "http";
  if (p.size() < 2 || p[0] != "v1") return NotFound("unknown API path; see docs/api.yaml");
  auto num = [](const std::string& s) -> Result<int64_t> {
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
      return InvalidArgument("'" + s.substr(0, 20) + "' is not an id");
    return std::stoll(s);
  };
  if (p[1] == "health" && p.size() == 2 && m == "GET") {
    c.rec.action = "health";
    return Health(c, out);
  }
  if (p[1] == "enroll") {
    c.rec.action = "enroll";
    if (p.size() == 2 && m == "POST") return Enroll(c, body, out);
    if (p.size() == 3 && m == "GET") {
      ASSIGN_OR_RETURN(int64_t id, num(p[2]));
      return EnrollStatus(c, id, out);
    }
  }
  if (p[1] == "login" && p.size() == 2 && m == "POST") {
    c.rec.action = "login";
    return Login(c, body, out);
  }
  if (p[1] == "logout" && p.size() == 2 && m == "POST") {
    c.rec.action = "logout";
    return Logout(c, out);
  }
  if (p[1] == "me" && p.size() == 2 && m == "GET") {
    c.rec.action = "me";
    return Me(c, out);
  }
  if (p[1] == "pledge" && p.size() == 2 && m == "POST") {
    c.rec.action = "pledge";
    return Pledge(c, body, out);
  }
  if (p[1] == "devices" && p.size() == 4 && p[3] == "lock" && m == "POST") {
    c.rec.action = "device.lock";
    ASSIGN_OR_RETURN(int64_t id, num(p[2]));
    return LockOwnDevice(c, id, out);
  }
  if (p[1] == "folders") {
    if (p.size() == 2 && m == "GET") {
      c.rec.action = "folders.list";
      return ListFolders(c, out);
    }
    if (p.size() >= 4 && p[3] == "files") {
      ASSIGN_OR_RETURN(int64_t folder, num(p[2]));
      c.rec.extra["folder"] = folder;
      if (p.size() == 4 && m == "GET") {
        c.rec.action = "list";
        return ListFiles(c, folder, out);
      }
      if (p.size() >= 5) {
        RETURN_IF_ERROR(ValidateName(p[4], "a file name"));
        if (p.size() == 5 && m == "PUT") {
          c.rec.action = "put";
          return Put(c, folder, p[4], body, out);
        }
        if (p.size() == 5 && m == "GET") {
          c.rec.action = "get";
          return Get(c, folder, p[4], out);
        }
        if (p.size() == 5 && m == "DELETE") {
          c.rec.action = "delete";
          return Delete(c, folder, p[4], out);
        }
        if (p.size() == 6 && p[5] == "versions" && m == "GET") {
          c.rec.action = "versions";
          return Versions(c, folder, p[4], out);
        }
      }
    }
  }
  if (p[1] == "admin") return Admin(c, body, out);
  return NotFound("unknown API path or method; see docs/api.yaml");
}

Status Vault::Impl::Health(Ctx& c, ResponseSink& out) {
  // No personal data, no authentication: load balancers and maintenance.
  return Ok(c, out, {{"status", "ok"}, {"schema", db->schema_version()}});
}

Status Vault::Impl::Enroll(Ctx& c, BodySource& body, ResponseSink& out) {
  ASSIGN_OR_RETURN(json j, ReadJson(c, body));
  std::string name = JsonStr(j, "user"), device_name = JsonStr(j, "device_name"),
              csr = JsonStr(j, "csr"), token = JsonStr(j, "token"),
              password = JsonStr(j, "password"), totp = JsonStr(j, "totp");
  RETURN_IF_ERROR(ValidateUserName(name));
  RETURN_IF_ERROR(ValidateName(device_name, "the device name"));
  if (csr.empty()) return InvalidArgument("the enrolment needs a CSR (csr)");
  auto found = db->GetUserByName(name);
  if (!found.ok()) return PermissionDenied("enrolment refused: unknown user or bad credentials");
  User u = *found;
  c.user = u;
  RETURN_IF_ERROR(CheckUserNetwork(c, u));
  json resp;
  bool approved = false;
  if (!token.empty()) {
    auto t = db->ConsumeEnrolToken(TokenHash(token), Now());
    if (!t.ok() || t->user_id != u.id)
      return PermissionDenied(
          "enrolment refused: the token is unknown, used, expired or for another user");
    approved = true;
    if (u.password_hash.empty()) {
      RETURN_IF_ERROR(CheckPasswordPolicy(password, u.name));
      ASSIGN_OR_RETURN(u.password_hash, HashPassword(password));
      std::string secret = NewTotpSecret();
      u.totp_sealed = names->Seal(secret, "totp:" + std::to_string(u.id));
      u.totp_last_step = 0;
      RETURN_IF_ERROR(db->UpdateUser(u));
      resp["totp_secret"] = Base32Encode(secret);
      resp["totp_uri"] = TotpUri("mamori", u.name, secret);
    }
  } else {
    if (u.password_hash.empty())
      return PermissionDenied(
          "this account has not been set up; enrol with the token from an admin");
    RETURN_IF_ERROR(CheckCredentials(c, u, password, totp));
  }
  Device d;
  d.user_id = u.id;
  d.name = device_name;
  d.status = "pending";
  d.csr_pem = csr;
  std::string poll = crypto::RandomToken(24);
  d.poll_secret_hash = TokenHash(poll);
  d.created_micros = Now();
  // Validate the CSR now, so a bad one is refused before an admin sees it.
  {
    auto probe = SignDeviceCsr(ca, csr, device_name, 0, 1);
    if (!probe.ok()) return probe.status();
  }
  ASSIGN_OR_RETURN(d.id, db->CreateDevice(d));
  c.device = d;
  if (approved) {
    ASSIGN_OR_RETURN(d.cert_pem, SignDeviceCsr(ca, csr, device_name, d.id, opt.device_cert_days));
    ASSIGN_OR_RETURN(d.fingerprint, CertFingerprint(d.cert_pem));
    d.status = "active";
    RETURN_IF_ERROR(db->UpdateDevice(d));
    resp["certificate"] = d.cert_pem;
  }
  resp["device_id"] = d.id;
  resp["status"] = d.status;
  resp["poll_secret"] = poll;
  c.rec.extra["device_status"] = d.status;
  return Ok(c, out, resp, 201);
}

Status Vault::Impl::EnrollStatus(Ctx& c, int64_t id, ResponseSink& out) {
  auto d = db->GetDevice(id);
  std::string secret = c.query.count("secret") ? c.query["secret"] : "";
  if (!d.ok() || !crypto::ConstantTimeEquals(TokenHash(secret), d->poll_secret_hash))
    return NotFound("no such enrolment");
  json r = {{"device_id", d->id}, {"status", d->status}};
  if (d->status == "active") r["certificate"] = d->cert_pem;
  return Ok(c, out, r);
}

Status Vault::Impl::Login(Ctx& c, BodySource& body, ResponseSink& out) {
  RETURN_IF_ERROR(RequireDevice(c));
  ASSIGN_OR_RETURN(json j, ReadJson(c, body));
  std::string name = JsonStr(j, "user");
  if (name != c.user->name)
    return PermissionDenied("login refused: this device is enrolled to another user");
  User u = *c.user;
  RETURN_IF_ERROR(CheckCredentials(c, u, JsonStr(j, "password"), JsonStr(j, "totp")));
  c.user = u;
  std::string token = crypto::RandomToken(32);
  Session s{TokenHash(token), u.id, c.device->id, Now(), Now() + opt.session_ttl_micros,
            c.req->source_ip};
  RETURN_IF_ERROR(Allow(c));  // fail closed before the session exists
  RETURN_IF_ERROR(db->CreateSession(s));
  json r = {{"token", token},
            {"expires_micros", s.expires_micros},
            {"role", std::string(RoleName(u.role))},
            {"pledge_required", u.pledge_micros == 0 && u.role == Role::kMember},
            {"pledge_version", opt.pledge_version}};
  return SendJson(out, 200, r, c.rec.event_id);
}

Status Vault::Impl::Logout(Ctx& c, ResponseSink& out) {
  RETURN_IF_ERROR(RequireSession(c));
  RETURN_IF_ERROR(db->DeleteSession(c.session->token_hash));
  return Ok(c, out, {{"status", "logged out"}});
}

Status Vault::Impl::Me(Ctx& c, ResponseSink& out) {
  RETURN_IF_ERROR(RequireSession(c));
  return Ok(c, out,
            {{"user", c.user->name},
             {"role", std::string(RoleName(c.user->role))},
             {"device_id", c.device->id},
             {"pledge_accepted_micros", c.user->pledge_micros},
             {"session_expires_micros", c.session->expires_micros}});
}

Status Vault::Impl::Pledge(Ctx& c, BodySource& body, ResponseSink& out) {
  RETURN_IF_ERROR(RequireSession(c));
  ASSIGN_OR_RETURN(json j, ReadJson(c, body));
  if (!j.contains("accept") || j["accept"] != true)
    return InvalidArgument("send {\"accept\": true} to accept the data-handling pledge");
  if (JsonStr(j, "version") != opt.pledge_version)
    return InvalidArgument("the pledge version is " + opt.pledge_version +
                           "; read it and accept that version");
  User u = *c.user;
  u.pledge_micros = Now();
  c.rec.extra["pledge_version"] = opt.pledge_version;
  RETURN_IF_ERROR(Allow(c));
  RETURN_IF_ERROR(db->UpdateUser(u));
  return SendJson(out, 200, {{"accepted_micros", u.pledge_micros}}, c.rec.event_id);
}

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
    ASSIGN_OR_RETURN(std::string name, names->Open(f.name_sealed, "folder:" + f.name_tag));
    arr.push_back({{"id", f.id}, {"name", name}, {"perms", perms}});
  }
  return Ok(c, out, {{"folders", arr}});
}

Status Vault::Impl::ListFiles(Ctx& c, int64_t folder, ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'r'));
  bool trash = c.query.count("trash") && c.query["trash"] == "1";
  ASSIGN_OR_RETURN(auto objs, db->ListObjects(folder, trash));
  json arr = json::array();
  for (const auto& o : objs) {
    ASSIGN_OR_RETURN(std::string name, names->Open(o.name_sealed, "obj:" + o.id));
    ASSIGN_OR_RETURN(ObjectVersion v, db->GetVersion(o.id, o.current_version));
    arr.push_back({{"name", name},
                   {"id", o.id},
                   {"version", v.version},
                   {"size", v.size},
                   {"sha256", v.sha256},
                   {"modified_micros", v.created_micros},
                   {"label", json::parse(v.label_json, nullptr, false)}});
  }
  return Ok(c, out, {{"files", arr}});
}

Status Vault::Impl::Put(Ctx& c, int64_t folder, const std::string& name, BodySource& body,
                        ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  if (c.req->content_length && *c.req->content_length > opt.max_upload_bytes)
    return ResourceExhausted("the file is larger than the upload limit of " +
                             std::to_string(opt.max_upload_bytes) + " bytes");
  std::string expected = c.req->header("x-mamori-sha256");
  std::transform(expected.begin(), expected.end(), expected.begin(), ::tolower);
  std::string name_tag = names->IndexTag("f:" + std::to_string(folder), name);
  c.rec.object = name_tag.substr(0, 32);
  std::string blob_id = crypto::ToHex(crypto::RandomBytes(16));
  std::string object_id = crypto::ToHex(crypto::RandomBytes(16));
  crypto::SecretKey dek = crypto::SecretKey::Random();
  ASSIGN_OR_RETURN(auto enc, crypto::StreamEncryptor::Create(dek, BlobAd(blob_id)));
  ASSIGN_OR_RETURN(auto writer, blobs->Create(blob_id));

  std::unique_ptr<detect::Scanner> scanner;
  std::unique_ptr<detect::PersonCounter> persons;
  json label = {{"scanned", false}};
  if (opt.rules) {
    detect::ScanOptions so;
    so.max_findings = 1'000'000;
    auto s = detect::Scanner::Create(opt.rules, opt.label_hash_key, so);
    if (s.ok()) {
      scanner = std::move(s).value();
      persons = std::make_unique<detect::PersonCounter>(opt.rules);
    }
  }
  std::map<std::string, uint64_t> type_counts;
  int max_conf = -1;
  auto take = [&]() {
    auto f = scanner->TakeFindings();
    for (const auto& x : f) {
      type_counts[x.type]++;
      max_conf = std::max(max_conf, static_cast<int>(x.confidence));
    }
    persons->Add("body", f);
  };
  bool scan_ok = scanner != nullptr;
  std::string scan_error;

  crypto::Sha256 sha;
  uint64_t total = 0;
  std::string buf(kIoChunk, '\0'), cipher;
  cipher.reserve(kIoChunk + 64);
  while (true) {
    ASSIGN_OR_RETURN(size_t n, body.Read(buf.data(), buf.size()));
    if (n == 0) break;
    total += n;
    if (total > opt.max_upload_bytes)
      return ResourceExhausted("the upload exceeded the limit of " +
                               std::to_string(opt.max_upload_bytes) + " bytes");
    std::string_view chunk(buf.data(), n);
    sha.Update(chunk);
    if (scan_ok) {
      Status s = scanner->Feed(chunk);
      if (!s.ok()) {
        scan_ok = false;
        scan_error = std::string(StatusCodeName(s.code()));
      } else {
        take();
      }
    }
    cipher.clear();
    RETURN_IF_ERROR(enc->Write(chunk, &cipher));
    RETURN_IF_ERROR(writer->Write(cipher));
  }
  if (c.req->content_length && total != *c.req->content_length)
    return InvalidArgument("the body ended after " + std::to_string(total) + " of " +
                           std::to_string(*c.req->content_length) + " bytes");
  cipher.clear();
  RETURN_IF_ERROR(enc->Finish(&cipher));
  RETURN_IF_ERROR(writer->Write(cipher));
  std::string digest = sha.FinishHex();
  if (!expected.empty() && expected != digest)
    return InvalidArgument(
        "content hash mismatch: the server computed a different SHA-256; "
        "nothing was stored");
  if (scan_ok) {
    Status s = scanner->Finish();
    if (s.ok()) {
      take();
      json types = json::object();
      for (auto& [t, n] : type_counts) types[t] = n;
      label = {{"scanned", true},
               {"types", types},
               {"individuals", persons->Estimate()},
               {"max_confidence", max_conf < 0 ? "none"
                                               : std::string(detect::ConfidenceName(
                                                     static_cast<detect::Confidence>(max_conf)))}};
    } else {
      scan_error = std::string(StatusCodeName(s.code()));
    }
  }
  if (!scan_error.empty()) label = {{"scanned", false}, {"incomplete", scan_error}};
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
  c.rec.bytes = total;
  c.rec.labels = label;
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
  return SendJson(out, 201,
                  {{"id", added->object_id},
                   {"version", added->version},
                   {"size", total},
                   {"sha256", digest},
                   {"label", label}},
                  c.rec.event_id);
}

Status Vault::Impl::CheckBudget(Ctx& c, const ObjectVersion& v, uint64_t individuals) {
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
    const json& lim = p[w.key];
    ASSIGN_OR_RETURN(
        auto used,
        db->UsageSince(Now() - w.micros,
                       w.per_device ? std::nullopt : std::optional<int64_t>(c.user->id),
                       w.per_device ? std::optional<int64_t>(c.device->id) : std::nullopt));
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
      bool lock = p.value("lock_device", false);
      if (lock) {
        RETURN_IF_ERROR(LockDevice(c.device->id));
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
  RETURN_IF_ERROR(db->RecordDownload(Now(), c.user->id, c.device->id, v.size, individuals));
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

Status Vault::Impl::Delete(Ctx& c, int64_t folder, const std::string& name, ResponseSink& out) {
  RETURN_IF_ERROR(RequireContent(c, folder, 'w'));
  std::string name_tag = names->IndexTag("f:" + std::to_string(folder), name);
  auto o = db->FindObject(folder, name_tag);
  if (!o.ok() || o->deleted_micros != 0) return NotFound("no such file in this folder");
  c.rec.object = o->id;
  RETURN_IF_ERROR(Allow(c));
  RETURN_IF_ERROR(db->TrashObject(o->id, Now()));
  return SendJson(out, 200,
                  {{"status", "moved to the trash"},
                   {"purge_after_micros", Now() + opt.trash_retention_micros}},
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

Status Vault::Impl::LockOwnDevice(Ctx& c, int64_t id, ResponseSink& out) {
  RETURN_IF_ERROR(RequireSession(c));
  ASSIGN_OR_RETURN(Device d, db->GetDevice(id));
  if (d.user_id != c.user->id && c.user->role != Role::kAdmin)
    return PermissionDenied("you can only lock your own devices");
  c.rec.extra["target_device"] = id;
  RETURN_IF_ERROR(Allow(c));
  RETURN_IF_ERROR(LockDevice(id));
  return SendJson(out, 200, {{"device_id", id}, {"status", "locked"}}, c.rec.event_id);
}

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
    ASSIGN_OR_RETURN(u.role, ParseRole(j.value("role", std::string("member"))));
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
