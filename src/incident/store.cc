#include "incident/store.h"

#include <fmt/format.h>
#include <sodium.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>

namespace mamori::incident {
namespace {

constexpr size_t kMaxEventBytes = 256 * 1024;
constexpr size_t kMaxTimeline = 100'000;

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS incident_cases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  title TEXT NOT NULL,
  aware_at TEXT NOT NULL,
  aware_at_micros INTEGER NOT NULL,
  opened_at_micros INTEGER NOT NULL,
  opened_by TEXT NOT NULL,
  facts_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS incident_events (
  incident_id INTEGER NOT NULL REFERENCES incident_cases(id),
  seq INTEGER NOT NULL,
  at_micros INTEGER NOT NULL,
  actor TEXT NOT NULL,
  kind TEXT NOT NULL,
  body_json TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  PRIMARY KEY (incident_id, seq)
);
CREATE TRIGGER IF NOT EXISTS incident_events_no_update BEFORE UPDATE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS incident_events_no_delete BEFORE DELETE ON incident_events
BEGIN SELECT RAISE(ABORT, 'incident_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS incident_cases_clock_fixed
BEFORE UPDATE OF aware_at, aware_at_micros, opened_at_micros, opened_by ON incident_cases
BEGIN SELECT RAISE(ABORT, 'the awareness time of an incident cannot change'); END;
CREATE TRIGGER IF NOT EXISTS incident_cases_no_delete BEFORE DELETE ON incident_cases
BEGIN SELECT RAISE(ABORT, 'incidents cannot be deleted'); END;
)sql";

const char* kGenesis = "0000000000000000000000000000000000000000000000000000000000000000";

std::string Sha256Hex(const std::string& data) {
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : out) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

// The hashed content of an event: fixed field order, JSON-escaped.
std::string Canonical(int64_t incident_id, const Event& e, const std::string& body,
                      const std::string& prev) {
  nlohmann::json j = {
      {"incident", incident_id}, {"seq", e.seq}, {"at", e.at_micros}, {"actor", e.actor},
      {"kind", e.kind},          {"body", body}, {"prev", prev}};
  return j.dump();
}

nlohmann::json Body(const Event& e) {
  return {{"who", e.who}, {"what", e.what}, {"when", e.when},    {"where", e.where},
          {"why", e.why}, {"how", e.how},   {"detail", e.detail}};
}

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return s_; }
  void Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  int Step() { return sqlite3_step(s_); }
  std::string Text(int i) {
    auto p = sqlite3_column_text(s_, i);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, i)) : "";
  }
  int64_t Int(int i) { return sqlite3_column_int64(s_, i); }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

Status DbError(sqlite3* db, std::string_view what) {
  return Unavailable(fmt::format("incident database: {}: {}", what, sqlite3_errmsg(db)));
}

// Rolls back unless committed.
class Txn {
 public:
  explicit Txn(sqlite3* db) : db_(db) {}
  Status Begin() {
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return DbError(db_, "begin");
    }
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return DbError(db_, "commit");
    }
    open_ = false;
    return Status::Ok();
  }
  ~Txn() {
    if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

Result<Event> AppendLocked(sqlite3* db, int64_t id, Event e) {
  std::string prev = kGenesis;
  e.seq = 1;
  {
    Stmt q(db,
           "SELECT seq, hash FROM incident_events WHERE incident_id=? ORDER BY seq DESC LIMIT 1");
    if (!q.ok()) return DbError(db, "prepare");
    q.Bind(1, id);
    int rc = q.Step();
    if (rc == SQLITE_ROW) {
      e.seq = q.Int(0) + 1;
      prev = q.Text(1);
    } else if (rc != SQLITE_DONE) {
      return DbError(db, "read timeline head");
    }
  }
  if (e.seq > static_cast<int64_t>(kMaxTimeline)) {
    return ResourceExhausted(fmt::format("incident {} has {} events, the limit", id, kMaxTimeline));
  }
  std::string body = Body(e).dump();
  if (body.size() > kMaxEventBytes) {
    return ResourceExhausted(
        fmt::format("timeline event is {} bytes, over the limit of {}; shorten it", body.size(),
                    kMaxEventBytes));
  }
  e.hash = Sha256Hex(Canonical(id, e, body, prev));
  Stmt ins(db,
           "INSERT INTO incident_events(incident_id, seq, at_micros, actor, kind, body_json, "
           "prev_hash, hash) VALUES(?,?,?,?,?,?,?,?)");
  if (!ins.ok()) return DbError(db, "prepare");
  ins.Bind(1, id);
  ins.Bind(2, e.seq);
  ins.Bind(3, e.at_micros);
  ins.Bind(4, e.actor);
  ins.Bind(5, e.kind);
  ins.Bind(6, body);
  ins.Bind(7, prev);
  ins.Bind(8, e.hash);
  if (ins.Step() != SQLITE_DONE) return DbError(db, "append event");
  return e;
}

}  // namespace

std::string DefaultDatabasePath() {
  if (const char* env = std::getenv("MAMORI_DB"); env && *env) return env;
  return "var/mamori.db";
}

Result<std::unique_ptr<IncidentStore>> IncidentStore::Open(const std::string& path,
                                                           const Clock* clock) {
  if (sodium_init() < 0) return Internal("libsodium failed to initialise");
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    return Unavailable(
        fmt::format("cannot create {} for the database: {}", parent.string(), ec.message()));
  }
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Unavailable(fmt::format("cannot open the incident database {}: {}", path, msg));
  }
  std::unique_ptr<IncidentStore> s(new IncidentStore(db, clock));
  sqlite3_busy_timeout(db, 10000);
  RETURN_IF_ERROR(s->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(s->Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(s->Exec("PRAGMA foreign_keys=ON"));
  RETURN_IF_ERROR(s->Exec(kSchema));
  return s;
}

IncidentStore::~IncidentStore() { sqlite3_close(db_); }

Status IncidentStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Unavailable("incident database: " + msg);
  }
  return Status::Ok();
}

Result<int64_t> IncidentStore::Create(const std::string& title, const Facts& initial,
                                      const std::string& actor) {
  if (title.empty() || title.size() > 1024) {
    return InvalidArgument("title: must be 1 to 1024 bytes");
  }
  Txn t(db_);
  RETURN_IF_ERROR(t.Begin());
  int64_t now = clock_->NowMicros();
  Stmt ins(db_,
           "INSERT INTO incident_cases(title, aware_at, aware_at_micros, opened_at_micros, "
           "opened_by, facts_json) VALUES(?,?,?,?,?,?)");
  if (!ins.ok()) return DbError(db_, "prepare");
  ins.Bind(1, title);
  ins.Bind(2, initial.aware_at);
  ins.Bind(3, initial.aware_at_micros);
  ins.Bind(4, now);
  ins.Bind(5, actor);
  ins.Bind(6, FactsToJson(initial).dump());
  if (ins.Step() != SQLITE_DONE) return DbError(db_, "create incident");
  int64_t id = sqlite3_last_insert_rowid(db_);
  Event e;
  e.at_micros = now;
  e.actor = actor;
  e.kind = "open";
  e.what = "インシデントを登録（発覚日時の記録: 法定期限の起算点）";
  e.when = initial.aware_at;
  e.detail = {{"title", title}, {"facts", FactsToJson(initial)}};
  ASSIGN_OR_RETURN(Event stored, AppendLocked(db_, id, std::move(e)));
  (void)stored;
  RETURN_IF_ERROR(t.Commit());
  return id;
}

Result<IncidentCase> IncidentStore::Get(int64_t id) {
  Stmt q(db_,
         "SELECT id, title, aware_at, aware_at_micros, opened_at_micros, opened_by, facts_json "
         "FROM incident_cases WHERE id=?");
  if (!q.ok()) return DbError(db_, "prepare");
  q.Bind(1, id);
  int rc = q.Step();
  if (rc == SQLITE_DONE) {
    return NotFound(
        fmt::format("incident {} does not exist; list them with `mamori incident list`", id));
  }
  if (rc != SQLITE_ROW) return DbError(db_, "read incident");
  IncidentCase c;
  c.id = q.Int(0);
  c.title = q.Text(1);
  c.aware_at = q.Text(2);
  c.aware_at_micros = q.Int(3);
  c.opened_at_micros = q.Int(4);
  c.opened_by = q.Text(5);
  auto facts = ParseFacts(q.Text(6));
  if (!facts.ok()) {
    return DataLoss(
        fmt::format("incident {}: stored facts are invalid: {}", id, facts.status().message()));
  }
  c.facts = std::move(facts).value();
  return c;
}

Result<std::vector<IncidentCase>> IncidentStore::List() {
  std::vector<int64_t> ids;
  {
    Stmt q(db_, "SELECT id FROM incident_cases ORDER BY id");
    if (!q.ok()) return DbError(db_, "prepare");
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) ids.push_back(q.Int(0));
    if (rc != SQLITE_DONE) return DbError(db_, "list incidents");
  }
  std::vector<IncidentCase> out;
  for (int64_t id : ids) {
    ASSIGN_OR_RETURN(IncidentCase c, Get(id));
    out.push_back(std::move(c));
  }
  return out;
}

Status IncidentStore::UpdateFacts(int64_t id, const Facts& facts, const std::string& actor,
                                  const std::string& kind, const nlohmann::json& detail) {
  Txn t(db_);
  RETURN_IF_ERROR(t.Begin());
  {
    Stmt q(db_, "SELECT aware_at_micros FROM incident_cases WHERE id=?");
    if (!q.ok()) return DbError(db_, "prepare");
    q.Bind(1, id);
    int rc = q.Step();
    if (rc == SQLITE_DONE) return NotFound(fmt::format("incident {} does not exist", id));
    if (rc != SQLITE_ROW) return DbError(db_, "read incident");
    if (q.Int(0) != facts.aware_at_micros) {
      return FailedPrecondition(
          "aware_at: the awareness time of an incident cannot change once recorded; add a note "
          "explaining the correction, or open a new incident");
    }
  }
  Stmt up(db_, "UPDATE incident_cases SET facts_json=? WHERE id=?");
  if (!up.ok()) return DbError(db_, "prepare");
  up.Bind(1, FactsToJson(facts).dump());
  up.Bind(2, id);
  if (up.Step() != SQLITE_DONE) return DbError(db_, "update facts");
  Event e;
  e.at_micros = clock_->NowMicros();
  e.actor = actor;
  e.kind = kind;
  e.what = kind == "facts" ? "事実関係を更新" : "事実関係を更新（" + kind + "）";
  e.detail = detail;
  e.detail["facts"] = FactsToJson(facts);
  ASSIGN_OR_RETURN(Event stored, AppendLocked(db_, id, std::move(e)));
  (void)stored;
  return t.Commit();
}

Result<Event> IncidentStore::Append(int64_t id, Event event) {
  Txn t(db_);
  RETURN_IF_ERROR(t.Begin());
  {
    Stmt q(db_, "SELECT 1 FROM incident_cases WHERE id=?");
    if (!q.ok()) return DbError(db_, "prepare");
    q.Bind(1, id);
    if (q.Step() != SQLITE_ROW) {
      return NotFound(
          fmt::format("incident {} does not exist; list them with `mamori incident list`", id));
    }
  }
  event.at_micros = clock_->NowMicros();
  ASSIGN_OR_RETURN(Event stored, AppendLocked(db_, id, std::move(event)));
  RETURN_IF_ERROR(t.Commit());
  return stored;
}

Result<std::vector<Event>> IncidentStore::Timeline(int64_t id) {
  Stmt q(db_,
         "SELECT seq, at_micros, actor, kind, body_json, hash FROM incident_events WHERE "
         "incident_id=? ORDER BY seq");
  if (!q.ok()) return DbError(db_, "prepare");
  q.Bind(1, id);
  std::vector<Event> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    Event e;
    e.seq = q.Int(0);
    e.at_micros = q.Int(1);
    e.actor = q.Text(2);
    e.kind = q.Text(3);
    auto body = nlohmann::json::parse(q.Text(4), nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return DataLoss(fmt::format("incident {} event {}: body is not JSON", id, e.seq));
    }
    e.who = body.value("who", "");
    e.what = body.value("what", "");
    e.when = body.value("when", "");
    e.where = body.value("where", "");
    e.why = body.value("why", "");
    e.how = body.value("how", "");
    e.detail = body.value("detail", nlohmann::json::object());
    e.hash = q.Text(5);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return DbError(db_, "read timeline");
  return out;
}

Status IncidentStore::VerifyChain(int64_t id) {
  Stmt q(db_,
         "SELECT seq, at_micros, actor, kind, body_json, prev_hash, hash FROM incident_events "
         "WHERE incident_id=? ORDER BY seq");
  if (!q.ok()) return DbError(db_, "prepare");
  q.Bind(1, id);
  std::string prev = kGenesis;
  int64_t expect = 1;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    Event e;
    e.seq = q.Int(0);
    e.at_micros = q.Int(1);
    e.actor = q.Text(2);
    e.kind = q.Text(3);
    std::string body = q.Text(4);
    if (e.seq != expect) {
      return DataLoss(fmt::format("incident {}: timeline event {} is missing", id, expect));
    }
    if (q.Text(5) != prev) {
      return DataLoss(
          fmt::format("incident {}: event {} does not chain to event {}", id, e.seq, e.seq - 1));
    }
    std::string h = Sha256Hex(Canonical(id, e, body, prev));
    if (h != q.Text(6)) {
      return DataLoss(fmt::format("incident {}: event {} was modified (hash mismatch)", id, e.seq));
    }
    prev = h;
    ++expect;
  }
  if (rc != SQLITE_DONE) return DbError(db_, "read timeline");
  if (expect == 1) return NotFound(fmt::format("incident {} has no timeline", id));
  return Status::Ok();
}

}  // namespace mamori::incident
