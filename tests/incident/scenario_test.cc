// Runs every scenario in tests/incident/scenarios/*.json through the rule
// engine and compares the contract JSON with the hand-computed expectation
// (a subset match: every key in "expected" must be present and equal).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "incident/assess.h"

namespace mamori::incident {
namespace {

namespace fs = std::filesystem;

std::string ScenarioDir() { return std::string(MAMORI_SOURCE_DIR) + "/tests/incident/scenarios"; }

std::vector<std::string> ScenarioFiles() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ScenarioDir(), ec)) {
    if (e.path().extension() == ".json") out.push_back(e.path().stem().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Every key of `want` must match `got`; objects recurse, everything else is exact.
void ExpectSubset(const nlohmann::json& want, const nlohmann::json& got, const std::string& path) {
  if (want.is_object()) {
    ASSERT_TRUE(got.is_object()) << path << ": expected an object, got " << got.dump();
    for (const auto& [k, v] : want.items()) {
      ASSERT_TRUE(got.contains(k)) << path << "." << k << " missing in " << got.dump();
      ExpectSubset(v, got[k], path + "." + k);
    }
  } else {
    EXPECT_EQ(want, got) << path;
  }
}

TEST(IncidentScenarios, AtLeastTwentyFiveWithHandComputation) {
  auto files = ScenarioFiles();
  EXPECT_GE(files.size(), 25u);
  for (const auto& name : files) {
    auto text = ReadFile(ScenarioDir() + "/" + name + ".json");
    ASSERT_TRUE(text.ok());
    auto j = nlohmann::json::parse(*text);
    EXPECT_TRUE(j.contains("why") && j["why"].is_string() &&
                j["why"].get<std::string>().size() > 20)
        << name << ": every scenario needs its hand computation in \"why\"";
  }
}

class Scenario : public ::testing::TestWithParam<std::string> {};

TEST_P(Scenario, MatchesHandComputedExpectation) {
  auto text = ReadFile(ScenarioDir() + "/" + GetParam() + ".json");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  auto s = nlohmann::json::parse(*text);
  std::vector<std::string> dirs;
  if (s.contains("rules")) {
    for (const auto& d : s["rules"]) {
      auto name = d.get<std::string>();
      dirs.push_back(name == "default" ? RuleCatalog::DefaultDirectory()
                                       : std::string(MAMORI_SOURCE_DIR) + "/" + name);
    }
  } else {
    dirs.push_back(RuleCatalog::DefaultDirectory());
  }
  auto catalog = RuleCatalog::Load(dirs);
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  auto facts = FactsFromJson(s["facts"]);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  auto a = Assess(*facts, *catalog);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto got = AssessmentToJson(*a);
  SCOPED_TRACE(s["why"].get<std::string>());
  ExpectSubset(s["expected"], got, GetParam());
  EXPECT_FALSE(got["reasons"].empty());
  // Reasons must cite an article for every conclusion.
  bool cites = false;
  for (const auto& r : got["reasons"])
    cites |= r.get<std::string>().find("条") != std::string::npos;
  EXPECT_TRUE(cites);
}

INSTANTIATE_TEST_SUITE_P(All, Scenario, ::testing::ValuesIn(ScenarioFiles()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace mamori::incident
