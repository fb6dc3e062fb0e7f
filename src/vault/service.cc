#include "vault/service.h"

#include "vault/service_impl.h"

namespace mamori::vault {

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
  ASSIGN_OR_RETURN(uint64_t stale, impl->CleanUploads(true));
  (void)stale;
  Vault::Impl* raw = impl.get();
  impl->janitor.Start(impl->opt.janitor_interval_seconds, [raw] { raw->RunJanitor(); });
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
  // Unfinished resumable uploads too: their segment keys must open after the
  // old KEK is retired, or the upload could never complete.
  ASSIGN_OR_RETURN(auto uploads, db->UploadKeys());
  for (const auto& [id, wrapped_key] : uploads) {
    if (crypto::WrappedKeyVersion(wrapped_key) == ring.current_version()) continue;
    ASSIGN_OR_RETURN(std::string w, crypto::RewrapKey(ring, wrapped_key, UploadAd(id)));
    RETURN_IF_ERROR(db->SetUploadWrappedKey(id, w));
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
  // Device names can hold a person's name: the alert carries the id only.
  RaiseAlert(nullptr, "vault.device_locked", {{"device", "d" + std::to_string(device_id)}});
  return db->DeleteSessionsOfDevice(device_id).status();
}

void Vault::Handle(const HttpRequest& req, BodySource& body, ResponseSink& out) {
  Impl::Ctx c;
  c.req = &req;
  c.rec.component = "vault";
  c.rec.event_id = audit::NewEventId();
  c.rec.source_ip = req.source_ip;
  c.rec.time_micros = impl_->Now();
  Status st;
  try {
    st = impl_->Route(c, body, out);
  } catch (const std::exception& e) {
    // A handler bug (e.g. a JSON type error) must not end the server: the
    // request fails closed and is audited.
    st = Internal(std::string("internal error: ") + e.what());
  }
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
    if (c.rec.extra.is_object() && c.rec.extra.contains("approval_id"))
      j["approval_id"] = c.rec.extra["approval_id"];  // bulk export: what to approve
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
  if (p[1] == "admin" && p.size() >= 3 &&
      (p[2] == "network" || p[2] == "orgs" || p[2] == "break-glass" ||
       (p[2] == "policies" && p.size() == 4 && p[3] == "bulk_export")))
    return GovernanceAdmin(c, body, out);
  {
    bool handled = false;
    Status s = RouteContentExtras(c, body, out, &handled);
    if (handled) return s;
  }
  if (p[1] == "admin") return Admin(c, body, out);
  if (p[1] == "approvals") return Approvals(c, body, out);
  if (p[1] == "audit" && p.size() == 2 && m == "GET") {
    c.rec.action = "audit.read";
    return AuditRead(c, out);
  }
  if (p[1] == "maintenance") return Maintenance(c, body, out);
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

}  // namespace mamori::vault
