#include "incident/facts.h"

#include <fmt/format.h>

#include <set>

#include "incident/jst_date.h"

namespace mamori::incident {
namespace {

constexpr int kMaxDepth = 16;

const std::set<std::string>& KnownFields() {
  static const std::set<std::string> k = {"aware_at",
                                          "sector",
                                          "persons",
                                          "data_items",
                                          "malicious_suspected",
                                          "publicly_viewable",
                                          "encryption",
                                          "processor_notified_controller",
                                          "my_number_persons",
                                          "my_number_system",
                                          "ordinance_sensitive",
                                          "low_risk_to_individuals",
                                          "narrative"};
  return k;
}

std::string Join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) {
    if (!out.empty()) out += ", ";
    out += x;
  }
  return out;
}

Status Need(const nlohmann::json& j, const char* field) {
  if (!j.contains(field)) {
    return InvalidArgument(
        fmt::format("{}: required field is missing; add it (see docs/incident.md)", field));
  }
  return Status::Ok();
}

Result<bool> GetBool(const nlohmann::json& j, const char* field, bool required) {
  if (!j.contains(field)) {
    if (required) return Need(j, field);
    return false;
  }
  const auto& v = j.at(field);
  if (!v.is_boolean()) {
    return InvalidArgument(fmt::format("{}: must be true or false, got {}", field, v.type_name()));
  }
  return v.get<bool>();
}

Result<int64_t> GetCount(const nlohmann::json& v, const char* field) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) {
    return InvalidArgument(
        fmt::format("{}: must be a whole number of people (an upper estimate if unsure), got {}",
                    field, v.is_number() ? "a fraction" : v.type_name()));
  }
  if (v.is_number_unsigned()) {
    auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(kMaxPersons)) {
      return InvalidArgument(fmt::format("{}: {} is over the limit of {}", field, u, kMaxPersons));
    }
    return static_cast<int64_t>(u);
  }
  auto n = v.get<int64_t>();
  if (n < 0) return InvalidArgument(fmt::format("{}: must not be negative, got {}", field, n));
  if (n > kMaxPersons) {
    return InvalidArgument(fmt::format("{}: {} is over the limit of {}", field, n, kMaxPersons));
  }
  return n;
}

}  // namespace

std::string_view SectorName(Sector s) { return s == Sector::kPublic ? "public" : "private"; }

Result<Facts> FactsFromJson(const nlohmann::json& j) {
  if (!j.is_object()) {
    return InvalidArgument("facts: the top level must be a JSON object {\"aware_at\": ..., ...}");
  }
  for (const auto& [key, _] : j.items()) {
    if (!KnownFields().count(key)) {
      return InvalidArgument(fmt::format("{}: unknown field; known fields are {}",
                                         key.substr(0, 64), Join(KnownFields())));
    }
  }
  Facts f;
  // aware_at
  RETURN_IF_ERROR(Need(j, "aware_at"));
  if (!j["aware_at"].is_string()) {
    return InvalidArgument("aware_at: must be a string like \"2026-04-01T09:30:00+09:00\"");
  }
  f.aware_at = j["aware_at"].get<std::string>();
  {
    auto t = ParseDateTime(f.aware_at);
    if (!t.ok()) return t.status().WithContext("aware_at");
    f.aware_at_micros = *t;
  }
  // sector
  RETURN_IF_ERROR(Need(j, "sector"));
  if (!j["sector"].is_string()) return InvalidArgument("sector: must be \"private\" or \"public\"");
  {
    auto s = j["sector"].get<std::string>();
    if (s == "private") {
      f.sector = Sector::kPrivate;
    } else if (s == "public") {
      f.sector = Sector::kPublic;
    } else {
      return InvalidArgument(fmt::format(
          "sector: must be \"private\" (個人情報取扱事業者) or \"public\" (行政機関等), got \"{}\"",
          s.substr(0, 64)));
    }
  }
  // persons
  RETURN_IF_ERROR(Need(j, "persons"));
  {
    auto n = GetCount(j["persons"], "persons");
    if (!n.ok()) return n.status();
    f.persons = *n;
  }
  // data_items
  RETURN_IF_ERROR(Need(j, "data_items"));
  {
    const auto& items = j["data_items"];
    if (!items.is_array()) {
      return InvalidArgument(
          "data_items: must be an array of strings such as [\"name\", \"address\"]");
    }
    if (items.size() > kMaxDataItems) {
      return InvalidArgument(
          fmt::format("data_items: {} entries, over the limit of {}", items.size(), kMaxDataItems));
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string() || items[i].get<std::string>().empty()) {
        return InvalidArgument(fmt::format("data_items[{}]: must be a non-empty string", i));
      }
      auto s = items[i].get<std::string>();
      if (s.size() > 128) {
        return InvalidArgument(fmt::format("data_items[{}]: longer than 128 bytes", i));
      }
      if (seen.insert(s).second) f.data_items.push_back(s);
    }
  }
  // booleans
  {
    auto b = GetBool(j, "malicious_suspected", true);
    if (!b.ok()) return b.status();
    f.malicious_suspected = *b;
  }
  {
    auto b = GetBool(j, "publicly_viewable", true);
    if (!b.ok()) return b.status();
    f.publicly_viewable = *b;
  }
  {
    auto b = GetBool(j, "processor_notified_controller", true);
    if (!b.ok()) return b.status();
    f.processor_notified_controller = *b;
  }
  // encryption
  RETURN_IF_ERROR(Need(j, "encryption"));
  {
    const auto& e = j["encryption"];
    if (!e.is_null()) {
      if (!e.is_object()) {
        return InvalidArgument(
            "encryption: must be null or {\"algorithm\": \"AES-256-GCM\", \"key_exposed\": false}");
      }
      for (const auto& [key, _] : e.items()) {
        if (key != "algorithm" && key != "key_exposed") {
          return InvalidArgument(fmt::format(
              "encryption.{}: unknown field; only algorithm and key_exposed", key.substr(0, 64)));
        }
      }
      if (!e.contains("algorithm") || !e["algorithm"].is_string() ||
          e["algorithm"].get<std::string>().empty()) {
        return InvalidArgument(
            "encryption.algorithm: must be a non-empty string such as \"AES-256-GCM\"");
      }
      if (!e.contains("key_exposed") || !e["key_exposed"].is_boolean()) {
        return InvalidArgument(
            "encryption.key_exposed: must be true or false (true if the key or password may have "
            "leaked too)");
      }
      Encryption enc;
      enc.algorithm = e["algorithm"].get<std::string>();
      if (enc.algorithm.size() > 128) {
        return InvalidArgument("encryption.algorithm: longer than 128 bytes");
      }
      enc.key_exposed = e["key_exposed"].get<bool>();
      f.encryption = enc;
    }
  }
  // optional extensions
  if (j.contains("my_number_persons") && !j["my_number_persons"].is_null()) {
    auto n = GetCount(j["my_number_persons"], "my_number_persons");
    if (!n.ok()) return n.status();
    if (*n > f.persons) {
      return InvalidArgument(fmt::format(
          "my_number_persons: {} is more than persons ({}); persons counts everyone affected", *n,
          f.persons));
    }
    f.my_number_persons = *n;
  }
  for (auto [field, dst] : {std::pair{"my_number_system", &f.my_number_system},
                            std::pair{"ordinance_sensitive", &f.ordinance_sensitive},
                            std::pair{"low_risk_to_individuals", &f.low_risk_to_individuals}}) {
    auto b = GetBool(j, field, false);
    if (!b.ok()) return b.status();
    *dst = *b;
  }
  if (j.contains("narrative")) {
    const auto& n = j["narrative"];
    if (!n.is_object()) return InvalidArgument("narrative: must be an object of strings");
    for (const auto& [key, v] : n.items()) {
      if (!v.is_string()) {
        return InvalidArgument(fmt::format("narrative.{}: must be a string", key.substr(0, 64)));
      }
      if (v.get<std::string>().size() > kMaxStringBytes) {
        return InvalidArgument(
            fmt::format("narrative.{}: longer than {} bytes", key.substr(0, 64), kMaxStringBytes));
      }
    }
    f.narrative = n;
  }
  return f;
}

Result<Facts> ParseFacts(std::string_view json_text) {
  if (json_text.size() > kMaxFactsBytes) {
    return ResourceExhausted(
        fmt::format("facts: {} bytes, over the limit of {}", json_text.size(), kMaxFactsBytes));
  }
  // Nesting budget: the facts are flat; deep nesting is hostile input.
  {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (char c : json_text) {
      if (in_string) {
        if (escaped) {
          escaped = false;
        } else if (c == '\\') {
          escaped = true;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        if (++depth > kMaxDepth) {
          return InvalidArgument(fmt::format(
              "facts: nested deeper than {} levels; the facts file is flat", kMaxDepth));
        }
      } else if (c == '}' || c == ']') {
        --depth;
      }
    }
  }
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Find the position for a helpful message.
    try {
      auto unused = nlohmann::json::parse(json_text);
      (void)unused;
    } catch (const nlohmann::json::parse_error& e) {
      return InvalidArgument(
          fmt::format("facts: not valid JSON at byte {}; fix the syntax", e.byte));
    } catch (const nlohmann::json::exception& e) {
      return InvalidArgument(fmt::format("facts: not valid JSON ({}); fix the value", e.what()));
    }
    return InvalidArgument("facts: not valid JSON");
  }
  return FactsFromJson(j);
}

nlohmann::json FactsToJson(const Facts& f) {
  nlohmann::json j;
  j["aware_at"] = f.aware_at;
  j["sector"] = std::string(SectorName(f.sector));
  j["persons"] = f.persons;
  j["data_items"] = f.data_items;
  j["malicious_suspected"] = f.malicious_suspected;
  j["publicly_viewable"] = f.publicly_viewable;
  if (f.encryption) {
    j["encryption"] = {{"algorithm", f.encryption->algorithm},
                       {"key_exposed", f.encryption->key_exposed}};
  } else {
    j["encryption"] = nullptr;
  }
  j["processor_notified_controller"] = f.processor_notified_controller;
  if (f.my_number_persons) j["my_number_persons"] = *f.my_number_persons;
  if (f.my_number_system) j["my_number_system"] = true;
  if (f.ordinance_sensitive) j["ordinance_sensitive"] = true;
  if (f.low_risk_to_individuals) j["low_risk_to_individuals"] = true;
  if (!f.narrative.empty()) j["narrative"] = f.narrative;
  return j;
}

}  // namespace mamori::incident
