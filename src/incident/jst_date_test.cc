#include "incident/jst_date.h"

#include <gtest/gtest.h>

namespace mamori::incident {
namespace {

Date D(int y, unsigned m, unsigned d) {
  return Date{std::chrono::year(y), std::chrono::month(m), std::chrono::day(d)};
}

TEST(IncidentDate, ParsesOffsetsAndConvertsToJapanDate) {
  auto t = ParseDateTime("2026-03-31T20:00:00-05:00");  // = 2026-04-01T10:00+09:00
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(JstDate(*t), D(2026, 4, 1));
  EXPECT_EQ(FormatDateTimeJst(*t), "2026-04-01T10:00:00+09:00");

  auto z = ParseDateTime("2026-12-31T14:59:59Z");  // 23:59:59 JST, still the 31st
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(JstDate(*z), D(2026, 12, 31));
  auto z2 = ParseDateTime("2026-12-31T15:00:00Z");  // midnight JST: next year
  ASSERT_TRUE(z2.ok());
  EXPECT_EQ(JstDate(*z2), D(2027, 1, 1));

  auto compact = ParseDateTime("2026-04-01T09:30:00.123456+0900");
  ASSERT_TRUE(compact.ok());
  EXPECT_EQ(*compact % 1000000, 123456);
  EXPECT_EQ(JstDate(*compact), D(2026, 4, 1));
  EXPECT_TRUE(ParseDateTime("2026-04-01T09:30+09:00").ok());
}

TEST(IncidentDate, RefusesAmbiguousOrInvalidInput) {
  EXPECT_FALSE(ParseDateTime("2026-04-01T09:30:00").ok());  // no offset
  EXPECT_NE(ParseDateTime("2026-04-01T09:30:00").status().message().find("offset"),
            std::string::npos);
  EXPECT_FALSE(ParseDateTime("2026-04-01").ok());
  EXPECT_FALSE(ParseDateTime("2026-02-29T00:00:00+09:00").ok());  // not a leap year
  EXPECT_TRUE(ParseDateTime("2028-02-29T00:00:00+09:00").ok());
  EXPECT_FALSE(ParseDateTime("2026-04-01T24:00:00+09:00").ok());
  EXPECT_FALSE(ParseDateTime("2026-04-01T09:30:00+09:00junk").ok());
  EXPECT_FALSE(ParseDateTime("2026-04-01T09:30:00+15:00").ok());
  EXPECT_FALSE(ParseDateTime("").ok());
  EXPECT_FALSE(ParseDate("2026-13-01").ok());
  EXPECT_TRUE(ParseDate("2022-04-01").ok());
}

TEST(IncidentDate, ArithmeticAcrossMonthYearAndLeapDay) {
  EXPECT_EQ(AddDays(D(2026, 12, 20), 29), D(2027, 1, 18));
  EXPECT_EQ(AddDays(D(2028, 2, 1), 29), D(2028, 3, 1));  // leap year: Feb has 29 days
  EXPECT_EQ(AddDays(D(2027, 2, 1), 29), D(2027, 3, 2));
  EXPECT_EQ(AddDays(D(2026, 1, 31), 29), D(2026, 3, 1));
  EXPECT_EQ(DaysBetween(D(2026, 12, 20), D(2027, 1, 18)), 29);
  EXPECT_EQ(FormatDateJa(D(2026, 4, 1)), "2026年4月1日（水）");
  EXPECT_EQ(FormatDate(D(2027, 1, 8)), "2027-01-08");
}

}  // namespace
}  // namespace mamori::incident
