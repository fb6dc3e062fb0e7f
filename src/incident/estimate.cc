#include "incident/estimate.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <limits>
#include <set>

#include "common/file_util.h"
#include "incident/rules.h"

namespace mamori::incident {
namespace {

constexpr int64_t kMaxYen = int64_t{1} << 60;

std::string Commas(int64_t n) {
  std::string s = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return n < 0 ? "-" + out : out;
}

int64_t Pow(int64_t b, int e) {
  int64_t r = 1;
  while (e-- > 0) r *= b;
  return r;
}

bool MulOverflows(int64_t a, int64_t b) { return a != 0 && b > kMaxYen / a; }

Result<int64_t> YamlInt(const YAML::Node& n, const std::string& name, const std::string& key,
                        int64_t def) {
  if (!n) return def;
  try {
    int64_t v = n.as<int64_t>();
    if (v < 0 || v > kMaxYen)
      return InvalidArgument(fmt::format("{}: {}: out of range", name, key));
    return v;
  } catch (const YAML::Exception&) {
    return InvalidArgument(fmt::format("{}: {}: must be a whole number of yen", name, key));
  }
}

Result<double> YamlFraction(const YAML::Node& n, const std::string& name, const std::string& key,
                            double def) {
  if (!n) return def;
  try {
    double v = n.as<double>();
    if (!(v >= 0 && v <= 1)) {
      return InvalidArgument(fmt::format("{}: {}: must be between 0 and 1", name, key));
    }
    return v;
  } catch (const YAML::Exception&) {
    return InvalidArgument(fmt::format("{}: {}: must be a number between 0 and 1", name, key));
  }
}

std::string RulesDir() { return RuleCatalog::DefaultDirectory(); }

}  // namespace

std::string Yen(int64_t amount) { return Commas(amount) + "円"; }

Result<JoModel> JoModel::Parse(const std::string& text, const std::string& name) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return InvalidArgument(name + ": must be a mapping");
    JoModel m;
    ASSIGN_OR_RETURN(m.base_value, YamlInt(root["base_value"], name, "base_value", 500));
    const YAML::Node items = root["items"];
    if (!items || !items.IsMap()) return InvalidArgument(name + ": items: required mapping");
    for (const auto& kv : items) {
      auto id = kv.first.as<std::string>();
      JoItem it;
      try {
        it.x = kv.second["x"].as<int>();
        it.y = kv.second["y"].as<int>();
      } catch (const YAML::Exception&) {
        return InvalidArgument(fmt::format("{}: items.{}: needs x and y (1..3)", name, id));
      }
      if (it.x < 1 || it.x > 3 || it.y < 1 || it.y > 3) {
        return InvalidArgument(fmt::format("{}: items.{}: x and y must be 1, 2 or 3", name, id));
      }
      if (kv.second["ja"]) it.ja = kv.second["ja"].as<std::string>();
      m.items[id] = it;
    }
    const YAML::Node idf = root["identifiability"];
    if (!idf || !idf.IsSequence() || idf.size() == 0) {
      return InvalidArgument(name + ": identifiability: required list of {factor, all_of}");
    }
    for (size_t i = 0; i < idf.size(); ++i) {
      JoIdentifiabilityRule r;
      try {
        r.factor = idf[i]["factor"].as<int>();
        for (const auto& x : idf[i]["all_of"]) r.all_of.push_back(x.as<std::string>());
      } catch (const YAML::Exception&) {
        return InvalidArgument(
            fmt::format("{}: identifiability[{}]: needs factor and all_of", name, i));
      }
      if (r.factor != 1 && r.factor != 3 && r.factor != 6) {
        return InvalidArgument(
            fmt::format("{}: identifiability[{}].factor: must be 6, 3 or 1", name, i));
      }
      if (idf[i]["ja"]) r.ja = idf[i]["ja"].as<std::string>();
      m.identifiability.push_back(r);
    }
    if (!m.identifiability.back().all_of.empty()) {
      return InvalidArgument(name +
                             ": identifiability: the last rule must have all_of: [] (特定困難)");
    }
    return m;
  } catch (const YAML::Exception& e) {
    return InvalidArgument(
        fmt::format("{}: YAML error at line {}: {}", name, e.mark.line + 1, e.msg));
  }
}

Result<JoModel> JoModel::LoadDefault() {
  std::string path = RulesDir() + "/jo_model.yaml";
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
  return Parse(text, path);
}

Result<JoResult> EstimateJo(const JoModel& model, const JoInput& in) {
  JoResult r;
  std::set<std::string> present;
  for (const auto& item : in.items) {
    if (item.rfind("other:", 0) == 0) continue;
    auto it = model.items.find(item);
    if (it == model.items.end()) {
      return InvalidArgument(fmt::format(
          "data item \"{}\" has no JO-model levels; add it with x and y to jo_model.yaml",
          item.substr(0, 64)));
    }
    present.insert(item);
    if (it->second.x > r.x || (it->second.x == r.x && r.x_item.empty())) {
      r.x = it->second.x;
      r.x_item = it->second.ja;
    }
    if (it->second.y > r.y || (it->second.y == r.y && r.y_item.empty())) {
      r.y = it->second.y;
      r.y_item = it->second.ja;
    }
  }
  r.sensitivity = Pow(10, r.x - 1) + Pow(5, r.y - 1);
  for (const auto& rule : model.identifiability) {
    bool all = true;
    for (const auto& need : rule.all_of) all &= present.count(need) > 0;
    if (all) {
      r.identifiability = rule.factor;
      r.identifiability_ja = rule.ja;
      break;
    }
  }
  r.social = static_cast<int>(in.social);
  r.response = in.response == ResponseRating::kInappropriate ? 2 : 1;
  r.per_person = model.base_value * r.sensitivity * r.identifiability * r.social * r.response;
  if (MulOverflows(r.per_person, in.persons)) {
    return ResourceExhausted("JO model total overflows; check persons");
  }
  r.total = r.per_person * in.persons;
  r.steps.push_back(
      fmt::format("精神的苦痛レベル x = {}（最大: {}）、経済的損失レベル y = {}（最大: {}）", r.x,
                  r.x_item.empty() ? "該当項目なし" : r.x_item, r.y,
                  r.y_item.empty() ? "該当項目なし" : r.y_item));
  r.steps.push_back(fmt::format("機微情報度 = 10^({}-1) + 5^({}-1) = {}", r.x, r.y, r.sensitivity));
  r.steps.push_back(
      fmt::format("本人特定容易度 = {}（{}）", r.identifiability, r.identifiability_ja));
  r.steps.push_back(fmt::format("漏えい個人情報価値 = {} × {} × {} = {}", model.base_value,
                                r.sensitivity, r.identifiability,
                                model.base_value * r.sensitivity * r.identifiability));
  r.steps.push_back(fmt::format("社会的責任度 = {}（{}）、事後対応評価 = {}（{}）", r.social,
                                r.social == 2 ? "一般より高い" : "一般的", r.response,
                                in.response == ResponseRating::kInappropriate ? "不適切な対応"
                                : in.response == ResponseRating::kAppropriate ? "適切な対応"
                                                                              : "不明・その他"));
  r.steps.push_back(fmt::format("1人あたり想定損害賠償額 = {}、{}人分の合計 = {}",
                                Yen(r.per_person), Commas(in.persons), Yen(r.total)));
  return r;
}

Result<ResponseCosts> ResponseCosts::Parse(const std::string& text, const std::string& name) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return InvalidArgument(name + ": must be a mapping");
    static const std::set<std::string> kTop = {"currency", "per_person", "call_centre",
                                               "investigation", "lost_profit"};
    for (const auto& kv : root) {
      if (!kTop.count(kv.first.as<std::string>())) {
        return InvalidArgument(
            fmt::format("{}: {}: unknown key", name, kv.first.as<std::string>()));
      }
    }
    if (root["currency"] && root["currency"].as<std::string>() != "JPY") {
      return InvalidArgument(name + ": currency: only JPY is supported");
    }
    ResponseCosts c;
    auto pp = root["per_person"], cc = root["call_centre"], inv = root["investigation"],
         lp = root["lost_profit"];
    ASSIGN_OR_RETURN(c.notification_letter,
                     YamlInt(pp ? pp["notification_letter"] : YAML::Node(), name,
                             "per_person.notification_letter", c.notification_letter));
    ASSIGN_OR_RETURN(c.apology_voucher, YamlInt(pp ? pp["apology_voucher"] : YAML::Node(), name,
                                                "per_person.apology_voucher", c.apology_voucher));
    ASSIGN_OR_RETURN(c.card_reissue, YamlInt(pp ? pp["card_reissue"] : YAML::Node(), name,
                                             "per_person.card_reissue", c.card_reissue));
    ASSIGN_OR_RETURN(c.call_setup, YamlInt(cc ? cc["setup"] : YAML::Node(), name,
                                           "call_centre.setup", c.call_setup));
    ASSIGN_OR_RETURN(c.cost_per_call, YamlInt(cc ? cc["cost_per_call"] : YAML::Node(), name,
                                              "call_centre.cost_per_call", c.cost_per_call));
    ASSIGN_OR_RETURN(c.call_rate, YamlFraction(cc ? cc["call_rate"] : YAML::Node(), name,
                                               "call_centre.call_rate", c.call_rate));
    ASSIGN_OR_RETURN(c.forensics, YamlInt(inv ? inv["forensics"] : YAML::Node(), name,
                                          "investigation.forensics", c.forensics));
    ASSIGN_OR_RETURN(
        c.legal, YamlInt(inv ? inv["legal"] : YAML::Node(), name, "investigation.legal", c.legal));
    ASSIGN_OR_RETURN(c.public_notice, YamlInt(inv ? inv["public_notice"] : YAML::Node(), name,
                                              "investigation.public_notice", c.public_notice));
    ASSIGN_OR_RETURN(c.annual_profit, YamlInt(lp ? lp["annual_profit"] : YAML::Node(), name,
                                              "lost_profit.annual_profit", c.annual_profit));
    ASSIGN_OR_RETURN(c.lost_profit_fraction,
                     YamlFraction(lp ? lp["fraction"] : YAML::Node(), name, "lost_profit.fraction",
                                  c.lost_profit_fraction));
    return c;
  } catch (const YAML::Exception& e) {
    return InvalidArgument(
        fmt::format("{}: YAML error at line {}: {}", name, e.mark.line + 1, e.msg));
  }
}

Result<ResponseCosts> ResponseCosts::LoadDefault() {
  std::string path = RulesDir() + "/response_costs.yaml";
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
  return Parse(text, path);
}

Result<ResponseCostResult> EstimateResponseCost(const ResponseCosts& c, int64_t persons,
                                                bool card_leaked) {
  ResponseCostResult r;
  auto add = [&](std::string key, std::string ja, int64_t amount, std::string formula) -> Status {
    if (amount < 0 || amount > kMaxYen || r.total > kMaxYen - amount) {
      return ResourceExhausted("response cost overflows; check the unit costs and persons");
    }
    r.lines.push_back({std::move(key), std::move(ja), amount, std::move(formula)});
    r.total += amount;
    return Status::Ok();
  };
  if (MulOverflows(c.notification_letter, persons) || MulOverflows(c.apology_voucher, persons) ||
      MulOverflows(c.card_reissue, persons)) {
    return ResourceExhausted("response cost overflows; check the unit costs and persons");
  }
  RETURN_IF_ERROR(add("notification_letters", "お詫び状・本人通知", c.notification_letter * persons,
                      fmt::format("{}円 × {}人", Commas(c.notification_letter), Commas(persons))));
  // Calls: round the expected number of calls up (whole calls), in integers.
  int64_t calls =
      static_cast<int64_t>(std::ceil(c.call_rate * static_cast<double>(persons) - 1e-9));
  if (MulOverflows(c.cost_per_call, calls)) return ResourceExhausted("call-centre cost overflows");
  RETURN_IF_ERROR(
      add("call_centre", "コールセンター（問い合わせ窓口）", c.call_setup + c.cost_per_call * calls,
          fmt::format("{}円 + {}円 × {}件（{}人 × 入電率 {}）", Commas(c.call_setup),
                      Commas(c.cost_per_call), Commas(calls), Commas(persons), c.call_rate)));
  RETURN_IF_ERROR(add("investigation", "原因調査・法律相談・公表",
                      c.forensics + c.legal + c.public_notice,
                      fmt::format("{}円 + {}円 + {}円", Commas(c.forensics), Commas(c.legal),
                                  Commas(c.public_notice))));
  RETURN_IF_ERROR(add("apology_vouchers", "お詫びの金券", c.apology_voucher * persons,
                      fmt::format("{}円 × {}人", Commas(c.apology_voucher), Commas(persons))));
  if (card_leaked) {
    RETURN_IF_ERROR(add("card_reissue", "クレジットカード再発行", c.card_reissue * persons,
                        fmt::format("{}円 × {}人", Commas(c.card_reissue), Commas(persons))));
  }
  int64_t lost = static_cast<int64_t>(
      std::llround(static_cast<double>(c.annual_profit) * c.lost_profit_fraction));
  RETURN_IF_ERROR(
      add("lost_profit", "逸失利益", lost,
          fmt::format("年間利益 {}円 × {}", Commas(c.annual_profit), c.lost_profit_fraction)));
  return r;
}

nlohmann::json JoResultToJson(const JoResult& r) {
  return {{"x", r.x},
          {"y", r.y},
          {"sensitivity", r.sensitivity},
          {"identifiability", r.identifiability},
          {"social_responsibility", r.social},
          {"response_rating", r.response},
          {"per_person_yen", r.per_person},
          {"total_yen", r.total},
          {"steps", r.steps}};
}

nlohmann::json ResponseCostToJson(const ResponseCostResult& r) {
  nlohmann::json lines = nlohmann::json::array();
  for (const auto& l : r.lines) {
    lines.push_back({{"key", l.key}, {"ja", l.ja}, {"yen", l.amount}, {"formula", l.formula}});
  }
  return {{"lines", lines}, {"total_yen", r.total}};
}

}  // namespace mamori::incident
