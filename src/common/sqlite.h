// A small RAII wrapper over SQLite 3, shared by the components that keep
// their state in SQLite (incident; the vault's metadata store later).
//
//   auto db = sqlite::Db::Open(path, {.context = "incident database"});
//   ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(**db));   // IMMEDIATE
//   sqlite::Stmt s(**db, "INSERT INTO t(a, b) VALUES(?, ?)");
//   s.Bind(int64_t{1}).Bind("text");
//   RETURN_IF_ERROR(s.Run());
//   RETURN_IF_ERROR(tx.Commit());          // rolled back if never committed
//
// Every error is a Status whose message starts with the database's context
// and what was being done ("incident database: append event: ..."), with the
// code chosen from SQLite's result: a UNIQUE or PRIMARY KEY violation is
// AlreadyExists, any other constraint (CHECK, trigger RAISE) FailedPrecondition,
// a full disk ResourceExhausted, a corrupt file DataLoss, everything else
// (busy after the timeout, I/O) Unavailable. Nothing throws.
//
// Thread-compatible: a Db is opened with SQLITE_OPEN_FULLMUTEX, but a Stmt or
// Transaction belongs to one thread at a time; callers that share a Db across
// threads serialise their own multi-statement work.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace mamori::sqlite {

struct OpenOptions {
  // Prefix of every error message, so the user knows which file is at fault.
  std::string context = "database";
  bool create = true;            // create the file (and its parent directories)
  bool read_only = false;        // open read-only; implies !create
  int busy_timeout_ms = 10000;   // wait this long for another writer, then fail
  bool wal = true;               // journal_mode=WAL (not applied read-only)
  bool synchronous_full = true;  // synchronous=FULL, else NORMAL
  bool foreign_keys = true;      // PRAGMA foreign_keys=ON
  int file_mode = 0;             // if non-zero, chmod the file (e.g. 0600)
};

class Stmt;

class Db {
 public:
  static Result<std::unique_ptr<Db>> Open(const std::string& path, const OpenOptions& options = {});
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more SQL statements without results (schema, PRAGMA, BEGIN).
  Status Exec(std::string_view sql, std::string_view what = "exec");
  int64_t LastInsertRowId() const;
  // The error of the last failed call, mapped as described above.
  Status Error(std::string_view what) const;
  const std::string& context() const { return context_; }
  const std::string& path() const { return path_; }
  sqlite3* raw() const { return db_; }

 private:
  Db(sqlite3* db, std::string path, std::string context)
      : db_(db), path_(std::move(path)), context_(std::move(context)) {}
  sqlite3* db_;
  std::string path_, context_;
};

// A prepared statement. Bind() fills the parameters in order (1, 2, ...).
// A preparation error is reported by the first Step()/Run().
class Stmt {
 public:
  Stmt(Db& db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int64_t v);
  Stmt& Bind(std::string_view text);
  Stmt& Bind(const char* text) { return Bind(std::string_view(text)); }
  Stmt& Bind(const std::string& text) { return Bind(std::string_view(text)); }
  Stmt& BindBlob(std::string_view bytes);
  Stmt& BindNull();

  // true: a row is ready; false: done. Errors name `what`.
  Result<bool> Step(std::string_view what = "query");
  // Steps once and expects no row (INSERT, UPDATE, DELETE).
  Status Run(std::string_view what = "write");
  // Resets for another execution with new bindings.
  void Reset();

  int64_t Int(int col) const;
  // Text or blob bytes of a column; empty for NULL.
  std::string Text(int col) const;
  bool IsNull(int col) const;

 private:
  Db& db_;
  sqlite3_stmt* st_ = nullptr;
  int prepare_rc_;
  std::string prepare_error_;
  int idx_ = 0;
};

// BEGIN IMMEDIATE (the write lock is taken at once, so two writers never
// deadlock in the middle of a transaction) ... COMMIT; rolled back on
// destruction unless committed.
class Transaction {
 public:
  static Result<Transaction> Begin(Db& db);
  Transaction(Transaction&& o) noexcept : db_(o.db_), open_(o.open_) { o.open_ = false; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Db& db) : db_(&db), open_(true) {}
  Db* db_;
  bool open_;
};

}  // namespace mamori::sqlite
