#include "incident/assess.h"

#include <gtest/gtest.h>

#include "common/file_util.h"

namespace mamori::incident {
namespace {

const RuleCatalog& Catalog() {
  static const RuleCatalog* c = [] {
    auto r = RuleCatalog::LoadDefault();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return new RuleCatalog(std::move(r).value());
  }();
  return *c;
}

Facts Base() {
  auto f = ParseFacts(R"({"aware_at": "2026-04-01T10:00:00+09:00", "sector": "private",
    "persons": 10, "data_items": ["name"], "malicious_suspected": false,
    "publicly_viewable": false, "encryption": null, "processor_notified_controller": false})");
  EXPECT_TRUE(f.ok());
  return *f;
}

TEST(IncidentAssess, NoTriggerNoReport) {
  auto a = Assess(Base(), Catalog());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_FALSE(a->appi.report_required);
  EXPECT_TRUE(a->appi.triggers.empty());
  EXPECT_FALSE(a->appi.final_due.has_value());
  EXPECT_EQ(a->rule_set_id, "appi-2022-04-01");
}

TEST(IncidentAssess, UnknownItemIsAnErrorNotHarmless) {
  Facts f = Base();
  f.data_items = {"medcal"};
  auto a = Assess(f, Catalog());
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("data_items[0]"), std::string::npos);
  f.data_items = {"other:会員ランク"};
  EXPECT_TRUE(Assess(f, Catalog()).ok());
}

TEST(IncidentAssess, BeforeTheFirstRuleSetIsRefused) {
  Facts f = Base();
  f.aware_at_micros = *ParseDateTime("2022-03-31T23:59:59+09:00");
  auto a = Assess(f, Catalog());
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kFailedPrecondition);
  f.aware_at_micros = *ParseDateTime("2022-03-31T15:00:00Z");  // 2022-04-01 00:00 JST
  EXPECT_TRUE(Assess(f, Catalog()).ok());
}

TEST(IncidentAssess, MaliciousGivesSixtyDaysAndReasonsCiteArticles) {
  Facts f = Base();
  f.malicious_suspected = true;
  auto a = Assess(f, Catalog());
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->appi.report_required);
  EXPECT_EQ(a->appi.final_days, 60);
  EXPECT_EQ(FormatDate(*a->appi.final_due), "2026-05-30");
  EXPECT_EQ(FormatDate(*a->appi.final_due_civil_code), "2026-05-31");
  bool cited = false;
  for (const auto& r : a->reasons) cited |= r.find("規則7条3号") != std::string::npos;
  EXPECT_TRUE(cited);
}

TEST(IncidentAssess, ApprovedListIsNormalised) {
  EXPECT_EQ(RuleSet::NormalizeAlgorithm("aes_256 gcm"), "AES-256-GCM");
  EXPECT_EQ(RuleSet::NormalizeAlgorithm(" ChaCha20/Poly1305 "), "CHACHA20-POLY1305");
  Facts f = Base();
  f.data_items = {"name", "medical"};
  f.encryption = Encryption{"aes-256-gcm", false};
  auto a = Assess(f, Catalog());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->appi.exempt, "encryption");
  f.encryption = Encryption{"ZipCrypto", false};
  a = Assess(f, Catalog());
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->appi.report_required);
}

TEST(IncidentAssess, BadRuleFilesNameTheKey) {
  auto r = ParseRuleSet("id: x\ntitle: t\neffective_from: 2022-13-01\n", "bad.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("effective_from"), std::string::npos);
  r = ParseRuleSet("id: [", "broken.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("broken.yaml"), std::string::npos);
}

}  // namespace
}  // namespace mamori::incident
