#include "incident/estimate.h"

#include <gtest/gtest.h>

namespace mamori::incident {
namespace {

const JoModel& Model() {
  static const JoModel* m = [] {
    auto r = JoModel::LoadDefault();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return new JoModel(std::move(r).value());
  }();
  return *m;
}

int64_t PerPerson(std::vector<std::string> items,
                  SocialResponsibility s = SocialResponsibility::kNormal,
                  ResponseRating resp = ResponseRating::kAppropriate) {
  JoInput in{std::move(items), 1, s, resp};
  auto r = EstimateJo(Model(), in);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->per_person : -1;
}

// Hand calculations (JNSA: 500 × (10^(x-1) + 5^(y-1)) × 本人特定容易度 × 社会的責任度 ×
// 事後対応評価).
TEST(IncidentJoModel, MatchesHandCalculation) {
  // 氏名・住所・電話: x1 y1 -> 1 + 1 = 2; 氏名+住所 -> 6: 500 × 2 × 6 = 6,000.
  EXPECT_EQ(PerPerson({"name", "address", "phone"}), 6000);
  // + カード番号: y3 -> 1 + 25 = 26: 500 × 26 × 6 = 78,000; 社会的責任度 2 -> 156,000.
  EXPECT_EQ(PerPerson({"name", "address", "credit_card"}), 78000);
  EXPECT_EQ(PerPerson({"name", "address", "credit_card"}, SocialResponsibility::kHigh), 156000);
  // 犯罪歴 x3 y3 -> 100 + 25 = 125: 500 × 125 × 6 × 2 × 2 = 1,500,000 (the maximum).
  EXPECT_EQ(PerPerson({"name", "address", "criminal_record"}, SocialResponsibility::kHigh,
                      ResponseRating::kInappropriate),
            1500000);
  // メールアドレスのみ: 2 × 特定困難 1: 1,000.
  EXPECT_EQ(PerPerson({"email"}), 1000);
  // 氏名 + 病歴: x2 y1 -> 10 + 1 = 11; 氏名のみ -> 3: 500 × 11 × 3 = 16,500.
  EXPECT_EQ(PerPerson({"name", "medical"}), 16500);
  // 住所 + 電話 + 年収: x2 y2 -> 10 + 5 = 15; 住所+電話 -> 3: 22,500.
  EXPECT_EQ(PerPerson({"address", "phone", "income"}), 22500);
  // Max x and max y come from different items: 病歴 (x2,y1) + カード (x1,y3) -> 10 + 25 = 35.
  EXPECT_EQ(PerPerson({"name", "address", "medical", "credit_card"}), 500 * 35 * 6);
  // 不明・その他 counts as 1.
  EXPECT_EQ(PerPerson({"email"}, SocialResponsibility::kNormal, ResponseRating::kUnknown), 1000);
}

TEST(IncidentJoModel, TotalIsPerPersonTimesPeopleAndUnknownItemsAreErrors) {
  JoInput in{{"name", "address", "phone"},
             1200,
             SocialResponsibility::kNormal,
             ResponseRating::kAppropriate};
  auto r = EstimateJo(Model(), in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->total, 7'200'000);
  EXPECT_EQ(r->x, 1);
  EXPECT_EQ(r->identifiability, 6);
  in.items.push_back("shoe_size");
  EXPECT_FALSE(EstimateJo(Model(), in).ok());
  in.items.back() = "other:shoe size";
  EXPECT_TRUE(EstimateJo(Model(), in).ok());
}

TEST(IncidentResponseCost, DefaultsByHand) {
  auto c = ResponseCosts::LoadDefault();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto r = EstimateResponseCost(*c, 1200, false);
  ASSERT_TRUE(r.ok());
  // letters 150 × 1,200 = 180,000; calls 1,000,000 + 1,500 × 120 = 1,180,000;
  // investigation 3,000,000 + 1,000,000 = 4,000,000; vouchers 500 × 1,200 = 600,000; lost 0.
  EXPECT_EQ(r->total, 180'000 + 1'180'000 + 4'000'000 + 600'000);
  auto with_card = EstimateResponseCost(*c, 1200, true);
  ASSERT_TRUE(with_card.ok());
  EXPECT_EQ(with_card->total - r->total, 600'000);  // 500 × 1,200 reissues
}

TEST(IncidentResponseCost, EditableUnitCostsAndValidation) {
  auto c = ResponseCosts::Parse(
      "per_person: {notification_letter: 100, apology_voucher: 0}\n"
      "call_centre: {setup: 0, call_rate: 0.5, cost_per_call: 1000}\n"
      "investigation: {forensics: 0, legal: 0}\n"
      "lost_profit: {annual_profit: 100000000, fraction: 0.2}\n",
      "test.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto r = EstimateResponseCost(*c, 101, false);
  ASSERT_TRUE(r.ok());
  // 100 × 101 = 10,100; calls ceil(50.5) = 51 × 1,000 = 51,000; lost 20,000,000.
  EXPECT_EQ(r->total, 10'100 + 51'000 + 20'000'000);
  EXPECT_FALSE(ResponseCosts::Parse("lost_profit: {fraction: 1.5}\n", "t").ok());
  EXPECT_FALSE(ResponseCosts::Parse("per_person: {notification_letter: -5}\n", "t").ok());
  EXPECT_FALSE(ResponseCosts::Parse("colour: blue\n", "t").ok());
}

}  // namespace
}  // namespace mamori::incident
