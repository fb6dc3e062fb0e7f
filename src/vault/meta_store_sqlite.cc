#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "vault/meta_store.h"

namespace mamori::vault {

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kMember:
      return "member";
    case Role::kAuditor:
      return "auditor";
    case Role::kAdmin:
      return "admin";
    case Role::kMaintenance:
      return "maintenance";
  }
  return "member";
}

Result<Role> ParseRole(std::string_view s) {
  if (s == "member") return Role::kMember;
  if (s == "auditor") return Role::kAuditor;
  if (s == "admin") return Role::kAdmin;
  if (s == "maintenance") return Role::kMaintenance;
  return InvalidArgument("unknown role '" + std::string(s) +
                         "'; use member, auditor, admin or maintenance");
}

namespace {

// Each entry moves the schema from version i to i+1. Never edit a shipped entry.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE users(
  id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, role TEXT NOT NULL,
  password_hash TEXT NOT NULL DEFAULT '', totp_sealed BLOB NOT NULL DEFAULT x'',
  totp_last_step INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'active', failed_logins INTEGER NOT NULL DEFAULT 0,
  locked_until INTEGER NOT NULL DEFAULT 0, pledge_micros INTEGER NOT NULL DEFAULT 0,
  allowed_cidrs TEXT NOT NULL DEFAULT '', created_micros INTEGER NOT NULL);
CREATE TABLE groups_(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE group_members(group_id INTEGER NOT NULL REFERENCES groups_(id),
  user_id INTEGER NOT NULL REFERENCES users(id), PRIMARY KEY(group_id, user_id));
CREATE TABLE devices(
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), name TEXT NOT NULL,
  status TEXT NOT NULL, csr_pem TEXT NOT NULL, cert_pem TEXT NOT NULL DEFAULT '',
  fingerprint TEXT, poll_secret_hash TEXT NOT NULL, created_micros INTEGER NOT NULL,
  last_seen_micros INTEGER NOT NULL DEFAULT 0, last_ip TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX devices_fp ON devices(fingerprint) WHERE fingerprint IS NOT NULL;
CREATE TABLE enrol_tokens(token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL,
  expires_micros INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE sessions(token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL,
  device_id INTEGER NOT NULL, created_micros INTEGER NOT NULL, expires_micros INTEGER NOT NULL,
  source_ip TEXT NOT NULL);
CREATE INDEX sessions_device ON sessions(device_id);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE folders(id INTEGER PRIMARY KEY, name_sealed BLOB NOT NULL,
  name_tag TEXT UNIQUE NOT NULL, created_micros INTEGER NOT NULL);
CREATE TABLE folder_acl(folder_id INTEGER NOT NULL REFERENCES folders(id),
  group_id INTEGER NOT NULL REFERENCES groups_(id), perms TEXT NOT NULL,
  PRIMARY KEY(folder_id, group_id));
CREATE TABLE objects(id TEXT PRIMARY KEY, folder_id INTEGER NOT NULL REFERENCES folders(id),
  name_sealed BLOB NOT NULL, name_tag TEXT NOT NULL, current_version INTEGER NOT NULL,
  deleted_micros INTEGER NOT NULL DEFAULT 0, UNIQUE(folder_id, name_tag));
CREATE TABLE versions(object_id TEXT NOT NULL REFERENCES objects(id), version INTEGER NOT NULL,
  blob_id TEXT NOT NULL, wrapped_key BLOB NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
  label TEXT NOT NULL DEFAULT '{}', created_micros INTEGER NOT NULL, created_by INTEGER NOT NULL,
  PRIMARY KEY(object_id, version));
CREATE TABLE policies(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE downloads(id INTEGER PRIMARY KEY, time_micros INTEGER NOT NULL,
  user_id INTEGER NOT NULL, device_id INTEGER NOT NULL, bytes INTEGER NOT NULL,
  individuals INTEGER NOT NULL);
CREATE INDEX downloads_time ON downloads(time_micros);
)sql",
    // Governance: network rules per group and role, contractors, approvals.
    R"sql(
CREATE TABLE network_rules(kind TEXT NOT NULL, name TEXT NOT NULL, cidrs TEXT NOT NULL,
  PRIMARY KEY(kind, name));
CREATE TABLE orgs(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, scope TEXT NOT NULL,
  expires_micros INTEGER NOT NULL, created_micros INTEGER NOT NULL);
CREATE TABLE org_members(user_id INTEGER PRIMARY KEY REFERENCES users(id),
  org_id INTEGER NOT NULL REFERENCES orgs(id));
CREATE TABLE approvals(id INTEGER PRIMARY KEY, kind TEXT NOT NULL,
  requester_id INTEGER NOT NULL REFERENCES users(id), folder_id INTEGER NOT NULL,
  object_id TEXT NOT NULL DEFAULT '', version INTEGER NOT NULL DEFAULT 0,
  reason_sealed BLOB NOT NULL DEFAULT x'', status TEXT NOT NULL, created_micros INTEGER NOT NULL,
  duration_micros INTEGER NOT NULL, approver_id INTEGER NOT NULL DEFAULT 0,
  decided_micros INTEGER NOT NULL DEFAULT 0, expires_micros INTEGER NOT NULL DEFAULT 0);
CREATE INDEX approvals_requester ON approvals(requester_id, kind, status);
)sql",
    // 3: shares and links, resumable upload sessions (vault content features).
    R"sql(
CREATE TABLE shares(id INTEGER PRIMARY KEY, object_id TEXT NOT NULL, kind TEXT NOT NULL,
  group_id INTEGER NOT NULL DEFAULT 0, user_id INTEGER NOT NULL DEFAULT 0, token_hash TEXT UNIQUE,
  password_hash TEXT NOT NULL DEFAULT '', expires_micros INTEGER NOT NULL DEFAULT 0,
  max_downloads INTEGER NOT NULL DEFAULT 0, downloads INTEGER NOT NULL DEFAULT 0,
  failed_passwords INTEGER NOT NULL DEFAULT 0, created_by INTEGER NOT NULL,
  created_micros INTEGER NOT NULL, revoked_micros INTEGER NOT NULL DEFAULT 0);
CREATE INDEX shares_object ON shares(object_id);
CREATE TABLE uploads(id TEXT PRIMARY KEY, folder_id INTEGER NOT NULL, name_sealed BLOB NOT NULL,
  name_tag TEXT NOT NULL, user_id INTEGER NOT NULL, device_id INTEGER NOT NULL,
  wrapped_key BLOB NOT NULL, size INTEGER NOT NULL, committed INTEGER NOT NULL DEFAULT 0,
  created_micros INTEGER NOT NULL, expires_micros INTEGER NOT NULL);
)sql",
};
constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

// Prepared statements of one connection, kept for reuse: preparing (parsing
// and planning the SQL) cost more than running these small queries, and
// every vault request runs several. Used under the store's mutex only.
class StmtCache {
 public:
  explicit StmtCache(sqlite3* db) : db_(db) {}
  ~StmtCache() { Clear(); }
  void Clear() {
    for (auto& [sql, e] : cache_) sqlite3_finalize(e.st);
    cache_.clear();
  }
  sqlite3* db() const { return db_; }
  // A reset statement for `sql`, or nullptr with *rc set. *cached says
  // whether it must be given back with Release (else finalized).
  sqlite3_stmt* Acquire(const char* sql, int* rc, bool* cached) {
    auto it = cache_.find(sql);
    if (it != cache_.end() && !it->second.in_use) {
      it->second.in_use = true;
      *rc = SQLITE_OK;
      *cached = true;
      return it->second.st;
    }
    sqlite3_stmt* st = nullptr;
    *rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr);
    if (*rc != SQLITE_OK) {
      sqlite3_finalize(st);
      return nullptr;
    }
    // The same SQL already in use (a nested query) gets a one-off statement.
    *cached = it == cache_.end() && cache_.size() < kMaxStatements;
    if (*cached) cache_.emplace(sql, Entry{st, true});
    return st;
  }
  void Release(sqlite3_stmt* st, const char* sql, bool cached) {
    if (!cached) {
      sqlite3_finalize(st);
      return;
    }
    // Reset ends the statement's read transaction; bindings are cleared so
    // no value (a token hash) stays referenced in the cache.
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    cache_[sql].in_use = false;
  }

 private:
  static constexpr size_t kMaxStatements = 256;  // the store has ~60 distinct statements
  struct Entry {
    sqlite3_stmt* st = nullptr;
    bool in_use = false;
  };
  sqlite3* db_;
  std::unordered_map<std::string, Entry> cache_;
};

class Stmt {
 public:
  Stmt(StmtCache& cache, const char* sql) : Stmt(cache, std::string(sql)) {}
  Stmt(StmtCache& cache, std::string sql) : cache_(cache), db_(cache.db()), sql_(std::move(sql)) {
    st_ = cache_.Acquire(sql_.c_str(), &rc_, &cached_);
  }
  ~Stmt() {
    if (st_) cache_.Release(st_, sql_.c_str(), cached_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Status prepared() const {
    if (rc_ != SQLITE_OK) return Internal(std::string("sqlite prepare: ") + sqlite3_errmsg(db_));
    return Status::Ok();
  }
  Stmt& Bind(int64_t v) {
    sqlite3_bind_int64(st_, ++idx_, v);
    return *this;
  }
  Stmt& Bind(const std::string& v) {
    sqlite3_bind_text(st_, ++idx_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(const std::string& v) {
    sqlite3_bind_blob(st_, ++idx_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindNull() {
    sqlite3_bind_null(st_, ++idx_);
    return *this;
  }
  // SQLITE_ROW -> true, SQLITE_DONE -> false, else error.
  Result<bool> Step() {
    RETURN_IF_ERROR(prepared());
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if (rc == SQLITE_CONSTRAINT)
      return AlreadyExists(std::string("constraint: ") + sqlite3_errmsg(db_));
    return Unavailable(std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  Status Exec() {
    auto r = Step();
    return r.ok() ? Status::Ok() : r.status();
  }
  int64_t Int(int col) { return sqlite3_column_int64(st_, col); }
  std::string Text(int col) {
    const void* p = sqlite3_column_blob(st_, col);
    int n = sqlite3_column_bytes(st_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }
  bool IsNull(int col) { return sqlite3_column_type(st_, col) == SQLITE_NULL; }

 private:
  StmtCache& cache_;
  sqlite3* db_;
  std::string sql_;
  sqlite3_stmt* st_ = nullptr;
  int rc_ = SQLITE_OK;
  bool cached_ = false;
  int idx_ = 0;
};

constexpr const char* kUserCols =
    "id, name, role, password_hash, totp_sealed, status, failed_logins, locked_until, "
    "pledge_micros, allowed_cidrs, created_micros, totp_last_step";
constexpr const char* kDeviceCols =
    "id, user_id, name, status, csr_pem, cert_pem, fingerprint, poll_secret_hash, "
    "created_micros, last_seen_micros, last_ip";
constexpr const char* kVersionCols =
    "object_id, version, blob_id, wrapped_key, size, sha256, label, created_micros, created_by";
constexpr const char* kObjectCols =
    "id, folder_id, name_sealed, name_tag, current_version, deleted_micros";

constexpr const char* kShareCols =
    "id, object_id, kind, group_id, user_id, COALESCE(token_hash,''), password_hash, "
    "expires_micros, max_downloads, downloads, failed_passwords, created_by, created_micros, "
    "revoked_micros";

Share ReadShare(Stmt& s) {
  Share x;
  x.id = s.Int(0);
  x.object_id = s.Text(1);
  x.kind = s.Text(2);
  x.group_id = s.Int(3);
  x.user_id = s.Int(4);
  x.token_hash = s.Text(5);
  x.password_hash = s.Text(6);
  x.expires_micros = s.Int(7);
  x.max_downloads = s.Int(8);
  x.downloads = s.Int(9);
  x.failed_passwords = s.Int(10);
  x.created_by = s.Int(11);
  x.created_micros = s.Int(12);
  x.revoked_micros = s.Int(13);
  return x;
}

User ReadUser(Stmt& s) {
  User u;
  u.id = s.Int(0);
  u.name = s.Text(1);
  auto r = ParseRole(s.Text(2));
  u.role = r.ok() ? *r : Role::kMember;
  u.password_hash = s.Text(3);
  u.totp_sealed = s.Text(4);
  u.status = s.Text(5);
  u.failed_logins = s.Int(6);
  u.locked_until_micros = s.Int(7);
  u.pledge_micros = s.Int(8);
  u.allowed_cidrs = s.Text(9);
  u.created_micros = s.Int(10);
  u.totp_last_step = s.Int(11);
  return u;
}
Device ReadDevice(Stmt& s) {
  Device d;
  d.id = s.Int(0);
  d.user_id = s.Int(1);
  d.name = s.Text(2);
  d.status = s.Text(3);
  d.csr_pem = s.Text(4);
  d.cert_pem = s.Text(5);
  d.fingerprint = s.IsNull(6) ? "" : s.Text(6);
  d.poll_secret_hash = s.Text(7);
  d.created_micros = s.Int(8);
  d.last_seen_micros = s.Int(9);
  d.last_ip = s.Text(10);
  return d;
}
ObjectVersion ReadVersion(Stmt& s) {
  ObjectVersion v;
  v.object_id = s.Text(0);
  v.version = s.Int(1);
  v.blob_id = s.Text(2);
  v.wrapped_key = s.Text(3);
  v.size = static_cast<uint64_t>(s.Int(4));
  v.sha256 = s.Text(5);
  v.label_json = s.Text(6);
  v.created_micros = s.Int(7);
  v.created_by = s.Int(8);
  return v;
}
Object ReadObject(Stmt& s) {
  Object o;
  o.id = s.Text(0);
  o.folder_id = s.Int(1);
  o.name_sealed = s.Text(2);
  o.name_tag = s.Text(3);
  o.current_version = s.Int(4);
  o.deleted_micros = s.Int(5);
  return o;
}

// What every authenticated request looks up (device by certificate, user,
// session, folder, group memberships, ACLs), kept in memory. The vault
// process is the only writer of its database while it runs, and every write
// to these tables goes through this store, which clears the cache under the
// same mutex before it writes: a lock, revocation, logout, membership or ACL
// change applies to the very next request. Only found rows are cached.
struct AuthCache {
  static constexpr size_t kMaxEntries = 4096;  // per map; a full map is emptied
  std::unordered_map<std::string, Device> device_by_fp;
  std::unordered_map<int64_t, User> user_by_id;
  std::unordered_map<std::string, Session> session_by_hash;
  std::unordered_map<int64_t, Folder> folder_by_id;
  std::unordered_map<int64_t, std::vector<int64_t>> groups_of;
  std::unordered_map<int64_t, std::vector<Acl>> acls_of;
  void Clear() {
    device_by_fp.clear();
    user_by_id.clear();
    session_by_hash.clear();
    folder_by_id.clear();
    groups_of.clear();
    acls_of.clear();
  }
  template <typename Map, typename K, typename V>
  static void Put(Map& m, const K& k, const V& v) {
    if (m.size() >= kMaxEntries) m.clear();
    m.insert_or_assign(k, v);
  }
};

class SqliteMetaStore : public MetaStore {
 public:
  ~SqliteMetaStore() override {
    stmts_.reset();  // finalize before close
    if (db_) sqlite3_close(db_);
  }

  Status Open(const std::string& path) {
    int rc = sqlite3_open_v2(path.c_str(), &db_,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             nullptr);
    if (rc != SQLITE_OK)
      return Unavailable("cannot open metadata database " + path + ": " +
                         (db_ ? sqlite3_errmsg(db_) : "out of memory"));
    ::chmod(path.c_str(), 0600);
    stmts_ = std::make_unique<StmtCache>(db_);
    sqlite3_busy_timeout(db_, 5000);
    RETURN_IF_ERROR(ExecSql("PRAGMA journal_mode=WAL"));
    RETURN_IF_ERROR(ExecSql("PRAGMA synchronous=FULL"));
    RETURN_IF_ERROR(ExecSql("PRAGMA foreign_keys=ON"));
    return Migrate(path);
  }

  int schema_version() override {
    std::lock_guard<std::mutex> l(mu_);
    return UserVersion();
  }

  Result<std::optional<std::string>> GetMeta(const std::string& key) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT value FROM meta WHERE key=?");
    s.Bind(key);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(s.Text(0));
  }
  Status PutMeta(const std::string& key, const std::string& value) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET "
           "value=excluded.value");
    s.Bind(key).BindBlob(value);
    return s.Exec();
  }

  Result<int64_t> CreateUser(const User& u) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_,
           "INSERT INTO users(name, role, password_hash, totp_sealed, status, allowed_cidrs, "
           "created_micros) VALUES(?,?,?,?,?,?,?)");
    s.Bind(u.name)
        .Bind(std::string(RoleName(u.role)))
        .Bind(u.password_hash)
        .BindBlob(u.totp_sealed)
        .Bind(u.status)
        .Bind(u.allowed_cidrs)
        .Bind(u.created_micros);
    auto r = s.Step();
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kAlreadyExists)
        return AlreadyExists("user '" + u.name + "' already exists");
      return r.status();
    }
    return sqlite3_last_insert_rowid(db_);
  }
  Result<User> GetUser(int64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = cache_.user_by_id.find(id); it != cache_.user_by_id.end()) return it->second;
    Stmt s(*stmts_, (std::string("SELECT ") + kUserCols + " FROM users WHERE id=?").c_str());
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no user with id " + std::to_string(id));
    User u = ReadUser(s);
    AuthCache::Put(cache_.user_by_id, id, u);
    return u;
  }
  Result<User> GetUserByName(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kUserCols + " FROM users WHERE name=?").c_str());
    s.Bind(name);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no such user");
    return ReadUser(s);
  }
  Status UpdateUser(const User& u) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_,
           "UPDATE users SET role=?, password_hash=?, totp_sealed=?, status=?, failed_logins=?, "
           "locked_until=?, pledge_micros=?, allowed_cidrs=?, totp_last_step=? WHERE id=?");
    s.Bind(std::string(RoleName(u.role)))
        .Bind(u.password_hash)
        .BindBlob(u.totp_sealed)
        .Bind(u.status)
        .Bind(u.failed_logins)
        .Bind(u.locked_until_micros)
        .Bind(u.pledge_micros)
        .Bind(u.allowed_cidrs)
        .Bind(u.totp_last_step)
        .Bind(u.id);
    RETURN_IF_ERROR(s.Exec());
    if (sqlite3_changes(db_) != 1) return NotFound("no user with id " + std::to_string(u.id));
    return Status::Ok();
  }
  Result<std::vector<User>> ListUsers() override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kUserCols + " FROM users ORDER BY id").c_str());
    std::vector<User> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ReadUser(s));
    }
    return out;
  }

  Result<int64_t> CreateGroup(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_, "INSERT INTO groups_(name) VALUES(?)");
    s.Bind(name);
    auto r = s.Step();
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kAlreadyExists)
        return AlreadyExists("group '" + name + "' already exists");
      return r.status();
    }
    return sqlite3_last_insert_rowid(db_);
  }
  Result<int64_t> GroupId(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT id FROM groups_ WHERE name=?");
    s.Bind(name);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no group named '" + name + "'");
    return s.Int(0);
  }
  Status AddMember(int64_t g, int64_t u) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_, "INSERT OR IGNORE INTO group_members(group_id,user_id) VALUES(?,?)");
    s.Bind(g).Bind(u);
    return s.Exec();
  }
  Status RemoveMember(int64_t g, int64_t u) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_, "DELETE FROM group_members WHERE group_id=? AND user_id=?");
    s.Bind(g).Bind(u);
    return s.Exec();
  }
  Result<std::vector<int64_t>> GroupsOf(int64_t u) override {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = cache_.groups_of.find(u); it != cache_.groups_of.end()) return it->second;
    Stmt s(*stmts_, "SELECT group_id FROM group_members WHERE user_id=? ORDER BY group_id");
    s.Bind(u);
    std::vector<int64_t> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(s.Int(0));
    }
    AuthCache::Put(cache_.groups_of, u, out);
    return out;
  }

  Result<int64_t> CreateDevice(const Device& d) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_,
           "INSERT INTO devices(user_id, name, status, csr_pem, cert_pem, fingerprint, "
           "poll_secret_hash, created_micros) VALUES(?,?,?,?,?,?,?,?)");
    s.Bind(d.user_id).Bind(d.name).Bind(d.status).Bind(d.csr_pem).Bind(d.cert_pem);
    if (d.fingerprint.empty())
      s.BindNull();
    else
      s.Bind(d.fingerprint);
    s.Bind(d.poll_secret_hash).Bind(d.created_micros);
    RETURN_IF_ERROR(s.Exec());
    return sqlite3_last_insert_rowid(db_);
  }
  Result<Device> GetDevice(int64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kDeviceCols + " FROM devices WHERE id=?").c_str());
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no device with id " + std::to_string(id));
    return ReadDevice(s);
  }
  Result<Device> GetDeviceByFingerprint(const std::string& fp) override {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = cache_.device_by_fp.find(fp); it != cache_.device_by_fp.end()) return it->second;
    Stmt s(*stmts_,
           (std::string("SELECT ") + kDeviceCols + " FROM devices WHERE fingerprint=?").c_str());
    s.Bind(fp);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("device certificate is not enrolled");
    Device d = ReadDevice(s);
    AuthCache::Put(cache_.device_by_fp, fp, d);
    return d;
  }
  Status UpdateDevice(const Device& d) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_, "UPDATE devices SET status=?, cert_pem=?, fingerprint=?, name=? WHERE id=?");
    s.Bind(d.status).Bind(d.cert_pem);
    if (d.fingerprint.empty())
      s.BindNull();
    else
      s.Bind(d.fingerprint);
    s.Bind(d.name).Bind(d.id);
    RETURN_IF_ERROR(s.Exec());
    if (sqlite3_changes(db_) != 1) return NotFound("no device with id " + std::to_string(d.id));
    return Status::Ok();
  }
  Status TouchDevice(int64_t id, int64_t micros, const std::string& ip) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "UPDATE devices SET last_seen_micros=?, last_ip=? WHERE id=?");
    s.Bind(micros).Bind(ip).Bind(id);
    Status st = s.Exec();
    // Keep the cached row current (only these two columns change), so the
    // vault's "touch at most every 30 s" sees the new time.
    for (auto& [fp, d] : cache_.device_by_fp) {
      if (d.id != id) continue;
      if (!st.ok()) {
        cache_.Clear();
        break;
      }
      d.last_seen_micros = micros;
      d.last_ip = ip;
      break;
    }
    return st;
  }
  Result<std::vector<Device>> ListDevices() override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kDeviceCols + " FROM devices ORDER BY id").c_str());
    std::vector<Device> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ReadDevice(s));
    }
    return out;
  }

  Status CreateEnrolToken(const EnrolToken& t) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "INSERT INTO enrol_tokens(token_hash,user_id,expires_micros) VALUES(?,?,?)");
    s.Bind(t.token_hash).Bind(t.user_id).Bind(t.expires_micros);
    return s.Exec();
  }
  Result<EnrolToken> ConsumeEnrolToken(const std::string& hash, int64_t now) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "UPDATE enrol_tokens SET used=1 WHERE token_hash=? AND used=0 AND expires_micros>? "
           "RETURNING user_id, expires_micros");
    s.Bind(hash).Bind(now);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return PermissionDenied("enrolment token is unknown, used or expired");
    EnrolToken t;
    t.token_hash = hash;
    t.user_id = s.Int(0);
    t.expires_micros = s.Int(1);
    t.used = true;
    return t;
  }

  Status CreateSession(const Session& x) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_,
           "INSERT INTO sessions(token_hash,user_id,device_id,created_micros,expires_micros,"
           "source_ip) VALUES(?,?,?,?,?,?)");
    s.Bind(x.token_hash)
        .Bind(x.user_id)
        .Bind(x.device_id)
        .Bind(x.created_micros)
        .Bind(x.expires_micros)
        .Bind(x.source_ip);
    return s.Exec();
  }
  Result<Session> GetSession(const std::string& hash) override {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = cache_.session_by_hash.find(hash); it != cache_.session_by_hash.end())
      return it->second;
    Stmt s(*stmts_,
           "SELECT token_hash,user_id,device_id,created_micros,expires_micros,source_ip FROM "
           "sessions WHERE token_hash=?");
    s.Bind(hash);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("session is unknown or was revoked");
    Session x;
    x.token_hash = s.Text(0);
    x.user_id = s.Int(1);
    x.device_id = s.Int(2);
    x.created_micros = s.Int(3);
    x.expires_micros = s.Int(4);
    x.source_ip = s.Text(5);
    AuthCache::Put(cache_.session_by_hash, hash, x);
    return x;
  }
  Status DeleteSession(const std::string& hash) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_, "DELETE FROM sessions WHERE token_hash=?");
    s.Bind(hash);
    return s.Exec();
  }
  Result<int64_t> DeleteSessionsOfDevice(int64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_, "DELETE FROM sessions WHERE device_id=?");
    s.Bind(id);
    RETURN_IF_ERROR(s.Exec());
    return static_cast<int64_t>(sqlite3_changes(db_));
  }
  Result<int64_t> DeleteSessionsOfUser(int64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_, "DELETE FROM sessions WHERE user_id=?");
    s.Bind(id);
    RETURN_IF_ERROR(s.Exec());
    return static_cast<int64_t>(sqlite3_changes(db_));
  }

  Result<int64_t> CreateFolder(const Folder& f) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    Stmt s(*stmts_, "INSERT INTO folders(name_sealed,name_tag,created_micros) VALUES(?,?,?)");
    s.BindBlob(f.name_sealed).Bind(f.name_tag).Bind(f.created_micros);
    auto r = s.Step();
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kAlreadyExists)
        return AlreadyExists("a folder with that name already exists");
      return r.status();
    }
    return sqlite3_last_insert_rowid(db_);
  }
  Result<Folder> GetFolder(int64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = cache_.folder_by_id.find(id); it != cache_.folder_by_id.end()) return it->second;
    Stmt s(*stmts_, "SELECT id,name_sealed,name_tag,created_micros FROM folders WHERE id=?");
    s.Bind(id);
    ASSIGN_OR_RETURN(Folder f, OneFolder(s));
    AuthCache::Put(cache_.folder_by_id, id, f);
    return f;
  }
  Result<Folder> GetFolderByTag(const std::string& tag) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT id,name_sealed,name_tag,created_micros FROM folders WHERE name_tag=?");
    s.Bind(tag);
    return OneFolder(s);
  }
  Result<std::vector<Folder>> ListFolders() override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT id,name_sealed,name_tag,created_micros FROM folders ORDER BY id");
    std::vector<Folder> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(Folder{s.Int(0), s.Text(1), s.Text(2), s.Int(3)});
    }
    return out;
  }
  Status SetAcl(const Acl& a) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();
    if (a.perms.empty()) {
      Stmt s(*stmts_, "DELETE FROM folder_acl WHERE folder_id=? AND group_id=?");
      s.Bind(a.folder_id).Bind(a.group_id);
      return s.Exec();
    }
    Stmt s(*stmts_,
           "INSERT INTO folder_acl(folder_id,group_id,perms) VALUES(?,?,?) ON CONFLICT(folder_id, "
           "group_id) DO UPDATE SET perms=excluded.perms");
    s.Bind(a.folder_id).Bind(a.group_id).Bind(a.perms);
    return s.Exec();
  }
  Result<std::vector<Acl>> AclsOf(int64_t folder_id) override {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = cache_.acls_of.find(folder_id); it != cache_.acls_of.end()) return it->second;
    Stmt s(*stmts_, "SELECT folder_id,group_id,perms FROM folder_acl WHERE folder_id=?");
    s.Bind(folder_id);
    std::vector<Acl> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(Acl{s.Int(0), s.Int(1), s.Text(2)});
    }
    AuthCache::Put(cache_.acls_of, folder_id, out);
    return out;
  }

  Result<ObjectVersion> AddVersion(int64_t folder_id, const std::string& name_sealed,
                                   const std::string& name_tag, ObjectVersion v,
                                   const std::string& new_object_id) override {
    std::lock_guard<std::mutex> l(mu_);
    RETURN_IF_ERROR(ExecSql("BEGIN IMMEDIATE"));
    auto r = AddVersionLocked(folder_id, name_sealed, name_tag, std::move(v), new_object_id);
    if (!r.ok()) {
      (void)ExecSql("ROLLBACK");
      return r;
    }
    RETURN_IF_ERROR(ExecSql("COMMIT"));
    return r;
  }
  Result<Object> FindObject(int64_t folder_id, const std::string& tag) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           (std::string("SELECT ") + kObjectCols + " FROM objects WHERE folder_id=? AND name_tag=?")
               .c_str());
    s.Bind(folder_id).Bind(tag);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no such file in this folder");
    return ReadObject(s);
  }
  Result<std::vector<Object>> ListObjects(int64_t folder_id, bool trash) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kObjectCols + " FROM objects WHERE folder_id=? AND " +
                     (trash ? "deleted_micros<>0" : "deleted_micros=0") + " ORDER BY rowid")
                        .c_str());
    s.Bind(folder_id);
    std::vector<Object> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ReadObject(s));
    }
    return out;
  }
  Result<std::vector<std::pair<Object, ObjectVersion>>> ListObjectsWithCurrent(
      int64_t folder_id, bool trash) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "SELECT o.id, o.folder_id, o.name_sealed, o.name_tag, o.current_version, "
           "o.deleted_micros, v.object_id, v.version, v.blob_id, v.wrapped_key, v.size, v.sha256, "
           "v.label, v.created_micros, v.created_by FROM objects o LEFT JOIN versions v ON "
           "v.object_id=o.id AND v.version=o.current_version WHERE o.folder_id=? AND " +
               std::string(trash ? "o.deleted_micros<>0" : "o.deleted_micros=0") +
               " ORDER BY o.rowid");
    s.Bind(folder_id);
    std::vector<std::pair<Object, ObjectVersion>> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      Object o = ReadObject(s);
      if (s.IsNull(6))
        return DataLoss("file " + o.id + " has no current version " +
                        std::to_string(o.current_version) +
                        " (damaged metadata); restore meta.db from a backup");
      ObjectVersion v;
      v.object_id = s.Text(6);
      v.version = s.Int(7);
      v.blob_id = s.Text(8);
      v.wrapped_key = s.Text(9);
      v.size = static_cast<uint64_t>(s.Int(10));
      v.sha256 = s.Text(11);
      v.label_json = s.Text(12);
      v.created_micros = s.Int(13);
      v.created_by = s.Int(14);
      out.emplace_back(std::move(o), std::move(v));
    }
    return out;
  }
  Result<ObjectVersion> GetVersion(const std::string& object_id, int64_t version) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kVersionCols +
                     " FROM versions WHERE object_id=? AND version=?")
                        .c_str());
    s.Bind(object_id).Bind(version);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no such version");
    return ReadVersion(s);
  }
  Result<std::vector<ObjectVersion>> ListVersions(const std::string& object_id) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kVersionCols +
                     " FROM versions WHERE object_id=? ORDER BY version")
                        .c_str());
    s.Bind(object_id);
    return Versions(s);
  }
  Result<std::vector<ObjectVersion>> AllVersions() override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kVersionCols + " FROM versions").c_str());
    return Versions(s);
  }
  Status SetWrappedKey(const std::string& object_id, int64_t version,
                       const std::string& wrapped) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "UPDATE versions SET wrapped_key=? WHERE object_id=? AND version=?");
    s.BindBlob(wrapped).Bind(object_id).Bind(version);
    return s.Exec();
  }
  Status TrashObject(const std::string& id, int64_t now) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "UPDATE objects SET deleted_micros=? WHERE id=? AND deleted_micros=0");
    s.Bind(now).Bind(id);
    RETURN_IF_ERROR(s.Exec());
    if (sqlite3_changes(db_) != 1) return NotFound("no such live file");
    return Status::Ok();
  }
  Status RestoreObject(const std::string& id) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "UPDATE objects SET deleted_micros=0 WHERE id=? AND deleted_micros<>0");
    s.Bind(id);
    RETURN_IF_ERROR(s.Exec());
    if (sqlite3_changes(db_) != 1) return NotFound("no such file in the trash");
    return Status::Ok();
  }
  Result<std::vector<std::string>> PurgeTrash(int64_t cutoff) override {
    std::lock_guard<std::mutex> l(mu_);
    RETURN_IF_ERROR(ExecSql("BEGIN IMMEDIATE"));
    std::vector<std::string> blobs;
    Status st = [&]() -> Status {
      Stmt q(*stmts_,
             "SELECT v.blob_id FROM versions v JOIN objects o ON o.id=v.object_id WHERE "
             "o.deleted_micros<>0 AND o.deleted_micros<?");
      q.Bind(cutoff);
      while (true) {
        ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        blobs.push_back(q.Text(0));
      }
      Stmt d1(*stmts_,
              "DELETE FROM versions WHERE object_id IN (SELECT id FROM objects WHERE "
              "deleted_micros<>0 AND deleted_micros<?)");
      d1.Bind(cutoff);
      RETURN_IF_ERROR(d1.Exec());
      Stmt d0(*stmts_,
              "DELETE FROM shares WHERE object_id IN (SELECT id FROM objects WHERE "
              "deleted_micros<>0 AND deleted_micros<?)");
      d0.Bind(cutoff);
      RETURN_IF_ERROR(d0.Exec());
      Stmt d2(*stmts_, "DELETE FROM objects WHERE deleted_micros<>0 AND deleted_micros<?");
      d2.Bind(cutoff);
      return d2.Exec();
    }();
    if (!st.ok()) {
      (void)ExecSql("ROLLBACK");
      return st;
    }
    RETURN_IF_ERROR(ExecSql("COMMIT"));
    return blobs;
  }

  Result<std::vector<Object>> TrashedBefore(int64_t cutoff) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kObjectCols +
                     " FROM objects WHERE deleted_micros<>0 AND deleted_micros<? ORDER BY rowid")
                        .c_str());
    s.Bind(cutoff);
    std::vector<Object> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ReadObject(s));
    }
    return out;
  }
  Result<Object> GetObject(const std::string& id) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kObjectCols + " FROM objects WHERE id=?").c_str());
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no such file");
    return ReadObject(s);
  }
  Status SetCurrentVersion(const std::string& id, int64_t version) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "UPDATE objects SET current_version=?, deleted_micros=0 WHERE id=? AND EXISTS "
           "(SELECT 1 FROM versions WHERE object_id=? AND version=?)");
    s.Bind(version).Bind(id).Bind(id).Bind(version);
    RETURN_IF_ERROR(s.Exec());
    if (sqlite3_changes(db_) != 1) return NotFound("no such version of this file");
    return Status::Ok();
  }
  Status MoveObject(const std::string& id, int64_t folder_id, const std::string& name_sealed,
                    const std::string& name_tag) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "UPDATE objects SET folder_id=?, name_sealed=?, name_tag=? WHERE id=?");
    s.Bind(folder_id).BindBlob(name_sealed).Bind(name_tag).Bind(id);
    auto r = s.Step();
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kAlreadyExists)
        return AlreadyExists(
            "a file with that name already exists in the target folder (or its trash)");
      return r.status();
    }
    if (sqlite3_changes(db_) != 1) return NotFound("no such file");
    return Status::Ok();
  }

  Result<int64_t> CreateShare(const Share& x) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "INSERT INTO shares(object_id,kind,group_id,user_id,token_hash,password_hash,"
           "expires_micros,max_downloads,created_by,created_micros) VALUES(?,?,?,?,?,?,?,?,?,?)");
    s.Bind(x.object_id).Bind(x.kind).Bind(x.group_id).Bind(x.user_id);
    if (x.token_hash.empty())
      s.BindNull();
    else
      s.Bind(x.token_hash);
    s.Bind(x.password_hash)
        .Bind(x.expires_micros)
        .Bind(x.max_downloads)
        .Bind(x.created_by)
        .Bind(x.created_micros);
    RETURN_IF_ERROR(s.Exec());
    return sqlite3_last_insert_rowid(db_);
  }
  Result<Share> GetShare(int64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kShareCols + " FROM shares WHERE id=?").c_str());
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no such share");
    return ReadShare(s);
  }
  Result<Share> GetShareByToken(const std::string& hash) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           (std::string("SELECT ") + kShareCols + " FROM shares WHERE token_hash=?").c_str());
    s.Bind(hash);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no such link");
    return ReadShare(s);
  }
  Result<std::vector<Share>> ListSharesOfObject(const std::string& object_id) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           (std::string("SELECT ") + kShareCols + " FROM shares WHERE object_id=? ORDER BY id")
               .c_str());
    s.Bind(object_id);
    return Shares(s);
  }
  Result<std::vector<Share>> ListSharesTo(int64_t user_id,
                                          const std::vector<int64_t>& groups) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, (std::string("SELECT ") + kShareCols +
                     " FROM shares WHERE revoked_micros=0 AND kind<>'link' ORDER BY id")
                        .c_str());
    ASSIGN_OR_RETURN(auto all, Shares(s));
    std::vector<Share> out;
    for (auto& x : all)
      if ((x.kind == "user" && x.user_id == user_id) ||
          (x.kind == "group" &&
           std::find(groups.begin(), groups.end(), x.group_id) != groups.end()))
        out.push_back(std::move(x));
    return out;
  }
  Status RevokeShare(int64_t id, int64_t now) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "UPDATE shares SET revoked_micros=? WHERE id=? AND revoked_micros=0");
    s.Bind(now).Bind(id);
    RETURN_IF_ERROR(s.Exec());
    if (sqlite3_changes(db_) != 1) return NotFound("no such live share");
    return Status::Ok();
  }
  Status CountLinkDownload(int64_t id, int64_t now) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "UPDATE shares SET downloads=downloads+1 WHERE id=? AND kind='link' AND "
           "revoked_micros=0 AND expires_micros>? AND downloads<max_downloads");
    s.Bind(id).Bind(now);
    RETURN_IF_ERROR(s.Exec());
    if (sqlite3_changes(db_) != 1)
      return FailedPrecondition("the link is revoked, expired or used up");
    return Status::Ok();
  }
  Result<int64_t> CountLinkPasswordFailure(int64_t id, int64_t max, int64_t now) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "UPDATE shares SET failed_passwords=failed_passwords+1, revoked_micros=CASE WHEN "
           "failed_passwords+1>=? AND revoked_micros=0 THEN ? ELSE revoked_micros END WHERE id=? "
           "RETURNING failed_passwords");
    s.Bind(max).Bind(now).Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no such link");
    int64_t n = s.Int(0);
    RETURN_IF_ERROR(s.Exec());  // finish the statement
    return n;
  }

  Status CreateUpload(const UploadSession& u) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "INSERT INTO uploads(id,folder_id,name_sealed,name_tag,user_id,device_id,wrapped_key,"
           "size,committed,created_micros,expires_micros) VALUES(?,?,?,?,?,?,?,?,?,?,?)");
    s.Bind(u.id)
        .Bind(u.folder_id)
        .BindBlob(u.name_sealed)
        .Bind(u.name_tag)
        .Bind(u.user_id)
        .Bind(u.device_id)
        .BindBlob(u.wrapped_key)
        .Bind(static_cast<int64_t>(u.size))
        .Bind(static_cast<int64_t>(u.committed))
        .Bind(u.created_micros)
        .Bind(u.expires_micros);
    return s.Exec();
  }
  Result<UploadSession> GetUpload(const std::string& id) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "SELECT id,folder_id,name_sealed,name_tag,user_id,device_id,wrapped_key,size,committed,"
           "created_micros,expires_micros FROM uploads WHERE id=?");
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no such upload session (completed, expired or never created)");
    UploadSession u;
    u.id = s.Text(0);
    u.folder_id = s.Int(1);
    u.name_sealed = s.Text(2);
    u.name_tag = s.Text(3);
    u.user_id = s.Int(4);
    u.device_id = s.Int(5);
    u.wrapped_key = s.Text(6);
    u.size = static_cast<uint64_t>(s.Int(7));
    u.committed = static_cast<uint64_t>(s.Int(8));
    u.created_micros = s.Int(9);
    u.expires_micros = s.Int(10);
    return u;
  }
  Status AdvanceUpload(const std::string& id, uint64_t from, uint64_t to,
                       int64_t expires) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "UPDATE uploads SET committed=?, expires_micros=? WHERE id=? AND committed=?");
    s.Bind(static_cast<int64_t>(to)).Bind(expires).Bind(id).Bind(static_cast<int64_t>(from));
    RETURN_IF_ERROR(s.Exec());
    if (sqlite3_changes(db_) != 1)
      return FailedPrecondition(
          "the upload session moved on (another writer?); ask for its offset");
    return Status::Ok();
  }
  Status DeleteUpload(const std::string& id) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "DELETE FROM uploads WHERE id=?");
    s.Bind(id);
    return s.Exec();
  }
  Result<int64_t> CountUploadsOf(int64_t user_id, int64_t now) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT COUNT(*) FROM uploads WHERE user_id=? AND expires_micros>?");
    s.Bind(user_id).Bind(now);
    ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Int(0) : int64_t{0};
  }
  Result<std::vector<std::pair<std::string, std::string>>> UploadKeys() override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT id, wrapped_key FROM uploads ORDER BY id");
    std::vector<std::pair<std::string, std::string>> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.emplace_back(s.Text(0), s.Text(1));
    }
    return out;
  }
  Status SetUploadWrappedKey(const std::string& id, const std::string& wrapped) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "UPDATE uploads SET wrapped_key=? WHERE id=?");
    s.BindBlob(wrapped).Bind(id);
    return s.Exec();
  }
  Result<std::vector<std::string>> ExpiredUploads(int64_t now) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT id FROM uploads WHERE expires_micros<=? ORDER BY id");
    s.Bind(now);
    std::vector<std::string> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(s.Text(0));
    }
    return out;
  }

  Result<std::optional<std::string>> GetPolicy(const std::string& key) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT value FROM policies WHERE key=?");
    s.Bind(key);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(s.Text(0));
  }
  Status PutPolicy(const std::string& key, const std::string& value) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "INSERT INTO policies(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET "
           "value=excluded.value");
    s.Bind(key).Bind(value);
    return s.Exec();
  }

  Status RecordDownload(int64_t time, int64_t user_id, int64_t device_id, uint64_t bytes,
                        uint64_t individuals) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "INSERT INTO downloads(time_micros,user_id,device_id,bytes,individuals) "
           "VALUES(?,?,?,?,?)");
    s.Bind(time)
        .Bind(user_id)
        .Bind(device_id)
        .Bind(static_cast<int64_t>(bytes))
        .Bind(static_cast<int64_t>(individuals));
    return s.Exec();
  }
  Result<Usage> UsageSince(int64_t since, std::optional<int64_t> user_id,
                           std::optional<int64_t> device_id) override {
    std::lock_guard<std::mutex> l(mu_);
    std::string sql =
        "SELECT COALESCE(SUM(bytes),0), COUNT(*), COALESCE(SUM(individuals),0) FROM downloads "
        "WHERE time_micros>=?";
    if (user_id) sql += " AND user_id=?";
    if (device_id) sql += " AND device_id=?";
    Stmt s(*stmts_, sql.c_str());
    s.Bind(since);
    if (user_id) s.Bind(*user_id);
    if (device_id) s.Bind(*device_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    Usage u;
    if (row) {
      u.bytes = static_cast<uint64_t>(s.Int(0));
      u.files = static_cast<uint64_t>(s.Int(1));
      u.individuals = static_cast<uint64_t>(s.Int(2));
    }
    return u;
  }

  // ---- governance ----
  Status PutNetworkRule(const NetworkRule& r) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();  // not cached today; cleared so a future cache of these stays correct
    if (r.cidrs.empty()) {
      Stmt s(*stmts_, "DELETE FROM network_rules WHERE kind=? AND name=?");
      s.Bind(r.kind).Bind(r.name);
      return s.Exec();
    }
    Stmt s(*stmts_,
           "INSERT INTO network_rules(kind,name,cidrs) VALUES(?,?,?) ON CONFLICT(kind,name) DO "
           "UPDATE SET cidrs=excluded.cidrs");
    s.Bind(r.kind).Bind(r.name).Bind(r.cidrs);
    return s.Exec();
  }
  Result<std::vector<NetworkRule>> ListNetworkRules() override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT kind, name, cidrs FROM network_rules ORDER BY kind, name");
    std::vector<NetworkRule> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back({s.Text(0), s.Text(1), s.Text(2)});
    }
    return out;
  }
  Result<int64_t> CreateOrg(const Org& o) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();  // not cached today; cleared so a future cache of these stays correct
    Stmt s(*stmts_, "INSERT INTO orgs(name,scope,expires_micros,created_micros) VALUES(?,?,?,?)");
    s.Bind(o.name).Bind(JoinIds(o.scope)).Bind(o.expires_micros).Bind(o.created_micros);
    auto r = s.Step();
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kAlreadyExists)
        return AlreadyExists("organisation '" + o.name + "' already exists");
      return r.status();
    }
    return sqlite3_last_insert_rowid(db_);
  }
  Status UpdateOrg(const Org& o) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();  // not cached today; cleared so a future cache of these stays correct
    Stmt s(*stmts_, "UPDATE orgs SET scope=?, expires_micros=? WHERE id=?");
    s.Bind(JoinIds(o.scope)).Bind(o.expires_micros).Bind(o.id);
    RETURN_IF_ERROR(s.Exec());
    if (sqlite3_changes(db_) != 1) return NotFound("no organisation " + o.name);
    return Status::Ok();
  }
  Result<Org> GetOrgByName(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT id,name,scope,expires_micros,created_micros FROM orgs WHERE name=?");
    s.Bind(name);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no organisation named '" + name + "'");
    return ReadOrg(s);
  }
  Result<std::vector<Org>> ListOrgs() override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT id,name,scope,expires_micros,created_micros FROM orgs ORDER BY name");
    std::vector<Org> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ReadOrg(s));
    }
    return out;
  }
  Status SetUserOrg(int64_t user_id, std::optional<int64_t> org_id) override {
    std::lock_guard<std::mutex> l(mu_);
    cache_.Clear();  // not cached today; cleared so a future cache of these stays correct
    if (!org_id) {
      Stmt s(*stmts_, "DELETE FROM org_members WHERE user_id=?");
      s.Bind(user_id);
      return s.Exec();
    }
    Stmt s(*stmts_,
           "INSERT INTO org_members(user_id,org_id) VALUES(?,?) ON CONFLICT(user_id) DO UPDATE "
           "SET org_id=excluded.org_id");
    s.Bind(user_id).Bind(*org_id);
    return s.Exec();
  }
  Result<std::optional<Org>> OrgOfUser(int64_t user_id) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "SELECT o.id,o.name,o.scope,o.expires_micros,o.created_micros FROM org_members m "
           "JOIN orgs o ON o.id=m.org_id WHERE m.user_id=?");
    s.Bind(user_id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<Org>();
    return std::optional<Org>(ReadOrg(s));
  }
  Result<std::vector<int64_t>> OrgMembers(int64_t org_id) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "SELECT user_id FROM org_members WHERE org_id=? ORDER BY user_id");
    s.Bind(org_id);
    std::vector<int64_t> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(s.Int(0));
    }
    return out;
  }
  Result<int64_t> CreateApproval(const Approval& a) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "INSERT INTO approvals(kind,requester_id,folder_id,object_id,version,reason_sealed,"
           "status,created_micros,duration_micros) VALUES(?,?,?,?,?,?,?,?,?)");
    s.Bind(a.kind)
        .Bind(a.requester_id)
        .Bind(a.folder_id)
        .Bind(a.object_id)
        .Bind(a.version)
        .BindBlob(a.reason_sealed)
        .Bind(a.status)
        .Bind(a.created_micros)
        .Bind(a.duration_micros);
    RETURN_IF_ERROR(s.Exec());
    return sqlite3_last_insert_rowid(db_);
  }
  Result<Approval> GetApproval(int64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           (std::string("SELECT ") + kApprovalCols + " FROM approvals WHERE id=?").c_str());
    s.Bind(id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no approval request " + std::to_string(id));
    return ReadApproval(s);
  }
  Status UpdateApproval(const Approval& a, const std::string& expected_status) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_,
           "UPDATE approvals SET status=?, approver_id=?, decided_micros=?, expires_micros=? "
           "WHERE id=? AND status=?");
    s.Bind(a.status)
        .Bind(a.approver_id)
        .Bind(a.decided_micros)
        .Bind(a.expires_micros)
        .Bind(a.id)
        .Bind(expected_status);
    RETURN_IF_ERROR(s.Exec());
    if (sqlite3_changes(db_) != 1)
      return FailedPrecondition("approval request " + std::to_string(a.id) + " is no longer " +
                                expected_status);
    return Status::Ok();
  }
  Result<std::vector<Approval>> ListApprovals(const std::string& kind, int64_t requester_id,
                                              size_t limit) override {
    std::lock_guard<std::mutex> l(mu_);
    std::string sql = std::string("SELECT ") + kApprovalCols + " FROM approvals WHERE 1=1";
    if (!kind.empty()) sql += " AND kind=?";
    if (requester_id) sql += " AND requester_id=?";
    sql += " ORDER BY id DESC LIMIT ?";
    Stmt s(*stmts_, sql.c_str());
    if (!kind.empty()) s.Bind(kind);
    if (requester_id) s.Bind(requester_id);
    s.Bind(static_cast<int64_t>(limit));
    std::vector<Approval> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ReadApproval(s));
    }
    return out;
  }

  Status BackupTo(const std::string& path) override {
    std::lock_guard<std::mutex> l(mu_);
    Stmt s(*stmts_, "VACUUM INTO ?");
    s.Bind(path);
    RETURN_IF_ERROR(s.Exec());
    ::chmod(path.c_str(), 0600);
    return Status::Ok();
  }

 private:
  static std::string JoinIds(const std::vector<int64_t>& ids) {
    std::string out;
    for (int64_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
    return out;
  }
  static Org ReadOrg(Stmt& s) {
    Org o;
    o.id = s.Int(0);
    o.name = s.Text(1);
    std::string scope = s.Text(2);
    size_t start = 0;
    while (start < scope.size()) {
      size_t comma = scope.find(',', start);
      if (comma == std::string::npos) comma = scope.size();
      o.scope.push_back(std::strtoll(scope.substr(start, comma - start).c_str(), nullptr, 10));
      start = comma + 1;
    }
    o.expires_micros = s.Int(3);
    o.created_micros = s.Int(4);
    return o;
  }
  static constexpr const char* kApprovalCols =
      "id, kind, requester_id, folder_id, object_id, version, reason_sealed, status, "
      "created_micros, duration_micros, approver_id, decided_micros, expires_micros";
  static Approval ReadApproval(Stmt& s) {
    Approval a;
    a.id = s.Int(0);
    a.kind = s.Text(1);
    a.requester_id = s.Int(2);
    a.folder_id = s.Int(3);
    a.object_id = s.Text(4);
    a.version = s.Int(5);
    a.reason_sealed = s.Text(6);
    a.status = s.Text(7);
    a.created_micros = s.Int(8);
    a.duration_micros = s.Int(9);
    a.approver_id = s.Int(10);
    a.decided_micros = s.Int(11);
    a.expires_micros = s.Int(12);
    return a;
  }

 private:
  Status ExecSql(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      return Unavailable("sqlite: " + m);
    }
    return Status::Ok();
  }
  int UserVersion() {
    Stmt s(*stmts_, "PRAGMA user_version");
    auto r = s.Step();
    return (r.ok() && *r) ? static_cast<int>(s.Int(0)) : -1;
  }
  Status Migrate(const std::string& path) {
    int v = UserVersion();
    if (v < 0) return Unavailable("cannot read the schema version of " + path);
    if (v > kSchemaVersion)
      return FailedPrecondition(path + " has schema version " + std::to_string(v) +
                                ", newer than this mamori (" + std::to_string(kSchemaVersion) +
                                "); upgrade mamori");
    for (; v < kSchemaVersion; ++v) {
      RETURN_IF_ERROR(ExecSql("BEGIN IMMEDIATE"));
      Status s = ExecSql(kMigrations[v]);
      if (s.ok()) s = ExecSql(("PRAGMA user_version=" + std::to_string(v + 1)).c_str());
      if (!s.ok()) {
        (void)ExecSql("ROLLBACK");
        return s.WithContext("migrating " + path + " to schema " + std::to_string(v + 1));
      }
      RETURN_IF_ERROR(ExecSql("COMMIT"));
    }
    return Status::Ok();
  }
  Result<Folder> OneFolder(Stmt& s) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound("no such folder");
    return Folder{s.Int(0), s.Text(1), s.Text(2), s.Int(3)};
  }
  Result<std::vector<Share>> Shares(Stmt& s) {
    std::vector<Share> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ReadShare(s));
    }
    return out;
  }
  Result<std::vector<ObjectVersion>> Versions(Stmt& s) {
    std::vector<ObjectVersion> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ReadVersion(s));
    }
    return out;
  }
  Result<ObjectVersion> AddVersionLocked(int64_t folder_id, const std::string& name_sealed,
                                         const std::string& name_tag, ObjectVersion v,
                                         const std::string& new_object_id) {
    Stmt f(*stmts_, "SELECT id, current_version FROM objects WHERE folder_id=? AND name_tag=?");
    f.Bind(folder_id).Bind(name_tag);
    ASSIGN_OR_RETURN(bool row, f.Step());
    if (row) {
      v.object_id = f.Text(0);
      Stmt mx(*stmts_, "SELECT COALESCE(MAX(version),0) FROM versions WHERE object_id=?");
      mx.Bind(v.object_id);
      ASSIGN_OR_RETURN(bool r2, mx.Step());
      v.version = (r2 ? mx.Int(0) : 0) + 1;
      Stmt u(*stmts_, "UPDATE objects SET current_version=?, deleted_micros=0 WHERE id=?");
      u.Bind(v.version).Bind(v.object_id);
      RETURN_IF_ERROR(u.Exec());
    } else {
      v.object_id = new_object_id;
      v.version = 1;
      Stmt i(*stmts_,
             "INSERT INTO objects(id,folder_id,name_sealed,name_tag,current_version) "
             "VALUES(?,?,?,?,1)");
      i.Bind(v.object_id).Bind(folder_id).BindBlob(name_sealed).Bind(name_tag);
      RETURN_IF_ERROR(i.Exec());
    }
    Stmt i(*stmts_,
           (std::string("INSERT INTO versions(") + kVersionCols + ") VALUES(?,?,?,?,?,?,?,?,?)")
               .c_str());
    i.Bind(v.object_id)
        .Bind(v.version)
        .Bind(v.blob_id)
        .BindBlob(v.wrapped_key)
        .Bind(static_cast<int64_t>(v.size))
        .Bind(v.sha256)
        .Bind(v.label_json)
        .Bind(v.created_micros)
        .Bind(v.created_by);
    RETURN_IF_ERROR(i.Exec());
    return v;
  }

  std::mutex mu_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<StmtCache> stmts_;
  AuthCache cache_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<MetaStore>> OpenSqliteMetaStore(const std::string& path) {
  auto s = std::make_unique<SqliteMetaStore>();
  RETURN_IF_ERROR(s->Open(path));
  return std::unique_ptr<MetaStore>(std::move(s));
}

}  // namespace mamori::vault
