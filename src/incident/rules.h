// Legal rule sets as data, versioned by effective date (施行日).
//
// Each YAML file in a rules directory's law/ folder is one complete version of
// the reporting rules (see rules/incident/law/*.yaml and docs/incident.md).
// The engine applies the version whose effective_from is the latest one on or
// before the awareness date in Japan. Loading is strict: a malformed file is
// an error that names the file and the key to fix.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "incident/jst_date.h"

namespace mamori::incident {

// One data item the engine knows (the `data_items` vocabulary).
struct ItemRule {
  std::string id;          // "medical"
  std::string ja;          // "病歴・診療情報"
  bool sensitive = false;  // 要配慮個人情報 (法2条3項, 令2条): 規則7条1号
  bool financial = false;  // 財産的被害のおそれ: 規則7条2号
  bool my_number = false;  // 特定個人情報: 番号法29条の4
  std::string note;        // why, with the source
};

// How the duty to notify individuals applies in this version.
enum class IndividualNotice {
  kAlways,  // 法26条2項 (2022-04-01): every reportable case
  kUnlessLowRisk,  // 2026 amendment: not when 本人の権利利益の保護に欠けるおそれが少ない
};

struct RuleSet {
  std::string id;
  std::string title;
  Date effective_from;
  std::string source_file;
  std::vector<std::string> sources;  // URLs / citations the file is built from

  std::map<std::string, ItemRule> items;

  // APPI
  int64_t private_threshold = 1000;  // 規則7条4号: more than this many people
  int64_t public_threshold = 100;    // 規則43条4号 (行政機関等)
  int preliminary_from_days = 3;     // GL 3-5-3-3: 概ね3～5日
  int preliminary_to_days = 5;
  int final_days = 30;            // 規則8条2項
  int final_days_malicious = 60;  // 規則8条2項括弧書き (7条3号)
  IndividualNotice individual_notice = IndividualNotice::kAlways;

  // My Number Act (番号法29条の4, 特定個人情報漏えい等報告規則)
  int64_t my_number_threshold = 100;  // 規則2条4号
  int my_number_final_days = 30;
  int my_number_final_days_malicious = 60;

  // The encryption exemption: algorithms on CRYPTREC's 電子政府推奨暗号リスト
  // or in ISO/IEC 18033, normalised (upper case, no spaces/underscores).
  std::map<std::string, std::string> approved_algorithms;  // normalised -> where listed
  std::map<std::string, std::string> rejected_algorithms;  // normalised -> why not

  // Normalises an algorithm name: "aes_256 gcm" -> "AES-256-GCM".
  static std::string NormalizeAlgorithm(std::string_view name);
};

// All versions found in one or more directories.
class RuleCatalog {
 public:
  // Loads every law/*.yaml under each directory (a directory without law/ is
  // read directly). Two versions with the same effective date are an error.
  static Result<RuleCatalog> Load(const std::vector<std::string>& dirs);
  // The shipped rules: $MAMORI_INCIDENT_RULES, else <source>/rules/incident.
  static std::string DefaultDirectory();
  static Result<RuleCatalog> LoadDefault();

  // The version in force on `date` (Japan calendar date of awareness).
  Result<const RuleSet*> InForce(Date date) const;
  const std::vector<std::shared_ptr<const RuleSet>>& versions() const { return versions_; }

 private:
  std::vector<std::shared_ptr<const RuleSet>> versions_;  // sorted by effective_from
};

// Parses one rule-set YAML text; `name` is used in error messages.
Result<RuleSet> ParseRuleSet(const std::string& yaml_text, const std::string& name);

}  // namespace mamori::incident
