// Loading and compiling detection rules (rules/detect/*.yaml).
#include <mecab.h>
#include <sodium.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "common/file_util.h"
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
      {"{K}",
       R"((?:[\xE4-\xE9][\x80-\xBF][\x80-\xBF]|\xE3[\x90-\xBF][\x80-\xBF]|\xE3\x80\x85|\xEF[\xA4-\xAB][\x80-\xBF]))"},
      {"{KANA}", R"((?:\xE3\x81[\x81-\xBF]|\xE3\x82[\x80-\xBF]|\xE3\x83[\x80-\xBF]))"},
      // Kanji or kana as one byte-level class. Vectorscan plans this far better
      // than the alternation (?:{K}|{KANA}): 3-4x the throughput on Japanese
      // prose. It also admits U+3040, which is unassigned, so matches are the same.
      {"{KK}",
       R"((?:[\xE4-\xE9][\x80-\xBF][\x80-\xBF]|\xE3(?:[\x81-\x83\x90-\xBF][\x80-\xBF]|\x80\x85)|\xEF[\xA4-\xAB][\x80-\xBF]))"},
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

// The Western-date patterns of birth_date.yaml, which the scanner's digit
// tokenizer matches (see WesternDateEnds in scanner.cc).
constexpr std::string_view kWesternDateAscii =
    "{ND}(?:19|20){D}{2}(?:/|-|\\.|年|／|－){D}{1,2}(?:/|-|\\.|月|／|－){D}{1,2}(?:日)?";
constexpr std::string_view kWesternDateWide =
    "{ND}(?:１９|２０){D}{2}(?:/|-|\\.|年|／|－){D}{1,2}(?:/|-|\\.|月|／|－){D}{1,2}(?:日)?";

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
  if (risk == "low")
    r.info.risk = Risk::kLow;
  else if (risk == "medium")
    r.info.risk = Risk::kMedium;
  else if (risk == "high")
    r.info.risk = Risk::kHigh;
  else
    return InvalidArgument(where + ": risk must be low, medium or high, not '" + risk + "'");
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
    r.negative_window =
        c["negative_window"] ? c["negative_window"].as<uint32_t>() : r.window_before;
  }
  *patterns = StringList(doc["patterns"], "patterns", where, &err);
  if (const auto& n = doc["numeric"]) {
    if (!n.IsSequence())
      return InvalidArgument(where + ": 'numeric' must be a list of shapes like [4, 4, 4]");
    for (const auto& shape : n) {
      if (shape.IsSequence() && shape.size() > 8)
        return InvalidArgument(where +
                               ": a numeric shape has at most 8 groups (the tokenizer's limit)");
      if (!shape.IsSequence() || shape.size() == 0)
        return InvalidArgument(
            where +
            ": each numeric shape is a list of group sizes, e.g. [4, 4, 4] or [\"1-4\", 4]");
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

// ---- Compiled-database cache ----
// Compiling the rule set takes ~0.1 s (more under load), which dominates a
// scan of a few files and every start of the gateway or milter. The compiled
// database is cached under $MAMORI_CACHE_DIR (else $XDG_CACHE_HOME/mamori,
// else ~/.cache/mamori), keyed by a hash of the Vectorscan version, the
// platform, the mode and every expression with its flags, so an edited rule
// never meets a stale database. File: "MAMORIHS1", BLAKE2b-256 of the
// payload, the payload (hs_serialize_database). A file that does not verify
// is ignored and rewritten. MAMORI_RULES_CACHE=off disables the cache.
constexpr std::string_view kCacheMagic = "MAMORIHS1";

std::string CacheDir() {
  const char* off = std::getenv("MAMORI_RULES_CACHE");
  if (off && std::string_view(off) == "off") return "";
  if (const char* d = std::getenv("MAMORI_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/mamori";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/mamori";
  return "";
}

std::string Blake2Hex(std::string_view data) {
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size(), nullptr, 0);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : out) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  return hex;
}

// Loads a cached database, or compiles and caches it. The cache is an
// optimisation only: any failure to read or write it falls back to compiling.
Result<hs_database_t*> CompileCached(const std::vector<std::string>& expressions,
                                     const std::vector<unsigned>& flags, unsigned mode,
                                     hs_compile_error_t** cerr) {
  std::vector<const char*> cexprs;
  std::vector<unsigned> ids;
  std::string key = std::string("v1|") + hs_version() + "|" + std::to_string(mode);
  hs_platform_info_t platform{};
  if (hs_populate_platform(&platform) == HS_SUCCESS)
    key += "|" + std::to_string(platform.tune) + "|" + std::to_string(platform.cpu_features);
  for (size_t i = 0; i < expressions.size(); ++i) {
    cexprs.push_back(expressions[i].c_str());
    ids.push_back(static_cast<unsigned>(i));
    key += "|" + std::to_string(flags[i]) + ":" + std::to_string(expressions[i].size()) + ":" +
           expressions[i];
  }
  std::string dir = CacheDir();
  std::string path = dir.empty() ? "" : dir + "/rules-" + Blake2Hex(key).substr(0, 32) + ".hsdb";
  if (!path.empty()) {
    auto cached = ReadFile(path, 256u << 20);
    if (cached.ok() && cached->size() > kCacheMagic.size() + 64 &&
        std::string_view(*cached).substr(0, kCacheMagic.size()) == kCacheMagic) {
      std::string_view sum = std::string_view(*cached).substr(kCacheMagic.size(), 64);
      std::string_view payload = std::string_view(*cached).substr(kCacheMagic.size() + 64);
      hs_database_t* db = nullptr;
      if (Blake2Hex(payload) == sum &&
          hs_deserialize_database(payload.data(), payload.size(), &db) == HS_SUCCESS)
        return db;
    }
  }
  hs_database_t* db = nullptr;
  if (hs_compile_multi(cexprs.data(), flags.data(), ids.data(),
                       static_cast<unsigned>(cexprs.size()), mode, nullptr, &db,
                       cerr) != HS_SUCCESS)
    return Internal("compile failed");
  if (!path.empty()) {
    char* bytes = nullptr;
    size_t length = 0;
    if (hs_serialize_database(db, &bytes, &length) == HS_SUCCESS) {
      std::string payload(bytes, length);
      free(bytes);
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      ::chmod(dir.c_str(), 0700);
      (void)WriteFileAtomic(path, std::string(kCacheMagic) + Blake2Hex(payload) + payload, 0600);
    }
  }
  return db;
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
  for (const char* dir :
       {"/usr/share/mamori/rules/detect", "/usr/local/share/mamori/rules/detect"}) {
    if (std::filesystem::is_directory(dir)) return dir;
  }
  return std::string(MAMORI_SOURCE_DIR) + "/rules/detect";
}

Result<std::shared_ptr<const RuleSet>> RuleSet::LoadDefault() {
  return LoadDirectory(DefaultDirectory());
}

Result<std::shared_ptr<const RuleSet>> RuleSet::LoadDirectory(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return NotFound("rules directory " + dir + " does not exist (set MAMORI_RULES_DIR)");
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".yaml" || e.path().extension() == ".yml")
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) return NotFound("no *.yaml rule files in " + dir);

  auto set = std::make_shared<RuleSetImpl>();
  std::vector<std::string> tokenized_widths;  // expanded tokenized patterns
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
      // These exact expressions are matched by the digit tokenizer with the
      // same semantics (every end offset, leftmost start), not by Vectorscan.
      // Any other spelling, even an equivalent one, goes to Vectorscan.
      uint8_t date_bit = p == kWesternDateAscii  ? kDateAsciiCentury
                         : p == kWesternDateWide ? kDateWideCentury
                                                 : 0;
      if (date_bit) {
        PrefixKind prefix;
        tokenized_widths.push_back(ExpandMacros(p, &prefix));
        rule->tokenized_dates |= date_bit;
        continue;
      }
      PatternEntry e;
      e.rule = index;
      expressions.push_back(ExpandMacros(p, &e.prefix));
      // An unknown macro would otherwise be a literal "{KX}" that never matches.
      const std::string& x = expressions.back();
      for (size_t o = x.find('{'); o != std::string::npos; o = x.find('{', o + 1)) {
        size_t close = x.find('}', o);
        if (close == std::string::npos || close == o + 1) continue;
        std::string_view name(x.data() + o + 1, close - o - 1);
        if (std::all_of(name.begin(), name.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; }) &&
            (o == 0 || x[o - 1] != '\\'))
          return InvalidArgument(file + " (" + rule->info.type + "): unknown macro {" +
                                 std::string(name) +
                                 "} in a pattern; see rules/detect/README.md for the macros");
      }
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

  // The tokenized patterns' width still bounds the streaming tail.
  for (const auto& x : tokenized_widths) {
    hs_expr_info_t* info = nullptr;
    hs_compile_error_t* cerr = nullptr;
    if (hs_expression_info(x.c_str(), HS_FLAG_SOM_LEFTMOST, &info, &cerr) != HS_SUCCESS) {
      hs_free_compile_error(cerr);
      return Internal("a built-in date pattern does not compile");
    }
    set->max_candidate_width = std::max(set->max_candidate_width, info->max_width);
    free(info);
  }
  // Bound every candidate pattern's width, so streaming keeps a fixed tail.
  for (size_t i = 0; i < expressions.size(); ++i) {
    hs_expr_info_t* info = nullptr;
    hs_compile_error_t* cerr = nullptr;
    if (hs_expression_info(expressions[i].c_str(), flags[i], &info, &cerr) != HS_SUCCESS) {
      std::string msg = cerr ? cerr->message : "unknown error";
      hs_free_compile_error(cerr);
      const auto& r = set->compiled[set->patterns[i].rule];
      return InvalidArgument(r.source_file + " (" + r.info.type +
                             "): pattern does not compile: " + msg);
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

  hs_compile_error_t* cerr = nullptr;
  auto compiled =
      CompileCached(expressions, flags, HS_MODE_STREAM | HS_MODE_SOM_HORIZON_LARGE, &cerr);
  if (compiled.ok()) set->db = *compiled;
  if (!compiled.ok()) {
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
