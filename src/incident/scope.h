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
//
// Encryption is judged per record, fail closed, and the reason is kept
// (ScopeObject::encryption_basis):
//   - an explicit labels/extra.encryption is taken as stated;
//   - a vault `get` (component "vault") delivered the plaintext: the vault
//     decrypts before sending, TLS protects only the transfer, so the copy on
//     the device is unencrypted whatever the vault's at-rest encryption;
//   - a vault `put` came from the device, whose own copy the vault cannot see:
//     unencrypted;
//   - anything else without an encryption label: unencrypted.
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
  std::string user, destination;                      // empty = any
  std::set<std::string> devices;                      // empty = any; else any of these
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
  // Why the object counts as (un)encrypted: short, distinct, plain Japanese
  // sentences (at most a few; see the file comment).
  std::set<std::string> encryption_basis;
  std::string component;  // of the first matching record ("vault", "egress", ...)
  // A record carried a complete label (types or individuals, and not
  // "scanned": false). Unlabelled objects add no people or items.
  bool labelled = false;
  // The label's individuals look too low for what it found: some personal
  // data type was found at least 10 times and more than 4x `individuals`
  // (e.g. a CSV labelled without its column headers). Warned, not changed:
  // repeated values (one signature in 50 mails) also make counts exceed people.
  bool individuals_suspect = false;
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
  // Objects without a complete label: their content is unknown, so the
  // counts above are a lower bound until someone inspects them.
  size_t unlabelled_objects = 0;
  size_t suspect_objects = 0;  // ScopeObject::individuals_suspect
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
