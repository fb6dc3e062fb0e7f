#include "incident/scope.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "audit/audit.h"
#include "common/file_util.h"
#include "incident/jst_date.h"
#include "incident/rules.h"

namespace mamori::incident {
namespace {

// The fields of one record that scoping needs.
struct Rec {
  int64_t time_micros = 0;
  std::string event_id, component, user, device, action, object, destination, result;
  uint64_t bytes = 0;
  nlohmann::json labels, extra;
};

// Why one record counts as encrypted or not, in plain Japanese (the scope
// output and the timeline keep it, so the officer can check the reasoning).
std::string EncryptionBasis(const Rec& r, const nlohmann::json* enc, const std::string& alg) {
  if (enc && !alg.empty()) {
    bool safe = enc->contains("key_exposed") && (*enc)["key_exposed"].is_boolean() &&
                !(*enc)["key_exposed"].get<bool>();
    return fmt::format("記録のラベルによれば{}で暗号化され、復号鍵は{}。", alg,
                       safe ? "漏えいしていない" : "漏えいした（又は不明）");
  }
  if (enc)
    return "記録の暗号化情報に方式（algorithm）がないため、暗号化されていないものとして扱う。";
  if (r.component == "vault" && r.action == "get") {
    return "保管庫（vault）からのダウンロード: 保管庫は保存時に暗号化しているが、送信前に復号し、"
           "通信路（TLS）でのみ保護して平文を端末に渡す。端末上の複製は保管庫の暗号化で保護されず、"
           "鍵も端末にはないため、暗号化されていないものとして扱う。";
  }
  if (r.component == "vault" && r.action == "put") {
    return "保管庫（vault）へのアップロード: 元のファイルは端末上にあり、その暗号化の有無を保管庫は"
           "知らないため、暗号化されていないものとして扱う。";
  }
  return "暗号化を示すラベルがないため、暗号化されていないものとして扱う（安全側）。";
}

class Collector {
 public:
  Collector(const ScopeQuery& q, const LabelMap& m, const ScopeBudgets& b)
      : q_(q), map_(m), budgets_(b) {}

  Status Add(const Rec& r) {
    if (++result_.records_scanned > budgets_.max_records) {
      return ResourceExhausted(
          fmt::format("more than {} audit records; narrow the time window", budgets_.max_records));
    }
    if (!q_.user.empty() && r.user != q_.user) return Status::Ok();
    if (!q_.devices.empty() && !q_.devices.count(r.device)) return Status::Ok();
    if (!q_.destination.empty() && r.destination != q_.destination) return Status::Ok();
    if (q_.since_micros && r.time_micros < *q_.since_micros) return Status::Ok();
    if (q_.until_micros && r.time_micros >= *q_.until_micros) return Status::Ok();
    if (!q_.actions.empty() && !q_.actions.count(r.action)) return Status::Ok();
    if (!q_.include_denied && !r.result.empty() && r.result != "allow") return Status::Ok();
    if (r.object.empty()) return Status::Ok();
    ++result_.records_matched;
    auto it = objects_.find(r.object);
    if (it == objects_.end()) {
      if (objects_.size() >= budgets_.max_objects) {
        return ResourceExhausted(
            fmt::format("more than {} objects in scope; narrow the query", budgets_.max_objects));
      }
      ScopeObject o;
      o.object = r.object;
      o.component = r.component;
      o.first_micros = o.last_micros = r.time_micros;
      it = objects_.emplace(r.object, std::move(o)).first;
      first_record_[r.object] = true;
    }
    ScopeObject& o = it->second;
    o.first_micros = std::min(o.first_micros, r.time_micros);
    o.last_micros = std::max(o.last_micros, r.time_micros);
    ++o.records;
    o.bytes += r.bytes;
    if (!r.user.empty()) o.users.insert(r.user);
    if (!r.device.empty()) o.devices.insert(r.device);
    if (!r.destination.empty()) o.destinations.insert(r.destination);
    if (!r.action.empty()) o.actions.insert(r.action);
    if (!r.event_id.empty() && o.event_ids.size() < 100) o.event_ids.insert(r.event_id);
    const auto& L = r.labels;
    if (L.is_object() && !(L.contains("scanned") && L["scanned"] == false) &&
        (L.contains("types") || L.contains("individuals") || L.contains("person_hashes"))) {
      o.labelled = true;
    }
    if (L.is_object()) {
      if (L.contains("types") && L["types"].is_object()) {
        for (const auto& [type, count] : L["types"].items()) {
          int64_t n = count.is_number_integer()
                          ? std::clamp<int64_t>(count.get<int64_t>(), 0, kMaxPersons)
                          : 1;
          o.types[type] = std::max(o.types[type], n);
        }
      }
      if (L.contains("individuals") && L["individuals"].is_number_integer()) {
        // Clamp hostile values; the total is checked against the facts budget.
        int64_t n = std::clamp<int64_t>(L["individuals"].get<int64_t>(), 0, kMaxPersons);
        o.individuals = std::max<int64_t>(o.individuals, n);
      }
      if (L.contains("person_hashes") && L["person_hashes"].is_array()) {
        for (const auto& h : L["person_hashes"]) {
          if (!h.is_string()) continue;
          if (o.person_hashes.size() >= budgets_.max_person_hashes) {
            return ResourceExhausted("too many person hashes in one object");
          }
          o.person_hashes.insert(h.get<std::string>());
        }
      }
    }
    // Encryption: every record of the object must say encrypted with the key
    // safe, or the object counts as unencrypted (fail closed).
    const nlohmann::json* enc = nullptr;
    if (L.is_object() && L.contains("encryption") && L["encryption"].is_object()) {
      enc = &L["encryption"];
    } else if (r.extra.is_object() && r.extra.contains("encryption") &&
               r.extra["encryption"].is_object()) {
      enc = &r.extra["encryption"];
    }
    bool rec_encrypted = enc && enc->contains("algorithm") && (*enc)["algorithm"].is_string();
    bool rec_key_exposed =
        !(rec_encrypted && enc->contains("key_exposed") && (*enc)["key_exposed"].is_boolean() &&
          !(*enc)["key_exposed"].get<bool>());
    std::string alg = rec_encrypted ? (*enc)["algorithm"].get<std::string>() : "";
    if (o.encryption_basis.size() < 8) o.encryption_basis.insert(EncryptionBasis(r, enc, alg));
    if (first_record_[r.object]) {
      first_record_[r.object] = false;
      o.encrypted = rec_encrypted;
      o.key_exposed = rec_key_exposed;
      o.algorithm = alg;
    } else {
      o.encrypted = o.encrypted && rec_encrypted;
      o.key_exposed = o.key_exposed || rec_key_exposed;
      if (o.algorithm != alg) o.algorithm = "mixed";
    }
    return Status::Ok();
  }

  Result<ScopeResult> Finish() {
    std::set<std::string> items, unmapped;
    std::set<std::string> hashes;
    int64_t sum_without_hashes = 0;
    size_t with_hashes = 0;
    bool all_encrypted = !objects_.empty();
    bool any_key_exposed = false;
    std::set<std::string> algorithms;
    for (auto& [id, o] : objects_) {
      int64_t most = 0;  // the most findings of one personal-data type
      for (const auto& [type, n] : o.types) {
        auto m = map_.types.find(type);
        if (m == map_.types.end()) {
          unmapped.insert(type);
          items.insert("other:" + type);
        } else if (m->second) {
          items.insert(*m->second);
          most = std::max(most, n);
        }
      }
      if (o.labelled && most >= 10 && most > 4 * o.individuals) {
        o.individuals_suspect = true;
        ++result_.suspect_objects;
      }
      if (!o.person_hashes.empty()) {
        ++with_hashes;
        hashes.insert(o.person_hashes.begin(), o.person_hashes.end());
      } else {
        sum_without_hashes += o.individuals;
      }
      if (!o.labelled) ++result_.unlabelled_objects;
      all_encrypted = all_encrypted && o.encrypted;
      any_key_exposed = any_key_exposed || o.key_exposed;
      algorithms.insert(o.algorithm);
      result_.objects.push_back(std::move(o));
    }
    result_.data_items.assign(items.begin(), items.end());
    result_.unmapped_types.assign(unmapped.begin(), unmapped.end());
    result_.persons = static_cast<int64_t>(hashes.size()) + sum_without_hashes;
    if (result_.persons > kMaxPersons) {
      return ResourceExhausted(
          fmt::format("the scope counts {} people, over the limit of {}; check "
                      "the labels or narrow the query",
                      result_.persons, kMaxPersons));
    }
    if (result_.objects.empty()) {
      result_.person_method = "none";
    } else if (with_hashes == result_.objects.size()) {
      result_.person_method = "dedup";
    } else if (with_hashes == 0) {
      result_.person_method = "sum";
    } else {
      result_.person_method = "mixed";
    }
    result_.any_unencrypted = !all_encrypted && !result_.objects.empty();
    if (all_encrypted) {
      Encryption e;
      e.algorithm = algorithms.size() == 1 ? *algorithms.begin() : "mixed";
      e.key_exposed = any_key_exposed;
      result_.encryption = e;
    }
    return std::move(result_);
  }

 private:
  const ScopeQuery& q_;
  const LabelMap& map_;
  const ScopeBudgets& budgets_;
  std::map<std::string, ScopeObject> objects_;
  std::map<std::string, bool> first_record_;
  ScopeResult result_;
};

Result<Rec> ParseLine(const std::string& line, uint64_t lineno, const std::string& path) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  auto bad = [&](const std::string& why) {
    return InvalidArgument(fmt::format(
        "{}:{}: {}; is this a `mamori audit export --format jsonl` file?", path, lineno, why));
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  Rec r;
  if (!j.contains("time") || !j["time"].is_string()) return bad("missing \"time\"");
  auto t = ParseDateTime(j["time"].get<std::string>());
  if (!t.ok()) return bad("bad \"time\": " + t.status().message());
  r.time_micros = *t;
  auto str = [&](const char* k) -> std::string {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
  };
  r.event_id = str("event_id");
  r.component = str("component");
  r.user = str("user");
  r.device = str("device");
  r.action = str("action");
  r.object = str("object");
  r.destination = str("destination");
  r.result = str("result");
  if (j.contains("bytes") && j["bytes"].is_number_unsigned()) r.bytes = j["bytes"].get<uint64_t>();
  if (j.contains("labels")) r.labels = j["labels"];
  if (j.contains("extra")) r.extra = j["extra"];
  return r;
}

}  // namespace

Result<LabelMap> LabelMap::Parse(const std::string& text, const std::string& name) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap() || !root["types"] || !root["types"].IsMap()) {
      return InvalidArgument(name + ": types: required mapping of detector type -> data item");
    }
    LabelMap m;
    for (const auto& kv : root["types"]) {
      auto type = kv.first.as<std::string>();
      if (kv.second.IsNull()) {
        m.types[type] = std::nullopt;
      } else if (kv.second.IsScalar()) {
        m.types[type] = kv.second.as<std::string>();
      } else {
        return InvalidArgument(fmt::format("{}: types.{}: must be a data item or ~", name, type));
      }
    }
    return m;
  } catch (const YAML::Exception& e) {
    return InvalidArgument(
        fmt::format("{}: YAML error at line {}: {}", name, e.mark.line + 1, e.msg));
  }
}

Result<LabelMap> LabelMap::LoadDefault() {
  std::string path = RuleCatalog::DefaultDirectory() + "/labels.yaml";
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
  return Parse(text, path);
}

Result<ScopeResult> ScopeFromJsonl(const std::string& path, const ScopeQuery& query,
                                   const LabelMap& labels, const ScopeBudgets& budgets) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(fmt::format("{}: cannot open the audit export", path));
  return ScopeFromJsonlStream(in, path, query, labels, budgets);
}

Result<ScopeResult> ScopeFromJsonlStream(std::istream& in, const std::string& path,
                                         const ScopeQuery& query, const LabelMap& labels,
                                         const ScopeBudgets& budgets) {
  Collector c(query, labels, budgets);
  std::string line;
  uint64_t lineno = 0;
  auto handle = [&]() -> Status {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return Status::Ok();
    ASSIGN_OR_RETURN(Rec r, ParseLine(line, lineno, path));
    return c.Add(r);
  };
  // Read in blocks and split lines, with a per-line budget.
  std::vector<char> buf(64 * 1024);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize n = in.gcount();
    if (n <= 0) break;
    const char* p = buf.data();
    const char* end = p + n;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
      const char* stop = nl ? nl : end;
      if (line.size() + (stop - p) > budgets.max_line_bytes) {
        return ResourceExhausted(fmt::format("{}:{}: line longer than {} bytes", path, lineno + 1,
                                             budgets.max_line_bytes));
      }
      line.append(p, stop);
      if (!nl) break;
      RETURN_IF_ERROR(handle());
      line.clear();
      p = nl + 1;
    }
  }
  if (!line.empty()) RETURN_IF_ERROR(handle());
  if (in.bad()) return Unavailable(fmt::format("{}: read error", path));
  return c.Finish();
}

Result<ScopeResult> ScopeFromAuditLog(const std::string& path, const ScopeQuery& query,
                                      const LabelMap& labels, const ScopeBudgets& budgets) {
  Collector c(query, labels, budgets);
  audit::ReaderOptions ro;
  ro.path = path;
  ro.max_line_bytes = budgets.max_line_bytes;
  audit::Filter f;
  f.since_micros = query.since_micros;
  f.until_micros = query.until_micros;
  f.user = query.user;
  if (query.devices.size() == 1) f.device = *query.devices.begin();
  f.destination = query.destination;
  Status st = audit::Scan(ro, f, [&](const audit::StoredRecord& s) -> Status {
    Rec r;
    r.time_micros = s.record.time_micros;
    r.event_id = s.record.event_id;
    r.component = s.record.component;
    r.user = s.record.user;
    r.device = s.record.device;
    r.action = s.record.action;
    r.object = s.record.object;
    r.destination = s.record.destination;
    r.result = s.record.result;
    r.bytes = s.record.bytes;
    r.labels = s.record.labels;
    r.extra = s.record.extra;
    return c.Add(r);
  });
  if (!st.ok()) return st.WithContext("reading the audit log " + path);
  return c.Finish();
}

Facts ApplyScope(const Facts& before, const ScopeResult& scope) {
  Facts f = before;
  std::set<std::string> items(before.data_items.begin(), before.data_items.end());
  items.insert(scope.data_items.begin(), scope.data_items.end());
  f.data_items.assign(items.begin(), items.end());
  f.persons = scope.persons;
  f.encryption = scope.encryption;
  return f;
}

}  // namespace mamori::incident
