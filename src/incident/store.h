// The incident workflow store: one SQLite database (default var/mamori.db,
// shared later with the vault), tables prefixed incident_.
//
//   incident_cases   one row per incident: the awareness time (発覚日時, which
//                    starts the legal clock and can never change) and the
//                    current facts JSON.
//   incident_events  the append-only 5W1H timeline. Every step (open, note,
//                    facts, scope, assess, docs, estimate) is one event. Rows
//                    cannot be updated or deleted (SQL triggers refuse), and
//                    each row carries SHA-256(prev_hash || content), so an
//                    edit made behind SQLite's back is found by VerifyChain.
//
// Durability: WAL journal, synchronous=FULL; every append is one IMMEDIATE
// transaction. Thread-compatible: one IncidentStore per thread.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "incident/facts.h"

namespace mamori::sqlite {
class Db;
}

namespace mamori::incident {

// One timeline entry. The 5W1H fields are free text (never raw personal
// data: refer to people by role or masked id).
struct Event {
  int64_t seq = 0;
  int64_t at_micros = 0;  // when it was recorded (injected clock)
  std::string actor;      // who recorded it
  std::string kind;       // open | note | facts | scope | assess | docs | estimate
  std::string who, what, when, where, why, how;
  nlohmann::json detail = nlohmann::json::object();
  std::string hash;
};

struct IncidentCase {
  int64_t id = 0;
  std::string title;
  std::string aware_at;  // as recorded (ISO 8601 with offset)
  int64_t aware_at_micros = 0;
  int64_t opened_at_micros = 0;
  std::string opened_by;
  Facts facts;
};

class IncidentStore {
 public:
  // Opens (creating if needed, with parent directories) the database.
  static Result<std::unique_ptr<IncidentStore>> Open(const std::string& path,
                                                     const Clock* clock = &Clock::Real());
  ~IncidentStore();
  IncidentStore(const IncidentStore&) = delete;
  IncidentStore& operator=(const IncidentStore&) = delete;

  // Opens an incident. `initial` must hold a valid aware_at; its other fields
  // are the facts known so far. Records an "open" event. Returns the id.
  Result<int64_t> Create(const std::string& title, const Facts& initial, const std::string& actor);
  Result<IncidentCase> Get(int64_t id);
  Result<std::vector<IncidentCase>> List();

  // Replaces the facts (aware_at must not change) and records a "facts" event
  // (or `kind`) with `detail`.
  Status UpdateFacts(int64_t id, const Facts& facts, const std::string& actor,
                     const std::string& kind, const nlohmann::json& detail);

  // Appends a timeline event; fills seq, at_micros and hash.
  Result<Event> Append(int64_t id, Event event);
  Result<std::vector<Event>> Timeline(int64_t id);
  // Recomputes every hash of the incident's timeline; DataLoss names the first bad seq.
  Status VerifyChain(int64_t id);

 private:
  IncidentStore(std::unique_ptr<sqlite::Db> db, const Clock* clock);
  std::unique_ptr<sqlite::Db> db_;
  const Clock* clock_;
};

// The default database path: $MAMORI_DB, else var/mamori.db.
std::string DefaultDatabasePath();

}  // namespace mamori::incident
