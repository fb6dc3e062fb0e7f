#include "incident/scope.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "audit/audit.h"
#include "incident/jst_date.h"

namespace mamori::incident {
namespace {

class IncidentScopeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("incident_scope_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    auto m = LabelMap::LoadDefault();
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    map_ = *m;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    auto p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  std::filesystem::path dir_;
  LabelMap map_;
};

const char* kLog =
    R"({"seq":1,"time":"2026-12-18T01:00:00.000000Z","component":"vault","event_id":"E1","user":"sato","device":"pc-17","action":"get","object":"obj-a","bytes":100,"result":"allow","labels":{"types":{"jp.person_name":700,"jp.address":700,"jp.phone":650},"individuals":700}}
{"seq":2,"time":"2026-12-18T01:05:00.000000Z","component":"vault","event_id":"E2","user":"sato","device":"pc-17","action":"get","object":"obj-b","bytes":100,"result":"allow","labels":{"types":{"jp.person_name":500,"email":500,"jp.corporate_number":3},"individuals":500}}
{"seq":3,"time":"2026-12-18T01:06:00.000000Z","component":"vault","event_id":"E3","user":"sato","device":"pc-17","action":"get","object":"obj-a","bytes":100,"result":"allow","labels":{"types":{"jp.person_name":700},"individuals":700}}
{"seq":4,"time":"2026-12-18T01:07:00.000000Z","component":"vault","event_id":"E4","user":"sato","device":"pc-17","action":"get","object":"obj-c","bytes":100,"result":"deny","labels":{"types":{"jp.my_number":9000},"individuals":9000}}
{"seq":5,"time":"2026-12-18T01:08:00.000000Z","component":"vault","event_id":"E5","user":"suzuki","device":"pc-02","action":"get","object":"obj-d","bytes":100,"result":"allow","labels":{"types":{"credit_card":10},"individuals":10}}

{"seq":6,"time":"2026-12-19T01:08:00.000000Z","component":"vault","event_id":"E6","user":"sato","device":"pc-17","action":"get","object":"obj-e","bytes":100,"result":"allow","labels":{"types":{"jp.blood_type":10},"individuals":10}}
)";

TEST_F(IncidentScopeTest, JsonlByUserAndWindowSumsDistinctObjects) {
  auto p = Write("export.jsonl", kLog);
  ScopeQuery q;
  q.user = "sato";
  q.until_micros = *ParseDateTime("2026-12-19T00:00:00Z");
  auto r = ScopeFromJsonl(p, q, map_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->records_scanned, 6u);
  EXPECT_EQ(r->records_matched, 3u);  // obj-c denied, obj-d other user, obj-e outside window
  ASSERT_EQ(r->objects.size(), 2u);
  EXPECT_EQ(r->persons, 1200);  // obj-a counted once (700) + obj-b (500)
  EXPECT_EQ(r->person_method, "sum");
  EXPECT_EQ(r->data_items, (std::vector<std::string>{"address", "email", "name", "phone"}));
  EXPECT_FALSE(r->encryption.has_value());
  EXPECT_TRUE(r->any_unencrypted);
  // Including denied records brings in the My Number object.
  q.include_denied = true;
  r = ScopeFromJsonl(p, q, map_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->persons, 10200);
  // Unmapped types are kept and reported, never dropped.
  ScopeQuery all;
  r = ScopeFromJsonl(p, all, map_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->unmapped_types, (std::vector<std::string>{"jp.blood_type"}));
  EXPECT_NE(std::find(r->data_items.begin(), r->data_items.end(), "other:jp.blood_type"),
            r->data_items.end());
}

TEST_F(IncidentScopeTest, PersonHashesDeduplicateAndEncryptionIsPerObject) {
  auto p = Write(
      "h.jsonl",
      R"({"time":"2026-12-18T01:00:00Z","user":"u","object":"o1","result":"allow","labels":{"types":{"jp.person_name":3},"individuals":3,"person_hashes":["h1","h2","h3"],"encryption":{"algorithm":"AES-256-GCM","key_exposed":false}}}
{"time":"2026-12-18T01:00:00Z","user":"u","object":"o2","result":"allow","labels":{"types":{"jp.person_name":2},"individuals":2,"person_hashes":["h2","h4"]},"extra":{"encryption":{"algorithm":"AES-256-GCM","key_exposed":false}}}
)");
  auto r = ScopeFromJsonl(p, {}, map_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->persons, 4);  // h1..h4
  EXPECT_EQ(r->person_method, "dedup");
  ASSERT_TRUE(r->encryption.has_value());
  EXPECT_EQ(r->encryption->algorithm, "AES-256-GCM");
  EXPECT_FALSE(r->encryption->key_exposed);
  Facts before;
  before.data_items = {"medical"};
  Facts after = ApplyScope(before, *r);
  EXPECT_EQ(after.persons, 4);
  EXPECT_EQ(after.data_items, (std::vector<std::string>{"medical", "name"}));
  ASSERT_TRUE(after.encryption.has_value());
}

TEST_F(IncidentScopeTest, MalformedLinesAreErrorsWithTheLineNumber) {
  auto p = Write("bad.jsonl", "{\"time\":\"2026-12-18T01:00:00Z\",\"object\":\"o\"}\nnot json\n");
  auto r = ScopeFromJsonl(p, {}, map_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(":2:"), std::string::npos) << r.status().message();
  ScopeBudgets tiny;
  tiny.max_line_bytes = 10;
  EXPECT_EQ(ScopeFromJsonl(p, {}, map_, tiny).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ScopeFromJsonl((dir_ / "missing").string(), {}, map_).status().code(),
            StatusCode::kNotFound);
}

TEST_F(IncidentScopeTest, ReadsTheLiveAuditLogThroughTheReaderApi) {
  audit::LogOptions lo;
  lo.path = (dir_ / "audit.log").string();
  lo.signing_key = std::make_shared<const audit::SigningKey>(audit::SigningKey::Generate());
  FakeClock clock(*ParseDateTime("2026-12-18T01:00:00Z"));
  lo.clock = &clock;
  {
    auto log = audit::Log::Open(lo);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    audit::Record r;
    r.component = "vault";
    r.user = "sato";
    r.device = "pc-17";
    r.action = "get";
    r.object = "obj-a";
    r.result = "allow";
    r.labels = {{"types", {{"jp.person_name", 1200}, {"jp.address", 1200}}}, {"individuals", 1200}};
    ASSERT_TRUE((*log)->Append(r).ok());
    r.user = "other";
    r.object = "obj-z";
    ASSERT_TRUE((*log)->Append(r).ok());
    ASSERT_TRUE((*log)->Close().ok());
  }
  ScopeQuery q;
  q.user = "sato";
  auto res = ScopeFromAuditLog(lo.path, q, map_);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->persons, 1200);
  ASSERT_EQ(res->objects.size(), 1u);
  EXPECT_EQ(res->objects[0].object, "obj-a");
}

TEST_F(IncidentScopeTest, VaultDownloadsArePlaintextOnTheDeviceAndTheReasonIsKept) {
  // A vault `get` carries the label but no encryption: the vault decrypted it
  // for the device. An explicit label still wins for another component.
  auto p = Write(
      "v.jsonl",
      R"({"time":"2026-12-18T01:00:00Z","component":"vault","user":"u","device":"d2","action":"get","object":"o1","result":"allow","labels":{"scanned":true,"types":{"jp.person_name":1200},"individuals":1200}}
{"time":"2026-12-18T01:01:00Z","component":"vault","user":"u","device":"d2","action":"put","object":"tag1","result":"allow","labels":{"scanned":true,"types":{"jp.phone":5},"individuals":5}}
{"time":"2026-12-18T01:02:00Z","component":"egress","user":"u","device":"d3","action":"upload","object":"o3","result":"allow","labels":{"types":{"email":1},"individuals":1,"encryption":{"algorithm":"AES-256-GCM","key_exposed":false}}}
{"time":"2026-12-18T01:03:00Z","component":"vault","user":"u","device":"d2","action":"get","object":"o4","result":"allow","labels":{"scanned":false,"incomplete":"RESOURCE_EXHAUSTED"}}
)");
  auto r = ScopeFromJsonl(p, {}, map_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->objects.size(), 4u);
  std::map<std::string, const ScopeObject*> by;
  for (const auto& o : r->objects) by[o.object] = &o;
  ASSERT_EQ(by["o1"]->encryption_basis.size(), 1u);
  EXPECT_NE(by["o1"]->encryption_basis.begin()->find("平文を端末に渡す"), std::string::npos);
  EXPECT_FALSE(by["o1"]->encrypted);
  EXPECT_EQ(by["o1"]->component, "vault");
  EXPECT_NE(by["tag1"]->encryption_basis.begin()->find("アップロード"), std::string::npos);
  EXPECT_TRUE(by["o3"]->encrypted);
  EXPECT_FALSE(by["o3"]->key_exposed);
  EXPECT_NE(by["o3"]->encryption_basis.begin()->find("AES-256-GCM"), std::string::npos);
  // The unscanned object adds nothing and is reported, so nobody mistakes the
  // count for complete.
  EXPECT_FALSE(by["o4"]->labelled);
  EXPECT_TRUE(by["o1"]->labelled);
  EXPECT_EQ(r->unlabelled_objects, 1u);
  EXPECT_EQ(r->persons, 1206);
  EXPECT_FALSE(r->encryption.has_value());  // not every object was encrypted
  EXPECT_TRUE(r->any_unencrypted);
}

TEST_F(IncidentScopeTest, FlagsALabelThatCountsFarFewerPeopleThanItsFindings) {
  // What the vault writes for a headed CSV of 1,200 customers today.
  auto p = Write(
      "s.jsonl",
      R"({"time":"2026-12-18T01:00:00Z","object":"csv","labels":{"scanned":true,"types":{"jp.address":1200,"jp.phone":1200,"jp.birth_date":1},"individuals":3}}
{"time":"2026-12-18T01:00:00Z","object":"ok","labels":{"types":{"jp.phone":44},"individuals":11}}
{"time":"2026-12-18T01:00:00Z","object":"few","labels":{"types":{"jp.phone":9},"individuals":1}}
{"time":"2026-12-18T01:00:00Z","object":"corp","labels":{"types":{"jp.corporate_number":500},"individuals":0}}
)");
  auto r = ScopeFromJsonl(p, {}, map_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::map<std::string, bool> suspect;
  for (const auto& o : r->objects) suspect[o.object] = o.individuals_suspect;
  EXPECT_TRUE(suspect["csv"]);
  EXPECT_FALSE(suspect["ok"]);    // exactly 4x: not flagged
  EXPECT_FALSE(suspect["few"]);   // under 10 findings: too few to judge
  EXPECT_FALSE(suspect["corp"]);  // 法人番号 is not personal data
  EXPECT_EQ(r->suspect_objects, 1u);
  EXPECT_EQ(r->persons, 15);  // warned, never silently changed
}

TEST_F(IncidentScopeTest, SeveralDevicesMatchAnyAndOneDeviceFiltersTheLog) {
  auto p = Write(
      "d.jsonl",
      R"({"time":"2026-12-18T01:00:00Z","device":"d2","object":"a","labels":{"individuals":10}}
{"time":"2026-12-18T01:00:00Z","device":"d3","object":"b","labels":{"individuals":20}}
{"time":"2026-12-18T01:00:00Z","device":"d4","object":"c","labels":{"individuals":40}}
)");
  ScopeQuery q;
  q.devices = {"d2", "d4"};
  auto r = ScopeFromJsonl(p, q, map_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->persons, 50);
  q.devices = {"d3"};
  r = ScopeFromJsonl(p, q, map_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->persons, 20);
}

}  // namespace
}  // namespace mamori::incident
