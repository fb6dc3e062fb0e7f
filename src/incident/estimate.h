// Cost estimate of a personal-data leak, two ways:
//  1. the JNSA JO model (想定損害賠償額), per person
//     500 × (10^(x−1) + 5^(y−1)) × 本人特定容易度 × 社会的責任度 × 事後対応評価,
//     with the item -> (x, y) mapping as data (rules/incident/jo_model.yaml);
//  2. a response-cost model with editable unit costs
//     (rules/incident/response_costs.yaml).
// All amounts are whole yen (int64); no floating point in the JO model.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace mamori::incident {

struct JoItem {
  int x = 1;  // 精神的苦痛レベル
  int y = 1;  // 経済的損失レベル
  std::string ja;
};

struct JoIdentifiabilityRule {
  int factor = 1;
  std::vector<std::string> all_of;
  std::string ja;
};

struct JoModel {
  int64_t base_value = 500;
  std::map<std::string, JoItem> items;
  std::vector<JoIdentifiabilityRule> identifiability;  // first match wins

  static Result<JoModel> Parse(const std::string& yaml_text, const std::string& name);
  static Result<JoModel> LoadDefault();  // <rules>/jo_model.yaml
};

enum class SocialResponsibility { kNormal = 1, kHigh = 2 };            // 社会的責任度
enum class ResponseRating { kAppropriate, kInappropriate, kUnknown };  // 事後対応評価

struct JoInput {
  std::vector<std::string> items;  // data_items; "other:..." items are ignored
  int64_t persons = 0;
  SocialResponsibility social = SocialResponsibility::kNormal;
  ResponseRating response = ResponseRating::kUnknown;
};

struct JoResult {
  int x = 1, y = 1;
  std::string x_item, y_item;  // the items that set the maxima
  int64_t sensitivity = 0;     // 機微情報度 10^(x-1) + 5^(y-1)
  int identifiability = 1;     // 本人特定容易度
  std::string identifiability_ja;
  int social = 1, response = 1;
  int64_t per_person = 0;          // 円
  int64_t total = 0;               // 円, per_person × persons
  std::vector<std::string> steps;  // the calculation, in Japanese
};

// Errors: an item missing from the model (add it to jo_model.yaml), or a
// total that would overflow.
Result<JoResult> EstimateJo(const JoModel& model, const JoInput& in);

struct ResponseCosts {
  int64_t notification_letter = 150, apology_voucher = 500, card_reissue = 500;
  int64_t call_setup = 1'000'000, cost_per_call = 1'500;
  double call_rate = 0.10;
  int64_t forensics = 3'000'000, legal = 1'000'000, public_notice = 0;
  int64_t annual_profit = 0;
  double lost_profit_fraction = 0;

  static Result<ResponseCosts> Parse(const std::string& yaml_text, const std::string& name);
  static Result<ResponseCosts> LoadDefault();  // <rules>/response_costs.yaml
};

struct CostLine {
  std::string key, ja;
  int64_t amount = 0;
  std::string formula;
};

struct ResponseCostResult {
  std::vector<CostLine> lines;
  int64_t total = 0;
};

Result<ResponseCostResult> EstimateResponseCost(const ResponseCosts& c, int64_t persons,
                                                bool card_leaked);

nlohmann::json JoResultToJson(const JoResult& r);
nlohmann::json ResponseCostToJson(const ResponseCostResult& r);
std::string Yen(int64_t amount);  // "1,234,567円"

}  // namespace mamori::incident
