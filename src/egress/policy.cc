#include "egress/policy.h"

#include <sodium.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "common/file_util.h"

namespace mamori::egress {
namespace {

namespace fs = std::filesystem;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// "50MiB", "1GB", "4096" -> bytes.
Result<uint64_t> ParseSize(const YAML::Node& n, const std::string& where) {
  std::string s;
  try {
    s = n.as<std::string>();
  } catch (const YAML::Exception&) {
    return InvalidArgument(where + ": expected a size such as 4096, 50MB or 8MiB");
  }
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == 0 || i > 15) return InvalidArgument(where + ": '" + s + "' is not a size");
  uint64_t v = std::stoull(s.substr(0, i));
  std::string unit = Lower(s.substr(i));
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  static const std::map<std::string, uint64_t> kUnits = {
      {"", 1},       {"b", 1},         {"kb", 1000},       {"mb", 1000000}, {"gb", 1000000000},
      {"kib", 1024}, {"mib", 1 << 20}, {"gib", 1ull << 30}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) {
    return InvalidArgument(where + ": unknown size unit '" + unit +
                           "' (use KB, MB, GB, KiB, MiB, GiB)");
  }
  return v * it->second;
}

// "90s", "30m", "1h", "7d", or a number of seconds.
Result<int64_t> ParseDuration(const YAML::Node& n, const std::string& where) {
  std::string s = n.as<std::string>("");
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == 0 || i > 9) return InvalidArgument(where + ": '" + s + "' is not a duration (e.g. 1h)");
  int64_t v = std::stoll(s.substr(0, i));
  std::string unit = s.substr(i);
  int64_t mult = unit.empty() || unit == "s" ? 1
                 : unit == "m"               ? 60
                 : unit == "h"               ? 3600
                 : unit == "d"               ? 86400
                                             : -1;
  if (mult < 0)
    return InvalidArgument(where + ": unknown duration unit '" + unit + "' (s, m, h, d)");
  if (v <= 0) return InvalidArgument(where + ": duration must be positive");
  return v * mult;
}

Result<bool> ParseBool(const YAML::Node& n, const std::string& where) {
  try {
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    return InvalidArgument(where + ": expected true or false");
  }
}

Status CheckKeys(const YAML::Node& map, const std::set<std::string>& allowed,
                 const std::string& where) {
  if (!map.IsMap()) return InvalidArgument(where + ": expected a mapping");
  for (const auto& kv : map) {
    std::string k = kv.first.as<std::string>("");
    if (!allowed.count(k)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return InvalidArgument(where + ": unknown key '" + k + "' (known: " + list + ")");
    }
  }
  return Status::Ok();
}

Result<std::vector<std::string>> StringList(const YAML::Node& n, const std::string& where) {
  std::vector<std::string> out;
  if (!n.IsSequence()) return InvalidArgument(where + ": expected a list");
  for (const auto& item : n) {
    if (!item.IsScalar()) return InvalidArgument(where + ": expected a list of strings");
    out.push_back(item.as<std::string>());
  }
  return out;
}

Status ValidateDomain(const std::string& d, const std::string& where) {
  if (d.empty() || d.size() > 253) return InvalidArgument(where + ": empty or too long domain");
  for (char c : d) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) {
      return InvalidArgument(where + ": domain '" + d +
                             "' must be lowercase letters, digits, '-' and '.'");
    }
  }
  if (d.front() == '.' || d.back() == '.') {
    return InvalidArgument(where + ": domain '" + d + "' must not start or end with '.'");
  }
  return Status::Ok();
}

bool DomainMatches(std::string_view host, std::string_view domain) {
  if (host.size() < domain.size()) return false;
  if (host.substr(host.size() - domain.size()) != domain) return false;
  return host.size() == domain.size() || host[host.size() - domain.size() - 1] == '.';
}

struct Merger {
  Policy p;
  std::set<std::string> seen_settings;
  std::set<std::string> seen_category_fields;

  Category& GetCategory(const std::string& name) {
    for (auto& c : p.categories) {
      if (c.name == name) return c;
    }
    p.categories.push_back(Category{});
    p.categories.back().name = name;
    return p.categories.back();
  }

  Status Settings(const YAML::Node& n, const std::string& f) {
    RETURN_IF_ERROR(
        CheckKeys(n,
                  {"preview_bytes", "spool_memory_bytes", "spool_max_bytes", "inspect_max_bytes",
                   "memory_budget", "max_connections", "options_ttl", "idle_timeout",
                   "min_confidence", "help_desk", "help_desk_ja"},
                  f + ": settings"));
    for (const auto& kv : n) {
      std::string k = kv.first.as<std::string>();
      std::string where = f + ": settings." + k;
      if (!seen_settings.insert(k).second) return InvalidArgument(where + " is set in two files");
      auto& s = p.settings;
      if (k == "preview_bytes") {
        ASSIGN_OR_RETURN(s.preview_bytes, ParseSize(kv.second, where));
        if (s.preview_bytes > 1 << 20) return InvalidArgument(where + ": at most 1MiB");
      } else if (k == "spool_memory_bytes") {
        ASSIGN_OR_RETURN(s.spool_memory_bytes, ParseSize(kv.second, where));
      } else if (k == "spool_max_bytes") {
        ASSIGN_OR_RETURN(s.spool_max_bytes, ParseSize(kv.second, where));
      } else if (k == "inspect_max_bytes") {
        ASSIGN_OR_RETURN(s.inspect_max_bytes, ParseSize(kv.second, where));
      } else if (k == "memory_budget") {
        ASSIGN_OR_RETURN(s.memory_budget_bytes, ParseSize(kv.second, where));
        if (s.memory_budget_bytes < (64 << 10)) return InvalidArgument(where + ": at least 64KiB");
      } else if (k == "max_connections") {
        ASSIGN_OR_RETURN(uint64_t v, ParseSize(kv.second, where));
        if (v == 0 || v > 100000) return InvalidArgument(where + ": must be 1..100000");
        s.max_connections = static_cast<uint32_t>(v);
      } else if (k == "options_ttl") {
        ASSIGN_OR_RETURN(int64_t v, ParseDuration(kv.second, where));
        s.options_ttl_seconds = static_cast<uint32_t>(v);
      } else if (k == "idle_timeout") {
        ASSIGN_OR_RETURN(s.idle_timeout_seconds, ParseDuration(kv.second, where));
      } else if (k == "min_confidence") {
        s.min_confidence = kv.second.as<std::string>("");
        if (s.min_confidence != "low" && s.min_confidence != "medium" &&
            s.min_confidence != "high") {
          return InvalidArgument(where + ": must be low, medium or high");
        }
      } else if (k == "help_desk") {
        s.help_desk = kv.second.as<std::string>("");
      } else if (k == "help_desk_ja") {
        s.help_desk_ja = kv.second.as<std::string>("");
      }
    }
    return Status::Ok();
  }

  Status CategoryNode(const std::string& name, const YAML::Node& n, const std::string& f) {
    std::string where = f + ": categories." + name;
    RETURN_IF_ERROR(
        CheckKeys(n,
                  {"description", "domains", "uploads", "inspect_downloads", "max_upload_bytes",
                   "on_error", "over_memory_budget", "content", "tenant_headers"},
                  where));
    if (name.empty() || name.size() > 64) return InvalidArgument(where + ": bad category name");
    Category& c = GetCategory(name);
    for (const auto& kv : n) {
      std::string k = kv.first.as<std::string>();
      std::string w = where + "." + k;
      if (k == "domains") {
        ASSIGN_OR_RETURN(auto list, StringList(kv.second, w));
        for (auto& d : list) {
          d = Lower(d);
          if (d.rfind("*.", 0) == 0) d.erase(0, 2);
          RETURN_IF_ERROR(ValidateDomain(d, w));
          c.domains.push_back(d);
        }
        continue;
      }
      if (k == "description") continue;
      if (!seen_category_fields.insert(name + "." + k).second) {
        return InvalidArgument(w + " is set in two files");
      }
      if (k == "uploads") {
        std::string v = kv.second.as<std::string>("");
        if (v == "allow") {
          c.uploads = UploadAction::kAllow;
        } else if (v == "inspect") {
          c.uploads = UploadAction::kInspect;
        } else if (v == "block") {
          c.uploads = UploadAction::kBlock;
        } else {
          return InvalidArgument(w + ": must be allow, inspect or block");
        }
      } else if (k == "inspect_downloads") {
        ASSIGN_OR_RETURN(c.inspect_downloads, ParseBool(kv.second, w));
      } else if (k == "max_upload_bytes") {
        ASSIGN_OR_RETURN(c.max_upload_bytes, ParseSize(kv.second, w));
      } else if (k == "on_error") {
        std::string v = kv.second.as<std::string>("");
        if (v == "block") {
          c.fail_closed = true;
        } else if (v == "allow") {
          c.fail_closed = false;
        } else {
          return InvalidArgument(w + ": must be block (fail closed) or allow (fail open)");
        }
      } else if (k == "over_memory_budget") {
        std::string v = kv.second.as<std::string>("");
        if (v == "disk") {
          c.disk_over_budget = true;
        } else if (v == "block") {
          c.disk_over_budget = false;
        } else {
          return InvalidArgument(w + ": must be disk (hold in a temp file) or block (fail closed)");
        }
      } else if (k == "content") {
        RETURN_IF_ERROR(
            CheckKeys(kv.second, {"block_types", "max_individuals", "not_inspected"}, w));
        if (kv.second["not_inspected"]) {
          std::string v = kv.second["not_inspected"].as<std::string>("");
          if (v == "block") {
            c.content.block_not_inspected = true;
          } else if (v == "allow") {
            c.content.block_not_inspected = false;
          } else {
            return InvalidArgument(w +
                                   ".not_inspected: must be block (fail closed) or allow "
                                   "(let it through, recorded as not inspected)");
          }
        }
        if (kv.second["block_types"]) {
          ASSIGN_OR_RETURN(c.content.block_types,
                           StringList(kv.second["block_types"], w + ".block_types"));
        }
        if (kv.second["max_individuals"]) {
          ASSIGN_OR_RETURN(c.content.max_individuals,
                           ParseSize(kv.second["max_individuals"], w + ".max_individuals"));
        }
      } else if (k == "tenant_headers") {
        if (!kv.second.IsSequence()) return InvalidArgument(w + ": expected a list");
        for (const auto& item : kv.second) {
          RETURN_IF_ERROR(CheckKeys(item, {"hosts", "headers", "note"}, w));
          TenantRule rule;
          if (!item["hosts"] || !item["headers"]) {
            return InvalidArgument(w + ": each entry needs hosts and headers");
          }
          ASSIGN_OR_RETURN(rule.hosts, StringList(item["hosts"], w + ".hosts"));
          for (auto& h : rule.hosts) {
            h = Lower(h);
            if (h.rfind("*.", 0) == 0) h.erase(0, 2);
            RETURN_IF_ERROR(ValidateDomain(h, w + ".hosts"));
          }
          if (!item["headers"].IsMap()) return InvalidArgument(w + ".headers: expected a mapping");
          for (const auto& h : item["headers"]) {
            std::string hn = h.first.as<std::string>("");
            std::string hv = h.second.as<std::string>("");
            if (hn.empty() || hn.find_first_of(" :\r\n") != std::string::npos ||
                hv.find_first_of("\r\n") != std::string::npos) {
              return InvalidArgument(w + ".headers: invalid header '" + hn + "'");
            }
            rule.headers.emplace_back(hn, hv);
          }
          c.tenant_headers.push_back(std::move(rule));
        }
      }
    }
    return Status::Ok();
  }

  Status CapNode(const YAML::Node& n, const std::string& f) {
    std::string where = f + ": caps[" + std::to_string(p.caps.size()) + "]";
    RETURN_IF_ERROR(CheckKeys(
        n, {"name", "per", "window", "max_bytes", "max_individuals", "categories"}, where));
    Cap cap;
    cap.name = n["name"].as<std::string>("cap" + std::to_string(p.caps.size() + 1));
    if (n["per"]) {
      std::string per = n["per"].as<std::string>("");
      if (per == "user_destination") {
        cap.scope = CapScope::kUserDestination;
      } else if (per == "user") {
        cap.scope = CapScope::kUser;
      } else {
        return InvalidArgument(where + ".per: must be user_destination or user");
      }
    }
    if (!n["window"]) return InvalidArgument(where + ": needs a window (e.g. 1h)");
    ASSIGN_OR_RETURN(cap.window_seconds, ParseDuration(n["window"], where + ".window"));
    if (n["max_bytes"]) {
      ASSIGN_OR_RETURN(cap.max_bytes, ParseSize(n["max_bytes"], where));
    }
    if (n["max_individuals"]) {
      ASSIGN_OR_RETURN(cap.max_individuals, ParseSize(n["max_individuals"], where));
    }
    if (cap.max_bytes == 0 && cap.max_individuals == 0) {
      return InvalidArgument(where + ": needs max_bytes or max_individuals");
    }
    if (n["categories"]) {
      ASSIGN_OR_RETURN(cap.categories, StringList(n["categories"], where + ".categories"));
    }
    p.caps.push_back(std::move(cap));
    return Status::Ok();
  }

  Status File(const std::string& f, const std::string& text) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return InvalidArgument(f + ": YAML syntax error at line " + std::to_string(e.mark.line + 1) +
                             ": " + e.msg);
    }
    if (root.IsNull()) return Status::Ok();
    try {
      RETURN_IF_ERROR(CheckKeys(root, {"version", "settings", "users", "categories", "caps"}, f));
      if (root["version"] && root["version"].as<int>(0) != 1) {
        return InvalidArgument(f + ": version must be 1");
      }
      if (root["settings"]) RETURN_IF_ERROR(Settings(root["settings"], f));
      if (root["users"]) {
        RETURN_IF_ERROR(CheckKeys(root["users"], {"by_ip"}, f + ": users"));
        const YAML::Node& by_ip = root["users"]["by_ip"];
        if (by_ip) {
          if (!by_ip.IsMap()) return InvalidArgument(f + ": users.by_ip: expected a mapping");
          for (const auto& kv : by_ip) {
            std::string ip = kv.first.as<std::string>(""), user = kv.second.as<std::string>("");
            if (ip.empty() || user.empty()) {
              return InvalidArgument(f + ": users.by_ip: empty address or user");
            }
            p.ip_users[ip] = user;
          }
        }
      }
      if (root["categories"]) {
        if (!root["categories"].IsMap()) {
          return InvalidArgument(f + ": categories: expected a mapping");
        }
        for (const auto& kv : root["categories"]) {
          RETURN_IF_ERROR(CategoryNode(kv.first.as<std::string>(""), kv.second, f));
        }
      }
      if (root["caps"]) {
        if (!root["caps"].IsSequence()) return InvalidArgument(f + ": caps: expected a list");
        for (const auto& c : root["caps"]) RETURN_IF_ERROR(CapNode(c, f));
      }
    } catch (const YAML::Exception& e) {
      return InvalidArgument(f + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    return Status::Ok();
  }
};

}  // namespace

std::string_view UploadActionName(UploadAction a) {
  switch (a) {
    case UploadAction::kAllow:
      return "allow";
    case UploadAction::kInspect:
      return "inspect";
    case UploadAction::kBlock:
      return "block";
  }
  return "?";
}

std::string RegistrableDomain(std::string_view host) {
  std::vector<std::string_view> labels;
  std::string_view h = host;
  while (!h.empty()) {
    size_t dot = h.rfind('.');
    if (dot == std::string_view::npos) {
      labels.push_back(h);
      break;
    }
    labels.push_back(h.substr(dot + 1));
    h = h.substr(0, dot);
  }
  // labels are reversed: tld first.
  if (labels.size() <= 2) return std::string(host);
  // IPv4 literal: keep as is.
  if (std::all_of(host.begin(), host.end(),
                  [](char c) { return (c >= '0' && c <= '9') || c == '.'; }))
    return std::string(host);
  static const std::set<std::string_view> kSecond = {"co", "ne", "or",  "ac",  "go",  "lg",  "ed",
                                                     "gr", "ad", "com", "net", "org", "gov", "edu"};
  size_t keep = 2;
  if (labels[0].size() == 2 && kSecond.count(labels[1])) keep = 3;
  std::string out;
  for (size_t i = keep; i-- > 0;) {
    out += labels[i];
    if (i) out += ".";
  }
  return out;
}

const Category& Policy::Classify(std::string_view host) const {
  std::string site;
  return Classify(host, &site);
}

const Category& Policy::Classify(std::string_view host, std::string* site) const {
  const Category* best = nullptr;
  size_t best_len = 0;
  for (const auto& c : categories) {
    for (const auto& d : c.domains) {
      if (d.size() > best_len && DomainMatches(host, d)) {
        best = &c;
        best_len = d.size();
        *site = d;
      }
    }
  }
  if (best) return *best;
  *site = RegistrableDomain(host);
  return *Find("unknown");  // validated to exist
}

const Category* Policy::Find(std::string_view name) const {
  for (const auto& c : categories) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string Policy::ResolveUser(std::string_view username, std::string_view client_ip) const {
  if (!username.empty()) return std::string(username.substr(0, 256));
  if (!client_ip.empty()) {
    auto it = ip_users.find(std::string(client_ip));
    if (it != ip_users.end()) return it->second;
    return "ip:" + std::string(client_ip.substr(0, 64));
  }
  return "anonymous";
}

Result<std::shared_ptr<const Policy>> ParsePolicy(
    const std::vector<std::pair<std::string, std::string>>& files) {
  Merger m;
  for (const auto& [name, text] : files) RETURN_IF_ERROR(m.File(name, text));
  Policy& p = m.p;
  if (!p.Find("unknown")) {
    return InvalidArgument("policy has no 'unknown' category (the default for unlisted hosts)");
  }
  for (const auto& cap : p.caps) {
    for (const auto& c : cap.categories) {
      if (!p.Find(c))
        return InvalidArgument("cap '" + cap.name + "' names unknown category '" + c + "'");
    }
  }
  if (p.settings.spool_memory_bytes > p.settings.spool_max_bytes) {
    return InvalidArgument("settings: spool_memory_bytes is larger than spool_max_bytes");
  }
  // Version: a hash of every file's name and content.
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 16);
  for (const auto& [name, text] : files) {
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(name.data()),
                              name.size() + 1);
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(text.data()),
                              text.size());
  }
  unsigned char h[16];
  crypto_generichash_final(&st, h, sizeof(h));
  static const char* kHex = "0123456789abcdef";
  for (int i = 0; i < 6; ++i) {
    p.version.push_back(kHex[h[i] >> 4]);
    p.version.push_back(kHex[h[i] & 15]);
  }
  return std::shared_ptr<const Policy>(std::make_shared<Policy>(std::move(p)));
}

namespace {
Result<std::vector<fs::path>> PolicyFiles(const std::string& dir) {
  std::error_code ec;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto ext = it->path().extension().string();
    if ((ext == ".yaml" || ext == ".yml") && it->path().filename().string().front() != '.') {
      files.push_back(it->path());
    }
  }
  if (ec) return NotFound("cannot read policy directory " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  if (files.empty()) return NotFound("policy directory " + dir + " has no *.yaml files");
  return files;
}
}  // namespace

Result<std::shared_ptr<const Policy>> LoadPolicyDir(const std::string& dir) {
  ASSIGN_OR_RETURN(auto paths, PolicyFiles(dir));
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& path : paths) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(path.string(), 16 << 20));
    files.emplace_back(path.filename().string(), std::move(text));
  }
  return ParsePolicy(files);
}

Result<std::unique_ptr<PolicyStore>> PolicyStore::Open(const std::string& dir) {
  std::unique_ptr<PolicyStore> s(new PolicyStore(dir));
  s->fingerprint_ = s->Fingerprint();
  ASSIGN_OR_RETURN(s->current_, LoadPolicyDir(dir));
  return s;
}

std::string PolicyStore::Fingerprint() const {
  auto files = PolicyFiles(dir_);
  if (!files.ok()) return "error";
  std::string fp;
  for (const auto& f : *files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) continue;
    fp += f.filename().string() + ":" + std::to_string(st.st_size) + ":" +
          std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ";";
  }
  return fp;
}

Result<bool> PolicyStore::Poll() {
  std::string fp = Fingerprint();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (fp == fingerprint_) return false;
    fingerprint_ = fp;
  }
  auto loaded = LoadPolicyDir(dir_);
  std::lock_guard<std::mutex> l(mu_);
  if (!loaded.ok()) {
    last_error_ = loaded.status().ToString();
    return loaded.status();
  }
  last_error_.clear();
  current_ = *loaded;
  return true;
}

std::shared_ptr<const Policy> PolicyStore::Current() const {
  std::lock_guard<std::mutex> l(mu_);
  return current_;
}

std::string PolicyStore::last_error() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_error_;
}

}  // namespace mamori::egress
