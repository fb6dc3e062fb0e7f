#include "incident/jst_date.h"

#include <fmt/format.h>

#include <cctype>

namespace mamori::incident {
namespace {

constexpr int64_t kJstOffsetSeconds = 9 * 3600;

// Reads exactly n digits at s[*pos] into *out.
bool Digits(std::string_view s, size_t* pos, int n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool ValidDate(int y, int m, int d) {
  if (y < 1900 || y > 9999 || m < 1 || m > 12 || d < 1) return false;
  Date ymd{std::chrono::year(y), std::chrono::month(m), std::chrono::day(d)};
  return ymd.ok();
}

Status DateTimeError(std::string_view text, std::string_view why) {
  std::string shown(text.substr(0, 64));
  return InvalidArgument(
      fmt::format("'{}' is not a date-time with a UTC offset ({}); write it like "
                  "2026-04-01T09:30:00+09:00",
                  shown, why));
}

}  // namespace

Result<Date> ParseDate(std::string_view text) {
  size_t pos = 0;
  int y, m, d;
  if (!Digits(text, &pos, 4, &y) || pos >= text.size() || text[pos++] != '-' ||
      !Digits(text, &pos, 2, &m) || pos >= text.size() || text[pos++] != '-' ||
      !Digits(text, &pos, 2, &d) || pos != text.size() || !ValidDate(y, m, d)) {
    return InvalidArgument(fmt::format("'{}' is not a calendar date; write it like 2026-04-01",
                                       std::string(text.substr(0, 64))));
  }
  return Date{std::chrono::year(y), std::chrono::month(m), std::chrono::day(d)};
}

Result<int64_t> ParseDateTime(std::string_view text) {
  size_t pos = 0;
  int y, mo, d, h, mi, sec = 0;
  if (!Digits(text, &pos, 4, &y) || pos >= text.size() || text[pos++] != '-' ||
      !Digits(text, &pos, 2, &mo) || pos >= text.size() || text[pos++] != '-' ||
      !Digits(text, &pos, 2, &d)) {
    return DateTimeError(text, "bad date");
  }
  if (!ValidDate(y, mo, d)) return DateTimeError(text, "no such calendar date");
  if (pos >= text.size()) return DateTimeError(text, "the time and offset are missing");
  if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') {
    return DateTimeError(text, "expected 'T' between date and time");
  }
  ++pos;
  if (!Digits(text, &pos, 2, &h) || pos >= text.size() || text[pos++] != ':' ||
      !Digits(text, &pos, 2, &mi)) {
    return DateTimeError(text, "bad time");
  }
  int64_t micros = 0;
  if (pos < text.size() && text[pos] == ':') {
    ++pos;
    if (!Digits(text, &pos, 2, &sec)) return DateTimeError(text, "bad seconds");
    if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
      ++pos;
      int n = 0;
      int64_t scale = 100000;
      while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
        if (n < 6) micros += (text[pos] - '0') * scale;
        scale /= 10;
        ++n;
        ++pos;
        if (n > 12) return DateTimeError(text, "too many fractional digits");
      }
      if (n == 0) return DateTimeError(text, "empty fraction");
    }
  }
  if (h > 23 || mi > 59 || sec > 59) return DateTimeError(text, "time out of range");
  if (pos >= text.size()) {
    return DateTimeError(text, "the UTC offset is missing; add +09:00 for Japan time or Z for UTC");
  }
  int offset_seconds = 0;
  char c = text[pos];
  if (c == 'Z' || c == 'z') {
    ++pos;
  } else if (c == '+' || c == '-') {
    ++pos;
    int oh, om;
    if (!Digits(text, &pos, 2, &oh)) return DateTimeError(text, "bad offset hours");
    if (pos < text.size() && text[pos] == ':') ++pos;
    if (!Digits(text, &pos, 2, &om)) return DateTimeError(text, "bad offset minutes");
    if (oh > 14 || om > 59) return DateTimeError(text, "offset out of range");
    offset_seconds = (oh * 3600 + om * 60) * (c == '-' ? -1 : 1);
  } else {
    return DateTimeError(text, "the UTC offset is missing; add +09:00 for Japan time or Z for UTC");
  }
  if (pos != text.size()) return DateTimeError(text, "unexpected characters after the offset");
  Date date{std::chrono::year(y), std::chrono::month(mo), std::chrono::day(d)};
  int64_t days = std::chrono::sys_days(date).time_since_epoch().count();
  int64_t seconds = days * 86400 + h * 3600 + mi * 60 + sec - offset_seconds;
  return seconds * 1000000 + micros;
}

Date JstDate(int64_t epoch_micros) {
  int64_t seconds = epoch_micros / 1000000;
  if (epoch_micros % 1000000 < 0) --seconds;
  seconds += kJstOffsetSeconds;
  int64_t days = seconds / 86400;
  if (seconds % 86400 < 0) --days;
  return Date{std::chrono::sys_days{std::chrono::days{days}}};
}

Date AddDays(Date d, int days) { return Date{std::chrono::sys_days(d) + std::chrono::days{days}}; }

int DaysBetween(Date a, Date b) {
  return static_cast<int>((std::chrono::sys_days(b) - std::chrono::sys_days(a)).count());
}

std::string FormatDate(Date d) {
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(d.year()),
                     static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
}

std::string WeekdayJa(Date d) {
  static const char* kNames[] = {"日", "月", "火", "水", "木", "金", "土"};
  std::chrono::weekday wd{std::chrono::sys_days(d)};
  return kNames[wd.c_encoding()];
}

std::string FormatDateJa(Date d) {
  return fmt::format("{}年{}月{}日（{}）", static_cast<int>(d.year()),
                     static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()),
                     WeekdayJa(d));
}

std::string FormatDateTimeJst(int64_t epoch_micros) {
  int64_t seconds = epoch_micros / 1000000;
  if (epoch_micros % 1000000 < 0) --seconds;
  seconds += kJstOffsetSeconds;
  int64_t days = seconds / 86400;
  int64_t rem = seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  Date d{std::chrono::sys_days{std::chrono::days{days}}};
  return fmt::format("{}T{:02}:{:02}:{:02}+09:00", FormatDate(d), rem / 3600, (rem / 60) % 60,
                     rem % 60);
}

}  // namespace mamori::incident
