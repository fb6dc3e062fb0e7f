#include "incident/rules.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/file_util.h"

namespace mamori::incident {
namespace {

constexpr size_t kMaxRuleFileBytes = 1 << 20;
constexpr size_t kMaxRuleFiles = 64;

Status Bad(const std::string& name, const std::string& key, const std::string& what) {
  return InvalidArgument(fmt::format("{}: {}: {}", name, key, what));
}

Result<int64_t> GetInt(const YAML::Node& n, const std::string& name, const std::string& key,
                       int64_t def, int64_t lo, int64_t hi) {
  if (!n || n.IsNull()) return def;
  int64_t v;
  try {
    v = n.as<int64_t>();
  } catch (const YAML::Exception&) {
    return Bad(name, key, "must be a whole number");
  }
  if (v < lo || v > hi) return Bad(name, key, fmt::format("must be between {} and {}", lo, hi));
  return v;
}

Result<std::string> GetString(const YAML::Node& n, const std::string& name, const std::string& key,
                              bool required) {
  if (!n || n.IsNull()) {
    if (required) return Bad(name, key, "is required");
    return std::string();
  }
  if (!n.IsScalar()) return Bad(name, key, "must be a string");
  return n.as<std::string>();
}

Result<bool> GetBool(const YAML::Node& n, const std::string& name, const std::string& key) {
  if (!n || n.IsNull()) return false;
  try {
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    return Bad(name, key, "must be true or false");
  }
}

Result<RuleSet> ParseRuleSetNode(const YAML::Node& root, const std::string& name) {
  if (!root.IsMap()) return Bad(name, "(top level)", "must be a mapping");
  static const std::set<std::string> kTop = {"id",    "title", "effective_from", "sources",
                                             "items", "appi",  "my_number",      "encryption"};
  for (const auto& kv : root) {
    auto k = kv.first.as<std::string>();
    if (!kTop.count(k)) return Bad(name, k, "unknown key");
  }
  RuleSet rs;
  rs.source_file = name;
  ASSIGN_OR_RETURN(rs.id, GetString(root["id"], name, "id", true));
  ASSIGN_OR_RETURN(rs.title, GetString(root["title"], name, "title", true));
  ASSIGN_OR_RETURN(std::string eff,
                   GetString(root["effective_from"], name, "effective_from", true));
  {
    auto d = ParseDate(eff);
    if (!d.ok()) return Bad(name, "effective_from", d.status().message());
    rs.effective_from = *d;
  }
  if (root["sources"]) {
    if (!root["sources"].IsSequence()) return Bad(name, "sources", "must be a list");
    for (const auto& s : root["sources"]) {
      if (!s.IsScalar())
        return Bad(name, "sources", "each entry must be a string (quote it if it has ': ')");
      rs.sources.push_back(s.as<std::string>());
    }
  }
  // items
  const YAML::Node items = root["items"];
  if (!items || !items.IsMap() || items.size() == 0) {
    return Bad(name, "items", "must be a non-empty mapping of data item -> {ja, sensitive, ...}");
  }
  for (const auto& kv : items) {
    ItemRule it;
    it.id = kv.first.as<std::string>();
    std::string key = "items." + it.id;
    if (!kv.second.IsMap()) return Bad(name, key, "must be a mapping");
    for (const auto& f : kv.second) {
      auto fk = f.first.as<std::string>();
      if (fk != "ja" && fk != "sensitive" && fk != "financial" && fk != "my_number" &&
          fk != "note") {
        return Bad(name, key + "." + fk, "unknown key");
      }
    }
    ASSIGN_OR_RETURN(it.ja, GetString(kv.second["ja"], name, key + ".ja", true));
    ASSIGN_OR_RETURN(it.sensitive, GetBool(kv.second["sensitive"], name, key + ".sensitive"));
    ASSIGN_OR_RETURN(it.financial, GetBool(kv.second["financial"], name, key + ".financial"));
    ASSIGN_OR_RETURN(it.my_number, GetBool(kv.second["my_number"], name, key + ".my_number"));
    ASSIGN_OR_RETURN(it.note, GetString(kv.second["note"], name, key + ".note", false));
    rs.items[it.id] = it;
  }
  // appi
  const YAML::Node appi = root["appi"];
  if (!appi || !appi.IsMap()) return Bad(name, "appi", "is required (a mapping)");
  for (const auto& kv : appi) {
    static const std::set<std::string> k = {"private_threshold",    "public_threshold",
                                            "preliminary_days",     "final_days",
                                            "final_days_malicious", "individual_notice"};
    if (!k.count(kv.first.as<std::string>())) {
      return Bad(name, "appi." + kv.first.as<std::string>(), "unknown key");
    }
  }
  ASSIGN_OR_RETURN(rs.private_threshold, GetInt(appi["private_threshold"], name,
                                                "appi.private_threshold", 1000, 0, 1'000'000'000));
  ASSIGN_OR_RETURN(rs.public_threshold, GetInt(appi["public_threshold"], name,
                                               "appi.public_threshold", 100, 0, 1'000'000'000));
  {
    const YAML::Node pd = appi["preliminary_days"];
    if (!pd || !pd.IsSequence() || pd.size() != 2) {
      return Bad(name, "appi.preliminary_days", "must be a list [from, to] such as [3, 5]");
    }
    ASSIGN_OR_RETURN(int64_t a, GetInt(pd[0], name, "appi.preliminary_days[0]", 3, 0, 365));
    ASSIGN_OR_RETURN(int64_t b, GetInt(pd[1], name, "appi.preliminary_days[1]", 5, 0, 365));
    if (a > b) return Bad(name, "appi.preliminary_days", "from must not be after to");
    rs.preliminary_from_days = static_cast<int>(a);
    rs.preliminary_to_days = static_cast<int>(b);
  }
  ASSIGN_OR_RETURN(int64_t fd, GetInt(appi["final_days"], name, "appi.final_days", 30, 1, 3650));
  ASSIGN_OR_RETURN(int64_t fdm, GetInt(appi["final_days_malicious"], name,
                                       "appi.final_days_malicious", 60, 1, 3650));
  rs.final_days = static_cast<int>(fd);
  rs.final_days_malicious = static_cast<int>(fdm);
  {
    ASSIGN_OR_RETURN(std::string notice,
                     GetString(appi["individual_notice"], name, "appi.individual_notice", false));
    if (notice.empty() || notice == "always") {
      rs.individual_notice = IndividualNotice::kAlways;
    } else if (notice == "unless_low_risk") {
      rs.individual_notice = IndividualNotice::kUnlessLowRisk;
    } else {
      return Bad(name, "appi.individual_notice", "must be always or unless_low_risk");
    }
  }
  // my_number
  const YAML::Node mn = root["my_number"];
  if (!mn || !mn.IsMap()) return Bad(name, "my_number", "is required (a mapping)");
  for (const auto& kv : mn) {
    static const std::set<std::string> k = {"threshold", "final_days", "final_days_malicious"};
    if (!k.count(kv.first.as<std::string>())) {
      return Bad(name, "my_number." + kv.first.as<std::string>(), "unknown key");
    }
  }
  ASSIGN_OR_RETURN(rs.my_number_threshold,
                   GetInt(mn["threshold"], name, "my_number.threshold", 100, 0, 1'000'000'000));
  ASSIGN_OR_RETURN(int64_t mfd,
                   GetInt(mn["final_days"], name, "my_number.final_days", 30, 1, 3650));
  ASSIGN_OR_RETURN(int64_t mfdm, GetInt(mn["final_days_malicious"], name,
                                        "my_number.final_days_malicious", 60, 1, 3650));
  rs.my_number_final_days = static_cast<int>(mfd);
  rs.my_number_final_days_malicious = static_cast<int>(mfdm);
  // encryption
  const YAML::Node enc = root["encryption"];
  if (!enc || !enc.IsMap()) return Bad(name, "encryption", "is required (a mapping)");
  for (const char* list : {"approved", "rejected"}) {
    const YAML::Node l = enc[list];
    if (!l) continue;
    if (!l.IsMap())
      return Bad(name, std::string("encryption.") + list, "must be a mapping name -> source");
    for (const auto& kv : l) {
      auto n = RuleSet::NormalizeAlgorithm(kv.first.as<std::string>());
      auto why = kv.second.IsScalar() ? kv.second.as<std::string>() : std::string();
      (std::string(list) == "approved" ? rs.approved_algorithms : rs.rejected_algorithms)[n] = why;
    }
  }
  if (rs.approved_algorithms.empty()) {
    return Bad(name, "encryption.approved", "must list at least one algorithm");
  }
  return rs;
}

}  // namespace

std::string RuleSet::NormalizeAlgorithm(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ' ' || c == '_' || c == '-' || c == '/') {
      if (!out.empty() && out.back() != '-') out += '-';
    } else {
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

Result<RuleSet> ParseRuleSet(const std::string& yaml_text, const std::string& name) {
  try {
    YAML::Node root = YAML::Load(yaml_text);
    return ParseRuleSetNode(root, name);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(
        fmt::format("{}: YAML error at line {}: {}", name, e.mark.line + 1, e.msg));
  }
}

std::string RuleCatalog::DefaultDirectory() {
  if (const char* env = std::getenv("MAMORI_INCIDENT_RULES"); env && *env) return env;
  return std::string(MAMORI_SOURCE_DIR) + "/rules/incident";
}

Result<RuleCatalog> RuleCatalog::LoadDefault() { return Load({DefaultDirectory()}); }

Result<RuleCatalog> RuleCatalog::Load(const std::vector<std::string>& dirs) {
  namespace fs = std::filesystem;
  RuleCatalog cat;
  for (const auto& dir : dirs) {
    fs::path base(dir);
    std::error_code ec;
    if (fs::is_directory(base / "law", ec)) base /= "law";
    if (!fs::is_directory(base, ec)) {
      return NotFound(
          fmt::format("incident rules directory {} does not exist; pass --rules DIR or "
                      "set MAMORI_INCIDENT_RULES",
                      base.string()));
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(base, ec)) {
      if (e.path().extension() == ".yaml" || e.path().extension() == ".yml")
        files.push_back(e.path());
    }
    if (ec) return Unavailable(fmt::format("{}: {}", base.string(), ec.message()));
    std::sort(files.begin(), files.end());
    if (files.size() > kMaxRuleFiles) {
      return ResourceExhausted(
          fmt::format("{}: more than {} rule files", base.string(), kMaxRuleFiles));
    }
    for (const auto& f : files) {
      ASSIGN_OR_RETURN(std::string text, ReadFile(f.string(), kMaxRuleFileBytes));
      ASSIGN_OR_RETURN(RuleSet rs, ParseRuleSet(text, f.string()));
      cat.versions_.push_back(std::make_shared<const RuleSet>(std::move(rs)));
    }
  }
  if (cat.versions_.empty()) {
    return NotFound("no incident rule sets found (law/*.yaml); pass --rules DIR");
  }
  std::sort(cat.versions_.begin(), cat.versions_.end(),
            [](const auto& a, const auto& b) { return a->effective_from < b->effective_from; });
  for (size_t i = 1; i < cat.versions_.size(); ++i) {
    if (cat.versions_[i]->effective_from == cat.versions_[i - 1]->effective_from) {
      return InvalidArgument(fmt::format(
          "{} and {} both take effect on {}; keep one", cat.versions_[i - 1]->source_file,
          cat.versions_[i]->source_file, FormatDate(cat.versions_[i]->effective_from)));
    }
  }
  return cat;
}

Result<const RuleSet*> RuleCatalog::InForce(Date date) const {
  const RuleSet* found = nullptr;
  for (const auto& v : versions_) {
    if (v->effective_from <= date) found = v.get();
  }
  if (!found) {
    return FailedPrecondition(fmt::format(
        "the awareness date {} is before the earliest rule set ({}, in force from {}); mamori does "
        "not encode the earlier regime, so assess this incident by hand",
        FormatDate(date), versions_.front()->id, FormatDate(versions_.front()->effective_from)));
  }
  return found;
}

}  // namespace mamori::incident
