// Scoping an incident from the audit trail: which objects left, and what
// they hold.
//
// Reads audit records either through the src/audit reader API (the live,
// hash-chained log) or from an exported JSONL file (`mamori audit export
// --format jsonl`: one Record per line with seq, time, component, event_id,
// user, device, source_ip, org, action, object, destination, bytes, result,
// reason, labels, extra). Selects records by user, device, destination, time
// window and action, collects the distinct objects, and from their labels
// computes the data items, the number of distinct individuals and whether
// every object was encrypted with a key that was not exposed.
//
// Labels read: labels.types {detector type: count}, labels.individuals (int),
// optional labels.person_hashes [keyed hashes, see common/redact.h], optional
// labels.encryption or extra.encryption {"algorithm": ..., "key_exposed": bool}.
#pragma once

#include <istream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "incident/facts.h"

namespace mamori::incident {

struct ScopeQuery {
  std::string user, device, destination;              // empty = any
  std::optional<int64_t> since_micros, until_micros;  // [since, until)
  std::set<std::string> actions;                      // empty = any action
  // By default only records whose result is "allow" (or empty) count: a
  // denied or held transfer did not move data. Set to count every record.
  bool include_denied = false;
};

// Detector type -> data item (rules/incident/labels.yaml).
struct LabelMap {
  std::map<std::string, std::optional<std::string>> types;  // nullopt = ignore
  static Result<LabelMap> Parse(const std::string& yaml_text, const std::string& name);
  static Result<LabelMap> LoadDefault();
};

struct ScopeObject {
  std::string object;
  int64_t first_micros = 0, last_micros = 0;
  uint64_t records = 0, bytes = 0;
  std::set<std::string> users, devices, destinations, actions, event_ids;
  std::map<std::string, int64_t> types;  // detector type -> max count seen
  int64_t individuals = 0;               // max labels.individuals seen
  std::set<std::string> person_hashes;
  bool encrypted = false;  // every record of it says encrypted
  bool key_exposed = true;
  std::string algorithm;
};

struct ScopeResult {
  uint64_t records_scanned = 0, records_matched = 0;
  std::vector<ScopeObject> objects;         // sorted by object id
  std::vector<std::string> data_items;      // mapped, sorted, distinct
  std::vector<std::string> unmapped_types;  // kept as "other:<type>" in data_items
  int64_t persons = 0;
  // "dedup" (every object carried person hashes: distinct hashes counted),
  // "sum" (no hashes: labels.individuals summed over distinct objects, an
  // upper bound), or "mixed" (hash union + sum of the rest).
  std::string person_method;
  std::optional<Encryption> encryption;  // set only if every object was encrypted
  bool any_unencrypted = false;
};

struct ScopeBudgets {
  size_t max_line_bytes = 1 << 20;
  uint64_t max_records = 100'000'000;
  size_t max_objects = 1'000'000;
  size_t max_person_hashes = 10'000'000;
};

Result<ScopeResult> ScopeFromJsonl(const std::string& path, const ScopeQuery& query,
                                   const LabelMap& labels, const ScopeBudgets& budgets = {});
// The same, from any stream; `name` is used in error messages.
Result<ScopeResult> ScopeFromJsonlStream(std::istream& in, const std::string& name,
                                         const ScopeQuery& query, const LabelMap& labels,
                                         const ScopeBudgets& budgets = {});
Result<ScopeResult> ScopeFromAuditLog(const std::string& path, const ScopeQuery& query,
                                      const LabelMap& labels, const ScopeBudgets& budgets = {});

// The facts after scoping: persons, data_items and encryption come from the
// scope (data items are merged with those already recorded).
Facts ApplyScope(const Facts& before, const ScopeResult& scope);

}  // namespace mamori::incident
