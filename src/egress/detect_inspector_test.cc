// The production inspector against the real detection engine.
#include <gtest/gtest.h>

#include <random>

#include "egress/inspector.h"

namespace mamori::egress {
namespace {

std::string MyNumber(std::mt19937& rng) {
  int d[11];
  for (int& x : d) x = static_cast<int>(rng() % 10);
  int sum = 0;
  for (int n = 1; n <= 11; ++n) sum += d[11 - n] * (n <= 6 ? n + 1 : n - 5);
  int r = sum % 11;
  std::string out;
  for (int x : d) out.push_back(static_cast<char>('0' + x));
  out.push_back(static_cast<char>('0' + (r <= 1 ? 0 : 11 - r)));
  return out;
}

TEST(EgressDetectInspector, FindsMyNumbersFedInTinyPieces) {
  auto factory = NewDetectInspectorFactory(HashKey());
  if (!factory.ok() && factory.status().code() == StatusCode::kUnavailable) {
    GTEST_SKIP() << "detection engine not built: " << factory.status().ToString();
  }
  ASSERT_TRUE(factory.ok()) << factory.status().ToString();
  std::mt19937 rng(7);
  std::string csv = "氏名,マイナンバー,電話番号\n";
  for (int i = 0; i < 20; ++i) {
    csv += "顧客" + std::to_string(i) + "," + MyNumber(rng) + ",03-1234-" +
           std::to_string(5000 + i) + "\n";
  }
  for (size_t step : {size_t{1}, size_t{7}, size_t{1} << 20}) {
    auto ins = (*factory)->New("medium", 1 << 30);
    ASSERT_TRUE(ins.ok());
    ASSERT_TRUE((*ins)->BeginUnit("form:file file=list.csv").ok());
    for (size_t i = 0; i < csv.size(); i += step) {
      ASSERT_TRUE((*ins)->Text(std::string_view(csv).substr(i, step)).ok());
    }
    ASSERT_TRUE((*ins)->EndUnit().ok());
    auto s = (*ins)->Finish();
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->types["jp.my_number"], 20u) << step;
    EXPECT_GE(s->individuals, 10u) << step;
    EXPECT_EQ(s->bytes, csv.size());
  }
  // Clean text: nothing found.
  auto ins = (*factory)->New("medium", 1 << 30);
  ASSERT_TRUE(ins.ok());
  ASSERT_TRUE((*ins)->Text("hello world, nothing to see here\n").ok());
  auto s = (*ins)->Finish();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->types.empty());
}

}  // namespace
}  // namespace mamori::egress
