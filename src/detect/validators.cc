#include "detect/validators.h"

#include <algorithm>

namespace mamori::detect {
namespace {

bool AllDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
bool AllSame(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [&](char c) { return c == s[0]; });
}
bool HasPrefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
int PrefixNumber(std::string_view s, size_t n) {
  int v = 0;
  for (size_t i = 0; i < n && i < s.size(); ++i) v = v * 10 + (s[i] - '0');
  return v;
}

}  // namespace

// The validators run on every number of a matching length (hundreds of
// thousands in an order export), so each reads the digits once and leaves
// the rare checks (all digits the same) until the check digit has passed.
bool IsValidMyNumber(std::string_view d) {
  if (d.size() != 12) return false;
  static constexpr int kWeights[11] = {6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
  unsigned bad = 0;
  int sum = 0;
#pragma GCC unroll 11
  for (int i = 0; i < 11; ++i) {
    unsigned v = static_cast<unsigned char>(d[i]) - '0';
    bad |= v > 9;
    sum += static_cast<int>(v) * kWeights[i];
  }
  unsigned last = static_cast<unsigned char>(d[11]) - '0';
  if (bad || last > 9) return false;
  int r = sum % 11;
  int check = r <= 1 ? 0 : 11 - r;
  return check == static_cast<int>(last) && !AllSame(d);
}

bool IsValidCorporateNumber(std::string_view d) {
  if (d.size() != 13) return false;
  unsigned first = static_cast<unsigned char>(d[0]) - '0';
  if (first == 0 || first > 9) return false;
  unsigned bad = 0;
  int sum = 0;
  // Weights 1,2,1,2,... over the 12 base digits counted from the right.
#pragma GCC unroll 6
  for (int i = 1; i <= 11; i += 2) {
    unsigned twice = static_cast<unsigned char>(d[i]) - '0';
    unsigned once = static_cast<unsigned char>(d[i + 1]) - '0';
    bad |= (twice > 9) | (once > 9);
    sum += static_cast<int>(2 * twice + once);
  }
  return !bad && 9 - (sum % 9) == static_cast<int>(first);
}

bool IsValidEan13(std::string_view d) {
  if (d.size() != 13 || !AllDigits(d)) return false;
  int sum = 0;
  for (int i = 0; i < 12; ++i) sum += (d[i] - '0') * (i % 2 == 0 ? 1 : 3);
  return (10 - sum % 10) % 10 == d[12] - '0';
}

bool IsLuhnValid(std::string_view d) {
  if (d.empty()) return false;
  static constexpr int kDoubled[10] = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9};
  unsigned bad = 0;
  int sum = 0;
  size_t i = d.size();
  while (i >= 2) {  // from the right: a digit as is, then one doubled
    unsigned v = static_cast<unsigned char>(d[i - 1]) - '0';
    unsigned w = static_cast<unsigned char>(d[i - 2]) - '0';
    bad |= (v > 9) | (w > 9);
    if (bad) return false;
    sum += static_cast<int>(v) + kDoubled[w];
    i -= 2;
  }
  if (i == 1) {
    unsigned v = static_cast<unsigned char>(d[0]) - '0';
    if (v > 9) return false;
    sum += static_cast<int>(v);
  }
  return sum % 10 == 0;
}

std::string_view CardBrand(std::string_view d) {
  size_t n = d.size();
  if (!AllDigits(d) || AllSame(d)) return {};
  int p2 = PrefixNumber(d, 2), p3 = PrefixNumber(d, 3), p4 = PrefixNumber(d, 4);
  if (p4 >= 3528 && p4 <= 3589 && n >= 16 && n <= 19) return "JCB";
  if (d[0] == '4' && (n == 13 || n == 16 || n == 18 || n == 19)) return "Visa";
  if (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && n == 16) return "Mastercard";
  if ((p2 == 34 || p2 == 37) && n == 15) return "American Express";
  if (((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39) &&
      (n == 14 || n == 16 || n == 19))
    return "Diners Club";
  if ((HasPrefix(d, "6011") || (p3 >= 644 && p3 <= 649) || p2 == 65) && (n == 16 || n == 19))
    return "Discover";
  if (p2 == 62 && n >= 16 && n <= 19) return "UnionPay";
  return {};
}

bool IsValidDriversLicense(std::string_view d) {
  if (d.size() != 12) return false;
  // 公安委員会コード: 10-14 Hokkaido areas, 20-25 Tohoku, 30 Tokyo, 40-49 Kanto/Chubu,
  // 50-55 Hokuriku/Tokai, 60-65 Kinki, 70-74 Chugoku, 80-83 Shikoku, 90-97 Kyushu/Okinawa.
  int code = PrefixNumber(d, 2);
  bool known = (code >= 10 && code <= 14) || (code >= 20 && code <= 25) || code == 30 ||
               (code >= 40 && code <= 49) || (code >= 50 && code <= 55) ||
               (code >= 60 && code <= 65) || (code >= 70 && code <= 74) ||
               (code >= 80 && code <= 83) || (code >= 90 && code <= 97);
  if (!known) return false;
  static constexpr int kWeights[10] = {5, 4, 3, 2, 7, 6, 5, 4, 3, 2};
  unsigned bad = 0;
  int sum = 0;
#pragma GCC unroll 10
  for (int i = 0; i < 10; ++i) {
    unsigned v = static_cast<unsigned char>(d[i]) - '0';
    bad |= v > 9;
    sum += static_cast<int>(v) * kWeights[i];
  }
  unsigned check = static_cast<unsigned char>(d[10]) - '0';
  unsigned last = static_cast<unsigned char>(d[11]) - '0';
  if (bad || check > 9 || last > 9) return false;
  return (11 - sum % 11) % 10 == static_cast<int>(check) && !AllSame(d);
}

bool IsPlausibleJapanesePhone(std::string_view d) {
  if (!AllDigits(d) || d.empty() || d[0] != '0') return false;
  if (d.size() == 11) {
    // Mobile, IP phone, M2M, and 0800 toll-free.
    return HasPrefix(d, "090") || HasPrefix(d, "080") || HasPrefix(d, "070") ||
           HasPrefix(d, "050") || HasPrefix(d, "020") || HasPrefix(d, "0800");
  }
  if (d.size() == 10) {
    if (d[1] == '0') return HasPrefix(d, "0120") || HasPrefix(d, "0570") || HasPrefix(d, "0990");
    // A 10-digit number with a mobile prefix lacks a digit.
    return !(HasPrefix(d, "090") || HasPrefix(d, "080") || HasPrefix(d, "070"));
  }
  return false;
}

bool IsValidDate(int y, int m, int d) {
  if (y < 1900 || y > 2100 || m < 1 || m > 12 || d < 1) return false;
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int max = kDays[m - 1];
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) max = 29;
  return d <= max;
}

int EraBaseYear(std::string_view era) {
  // Gregorian year of era year 1 (元年).
  if (era == "明治" || era == "M" || era == "m") return 1868;
  if (era == "大正" || era == "T" || era == "t") return 1912;
  if (era == "昭和" || era == "S" || era == "s") return 1926;
  if (era == "平成" || era == "H" || era == "h") return 1989;
  if (era == "令和" || era == "R" || era == "r") return 2019;
  return 0;
}

}  // namespace mamori::detect
