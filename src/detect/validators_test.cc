#include "detect/validators.h"

#include <gtest/gtest.h>

namespace mamori::detect {
namespace {

// Published examples; see docs/detectors.md for the sources.
TEST(MyNumber, PublishedExamples) {
  EXPECT_TRUE(IsValidMyNumber("123456789018"));  // JPMyNumber (PyPI)
  EXPECT_TRUE(IsValidMyNumber("621498320257"));  // python-stdnum doctest
  EXPECT_TRUE(IsValidMyNumber("465281266333"));  // tsubaki README
  EXPECT_TRUE(IsValidMyNumber("000111111111"));
  EXPECT_FALSE(IsValidMyNumber("123456789012"));
  EXPECT_FALSE(IsValidMyNumber("111111111111"));  // all one digit: never issued
  EXPECT_FALSE(IsValidMyNumber("12345678901"));
}

TEST(MyNumber, OneInTenRandomNumbersPass) {
  // Why a bare 12-digit number needs more evidence than its check digit.
  int pass = 0;
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 100000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::string s = std::to_string(100000000000ull + x % 900000000000ull);
    pass += IsValidMyNumber(s);
  }
  EXPECT_GT(pass, 9000);
  EXPECT_LT(pass, 11000);
}

TEST(CorporateNumber, PublishedExamples) {
  EXPECT_TRUE(IsValidCorporateNumber("5835678256246"));  // python-stdnum doctest
  EXPECT_TRUE(IsValidCorporateNumber("1180301018771"));
  EXPECT_TRUE(IsValidCorporateNumber("7040001016687"));
  EXPECT_TRUE(IsValidCorporateNumber("6010701027558"));
  EXPECT_FALSE(IsValidCorporateNumber("5835678256247"));
  EXPECT_FALSE(IsValidCorporateNumber("0835678256246"));
}

TEST(Card, LuhnAndBrands) {
  EXPECT_TRUE(IsLuhnValid("4111111111111111"));
  EXPECT_TRUE(IsLuhnValid("3530111333300000"));
  EXPECT_FALSE(IsLuhnValid("4111111111111112"));
  EXPECT_EQ(CardBrand("3530111333300000"), "JCB");
  EXPECT_EQ(CardBrand("4532015112830366"), "Visa");
  EXPECT_EQ(CardBrand("5425233430109903"), "Mastercard");
  EXPECT_EQ(CardBrand("378282246310005"), "American Express");
  EXPECT_EQ(CardBrand("30569309025904"), "Diners Club");
  EXPECT_EQ(CardBrand("9999999999999995"), "");
}

TEST(DriversLicense, WorkedExample) {
  EXPECT_TRUE(IsValidDriversLicense("309012345620"));   // jiko0.com worked example
  EXPECT_FALSE(IsValidDriversLicense("309212345610"));  // otupy.net illustration, not valid
  EXPECT_FALSE(IsValidDriversLicense("990123456720"));  // no such commission code
}

TEST(Phone, Plausibility) {
  EXPECT_TRUE(IsPlausibleJapanesePhone("0312345678"));
  EXPECT_TRUE(IsPlausibleJapanesePhone("09012345678"));
  EXPECT_TRUE(IsPlausibleJapanesePhone("0120123456"));
  EXPECT_FALSE(IsPlausibleJapanesePhone("0901234567"));
  EXPECT_FALSE(IsPlausibleJapanesePhone("1234567890"));
}

TEST(Date, CalendarAndEras) {
  EXPECT_TRUE(IsValidDate(2024, 2, 29));
  EXPECT_FALSE(IsValidDate(2023, 2, 29));
  EXPECT_FALSE(IsValidDate(1985, 13, 1));
  EXPECT_EQ(EraBaseYear("昭和") + 60 - 1, 1985);
  EXPECT_EQ(EraBaseYear("H") + 1 - 1, 1989);
}

}  // namespace
}  // namespace mamori::detect
