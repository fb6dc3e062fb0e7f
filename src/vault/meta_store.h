// Metadata of the vault, behind an interface so PostgreSQL can replace SQLite.
//
// Holds users, groups, devices, folders with per-group ACLs, objects with
// versions and a trash, sessions, enrolment tokens, policies and download
// records. Names of files and folders are stored sealed (crypto::NameCipher)
// with a keyed index tag; secrets (TOTP seeds) sealed; tokens only as hashes.
// Thread-safe. Schema migrations are versioned (PRAGMA user_version).
//
// The SQLite store caches the rows read on every request (device by
// fingerprint, user, session, folder, group memberships, ACLs) and drops the
// cache on any write to those tables through it, so every read sees every
// earlier write. It assumes it is the only writer of the database while it is
// open (the vault server; `serve --init` and `--new-admin-token` run offline).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace mamori::vault {

enum class Role { kMember, kAuditor, kAdmin, kMaintenance };
std::string_view RoleName(Role r);
Result<Role> ParseRole(std::string_view s);

struct User {
  int64_t id = 0;
  std::string name;
  Role role = Role::kMember;
  std::string password_hash;      // crypto_pwhash_str (Argon2id); empty until enrolled
  std::string totp_sealed;        // TOTP seed, sealed; empty until enrolled
  int64_t totp_last_step = 0;     // last accepted TOTP step (replay protection)
  std::string status = "active";  // active | disabled
  int64_t failed_logins = 0;
  int64_t locked_until_micros = 0;
  int64_t pledge_micros = 0;  // when the 誓約書 was accepted; 0 = not yet
  std::string allowed_cidrs;  // comma-separated; empty = no user-level restriction
  int64_t created_micros = 0;
};

struct Device {
  int64_t id = 0;
  int64_t user_id = 0;
  std::string name;
  std::string status;  // pending | active | locked | revoked
  std::string csr_pem;
  std::string cert_pem;
  std::string fingerprint;  // hex SHA-256 of the issued certificate (DER)
  std::string poll_secret_hash;
  int64_t created_micros = 0;
  int64_t last_seen_micros = 0;
  std::string last_ip;
};

struct Session {
  std::string token_hash;
  int64_t user_id = 0;
  int64_t device_id = 0;
  int64_t created_micros = 0;
  int64_t expires_micros = 0;
  std::string source_ip;
};

struct EnrolToken {
  std::string token_hash;
  int64_t user_id = 0;
  int64_t expires_micros = 0;
  bool used = false;
};

struct Folder {
  int64_t id = 0;
  std::string name_sealed;
  std::string name_tag;
  int64_t created_micros = 0;
};

struct Acl {
  int64_t folder_id = 0;
  int64_t group_id = 0;
  std::string perms;  // "r", "rw"
};

struct ObjectVersion {
  std::string object_id;
  int64_t version = 0;
  std::string blob_id;
  std::string wrapped_key;
  uint64_t size = 0;
  std::string sha256;
  std::string label_json = "{}";
  int64_t created_micros = 0;
  int64_t created_by = 0;
};

struct Object {
  std::string id;
  int64_t folder_id = 0;
  std::string name_sealed;
  std::string name_tag;
  int64_t current_version = 0;
  int64_t deleted_micros = 0;  // 0 = live; otherwise in the trash since then
};

// A network rule (回線認証) on a group or a role; users carry their own in
// User::allowed_cidrs. A request must satisfy every rule that applies.
struct NetworkRule {
  std::string kind;   // "group" | "role"
  std::string name;   // group name or role name
  std::string cidrs;  // comma-separated, non-empty
};

// A contractor organisation (委託先): its users may touch only the folders in
// its scope, and nothing at all after it expires.
struct Org {
  int64_t id = 0;
  std::string name;
  std::vector<int64_t> scope;  // folder ids
  int64_t expires_micros = 0;
  int64_t created_micros = 0;
};

// A request that needs a second person: break-glass content access or a bulk
// export. Status moves pending -> approved | denied, approved -> used (export).
struct Approval {
  int64_t id = 0;
  std::string kind;  // "break_glass" | "export"
  int64_t requester_id = 0;
  int64_t folder_id = 0;
  std::string object_id;  // export: the exact object and version
  int64_t version = 0;
  std::string reason_sealed;  // break-glass reason, sealed like names
  std::string status = "pending";
  int64_t created_micros = 0;
  int64_t duration_micros = 0;  // how long the approval lasts once given
  int64_t approver_id = 0;
  int64_t decided_micros = 0;
  int64_t expires_micros = 0;  // decided + duration once approved
};

// A read-only grant on one file (issue 4): internal to a group or a user, or
// an external link (token hash, Argon2id password, expiry, download limit).
struct Share {
  int64_t id = 0;
  std::string object_id;
  std::string kind;  // group | user | link
  int64_t group_id = 0;
  int64_t user_id = 0;
  std::string token_hash;      // links only
  std::string password_hash;   // links only (Argon2id)
  int64_t expires_micros = 0;  // 0 = no expiry (internal shares only)
  int64_t max_downloads = 0;   // links only
  int64_t downloads = 0;
  int64_t failed_passwords = 0;
  int64_t created_by = 0;
  int64_t created_micros = 0;
  int64_t revoked_micros = 0;  // 0 = live
};

// A resumable upload (issue 4): content arrives in encrypted segments under
// DATA/uploads/<id>/ and becomes a version only on completion.
struct UploadSession {
  std::string id;
  int64_t folder_id = 0;
  std::string name_sealed;  // sealed with AD "upload:<id>"
  std::string name_tag;
  int64_t user_id = 0;
  int64_t device_id = 0;
  std::string wrapped_key;  // the session's segment key, wrapped by the KEK
  uint64_t size = 0;        // declared total size
  uint64_t committed = 0;   // bytes durably received
  int64_t created_micros = 0;
  int64_t expires_micros = 0;
};

class MetaStore {
 public:
  virtual ~MetaStore() = default;
  virtual int schema_version() = 0;

  // Key/value settings (wrapped metadata key, bootstrap state).
  virtual Result<std::optional<std::string>> GetMeta(const std::string& key) = 0;
  virtual Status PutMeta(const std::string& key, const std::string& value) = 0;

  virtual Result<int64_t> CreateUser(const User& u) = 0;  // AlreadyExists on duplicate name
  virtual Result<User> GetUser(int64_t id) = 0;
  virtual Result<User> GetUserByName(const std::string& name) = 0;
  virtual Status UpdateUser(const User& u) = 0;
  virtual Result<std::vector<User>> ListUsers() = 0;

  virtual Result<int64_t> CreateGroup(const std::string& name) = 0;
  virtual Result<int64_t> GroupId(const std::string& name) = 0;
  virtual Status AddMember(int64_t group_id, int64_t user_id) = 0;
  virtual Status RemoveMember(int64_t group_id, int64_t user_id) = 0;
  virtual Result<std::vector<int64_t>> GroupsOf(int64_t user_id) = 0;

  virtual Result<int64_t> CreateDevice(const Device& d) = 0;
  virtual Result<Device> GetDevice(int64_t id) = 0;
  virtual Result<Device> GetDeviceByFingerprint(const std::string& fp) = 0;
  virtual Status UpdateDevice(const Device& d) = 0;
  virtual Status TouchDevice(int64_t id, int64_t micros, const std::string& ip) = 0;
  virtual Result<std::vector<Device>> ListDevices() = 0;

  virtual Status CreateEnrolToken(const EnrolToken& t) = 0;
  // Marks the token used and returns it; NotFound / PermissionDenied if
  // unknown, used or expired (atomic: a token works once).
  virtual Result<EnrolToken> ConsumeEnrolToken(const std::string& token_hash, int64_t now) = 0;

  virtual Status CreateSession(const Session& s) = 0;
  virtual Result<Session> GetSession(const std::string& token_hash) = 0;
  virtual Status DeleteSession(const std::string& token_hash) = 0;
  virtual Result<int64_t> DeleteSessionsOfDevice(int64_t device_id) = 0;
  virtual Result<int64_t> DeleteSessionsOfUser(int64_t user_id) = 0;

  virtual Result<int64_t> CreateFolder(const Folder& f) = 0;
  virtual Result<Folder> GetFolder(int64_t id) = 0;
  virtual Result<Folder> GetFolderByTag(const std::string& tag) = 0;
  virtual Result<std::vector<Folder>> ListFolders() = 0;
  virtual Status SetAcl(const Acl& acl) = 0;  // empty perms removes
  virtual Result<std::vector<Acl>> AclsOf(int64_t folder_id) = 0;

  // Adds a version; creates the object if (folder, tag) is new, restores it
  // from the trash if it was deleted. Atomic.
  virtual Result<ObjectVersion> AddVersion(int64_t folder_id, const std::string& name_sealed,
                                           const std::string& name_tag, ObjectVersion v,
                                           const std::string& new_object_id) = 0;
  virtual Result<Object> FindObject(int64_t folder_id, const std::string& name_tag) = 0;
  virtual Result<std::vector<Object>> ListObjects(int64_t folder_id, bool trash) = 0;
  // The same objects, each with its current version, in one query (a listing
  // must not cost a query per file).
  virtual Result<std::vector<std::pair<Object, ObjectVersion>>> ListObjectsWithCurrent(
      int64_t folder_id, bool trash) = 0;
  virtual Result<ObjectVersion> GetVersion(const std::string& object_id, int64_t version) = 0;
  virtual Result<std::vector<ObjectVersion>> ListVersions(const std::string& object_id) = 0;
  // Every version's wrapped key (for KEK rotation) and a setter.
  virtual Result<std::vector<ObjectVersion>> AllVersions() = 0;
  virtual Status SetWrappedKey(const std::string& object_id, int64_t version,
                               const std::string& wrapped) = 0;
  virtual Status TrashObject(const std::string& object_id, int64_t now) = 0;
  virtual Status RestoreObject(const std::string& object_id) = 0;
  // Objects in the trash since before `cutoff`; their rows are removed and
  // their blob ids returned for deletion.
  virtual Result<std::vector<std::string>> PurgeTrash(int64_t cutoff_micros) = 0;
  // Objects of every folder in the trash since before `cutoff` (for the audit
  // record of a purge).
  virtual Result<std::vector<Object>> TrashedBefore(int64_t cutoff_micros) = 0;
  virtual Result<Object> GetObject(const std::string& object_id) = 0;
  // Makes `version` current and takes the object out of the trash.
  virtual Status SetCurrentVersion(const std::string& object_id, int64_t version) = 0;
  // Renames or moves an object; AlreadyExists if the target name is taken
  // (also by a file in the trash).
  virtual Status MoveObject(const std::string& object_id, int64_t folder_id,
                            const std::string& name_sealed, const std::string& name_tag) = 0;

  // Shares. Purging an object from the trash deletes its shares.
  virtual Result<int64_t> CreateShare(const Share& s) = 0;
  virtual Result<Share> GetShare(int64_t id) = 0;
  virtual Result<Share> GetShareByToken(const std::string& token_hash) = 0;
  virtual Result<std::vector<Share>> ListSharesOfObject(const std::string& object_id) = 0;
  // Live internal shares to the user or one of `groups`.
  virtual Result<std::vector<Share>> ListSharesTo(int64_t user_id,
                                                  const std::vector<int64_t>& groups) = 0;
  virtual Status RevokeShare(int64_t id, int64_t now) = 0;
  // Counts one link download atomically; FailedPrecondition if the link is
  // revoked, expired or at its limit.
  virtual Status CountLinkDownload(int64_t id, int64_t now) = 0;
  // Counts a wrong link password; at `max` failures the link is revoked.
  // Returns the failures so far.
  virtual Result<int64_t> CountLinkPasswordFailure(int64_t id, int64_t max, int64_t now) = 0;

  // Upload sessions.
  virtual Status CreateUpload(const UploadSession& u) = 0;
  virtual Result<UploadSession> GetUpload(const std::string& id) = 0;
  // Moves the committed offset forward (and the expiry); FailedPrecondition
  // if `from` is not the current offset (a concurrent writer).
  virtual Status AdvanceUpload(const std::string& id, uint64_t from, uint64_t to,
                               int64_t expires_micros) = 0;
  virtual Status DeleteUpload(const std::string& id) = 0;
  virtual Result<std::vector<std::string>> ExpiredUploads(int64_t now) = 0;
  // Unexpired sessions of a user (a budget on open uploads).
  virtual Result<int64_t> CountUploadsOf(int64_t user_id, int64_t now) = 0;
  // Every session's id and wrapped segment key (for KEK rotation).
  virtual Result<std::vector<std::pair<std::string, std::string>>> UploadKeys() = 0;
  virtual Status SetUploadWrappedKey(const std::string& id, const std::string& wrapped) = 0;

  virtual Result<std::optional<std::string>> GetPolicy(const std::string& key) = 0;
  virtual Status PutPolicy(const std::string& key, const std::string& value_json) = 0;

  // Download accounting for budgets.
  struct Usage {
    uint64_t bytes = 0, files = 0, individuals = 0;
  };
  virtual Status RecordDownload(int64_t time, int64_t user_id, int64_t device_id, uint64_t bytes,
                                uint64_t individuals) = 0;
  virtual Result<Usage> UsageSince(int64_t since, std::optional<int64_t> user_id,
                                   std::optional<int64_t> device_id) = 0;

  // ---- governance ----
  // Empty cidrs removes the rule.
  virtual Status PutNetworkRule(const NetworkRule& r) = 0;
  virtual Result<std::vector<NetworkRule>> ListNetworkRules() = 0;
  virtual Result<int64_t> CreateOrg(const Org& o) = 0;  // AlreadyExists on duplicate name
  virtual Status UpdateOrg(const Org& o) = 0;
  virtual Result<Org> GetOrgByName(const std::string& name) = 0;
  virtual Result<std::vector<Org>> ListOrgs() = 0;
  // A user belongs to at most one organisation; nullopt removes.
  virtual Status SetUserOrg(int64_t user_id, std::optional<int64_t> org_id) = 0;
  virtual Result<std::optional<Org>> OrgOfUser(int64_t user_id) = 0;
  virtual Result<std::vector<int64_t>> OrgMembers(int64_t org_id) = 0;
  virtual Result<int64_t> CreateApproval(const Approval& a) = 0;
  virtual Result<Approval> GetApproval(int64_t id) = 0;
  // Writes `a` only if the stored status is still `expected_status` (so two
  // approvers, or two downloads, cannot both win); FailedPrecondition if not.
  virtual Status UpdateApproval(const Approval& a, const std::string& expected_status) = 0;
  // Newest first; kind "" = all kinds; requester 0 = everyone.
  virtual Result<std::vector<Approval>> ListApprovals(const std::string& kind, int64_t requester_id,
                                                      size_t limit) = 0;

  // A consistent copy of the whole database at `path` (must not exist),
  // taken while the store stays in use (SQLite: VACUUM INTO).
  virtual Status BackupTo(const std::string& path) = 0;
};

// SQLite in WAL mode, migrated to the latest schema on open. The file is 0600.
Result<std::unique_ptr<MetaStore>> OpenSqliteMetaStore(const std::string& path);

}  // namespace mamori::vault
