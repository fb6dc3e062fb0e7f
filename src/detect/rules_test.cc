#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "detect/detect.h"

namespace mamori::detect {
namespace {

// Every rule in rules/detect carries examples that must match and examples
// that must not; this runs them all.
TEST(Rules, ShippedExamplesHold) {
  auto rules = RuleSet::LoadDirectory(std::string(MAMORI_SOURCE_DIR) + "/rules/detect");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_GE((*rules)->rules().size(), 15u);
  auto failures = (*rules)->CheckExamples();
  for (const auto& f : failures) ADD_FAILURE() << f;
}

class BadRuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("mamori_rules_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Status Load(const std::string& yaml) {
    std::ofstream(dir_ / "r.yaml") << yaml;
    return RuleSet::LoadDirectory(dir_.string()).status();
  }
  std::filesystem::path dir_;
};

TEST_F(BadRuleTest, ErrorsSayWhatToFix) {
  Status s = Load("type: x\nvalidator: nope\npatterns: ['a']\nexamples: [a]\nnegative_examples: [b]\n");
  EXPECT_NE(s.message().find("unknown validator 'nope'"), std::string::npos) << s.ToString();
  s = Load("type: x\npatterns: ['a+']\nexamples: [a]\nnegative_examples: [b]\n");
  EXPECT_NE(s.message().find("512 bytes"), std::string::npos) << s.ToString();
  s = Load("type: x\npatterns: ['a']\n");
  EXPECT_NE(s.message().find("examples"), std::string::npos) << s.ToString();
  s = Load("type: [unclosed\n");
  EXPECT_NE(s.message().find("not valid YAML"), std::string::npos) << s.ToString();
  EXPECT_EQ(RuleSet::LoadDirectory("/nonexistent/rules").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace mamori::detect
