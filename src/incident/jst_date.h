// Calendar arithmetic in Japan time (Asia/Tokyo, UTC+9, no daylight saving
// since 1951), for the legal deadlines of an incident.
//
// The legal clock of APPI 規則8条 runs on calendar days in Japan, so every
// instant is first converted to its Japanese calendar date.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mamori::incident {

using Date = std::chrono::year_month_day;

// Parses an ISO 8601 / RFC 3339 date-time that carries a UTC offset
// ("2026-04-01T09:30:00+09:00", "2026-03-31T23:00:00Z", "...+0900",
// fractional seconds allowed) and returns microseconds since the Unix epoch.
// A date-time without an offset is refused: it would be ambiguous.
Result<int64_t> ParseDateTime(std::string_view text);

// Parses a calendar date "YYYY-MM-DD".
Result<Date> ParseDate(std::string_view text);

// The calendar date in Japan of an instant.
Date JstDate(int64_t epoch_micros);

// The date `days` calendar days after (or before, if negative) `d`.
Date AddDays(Date d, int days);

// Days from a to b (b - a).
int DaysBetween(Date a, Date b);

// "2026-04-01".
std::string FormatDate(Date d);
// "2026年4月1日（水）", with the Japanese weekday.
std::string FormatDateJa(Date d);
// "水" for a Wednesday.
std::string WeekdayJa(Date d);
// "2026-04-01T09:30:00+09:00": an instant shown in Japan time.
std::string FormatDateTimeJst(int64_t epoch_micros);

}  // namespace mamori::incident
