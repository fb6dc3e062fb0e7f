// The rule engine: from the facts of an incident to the legal duties under
// APPI (法26条, 規則7条–10条, 43条) and the My Number Act (番号法29条の4).
//
// Output is the machine-readable contract of `mamori incident assess
// --format json` (docs/incident.md, with its JSON schema):
//   {"appi": {...}, "my_number": {...}, "reasons": [...], plus context keys}
// Every conclusion comes with a reason in plain Japanese citing the article.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "incident/facts.h"
#include "incident/jst_date.h"
#include "incident/rules.h"

namespace mamori::incident {

struct AppiDuty {
  // Items of 規則7条 (or 規則43条 for public bodies) the facts match,
  // before any exemption. Sorted, from {1, 2, 3, 4}.
  std::vector<int> triggers;
  bool report_required = false;
  // "encryption" (高度な暗号化), "processor" (委託先が委託元に通知済み), or empty.
  std::string exempt;
  std::optional<Date> preliminary_from, preliminary_to;  // 速報 target range
  std::optional<Date> final_due;                         // 確報 deadline
  std::optional<Date> final_due_civil_code;              // 民法140条 reading
  int final_days = 0;                                    // 30 or 60
  bool notify_individuals = false;
};

struct MyNumberDuty {
  bool applicable = false;    // 特定個人情報 is involved
  std::vector<int> triggers;  // items of 特定個人情報漏えい等報告規則2条
  bool report_required = false;
  std::string exempt;
  std::optional<Date> preliminary_from, preliminary_to;
  std::optional<Date> final_due;
  std::optional<Date> final_due_civil_code;
  int final_days = 0;
  bool notify_individuals = false;
};

struct Assessment {
  std::string rule_set_id;
  Date rule_set_effective_from;
  Date aware_date;           // Japan calendar date of awareness (day 1)
  std::string aware_at_jst;  // the instant, shown in Japan time
  AppiDuty appi;
  MyNumberDuty my_number;
  std::vector<std::string> reasons;  // plain Japanese, with articles
  std::vector<std::string> notes;    // readings, caveats, what remains to do
};

// Runs the engine with the rule set in force on the awareness date.
// Errors: an unknown data item (InvalidArgument naming it and the known
// ones), or an awareness date before every rule set (FailedPrecondition).
Result<Assessment> Assess(const Facts& facts, const RuleCatalog& catalog);

// The contract JSON (dates as "YYYY-MM-DD").
nlohmann::json AssessmentToJson(const Assessment& a);

// A human summary in Japanese (for `--format text` and the documents).
std::string AssessmentToText(const Assessment& a);

}  // namespace mamori::incident
