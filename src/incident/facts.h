// The facts of an incident, as the rule engine reads them.
//
// This is the input half of the machine-readable contract of
// `mamori incident assess --facts FILE.json` (documented with its JSON schema
// in docs/incident.md). Parsing is strict: unknown fields, wrong types and
// out-of-range values are errors whose message names the field to fix, so a
// typo can never silently turn a reportable incident into a non-reportable one.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mamori::incident {

enum class Sector { kPrivate, kPublic };

struct Encryption {
  std::string algorithm;    // e.g. "AES-256-GCM"
  bool key_exposed = true;  // the key (or the password) may have leaked too
};

struct Facts {
  // --- the contract fields (all required) ---
  std::string aware_at;         // ISO 8601 with offset, as given
  int64_t aware_at_micros = 0;  // the same instant, parsed
  Sector sector = Sector::kPrivate;
  int64_t persons = 0;  // distinct individuals (or an upper estimate)
  std::vector<std::string> data_items;
  bool malicious_suspected = false;
  bool publicly_viewable = false;
  std::optional<Encryption> encryption;  // null: not encrypted
  bool processor_notified_controller = false;

  // --- optional extensions (documented in docs/incident.md) ---
  // People whose My Number leaked, if fewer than `persons`.
  std::optional<int64_t> my_number_persons;
  // The 特定個人情報 was in a system named in 番号法規則2条1号 (情報提供
  // ネットワークシステム, 個人番号利用事務 systems, public bodies' systems).
  bool my_number_system = false;
  // A public body: the data includes 条例要配慮個人情報 (規則43条).
  bool ordinance_sensitive = false;
  // For rule sets whose individual notice is "unless_low_risk" (the 2026
  // amendment): the business judged the risk to the individuals to be low.
  bool low_risk_to_individuals = false;
  // Free text for the documents (title, summary, cause, ...). Never parsed
  // by the rule engine.
  nlohmann::json narrative = nlohmann::json::object();
};

// Budgets for the facts file.
inline constexpr size_t kMaxFactsBytes = 1 << 20;
inline constexpr size_t kMaxDataItems = 256;
inline constexpr size_t kMaxStringBytes = 16 * 1024;
inline constexpr int64_t kMaxPersons = 10'000'000'000;

// Parses the facts JSON text. Errors name the field: "persons: must be ...".
Result<Facts> ParseFacts(std::string_view json_text);
Result<Facts> FactsFromJson(const nlohmann::json& j);
nlohmann::json FactsToJson(const Facts& facts);

std::string_view SectorName(Sector s);

}  // namespace mamori::incident
