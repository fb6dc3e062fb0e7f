#include "incident/store.h"

#include <fmt/format.h>
#include <sodium.h>

#include <cstdlib>

#include "common/sqlite.h"

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

// Appends inside the caller's transaction.
Result<Event> AppendLocked(sqlite::Db& db, int64_t id, Event e) {
  std::string prev = kGenesis;
  e.seq = 1;
  {
    sqlite::Stmt q(
        db, "SELECT seq, hash FROM incident_events WHERE incident_id=? ORDER BY seq DESC LIMIT 1");
    ASSIGN_OR_RETURN(bool row, q.Bind(id).Step("read timeline head"));
    if (row) {
      e.seq = q.Int(0) + 1;
      prev = q.Text(1);
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
  sqlite::Stmt ins(db,
                   "INSERT INTO incident_events(incident_id, seq, at_micros, actor, kind, "
                   "body_json, prev_hash, hash) VALUES(?,?,?,?,?,?,?,?)");
  ins.Bind(id)
      .Bind(e.seq)
      .Bind(e.at_micros)
      .Bind(e.actor)
      .Bind(e.kind)
      .Bind(body)
      .Bind(prev)
      .Bind(e.hash);
  RETURN_IF_ERROR(ins.Run("append event"));
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
  // WAL + synchronous=FULL: a committed step survives a crash or kill -9.
  sqlite::OpenOptions o;
  o.context = "incident database " + path;
  o.file_mode = 0600;  // the timeline names users and holds the facts of the incident
  ASSIGN_OR_RETURN(auto db, sqlite::Db::Open(path, o));
  RETURN_IF_ERROR(db->Exec(kSchema, "create the incident tables"));
  return std::unique_ptr<IncidentStore>(new IncidentStore(std::move(db), clock));
}

IncidentStore::IncidentStore(std::unique_ptr<sqlite::Db> db, const Clock* clock)
    : db_(std::move(db)), clock_(clock) {}

IncidentStore::~IncidentStore() = default;

Result<int64_t> IncidentStore::Create(const std::string& title, const Facts& initial,
                                      const std::string& actor) {
  if (title.empty() || title.size() > 1024) {
    return InvalidArgument("title: must be 1 to 1024 bytes");
  }
  ASSIGN_OR_RETURN(auto t, sqlite::Transaction::Begin(*db_));
  int64_t now = clock_->NowMicros();
  sqlite::Stmt ins(*db_,
                   "INSERT INTO incident_cases(title, aware_at, aware_at_micros, opened_at_micros, "
                   "opened_by, facts_json) VALUES(?,?,?,?,?,?)");
  ins.Bind(title)
      .Bind(initial.aware_at)
      .Bind(initial.aware_at_micros)
      .Bind(now)
      .Bind(actor)
      .Bind(FactsToJson(initial).dump());
  RETURN_IF_ERROR(ins.Run("create incident"));
  int64_t id = db_->LastInsertRowId();
  Event e;
  e.at_micros = now;
  e.actor = actor;
  e.kind = "open";
  e.what = "インシデントを登録（発覚日時の記録: 法定期限の起算点）";
  e.when = initial.aware_at;
  e.detail = {{"title", title}, {"facts", FactsToJson(initial)}};
  ASSIGN_OR_RETURN(Event stored, AppendLocked(*db_, id, std::move(e)));
  (void)stored;
  RETURN_IF_ERROR(t.Commit());
  return id;
}

Result<IncidentCase> IncidentStore::Get(int64_t id) {
  sqlite::Stmt q(*db_,
                 "SELECT id, title, aware_at, aware_at_micros, opened_at_micros, opened_by, "
                 "facts_json FROM incident_cases WHERE id=?");
  ASSIGN_OR_RETURN(bool row, q.Bind(id).Step("read incident"));
  if (!row) {
    return NotFound(
        fmt::format("incident {} does not exist; list them with `mamori incident list`", id));
  }
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
    sqlite::Stmt q(*db_, "SELECT id FROM incident_cases ORDER BY id");
    while (true) {
      ASSIGN_OR_RETURN(bool row, q.Step("list incidents"));
      if (!row) break;
      ids.push_back(q.Int(0));
    }
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
  ASSIGN_OR_RETURN(auto t, sqlite::Transaction::Begin(*db_));
  {
    sqlite::Stmt q(*db_, "SELECT aware_at_micros FROM incident_cases WHERE id=?");
    ASSIGN_OR_RETURN(bool row, q.Bind(id).Step("read incident"));
    if (!row) return NotFound(fmt::format("incident {} does not exist", id));
    if (q.Int(0) != facts.aware_at_micros) {
      return FailedPrecondition(
          "aware_at: the awareness time of an incident cannot change once recorded; add a note "
          "explaining the correction, or open a new incident");
    }
  }
  sqlite::Stmt up(*db_, "UPDATE incident_cases SET facts_json=? WHERE id=?");
  RETURN_IF_ERROR(up.Bind(FactsToJson(facts).dump()).Bind(id).Run("update facts"));
  Event e;
  e.at_micros = clock_->NowMicros();
  e.actor = actor;
  e.kind = kind;
  e.what = kind == "facts" ? "事実関係を更新" : "事実関係を更新（" + kind + "）";
  e.detail = detail;
  e.detail["facts"] = FactsToJson(facts);
  ASSIGN_OR_RETURN(Event stored, AppendLocked(*db_, id, std::move(e)));
  (void)stored;
  return t.Commit();
}

Result<Event> IncidentStore::Append(int64_t id, Event event) {
  ASSIGN_OR_RETURN(auto t, sqlite::Transaction::Begin(*db_));
  {
    sqlite::Stmt q(*db_, "SELECT 1 FROM incident_cases WHERE id=?");
    ASSIGN_OR_RETURN(bool row, q.Bind(id).Step("read incident"));
    if (!row) {
      return NotFound(
          fmt::format("incident {} does not exist; list them with `mamori incident list`", id));
    }
  }
  event.at_micros = clock_->NowMicros();
  ASSIGN_OR_RETURN(Event stored, AppendLocked(*db_, id, std::move(event)));
  RETURN_IF_ERROR(t.Commit());
  return stored;
}

Result<std::vector<Event>> IncidentStore::Timeline(int64_t id) {
  sqlite::Stmt q(*db_,
                 "SELECT seq, at_micros, actor, kind, body_json, hash FROM incident_events WHERE "
                 "incident_id=? ORDER BY seq");
  q.Bind(id);
  std::vector<Event> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step("read timeline"));
    if (!row) break;
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
  return out;
}

Status IncidentStore::VerifyChain(int64_t id) {
  sqlite::Stmt q(*db_,
                 "SELECT seq, at_micros, actor, kind, body_json, prev_hash, hash FROM "
                 "incident_events WHERE incident_id=? ORDER BY seq");
  q.Bind(id);
  std::string prev = kGenesis;
  int64_t expect = 1;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step("read timeline"));
    if (!row) break;
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
  if (expect == 1) return NotFound(fmt::format("incident {} has no timeline", id));
  return Status::Ok();
}

}  // namespace mamori::incident
