// Loading and compiling detection rules (rules/detect/*.yaml).
#include <yaml-cpp/yaml.h>
#include <mecab.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "detect/ruleset_impl.h"
#include "detect/text.h"

namespace mamori::detect {
namespace {

const std::map<std::string, ValidatorKind>& ValidatorNames() {
  static const std::map<std::string, ValidatorKind> m = {
      {"none", ValidatorKind::kNone},
      {"my_number", ValidatorKind::kMyNumber},
      {"corporate_number", ValidatorKind::kCorporateNumber},
      {"luhn_card", ValidatorKind::kLuhnCard},
      {"drivers_license", ValidatorKind::kDriversLicense},
      {"passport", ValidatorKind::kPassport},
      {"residence_card", ValidatorKind::kResidenceCard},
      {"bank_account", ValidatorKind::kBankAccount},
      {"digits_only", ValidatorKind::kDigitsOnly},
      {"phone_jp", ValidatorKind::kPhoneJp},
      {"email", ValidatorKind::kEmail},
      {"postal_code", ValidatorKind::kPostalCode},
      {"address", ValidatorKind::kAddress},
      {"person_name", ValidatorKind::kPersonName},
      {"date", ValidatorKind::kDate},
  };
  return m;
}

// Pattern macros over raw UTF-8 bytes (see rules/detect/README.md).
std::string ExpandMacros(const std::string& p, PrefixKind* prefix) {
  static const std::vector<std::pair<std::string, std::string>> kMacros = {
      {"{D}", R"((?:[0-9]|\xEF\xBC[\x90-\x99]))"},
      {"{S}",
       R"((?:[ \-.]|\xE3\x80\x80|\xEF\xBC\x8D|\xE2\x80[\x90-\x95]|\xE2\x88\x92|\xE3\x83\xBC|\xEF\xBD\xB0|\xEF\xBC\x8E))"},
      {"{A}", R"((?:[A-Za-z]|\xEF\xBC[\xA1-\xBA]|\xEF\xBD[\x81-\x9A]))"},
      {"{K}", R"((?:[\xE4-\xE9][\x80-\xBF][\x80-\xBF]|\xE3[\x90-\xBF][\x80-\xBF]|\xE3\x80\x85))"},
      {"{KANA}", R"((?:\xE3\x81[\x81-\xBF]|\xE3\x82[\x80-\xBF]|\xE3\x83[\x80-\xBF]))"},
      {"{ND}", R"((?:^|[^0-9]))"},
      {"{NL}", R"((?:^|[^A-Za-z0-9]))"},
  };
  *prefix = p.rfind("{ND}", 0) == 0   ? PrefixKind::kNotDigit
            : p.rfind("{NL}", 0) == 0 ? PrefixKind::kNotLetter
                                      : PrefixKind::kNone;
  std::string out = p;
  for (const auto& [macro, expansion] : kMacros) {
    size_t pos = 0;
    while ((pos = out.find(macro, pos)) != std::string::npos) {
      out.replace(pos, macro.size(), expansion);
      pos += expansion.size();
    }
  }
  return out;
}

// A literal keyword as a Vectorscan expression (bytes escaped).
std::string LiteralPattern(const std::string& word) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : word) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::vector<std::string> StringList(const YAML::Node& node, const std::string& field,
                                    const std::string& where, Status* error) {
  std::vector<std::string> out;
  if (!node) return out;
  if (!node.IsSequence()) {
    *error = InvalidArgument(where + ": '" + field + "' must be a list of strings");
    return out;
  }
  for (const auto& item : node) out.push_back(item.as<std::string>());
  return out;
}

Result<CompiledRule> ParseRule(const YAML::Node& doc, const std::string& file,
                               std::vector<std::string>* patterns) {
  CompiledRule r;
  r.source_file = file;
  if (!doc.IsMap()) return InvalidArgument(file + ": a rule file must be a YAML mapping");
  if (!doc["type"]) return InvalidArgument(file + ": missing 'type' (e.g. jp.my_number)");
  r.info.type = doc["type"].as<std::string>();
  std::string where = file + " (" + r.info.type + ")";
  r.info.name = doc["name"] ? doc["name"].as<std::string>() : r.info.type;
  std::string risk = doc["risk"] ? doc["risk"].as<std::string>() : "medium";
  if (risk == "low") r.info.risk = Risk::kLow;
  else if (risk == "medium") r.info.risk = Risk::kMedium;
  else if (risk == "high") r.info.risk = Risk::kHigh;
  else return InvalidArgument(where + ": risk must be low, medium or high, not '" + risk + "'");
  r.info.person_key = doc["person_key"] && doc["person_key"].as<bool>();
  r.info.person_attribute = doc["person_attribute"] && doc["person_attribute"].as<bool>();
  r.context_required = doc["context_required"] && doc["context_required"].as<bool>();
  std::string validator = doc["validator"] ? doc["validator"].as<std::string>() : "none";
  auto it = ValidatorNames().find(validator);
  if (it == ValidatorNames().end()) {
    std::string names;
    for (const auto& [n, _] : ValidatorNames()) names += (names.empty() ? "" : ", ") + n;
    return InvalidArgument(where + ": unknown validator '" + validator + "'; use one of " + names);
  }
  r.validator = it->second;
  if (const auto& s = doc["scores"]) {
    if (s["bare"]) r.scores.bare = s["bare"].as<double>();
    if (s["structured"]) r.scores.structured = s["structured"].as<double>();
    if (s["context"]) r.scores.context = s["context"].as<double>();
    if (s["negative"]) r.scores.negative = s["negative"].as<double>();
  }
  Status err;
  if (const auto& c = doc["context"]) {
    for (auto& w : StringList(c["keywords"], "context.keywords", where, &err))
      r.keywords.push_back(FoldForMatch(w));
    for (auto& w : StringList(c["negative"], "context.negative", where, &err))
      r.negative.push_back(FoldForMatch(w));
    for (auto& w : StringList(c["column_headers"], "context.column_headers", where, &err))
      r.column_headers.push_back(FoldForMatch(w));
    r.column_type = c["column_type"] && c["column_type"].as<bool>();
    if (c["window_before"]) r.window_before = c["window_before"].as<uint32_t>();
    if (c["window_after"]) r.window_after = c["window_after"].as<uint32_t>();
    r.negative_window = c["negative_window"] ? c["negative_window"].as<uint32_t>() : r.window_before;
  }
  *patterns = StringList(doc["patterns"], "patterns", where, &err);
  if (const auto& n = doc["numeric"]) {
    if (!n.IsSequence()) return InvalidArgument(where + ": 'numeric' must be a list of shapes like [4, 4, 4]");
    for (const auto& shape : n) {
      if (!shape.IsSequence() || shape.size() == 0)
        return InvalidArgument(where + ": each numeric shape is a list of group sizes, e.g. [4, 4, 4] or [\"1-4\", 4]");
      std::vector<DigitGroup> groups;
      for (const auto& g : shape) {
        std::string t = g.as<std::string>();
        DigitGroup dg;
        size_t dash = t.find('-');
        try {
          dg.min = std::stoi(t.substr(0, dash));
          dg.max = dash == std::string::npos ? dg.min : std::stoi(t.substr(dash + 1));
        } catch (...) {
          return InvalidArgument(where + ": numeric group '" + t + "' is not N or N-M");
        }
        if (dg.min < 1 || dg.max < dg.min || dg.max > 19)
          return InvalidArgument(where + ": numeric group '" + t + "' must be within 1-19 digits");
        groups.push_back(dg);
      }
      r.numeric.push_back(groups);
    }
  }
  r.numeric_prefixes = StringList(doc["numeric_prefixes"], "numeric_prefixes", where, &err);
  if (doc["letters_before"]) r.letters_before = doc["letters_before"].as<uint32_t>();
  if (doc["letters_after"]) r.letters_after = doc["letters_after"].as<uint32_t>();
  r.examples = StringList(doc["examples"], "examples", where, &err);
  r.negative_examples = StringList(doc["negative_examples"], "negative_examples", where, &err);
  if (!err.ok()) return err;
  if (patterns->empty() && r.numeric.empty())
    return InvalidArgument(where + ": needs at least one pattern or numeric shape");
  if (r.examples.empty() || r.negative_examples.empty())
    return InvalidArgument(where + ": every rule needs 'examples' and 'negative_examples'");
  return r;
}

}  // namespace

RuleSetImpl::~RuleSetImpl() {
  if (db) hs_free_database(db);
}

const RuleInfo* RuleSetImpl::Find(std::string_view type) const {
  for (const auto& i : infos_)
    if (i.type == type) return &i;
  return nullptr;
}

std::string RuleSet::DefaultDirectory() {
  if (const char* env = std::getenv("MAMORI_RULES_DIR"); env && *env) return env;
  for (const char* dir : {"/usr/share/mamori/rules/detect", "/usr/local/share/mamori/rules/detect"}) {
    if (std::filesystem::is_directory(dir)) return dir;
  }
  return std::string(MAMORI_SOURCE_DIR) + "/rules/detect";
}

Result<std::shared_ptr<const RuleSet>> RuleSet::LoadDefault() { return LoadDirectory(DefaultDirectory()); }

Result<std::shared_ptr<const RuleSet>> RuleSet::LoadDirectory(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return NotFound("rules directory " + dir + " does not exist (set MAMORI_RULES_DIR)");
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".yaml" || e.path().extension() == ".yml") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) return NotFound("no *.yaml rule files in " + dir);

  auto set = std::make_shared<RuleSetImpl>();
  std::vector<std::string> expressions;
  std::vector<unsigned> flags;
  for (const auto& file : files) {
    YAML::Node doc;
    try {
      doc = YAML::LoadFile(file);
    } catch (const YAML::Exception& e) {
      return InvalidArgument(file + ": not valid YAML: " + e.what());
    }
    std::vector<std::string> patterns;
    Result<CompiledRule> rule = [&]() -> Result<CompiledRule> {
      try {
        return ParseRule(doc, file, &patterns);
      } catch (const YAML::Exception& e) {
        return InvalidArgument(file + ": wrong value type: " + e.what());
      }
    }();
    if (!rule.ok()) return rule.status();
    if (set->Find(rule->info.type))
      return InvalidArgument(file + ": type " + rule->info.type + " is defined twice");
    int index = static_cast<int>(set->compiled.size());
    for (const auto& p : patterns) {
      PatternEntry e;
      e.rule = index;
      expressions.push_back(ExpandMacros(p, &e.prefix));
      flags.push_back(HS_FLAG_SOM_LEFTMOST);
      set->patterns.push_back(e);
    }
    auto add_keywords = [&](const std::vector<std::string>& words, bool negative) {
      for (const auto& w : words) {
        PatternEntry e;
        e.rule = index;
        e.keyword = true;
        e.negative = negative;
        e.keyword_len = static_cast<uint32_t>(w.size());
        expressions.push_back(LiteralPattern(w));
        flags.push_back(HS_FLAG_CASELESS);
        set->patterns.push_back(e);
      }
    };
    add_keywords(rule->keywords, false);
    add_keywords(rule->negative, true);
    set->infos_.push_back(rule->info);
    set->compiled.push_back(std::move(rule).value());
  }

  // Bound every candidate pattern's width, so streaming keeps a fixed tail.
  for (size_t i = 0; i < expressions.size(); ++i) {
    hs_expr_info_t* info = nullptr;
    hs_compile_error_t* cerr = nullptr;
    if (hs_expression_info(expressions[i].c_str(), flags[i], &info, &cerr) != HS_SUCCESS) {
      std::string msg = cerr ? cerr->message : "unknown error";
      hs_free_compile_error(cerr);
      const auto& r = set->compiled[set->patterns[i].rule];
      return InvalidArgument(r.source_file + " (" + r.info.type + "): pattern does not compile: " + msg);
    }
    bool unbounded = info->max_width == UINT_MAX;
    uint32_t width = info->max_width;
    free(info);
    if (set->patterns[i].keyword) continue;
    const auto& r = set->compiled[set->patterns[i].rule];
    if (unbounded || width > 512)
      return InvalidArgument(r.source_file + " (" + r.info.type +
                             "): a pattern may match more than 512 bytes; bound its repeats");
    set->max_candidate_width = std::max(set->max_candidate_width, width);
  }

  std::vector<const char*> cexprs;
  std::vector<unsigned> ids;
  for (size_t i = 0; i < expressions.size(); ++i) {
    cexprs.push_back(expressions[i].c_str());
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_compile_error_t* cerr = nullptr;
  if (hs_compile_multi(cexprs.data(), flags.data(), ids.data(), static_cast<unsigned>(cexprs.size()),
                       HS_MODE_STREAM | HS_MODE_SOM_HORIZON_LARGE, nullptr, &set->db,
                       &cerr) != HS_SUCCESS) {
    std::string msg = cerr ? cerr->message : "unknown error";
    int expr = cerr ? cerr->expression : -1;
    hs_free_compile_error(cerr);
    if (expr >= 0) {
      const auto& r = set->compiled[set->patterns[expr].rule];
      return InvalidArgument(r.source_file + " (" + r.info.type + "): " + msg);
    }
    return Internal("compiling the rule set with Vectorscan failed: " + msg);
  }

  // MeCab is optional at load time: without a dictionary, names are found
  // only through column headers and labels, and `mamori rules` says so.
  MeCab::Model* model = MeCab::createModel("-r /etc/mecabrc");
  if (!model) model = MeCab::createModel("");
  if (model) {
    set->mecab.reset(model);
  } else {
    set->mecab_error = MeCab::getLastError() ? MeCab::getLastError() : "no MeCab dictionary";
  }
  return std::shared_ptr<const RuleSet>(set);
}

}  // namespace mamori::detect
