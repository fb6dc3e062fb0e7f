#include "common/sqlite.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>

namespace mamori::sqlite {
namespace {

Status Map(int rc, int extended, const std::string& message) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (extended == SQLITE_CONSTRAINT_UNIQUE || extended == SQLITE_CONSTRAINT_PRIMARYKEY)
        return AlreadyExists(message);
      return FailedPrecondition(message);
    case SQLITE_FULL:
      return ResourceExhausted(message + " (the disk is full)");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLoss(message + " (the database file is damaged; restore it from a backup)");
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return PermissionDenied(message);
    case SQLITE_TOOBIG:
      return ResourceExhausted(message);
    default:
      return Unavailable(message);
  }
}

}  // namespace

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, const OpenOptions& o) {
  bool create = o.create && !o.read_only;
  if (create) {
    std::error_code ec;
    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec)
      return Unavailable(o.context + ": cannot create " + parent.string() + ": " + ec.message());
  } else if (!std::filesystem::exists(path)) {
    return NotFound(o.context + ": " + path + " does not exist");
  }
  int flags = SQLITE_OPEN_FULLMUTEX |
              (o.read_only ? SQLITE_OPEN_READONLY
                           : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0));
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close(raw);
    return Map(rc, rc, o.context + ": cannot open " + path + ": " + msg);
  }
  std::unique_ptr<Db> db(new Db(raw, path, o.context));
  sqlite3_extended_result_codes(raw, 1);
  if (o.file_mode != 0) ::chmod(path.c_str(), static_cast<mode_t>(o.file_mode));
  sqlite3_busy_timeout(raw, o.busy_timeout_ms);
  if (!o.read_only && o.wal) RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL", "set WAL"));
  RETURN_IF_ERROR(
      db->Exec(o.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
               "set synchronous"));
  if (o.foreign_keys) RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys=ON", "set foreign_keys"));
  // A file that is not a database fails only on first use; find out now.
  RETURN_IF_ERROR(db->Exec("SELECT count(*) FROM sqlite_master", "read the schema"));
  return db;
}

Db::~Db() { sqlite3_close_v2(db_); }

Status Db::Exec(std::string_view sql, std::string_view what) {
  std::string s(sql);  // sqlite3_exec needs a terminated string
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err ? err : sqlite3_errmsg(db_);
  sqlite3_free(err);
  return Map(rc, sqlite3_extended_errcode(db_), context_ + ": " + std::string(what) + ": " + msg);
}

int64_t Db::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

Status Db::Error(std::string_view what) const {
  int rc = sqlite3_errcode(db_);
  return Map(rc == SQLITE_OK ? SQLITE_ERROR : rc, sqlite3_extended_errcode(db_),
             context_ + ": " + std::string(what) + ": " + sqlite3_errmsg(db_));
}

Stmt::Stmt(Db& db, std::string_view sql) : db_(db) {
  prepare_rc_ =
      sqlite3_prepare_v2(db.raw(), sql.data(), static_cast<int>(sql.size()), &st_, nullptr);
  if (prepare_rc_ != SQLITE_OK) prepare_error_ = sqlite3_errmsg(db.raw());
}

Stmt::~Stmt() { sqlite3_finalize(st_); }

Stmt& Stmt::Bind(int64_t v) {
  if (st_) sqlite3_bind_int64(st_, ++idx_, v);
  return *this;
}
Stmt& Stmt::Bind(std::string_view v) {
  if (st_) sqlite3_bind_text(st_, ++idx_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindBlob(std::string_view v) {
  if (st_) sqlite3_bind_blob(st_, ++idx_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindNull() {
  if (st_) sqlite3_bind_null(st_, ++idx_);
  return *this;
}

Result<bool> Stmt::Step(std::string_view what) {
  if (prepare_rc_ != SQLITE_OK || !st_) {
    // A bug in our SQL, or a schema the binary does not know.
    return Internal(db_.context() + ": prepare (" + std::string(what) + "): " + prepare_error_);
  }
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Map(rc, sqlite3_extended_errcode(db_.raw()),
             db_.context() + ": " + std::string(what) + ": " + sqlite3_errmsg(db_.raw()));
}

Status Stmt::Run(std::string_view what) {
  ASSIGN_OR_RETURN(bool row, Step(what));
  if (row) return Internal(db_.context() + ": " + std::string(what) + ": returned a row");
  return Status::Ok();
}

void Stmt::Reset() {
  if (!st_) return;
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
  idx_ = 0;
}

int64_t Stmt::Int(int col) const { return sqlite3_column_int64(st_, col); }

std::string Stmt::Text(int col) const {
  const void* p = sqlite3_column_blob(st_, col);
  int n = sqlite3_column_bytes(st_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

bool Stmt::IsNull(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }

Result<Transaction> Transaction::Begin(Db& db) {
  RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE", "begin"));
  return Transaction(db);
}

Transaction::~Transaction() {
  if (open_) (void)db_->Exec("ROLLBACK", "rollback");
}

Status Transaction::Commit() {
  if (!open_) return Internal(db_->context() + ": commit without an open transaction");
  Status s = db_->Exec("COMMIT", "commit");
  // A failed COMMIT leaves the transaction open; the destructor rolls it back.
  if (s.ok()) open_ = false;
  return s;
}

}  // namespace mamori::sqlite
