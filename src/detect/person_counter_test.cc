#include <gtest/gtest.h>

#include "detect/detect.h"

namespace mamori::detect {
namespace {

TEST(PersonCounter, DeduplicatesByStrongKeys) {
  auto rules = RuleSet::LoadDirectory(std::string(MAMORI_SOURCE_DIR) + "/rules/detect");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  HashKey key;
  ScanOptions opt;
  opt.field_delimiter = ',';
  std::string csv = "氏名,メールアドレス,電話番号\n";
  for (int i = 0; i < 100; ++i)
    csv += "山田太郎,user" + std::to_string(i) + "@example.com,03-1234-" + std::to_string(1000 + i) + "\n";
  // The same ten people again, in another file.
  std::string again = "氏名,メールアドレス\n";
  for (int i = 0; i < 10; ++i) again += "山田太郎,user" + std::to_string(i) + "@example.com\n";
  auto a = ScanText(*rules, key, csv, opt);
  auto b = ScanText(*rules, key, again, opt);
  ASSERT_TRUE(a.ok() && b.ok());
  PersonCounter counter(*rules);
  counter.Add("a.csv", *a);
  counter.Add("b.csv", *b);
  // Same name, but different e-mails: 100 people, not 1.
  EXPECT_EQ(counter.Estimate(), 100u);
}

}  // namespace
}  // namespace mamori::detect
