// Check digits and structure checks for Japanese identifiers. Pure functions
// over ASCII digit strings; see docs/detectors.md for the sources.
#pragma once

#include <string>
#include <string_view>

namespace mamori::detect {

// 個人番号: 12 digits; weights 6,5,4,3,2,7,6,5,4,3,2 on d1..d11; r = sum mod 11;
// check = 0 if r <= 1 else 11 - r.
bool IsValidMyNumber(std::string_view digits);
// 法人番号: 13 digits; d1 = 9 - (sum of d13..d2 weighted 1,2,1,2... from the right) mod 9.
bool IsValidCorporateNumber(std::string_view digits);
// EAN-13 / JAN check digit (weights 1,3 from the left over d1..d12).
bool IsValidEan13(std::string_view digits);
// Luhn over any length of digits.
bool IsLuhnValid(std::string_view digits);
// Card brand from the IIN and the length; empty if none matches.
std::string_view CardBrand(std::string_view digits);
// 運転免許証番号: 12 digits; d11 = (11 - (Σ 5,4,3,2,7,6,5,4,3,2 over d1..d10) mod 11) mod 10,
// and d1-d2 a public-safety-commission code.
bool IsValidDriversLicense(std::string_view digits);
// Japanese phone number as digits starting with 0 (10 or 11 digits, plausible prefix).
bool IsPlausibleJapanesePhone(std::string_view digits);
// A real calendar date in [1900-01-01, 2100-12-31].
bool IsValidDate(int year, int month, int day);
// 和暦 era name (明治, 大正, 昭和, 平成, 令和, or M/T/S/H/R) to the Gregorian year of era
// year 1; 0 if unknown.
int EraBaseYear(std::string_view era);

}  // namespace mamori::detect
