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
  Status s =
      Load("type: x\nvalidator: nope\npatterns: ['a']\nexamples: [a]\nnegative_examples: [b]\n");
  EXPECT_NE(s.message().find("unknown validator 'nope'"), std::string::npos) << s.ToString();
  s = Load("type: x\npatterns: ['a+']\nexamples: [a]\nnegative_examples: [b]\n");
  EXPECT_NE(s.message().find("512 bytes"), std::string::npos) << s.ToString();
  s = Load("type: x\npatterns: ['a']\n");
  EXPECT_NE(s.message().find("examples"), std::string::npos) << s.ToString();
  s = Load("type: [unclosed\n");
  EXPECT_NE(s.message().find("not valid YAML"), std::string::npos) << s.ToString();
  EXPECT_EQ(RuleSet::LoadDirectory("/nonexistent/rules").status().code(), StatusCode::kNotFound);
  s = Load("type: x\npatterns: ['{KX}a']\nexamples: [a]\nnegative_examples: [b]\n");
  EXPECT_NE(s.message().find("unknown macro {KX}"), std::string::npos) << s.ToString();
}

// The compiled database is cached; a cached load must find exactly what a
// fresh compile finds, and a damaged cache file must be ignored, not trusted.
TEST_F(BadRuleTest, CompiledDatabaseCacheIsExactAndVerified) {
  std::string cache = (dir_ / "cache").string();
  ::setenv("MAMORI_CACHE_DIR", cache.c_str(), 1);
  std::string src = std::string(MAMORI_SOURCE_DIR) + "/rules/detect";
  const std::string text = "個人番号: 1234 5678 9018 山田 太郎様 090-1234-5678 taro@example.jp";
  HashKey key;
  auto scan = [&]() {
    auto rules = RuleSet::LoadDirectory(src);
    EXPECT_TRUE(rules.ok()) << rules.status().ToString();
    auto found = ScanText(*rules, key, text, {});
    EXPECT_TRUE(found.ok());
    std::vector<std::string> types;
    for (const auto& f : *found) types.push_back(f.type + "@" + std::to_string(f.offset));
    return types;
  };
  auto fresh = scan();  // compiles and writes the cache
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(cache)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_GE(fresh.size(), 3u);  // My Number, phone, e-mail at least
  EXPECT_EQ(scan(), fresh);     // loaded from the cache
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x5a');
  }
  EXPECT_EQ(scan(), fresh);  // damaged: recompiled and rewritten
  ::unsetenv("MAMORI_CACHE_DIR");
}

}  // namespace
}  // namespace mamori::detect
