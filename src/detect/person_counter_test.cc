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
    csv += "山田太郎,user" + std::to_string(i) + "@example.com,03-1234-" +
           std::to_string(1000 + i) + "\n";
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

// A streaming caller adds each batch the scanner releases. Wherever the
// batches are cut, the count must be what one Add of everything gives;
// before, a person whose findings straddled a cut was counted twice.
TEST(PersonCounter, BatchesOfOneUnitCountAsOneAdd) {
  auto rules = RuleSet::LoadDirectory(std::string(MAMORI_SOURCE_DIR) + "/rules/detect");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  HashKey key;
  std::string ledger = "顧客台帳\n\n";
  const char* names[] = {"山田 太郎", "佐藤 花子", "鈴木 一郎",
                         "高橋 美咲", "田中 健",   "伊藤 直美"};
  for (int i = 0; i < 6; ++i)
    ledger += std::string("氏名: ") + names[i] + "\n電話番号: 090-1234-" +
              std::to_string(5670 + i) + "\n生年月日: 198" + std::to_string(i) + "年4月1日\n\n";
  auto found = ScanText(*rules, key, ledger, {});
  ASSERT_TRUE(found.ok());
  ASSERT_GE(found->size(), 18u);
  PersonCounter whole(*rules);
  whole.Add("ledger.txt", *found);
  ASSERT_EQ(whole.Estimate(), 6u);
  for (size_t cut = 1; cut < found->size(); ++cut) {
    PersonCounter batched(*rules);
    batched.Add("ledger.txt", std::vector<Finding>(found->begin(), found->begin() + cut));
    batched.Add("ledger.txt", std::vector<Finding>(found->begin() + cut, found->end()));
    EXPECT_EQ(batched.Estimate(), 6u) << "cut after finding " << cut;
  }
  // Another unit closes the first; asking for the estimate closes the last.
  PersonCounter two(*rules);
  two.Add("a.txt", *found);
  two.Add("b.txt", *found);
  EXPECT_EQ(two.Estimate(), 6u);  // the same people again, joined by phone
}

}  // namespace
}  // namespace mamori::detect
