// `mamori incident`: incident response from the audit trail to the legal
// duties, deadlines, documents and cost (docs/incident.md).
//
//   open      record the awareness time (発覚日時) and open the 5W1H timeline
//   note      append a 5W1H entry to the timeline
//   facts     update the facts (persons, items, malicious, narrative, ...)
//   scope     query the audit log / JSONL export and set the facts from labels
//   assess    run the rule engine (on --facts FILE.json, or on a stored incident)
//   docs      write the PPC report draft, notices, Q&A, IPA entry (md/html/pdf)
//   estimate  JNSA JO model and response cost
//   timeline  print (and verify) the timeline;  list  list incidents
//
// Exit codes: 0 ok, 1 refusal (timeline verification failed), 2 error.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "audit/audit.h"
#include "cli/command.h"
#include "common/file_util.h"
#include "incident/assess.h"
#include "incident/docs.h"
#include "incident/estimate.h"
#include "incident/facts.h"
#include "incident/rules.h"
#include "incident/scope.h"
#include "incident/store.h"
#include "vault/meta_store.h"

namespace mamori::cli {
namespace {

using namespace mamori::incident;

struct Common {
  std::string db = DefaultDatabasePath();
  std::string actor;
  int64_t id = 0;
  std::vector<std::string> rules_dirs;
  std::string facts_path;
  std::string format = "text";
  std::string audit_out, audit_key;  // mirror each step into the shared audit log
};

std::string Actor(const Common& c) {
  if (!c.actor.empty()) return c.actor;
  for (const char* v : {"SUDO_USER", "USER", "LOGNAME"}) {
    if (const char* e = std::getenv(v); e && *e) return e;
  }
  return "unknown";
}

int Fail(const Status& s) {
  PrintError(s.ToString());
  return 2;
}

std::string EnvOr(const std::string& v, const char* env) {
  if (!v.empty()) return v;
  const char* e = std::getenv(env);
  return e ? e : "";
}

// Mirrors the incident's latest timeline event into the shared audit log
// (src/audit), when --audit-out (or $MAMORI_AUDIT_LOG) is given. Fail closed:
// an error here makes the command fail.
Status Mirror(const Common& c, IncidentStore& store, int64_t id) {
  std::string log = EnvOr(c.audit_out, "MAMORI_AUDIT_LOG");
  if (log.empty()) return Status::Ok();
  std::string key = EnvOr(c.audit_key, "MAMORI_AUDIT_KEY");
  if (key.empty()) {
    return InvalidArgument(
        "--audit-key: required with --audit-out (the Ed25519 signing key from "
        "`mamori audit keygen`)");
  }
  ASSIGN_OR_RETURN(std::vector<Event> tl, store.Timeline(id));
  if (tl.empty()) return Internal("incident timeline is empty after a step");
  const Event& e = tl.back();
  audit::LogOptions lo;
  lo.path = log;
  lo.signing_key_path = key;
  auto opened = audit::Log::Open(lo);
  if (!opened.ok()) {
    return opened.status().WithContext(fmt::format(
        "step recorded on incident {} (event {}) but the shared audit log could not be opened", id,
        e.seq));
  }
  audit::Record r;
  r.component = "incident";
  r.user = e.actor;
  r.action = "incident." + e.kind;
  r.object = fmt::format("incident/{}", id);
  r.result = "allow";
  r.reason = e.kind;
  r.extra = {{"incident_id", id}, {"seq", e.seq}, {"hash", e.hash}};
  auto seq = (*opened)->Append(std::move(r));
  if (!seq.ok()) {
    return seq.status().WithContext(fmt::format(
        "step recorded on incident {} (event {}) but not in the shared audit log", id, e.seq));
  }
  return (*opened)->Close();
}

Result<RuleCatalog> LoadCatalog(const std::vector<std::string>& dirs) {
  if (dirs.empty()) return RuleCatalog::LoadDefault();
  return RuleCatalog::Load(dirs);
}

Result<Facts> LoadFactsFile(const std::string& path) {
  auto text = ReadFile(path, kMaxFactsBytes);
  if (!text.ok()) return text.status().WithContext("reading the facts file");
  auto f = ParseFacts(*text);
  if (!f.ok()) return f.status().WithContext(path);
  return f;
}

Result<bool> ParseBool(const std::string& flag, const std::string& v) {
  if (v == "true" || v == "yes" || v == "1") return true;
  if (v == "false" || v == "no" || v == "0") return false;
  return InvalidArgument(fmt::format("{}: must be true or false, got \"{}\"", flag, v));
}

// The facts and title of either --facts FILE or --id N.
struct Subject {
  Facts facts;
  std::string title;
  std::unique_ptr<IncidentStore> store;  // set when --id
  int64_t id = 0;
  std::vector<Event> timeline;
  nlohmann::json scope = nullptr;
};

Result<Subject> LoadSubject(const Common& c) {
  Subject s;
  if (!c.facts_path.empty() && c.id != 0) {
    return InvalidArgument("give either --facts FILE or --id N, not both");
  }
  if (!c.facts_path.empty()) {
    ASSIGN_OR_RETURN(s.facts, LoadFactsFile(c.facts_path));
    s.title = s.facts.narrative.value("title", "個人データの漏えい等");
    return s;
  }
  if (c.id == 0)
    return InvalidArgument("give --facts FILE.json or --id N (see `mamori incident list`)");
  ASSIGN_OR_RETURN(s.store, IncidentStore::Open(c.db));
  ASSIGN_OR_RETURN(IncidentCase ic, s.store->Get(c.id));
  s.facts = ic.facts;
  s.title = ic.title;
  s.id = c.id;
  ASSIGN_OR_RETURN(s.timeline, s.store->Timeline(c.id));
  for (const auto& e : s.timeline) {
    if (e.kind == "scope" && e.detail.contains("summary")) s.scope = e.detail["summary"];
  }
  return s;
}

Status Record(Subject& s, const Common& c, const std::string& kind, const std::string& what,
              nlohmann::json detail) {
  if (!s.store) return Status::Ok();
  Event e;
  e.actor = Actor(c);
  e.kind = kind;
  e.what = what;
  e.detail = std::move(detail);
  auto r = s.store->Append(s.id, std::move(e));
  if (!r.ok()) return r.status();
  return Mirror(c, *s.store, s.id);
}

// ---------------------------------------------------------------- assess

int RunAssess(const Common& c) {
  auto catalog = LoadCatalog(c.rules_dirs);
  if (!catalog.ok()) return Fail(catalog.status());
  auto s = LoadSubject(c);
  if (!s.ok()) return Fail(s.status());
  auto a = Assess(s->facts, *catalog);
  if (!a.ok()) {
    return Fail(c.facts_path.empty() ? a.status() : a.status().WithContext(c.facts_path));
  }
  auto j = AssessmentToJson(*a);
  // Fail closed: the decision is only shown once it is on the record.
  if (Status st =
          Record(*s, c, "assess", "規則エンジンで報告義務と期限を判定",
                 {{"rule_set", j["rule_set"]}, {"appi", j["appi"]}, {"my_number", j["my_number"]}});
      !st.ok()) {
    return Fail(st);
  }
  if (c.format == "json") {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << AssessmentToText(*a);
  }
  return 0;
}

// ---------------------------------------------------------------- open

struct OpenOpts {
  std::string title, aware_at, sector = "private";
};

int RunOpen(const Common& c, const OpenOpts& o) {
  Facts f;
  if (!c.facts_path.empty()) {
    auto ff = LoadFactsFile(c.facts_path);
    if (!ff.ok()) return Fail(ff.status());
    f = *ff;
    if (!o.aware_at.empty() && o.aware_at != f.aware_at) {
      return Fail(InvalidArgument("--aware-at differs from aware_at in the facts file; give one"));
    }
  } else {
    if (o.aware_at.empty()) {
      return Fail(
          InvalidArgument("--aware-at: required: when the business learned of the incident "
                          "(発覚日時), e.g. 2026-12-20T10:00:00+09:00"));
    }
    nlohmann::json j = {{"aware_at", o.aware_at},
                        {"sector", o.sector},
                        {"persons", 0},
                        {"data_items", nlohmann::json::array()},
                        {"malicious_suspected", false},
                        {"publicly_viewable", false},
                        {"encryption", nullptr},
                        {"processor_notified_controller", false}};
    auto ff = FactsFromJson(j);
    if (!ff.ok()) return Fail(ff.status().WithContext("--aware-at/--sector"));
    f = *ff;
  }
  auto store = IncidentStore::Open(c.db);
  if (!store.ok()) return Fail(store.status());
  auto id = (*store)->Create(o.title, f, Actor(c));
  if (!id.ok()) return Fail(id.status());
  if (Status st = Mirror(c, **store, *id); !st.ok()) return Fail(st);
  std::cout << *id << "\n";
  std::cerr << fmt::format("incident {} opened; 発覚日 {} (日本時間) starts the legal clock\n", *id,
                           FormatDateJa(JstDate(f.aware_at_micros)));
  return 0;
}

// ---------------------------------------------------------------- note

struct NoteOpts {
  std::string who, what, when, where, why, how;
};

int RunNote(const Common& c, const NoteOpts& o) {
  auto store = IncidentStore::Open(c.db);
  if (!store.ok()) return Fail(store.status());
  Event e;
  e.actor = Actor(c);
  e.kind = "note";
  e.who = o.who;
  e.what = o.what;
  e.when = o.when;
  e.where = o.where;
  e.why = o.why;
  e.how = o.how;
  auto r = (*store)->Append(c.id, e);
  if (!r.ok()) return Fail(r.status());
  if (Status st = Mirror(c, **store, c.id); !st.ok()) return Fail(st);
  std::cout << r->seq << "\n";
  return 0;
}

// ---------------------------------------------------------------- facts

struct FactsOpts {
  std::string merge_path;
  int64_t persons = -1;
  std::vector<std::string> add_items, narrative;
  std::string malicious, publicly_viewable, processor_notified, key_exposed, encryption, sector;
  bool no_encryption = false;
};

int RunFacts(const Common& c, const FactsOpts& o) {
  auto store = IncidentStore::Open(c.db);
  if (!store.ok()) return Fail(store.status());
  auto ic = (*store)->Get(c.id);
  if (!ic.ok()) return Fail(ic.status());
  nlohmann::json j = FactsToJson(ic->facts);
  nlohmann::json changes = nlohmann::json::object();
  if (!o.merge_path.empty()) {
    auto text = ReadFile(o.merge_path, kMaxFactsBytes);
    if (!text.ok()) return Fail(text.status());
    auto m = nlohmann::json::parse(*text, nullptr, false);
    if (m.is_discarded() || !m.is_object()) {
      return Fail(InvalidArgument(o.merge_path + ": must be a JSON object of facts fields"));
    }
    for (const auto& [k, v] : m.items()) {
      if (k == "narrative" && v.is_object()) {
        for (const auto& [nk, nv] : v.items()) j["narrative"][nk] = nv;
      } else {
        j[k] = v;
      }
      changes[k] = v;
    }
  }
  if (o.persons >= 0) j["persons"] = changes["persons"] = o.persons;
  for (const auto& item : o.add_items) {
    if (std::find(j["data_items"].begin(), j["data_items"].end(), item) == j["data_items"].end()) {
      j["data_items"].push_back(item);
    }
    changes["add_items"].push_back(item);
  }
  for (auto [flag, val, key] :
       {std::tuple{"--malicious-suspected", &o.malicious, "malicious_suspected"},
        std::tuple{"--publicly-viewable", &o.publicly_viewable, "publicly_viewable"},
        std::tuple{"--processor-notified", &o.processor_notified,
                   "processor_notified_controller"}}) {
    if (val->empty()) continue;
    auto b = ParseBool(flag, *val);
    if (!b.ok()) return Fail(b.status());
    j[key] = changes[key] = *b;
  }
  if (!o.sector.empty()) j["sector"] = changes["sector"] = o.sector;
  if (o.no_encryption) j["encryption"] = changes["encryption"] = nullptr;
  if (!o.encryption.empty()) {
    if (o.key_exposed.empty()) {
      return Fail(
          InvalidArgument("--key-exposed: required with --encryption (true if the key or "
                          "password may have leaked too)"));
    }
    auto b = ParseBool("--key-exposed", o.key_exposed);
    if (!b.ok()) return Fail(b.status());
    j["encryption"] = changes["encryption"] = {{"algorithm", o.encryption}, {"key_exposed", *b}};
  }
  for (const auto& kv : o.narrative) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(InvalidArgument("--narrative: write KEY=TEXT, e.g. cause=ノートPCの紛失"));
    }
    j["narrative"][kv.substr(0, eq)] = kv.substr(eq + 1);
    changes["narrative"][kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto f = FactsFromJson(j);
  if (!f.ok()) return Fail(f.status());
  Status st = (*store)->UpdateFacts(c.id, *f, Actor(c), "facts", {{"changes", changes}});
  if (!st.ok()) return Fail(st);
  if (Status m = Mirror(c, **store, c.id); !m.ok()) return Fail(m);
  std::cout << FactsToJson(*f).dump(2) << "\n";
  return 0;
}

// ---------------------------------------------------------------- scope

struct ScopeOpts {
  std::string jsonl, audit_log, labels, since, until, vault_db;
  ScopeQuery q;
  std::vector<std::string> actions, devices;
};

bool IsVaultDeviceId(const std::string& d) {
  return d.size() > 1 && d.size() < 20 && d[0] == 'd' &&
         d.find_first_not_of("0123456789", 1) == std::string::npos;
}

// The vault writes a device as "d<ID>" in its audit records. A device given by
// name is looked up in the vault's metadata database (--vault-db); every
// device with that name is included (names are not unique: wider is safer).
Result<std::set<std::string>> ResolveDevices(const std::vector<std::string>& given,
                                             const std::string& vault_db,
                                             nlohmann::json* resolved) {
  std::set<std::string> out;
  std::unique_ptr<vault::MetaStore> meta;
  std::vector<vault::Device> all;
  for (const auto& d : given) {
    if (d.empty()) return InvalidArgument("--device: must not be empty");
    if (IsVaultDeviceId(d) || vault_db.empty()) {
      out.insert(d);
      continue;
    }
    if (!meta) {
      // OpenSqliteMetaStore would create a missing file; a typo must not.
      if (!std::filesystem::is_regular_file(vault_db)) {
        return NotFound(
            fmt::format("--vault-db: {} is not a file; give the vault's DATA/meta.db", vault_db));
      }
      ASSIGN_OR_RETURN(meta, vault::OpenSqliteMetaStore(vault_db));
      ASSIGN_OR_RETURN(all, meta->ListDevices());
    }
    std::vector<std::string> ids;
    for (const auto& dev : all) {
      if (dev.name == d) ids.push_back("d" + std::to_string(dev.id));
    }
    if (ids.empty()) {
      return NotFound(fmt::format(
          "--device: no device named \"{}\" in {}; list them with `mamori admin devices list` "
          "or give the id as d<ID>",
          d, vault_db));
    }
    (*resolved)[d] = ids;
    out.insert(ids.begin(), ids.end());
  }
  return out;
}

int RunScope(const Common& c, ScopeOpts o) {
  if (o.jsonl.empty() == o.audit_log.empty()) {
    return Fail(
        InvalidArgument("give exactly one of --audit-jsonl FILE (an export) or --audit-log FILE"));
  }
  if (!o.since.empty()) {
    auto t = ParseDateTime(o.since);
    if (!t.ok()) return Fail(t.status().WithContext("--since"));
    o.q.since_micros = *t;
  }
  if (!o.until.empty()) {
    auto t = ParseDateTime(o.until);
    if (!t.ok()) return Fail(t.status().WithContext("--until"));
    o.q.until_micros = *t;
  }
  o.q.actions.insert(o.actions.begin(), o.actions.end());
  nlohmann::json resolved = nlohmann::json::object();
  auto wanted = ResolveDevices(o.devices, o.vault_db, &resolved);
  if (!wanted.ok()) return Fail(wanted.status());
  o.q.devices = *wanted;
  Result<LabelMap> map = LabelMap::LoadDefault();
  if (!o.labels.empty()) {
    auto text = ReadFile(o.labels, 1 << 20);
    if (!text.ok()) return Fail(text.status());
    map = LabelMap::Parse(*text, o.labels);
  }
  if (!map.ok()) return Fail(map.status());
  auto store = IncidentStore::Open(c.db);
  if (!store.ok()) return Fail(store.status());
  auto ic = (*store)->Get(c.id);
  if (!ic.ok()) return Fail(ic.status());
  auto r = o.jsonl.empty() ? ScopeFromAuditLog(o.audit_log, o.q, *map)
                           : ScopeFromJsonl(o.jsonl, o.q, *map);
  if (!r.ok()) return Fail(r.status());
  std::set<std::string> users, devices, basis_set;
  size_t encrypted = 0;
  for (const auto& obj : r->objects) {
    users.insert(obj.users.begin(), obj.users.end());
    devices.insert(obj.devices.begin(), obj.devices.end());
    basis_set.insert(obj.encryption_basis.begin(), obj.encryption_basis.end());
    if (obj.encrypted && !obj.key_exposed) ++encrypted;
  }
  // Each distinct reason once; objects refer to it by index, so a large scope
  // still fits in one timeline event.
  std::vector<std::string> basis(basis_set.begin(), basis_set.end());
  auto basis_index = [&](const std::string& b) {
    return static_cast<size_t>(std::lower_bound(basis.begin(), basis.end(), b) - basis.begin());
  };
  // The object list is bounded by count and bytes (the timeline event budget
  // is 256 KiB); the rest is counted, never silently dropped.
  constexpr size_t kMaxListedObjects = 1000, kMaxListedBytes = 160 * 1024;
  nlohmann::json objects = nlohmann::json::array();
  size_t listed_bytes = 0, omitted = 0;
  for (const auto& obj : r->objects) {
    std::vector<size_t> why;
    for (const auto& b : obj.encryption_basis) why.push_back(basis_index(b));
    nlohmann::json j = {{"object", obj.object},
                        {"component", obj.component},
                        {"actions", obj.actions},
                        {"labelled", obj.labelled},
                        {"individuals_suspect", obj.individuals_suspect},
                        {"individuals", obj.individuals},
                        {"person_hashes", obj.person_hashes.size()},
                        {"types", obj.types},
                        {"first", FormatDateTimeJst(obj.first_micros)},
                        {"last", FormatDateTimeJst(obj.last_micros)},
                        {"encrypted_key_safe", obj.encrypted && !obj.key_exposed},
                        {"encryption_basis", why},
                        {"event_ids", obj.event_ids}};
    size_t n = j.dump().size();
    if (objects.size() >= kMaxListedObjects || listed_bytes + n > kMaxListedBytes) {
      ++omitted;
      continue;
    }
    listed_bytes += n;
    objects.push_back(std::move(j));
  }
  nlohmann::json summary = {{"source", o.jsonl.empty() ? o.audit_log : o.jsonl},
                            {"records_scanned", r->records_scanned},
                            {"records_matched", r->records_matched},
                            {"objects", r->objects.size()},
                            {"users", users.size()},
                            {"devices", devices.size()},
                            {"persons", r->persons},
                            {"person_method", r->person_method},
                            {"data_items", r->data_items},
                            {"unmapped_types", r->unmapped_types},
                            {"encrypted_key_safe_objects", encrypted},
                            {"encryption_basis", basis},
                            {"unlabelled_objects", r->unlabelled_objects},
                            {"suspect_objects", r->suspect_objects},
                            {"objects_listed", objects.size()},
                            {"objects_not_listed", omitted}};
  nlohmann::json query = {{"user", o.q.user},
                          {"device", o.devices},
                          {"device_ids", o.q.devices},
                          {"device_names_resolved", resolved},
                          {"destination", o.q.destination},
                          {"since", o.since},
                          {"until", o.until},
                          {"actions", o.actions},
                          {"include_denied", o.q.include_denied}};
  Facts after = ApplyScope(ic->facts, *r);
  Status st = (*store)->UpdateFacts(c.id, after, Actor(c), "scope",
                                    {{"query", query}, {"summary", summary}, {"objects", objects}});
  if (!st.ok()) return Fail(st);
  if (Status m = Mirror(c, **store, c.id); !m.ok()) return Fail(m);
  if (!r->unmapped_types.empty()) {
    std::string t;
    for (const auto& u : r->unmapped_types) t += (t.empty() ? "" : ", ") + u;
    std::cerr << "mamori: warning: label types not mapped to data items (kept as other:<type>, so "
                 "they trigger no rule): "
              << t << "; map them in rules/incident/labels.yaml and scope again\n";
  }
  if (r->unlabelled_objects > 0) {
    std::cerr << "mamori: warning: " << r->unlabelled_objects
              << " object(s) in scope carry no complete label (not scanned, or the scan did not "
                 "finish), so their people and data items are unknown and NOT counted; inspect "
                 "them and add them with `mamori incident facts --persons N --add-item ITEM`\n";
  }
  if (r->suspect_objects > 0) {
    std::cerr << "mamori: warning: for " << r->suspect_objects
              << " object(s) the label counts far fewer individuals than the personal data it "
                 "found (see individuals_suspect in --format json); the number of people may be "
                 "too low (a CSV labelled without its column headers does this); check those "
                 "files and set the count with `mamori incident facts --persons N`\n";
  }
  if (c.format == "json") {
    std::cout << nlohmann::json({{"summary", summary},
                                 {"query", query},
                                 {"objects", objects},
                                 {"facts", FactsToJson(after)}})
                     .dump(2)
              << "\n";
  } else {
    std::cout << fmt::format("objects: {}  users: {}  devices: {}  records: {}/{}\n",
                             r->objects.size(), users.size(), devices.size(), r->records_matched,
                             r->records_scanned);
    std::cout << fmt::format("persons: {} ({})\n", r->persons, r->person_method);
    std::string items;
    for (const auto& i : r->data_items) items += (items.empty() ? "" : ", ") + i;
    std::cout << "data items: " << items << "\n";
    std::cout << "encrypted with the key safe: " << encrypted << " of " << r->objects.size()
              << " objects\n";
    for (const auto& b : basis) std::cout << "  " << b << "\n";
  }
  return 0;
}

// ---------------------------------------------------------------- estimate

struct EstimateOpts {
  std::string costs, social = "normal", response = "unknown";
  int64_t annual_profit = -1;
  double lost_fraction = -1;
};

struct EstimateOut {
  JoResult jo;
  ResponseCostResult cost;
};

Result<EstimateOut> ComputeEstimate(const Facts& f, const EstimateOpts& o) {
  ASSIGN_OR_RETURN(JoModel model, JoModel::LoadDefault());
  JoInput in;
  in.items = f.data_items;
  in.persons = f.persons;
  in.social = o.social == "high" ? SocialResponsibility::kHigh : SocialResponsibility::kNormal;
  in.response = o.response == "appropriate"     ? ResponseRating::kAppropriate
                : o.response == "inappropriate" ? ResponseRating::kInappropriate
                                                : ResponseRating::kUnknown;
  EstimateOut out;
  ASSIGN_OR_RETURN(out.jo, EstimateJo(model, in));
  Result<ResponseCosts> costs = ResponseCosts::LoadDefault();
  if (!o.costs.empty()) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(o.costs, 1 << 20));
    costs = ResponseCosts::Parse(text, o.costs);
  }
  if (!costs.ok()) return costs.status();
  ResponseCosts c = *costs;
  if (o.annual_profit >= 0) c.annual_profit = o.annual_profit;
  if (o.lost_fraction >= 0) {
    if (o.lost_fraction > 1)
      return InvalidArgument("--lost-profit-fraction: must be between 0 and 1");
    c.lost_profit_fraction = o.lost_fraction;
  }
  bool card =
      std::find(f.data_items.begin(), f.data_items.end(), "credit_card") != f.data_items.end();
  ASSIGN_OR_RETURN(out.cost, EstimateResponseCost(c, f.persons, card));
  return out;
}

int RunEstimate(const Common& c, const EstimateOpts& o) {
  auto s = LoadSubject(c);
  if (!s.ok()) return Fail(s.status());
  auto e = ComputeEstimate(s->facts, o);
  if (!e.ok()) return Fail(e.status());
  nlohmann::json j = {{"persons", s->facts.persons},
                      {"jo_model", JoResultToJson(e->jo)},
                      {"response_cost", ResponseCostToJson(e->cost)}};
  if (Status st = Record(*s, c, "estimate", "損害額・対応費用を試算",
                         {{"jo_total_yen", e->jo.total}, {"response_total_yen", e->cost.total}});
      !st.ok()) {
    return Fail(st);
  }
  if (c.format == "json") {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "JNSA JOモデル（想定損害賠償額）\n";
  for (const auto& step : e->jo.steps) std::cout << "  " << step << "\n";
  std::cout << "対応費用\n";
  for (const auto& l : e->cost.lines) {
    std::cout << fmt::format("  {}: {}（{}）\n", l.ja, Yen(l.amount), l.formula);
  }
  std::cout << fmt::format("  合計: {}\n", Yen(e->cost.total));
  return 0;
}

// ---------------------------------------------------------------- docs

struct DocsOpts {
  std::string out, font;
  EstimateOpts estimate;
};

int RunDocs(const Common& c, const DocsOpts& o) {
  auto catalog = LoadCatalog(c.rules_dirs);
  if (!catalog.ok()) return Fail(catalog.status());
  auto s = LoadSubject(c);
  if (!s.ok()) return Fail(s.status());
  auto a = Assess(s->facts, *catalog);
  if (!a.ok()) return Fail(a.status());
  std::string font = o.font;
  if (font.empty()) {
    auto f = FindPdfFont();
    if (!f.ok()) return Fail(f.status());
    font = *f;
  }
  DocInput in;
  in.incident_id = s->id;
  in.title = s->title;
  in.facts = s->facts;
  in.assessment = *a;
  in.rules = *catalog->InForce(a->aware_date);
  in.timeline = s->timeline;
  in.scope = s->scope;
  in.generated_at_micros = Clock::Real().NowMicros();
  if (auto e = ComputeEstimate(s->facts, o.estimate); e.ok()) {
    in.jo = e->jo;
    in.cost = e->cost;
  } else {
    std::cerr << "mamori: warning: no cost estimate in the documents: " << e.status().message()
              << "\n";
  }
  auto written = WriteDocuments(BuildDocuments(in), o.out, font);
  if (!written.ok()) return Fail(written.status());
  if (Status st = Record(*s, c, "docs", "報告書草案・通知文・公表文・想定問答・IPA記録を作成",
                         {{"out", o.out}, {"files", *written}});
      !st.ok()) {
    return Fail(st);
  }
  for (const auto& w : *written) std::cout << w << "\n";
  return 0;
}

// ---------------------------------------------------------------- timeline / list

int RunTimeline(const Common& c, bool verify) {
  auto store = IncidentStore::Open(c.db);
  if (!store.ok()) return Fail(store.status());
  auto tl = (*store)->Timeline(c.id);
  if (!tl.ok()) return Fail(tl.status());
  if (tl->empty()) return Fail(NotFound(fmt::format("incident {} does not exist", c.id)));
  if (c.format == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : *tl) {
      arr.push_back({{"seq", e.seq},
                     {"at", FormatDateTimeJst(e.at_micros)},
                     {"actor", e.actor},
                     {"kind", e.kind},
                     {"who", e.who},
                     {"what", e.what},
                     {"when", e.when},
                     {"where", e.where},
                     {"why", e.why},
                     {"how", e.how},
                     {"hash", e.hash}});
    }
    std::cout << arr.dump(2) << "\n";
  } else {
    for (const auto& e : *tl) {
      std::cout << fmt::format("#{} {} {} [{}] {}\n", e.seq, FormatDateTimeJst(e.at_micros),
                               e.actor, e.kind, e.what);
      for (auto [label, val] :
           {std::pair{"who", &e.who}, std::pair{"when", &e.when}, std::pair{"where", &e.where},
            std::pair{"why", &e.why}, std::pair{"how", &e.how}}) {
        if (!val->empty()) std::cout << "    " << label << ": " << *val << "\n";
      }
    }
  }
  if (verify) {
    Status st = (*store)->VerifyChain(c.id);
    if (!st.ok()) {
      PrintError("timeline verification FAILED: " + st.ToString());
      return 1;
    }
    std::cerr << "timeline verified: " << tl->size() << " events, hash chain intact\n";
  }
  return 0;
}

int RunList(const Common& c) {
  auto store = IncidentStore::Open(c.db);
  if (!store.ok()) return Fail(store.status());
  auto all = (*store)->List();
  if (!all.ok()) return Fail(all.status());
  for (const auto& ic : *all) {
    std::cout << fmt::format("{}\t{}\t{}\t{}\n", ic.id, FormatDate(JstDate(ic.aware_at_micros)),
                             ic.facts.persons, ic.title);
  }
  return 0;
}

// ---------------------------------------------------------------- wiring

void AddDb(CLI::App* sub, Common* c) {
  sub->add_option("--db", c->db, "SQLite database (default $MAMORI_DB or var/mamori.db)");
  sub->add_option("--actor", c->actor, "who records this step (default $USER)");
  sub->add_option("--audit-out", c->audit_out,
                  "also record the step in this shared audit log (default $MAMORI_AUDIT_LOG)");
  sub->add_option("--audit-key", c->audit_key,
                  "Ed25519 signing key for --audit-out (default $MAMORI_AUDIT_KEY)");
}

void Setup(CLI::App& app, int* exit_code) {
  auto* inc =
      app.add_subcommand("incident", "Incident response: duties, deadlines, documents, cost");
  inc->require_subcommand(1);

  {
    auto c = std::make_shared<Common>();
    auto* s = inc->add_subcommand("assess", "Run the APPI / My Number rule engine");
    s->add_option("--facts", c->facts_path, "facts JSON file (the contract; see docs/incident.md)");
    s->add_option("--id", c->id, "a stored incident instead of --facts");
    s->add_option("--format", c->format, "json (the contract) or text")
        ->check(CLI::IsMember({"json", "text"}));
    s->add_option("--rules", c->rules_dirs,
                  "rule-set directory (repeatable); default rules/incident");
    AddDb(s, c.get());
    s->callback([c, exit_code] { *exit_code = RunAssess(*c); });
  }
  {
    auto c = std::make_shared<Common>();
    auto o = std::make_shared<OpenOpts>();
    auto* s = inc->add_subcommand("open", "Open an incident: record 発覚日時, start the timeline");
    s->add_option("--title", o->title, "short title, no personal data")->required();
    s->add_option("--aware-at", o->aware_at,
                  "when the business learned of it, ISO 8601 with offset");
    s->add_option("--sector", o->sector, "private or public")
        ->check(CLI::IsMember({"private", "public"}));
    s->add_option("--facts", c->facts_path, "initial facts JSON (optional)");
    AddDb(s, c.get());
    s->callback([c, o, exit_code] { *exit_code = RunOpen(*c, *o); });
  }
  {
    auto c = std::make_shared<Common>();
    auto o = std::make_shared<NoteOpts>();
    auto* s = inc->add_subcommand("note", "Append a 5W1H entry to the timeline");
    s->add_option("--id", c->id, "incident id")->required();
    s->add_option("--what", o->what, "what happened or was done (何を)")->required();
    s->add_option("--who", o->who, "who (誰が; a role or masked id, not a name)");
    s->add_option("--when", o->when, "when (いつ)");
    s->add_option("--where", o->where, "where (どこで)");
    s->add_option("--why", o->why, "why (なぜ)");
    s->add_option("--how", o->how, "how (どのように)");
    AddDb(s, c.get());
    s->callback([c, o, exit_code] { *exit_code = RunNote(*c, *o); });
  }
  {
    auto c = std::make_shared<Common>();
    auto o = std::make_shared<FactsOpts>();
    auto* s =
        inc->add_subcommand("facts", "Update the facts of an incident (recorded on the timeline)");
    s->add_option("--id", c->id, "incident id")->required();
    s->add_option("--merge", o->merge_path, "JSON object of facts fields to set");
    s->add_option("--persons", o->persons, "number of individuals");
    s->add_option("--add-item", o->add_items, "add a data item (repeatable)");
    s->add_option("--malicious-suspected", o->malicious, "true|false");
    s->add_option("--publicly-viewable", o->publicly_viewable, "true|false");
    s->add_option("--processor-notified", o->processor_notified, "true|false");
    s->add_option("--sector", o->sector, "private|public")
        ->check(CLI::IsMember({"private", "public"}));
    s->add_option("--encryption", o->encryption, "algorithm, e.g. AES-256-GCM");
    s->add_option("--key-exposed", o->key_exposed, "true|false (with --encryption)");
    s->add_flag("--no-encryption", o->no_encryption, "the data was not encrypted");
    s->add_option("--narrative", o->narrative, "KEY=TEXT for the documents (repeatable)");
    AddDb(s, c.get());
    s->callback([c, o, exit_code] { *exit_code = RunFacts(*c, *o); });
  }
  {
    auto c = std::make_shared<Common>();
    auto o = std::make_shared<ScopeOpts>();
    auto* s =
        inc->add_subcommand("scope", "Collect the objects from the audit trail and set the facts");
    s->add_option("--id", c->id, "incident id")->required();
    s->add_option("--audit-jsonl", o->jsonl,
                  "exported audit JSONL (mamori audit export --format jsonl)");
    s->add_option("--audit-log", o->audit_log, "the audit log file itself (read via src/audit)");
    s->add_option("--user", o->q.user, "only this user");
    s->add_option("--device", o->devices,
                  "only this device (repeatable): d<ID> as in vault audit records, or a device "
                  "name with --vault-db");
    s->add_option("--vault-db", o->vault_db,
                  "the vault's metadata database (DATA/meta.db), to resolve device names");
    s->add_option("--destination", o->q.destination, "only this destination");
    s->add_option("--since", o->since, "from this time (ISO 8601 with offset)");
    s->add_option("--until", o->until, "before this time");
    s->add_option("--action", o->actions, "only these actions (repeatable), e.g. get");
    s->add_flag("--include-denied", o->q.include_denied, "count denied/held records too");
    s->add_option("--labels", o->labels, "label map YAML (default rules/incident/labels.yaml)");
    s->add_option("--format", c->format, "text or json")->check(CLI::IsMember({"json", "text"}));
    AddDb(s, c.get());
    s->callback([c, o, exit_code] { *exit_code = RunScope(*c, *o); });
  }
  auto add_estimate_opts = [](CLI::App* s, EstimateOpts* o) {
    s->add_option("--costs", o->costs,
                  "response unit costs YAML (default rules/incident/response_costs.yaml)");
    s->add_option("--social", o->social, "社会的責任度: normal (1) or high (2)")
        ->check(CLI::IsMember({"normal", "high"}));
    s->add_option("--response", o->response, "事後対応評価: appropriate, inappropriate or unknown")
        ->check(CLI::IsMember({"appropriate", "inappropriate", "unknown"}));
    s->add_option("--annual-profit", o->annual_profit, "annual profit in yen, for lost profit");
    s->add_option("--lost-profit-fraction", o->lost_fraction, "share of annual profit lost (0..1)");
  };
  {
    auto c = std::make_shared<Common>();
    auto o = std::make_shared<EstimateOpts>();
    auto* s = inc->add_subcommand("estimate", "Cost: JNSA JO model and response costs");
    s->add_option("--facts", c->facts_path, "facts JSON file");
    s->add_option("--id", c->id, "a stored incident instead of --facts");
    s->add_option("--format", c->format, "text or json")->check(CLI::IsMember({"json", "text"}));
    add_estimate_opts(s, o.get());
    AddDb(s, c.get());
    s->callback([c, o, exit_code] { *exit_code = RunEstimate(*c, *o); });
  }
  {
    auto c = std::make_shared<Common>();
    auto o = std::make_shared<DocsOpts>();
    auto* s = inc->add_subcommand("docs", "Write the PPC report draft, notices, Q&A and IPA entry");
    s->add_option("--facts", c->facts_path, "facts JSON file");
    s->add_option("--id", c->id, "a stored incident instead of --facts");
    s->add_option("--out", o->out, "output directory")->required();
    s->add_option("--font", o->font, "TrueType Japanese font for the PDF (default: IPAex Gothic)");
    s->add_option("--rules", c->rules_dirs, "rule-set directory (repeatable)");
    add_estimate_opts(s, &o->estimate);
    AddDb(s, c.get());
    s->callback([c, o, exit_code] { *exit_code = RunDocs(*c, *o); });
  }
  {
    auto c = std::make_shared<Common>();
    auto verify = std::make_shared<bool>(false);
    auto* s = inc->add_subcommand("timeline", "Print the 5W1H timeline of an incident");
    s->add_option("--id", c->id, "incident id")->required();
    s->add_flag("--verify", *verify, "check the hash chain (exit 1 if broken)");
    s->add_option("--format", c->format, "text or json")->check(CLI::IsMember({"json", "text"}));
    AddDb(s, c.get());
    s->callback([c, verify, exit_code] { *exit_code = RunTimeline(*c, *verify); });
  }
  {
    auto c = std::make_shared<Common>();
    auto* s = inc->add_subcommand("list", "List incidents: id, 発覚日, persons, title");
    AddDb(s, c.get());
    s->callback([c, exit_code] { *exit_code = RunList(*c); });
  }
}

}  // namespace

MAMORI_REGISTER_COMMAND("incident", Setup);

}  // namespace mamori::cli
