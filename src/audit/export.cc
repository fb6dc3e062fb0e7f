// Export for SIEMs: JSONL and RFC 5424 syslog; RFC 3339 times.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "audit/audit.h"

namespace mamori::audit {
namespace {

// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

std::string JsonDump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Printable US-ASCII (33..126), at most max_len, "-" if empty (RFC 5424 header fields).
std::string HeaderField(std::string_view s, size_t max_len) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max_len) break;
    out.push_back(c >= 33 && c <= 126 ? static_cast<char>(c) : '_');
  }
  return out.empty() ? "-" : out;
}

// Replaces invalid UTF-8 with U+FFFD via the JSON serialiser's handler.
std::string ValidUtf8(const std::string& s) {
  std::string quoted =
      nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(quoted).get<std::string>();
}

// RFC 5424 PARAM-VALUE: escape '"', '\' and ']'; control characters become
// visible escapes so one record stays one line.
std::string SdValue(const std::string& raw) {
  std::string s = ValidUtf8(raw);
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case ']':
        out += "\\]";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += '?';
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

int Severity(const std::string& result) {
  if (result == "error") return 3;                                          // err
  if (result == "deny" || result == "block" || result == "hold") return 4;  // warning
  if (result == "allow") return 6;                                          // info
  return 5;                                                                 // notice
}

}  // namespace

std::string FormatRfc3339Micros(int64_t micros) {
  int64_t secs = micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
  int64_t frac = micros - secs * 1000000;
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int64_t rem = secs - days * 86400;
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ",
                static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60),
                static_cast<long long>(frac));
  return buf;
}

Result<int64_t> ParseTime(std::string_view t) {
  auto bad = [&] {
    return InvalidArgument("cannot read time \"" + std::string(t.substr(0, 64)) +
                           "\"; use RFC 3339 (2026-11-23T09:00:00+09:00, 2026-11-23T00:00:00Z) "
                           "or a date (2026-11-23)");
  };
  size_t i = 0;
  auto digits = [&](size_t n, int64_t* out) {
    if (i + n > t.size()) return false;
    int64_t v = 0;
    for (size_t k = 0; k < n; ++k) {
      char c = t[i + k];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    *out = v;
    i += n;
    return true;
  };
  auto expect = [&](char c) {
    if (i < t.size() && t[i] == c) {
      ++i;
      return true;
    }
    return false;
  };
  int64_t y, mo, d, h = 0, mi = 0, s = 0, frac = 0;
  if (!digits(4, &y) || !expect('-') || !digits(2, &mo) || !expect('-') || !digits(2, &d))
    return bad();
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return bad();
  int64_t offset_secs = 0;
  if (i < t.size()) {
    if (!(expect('T') || expect('t') || expect(' '))) return bad();
    if (!digits(2, &h) || !expect(':') || !digits(2, &mi) || !expect(':') || !digits(2, &s))
      return bad();
    if (h > 23 || mi > 59 || s > 60) return bad();
    if (expect('.')) {
      size_t start = i;
      int64_t scale = 100000;
      while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
        frac += (t[i] - '0') * scale;
        scale /= 10;
        ++i;
      }
      if (i == start || i - start > 9) return bad();
    }
    if (expect('Z') || expect('z')) {
    } else if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
      int sign = t[i] == '+' ? 1 : -1;
      ++i;
      int64_t oh, om;
      if (!digits(2, &oh) || !expect(':') || !digits(2, &om) || oh > 23 || om > 59) return bad();
      offset_secs = sign * (oh * 3600 + om * 60);
    } else {
      return bad();
    }
    if (i != t.size()) return bad();
  }
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + s - offset_secs;
  return secs * 1000000 + frac;
}

nlohmann::ordered_json RecordToJson(const Record& r) {
  nlohmann::ordered_json j;
  j["time"] = FormatRfc3339Micros(r.time_micros);
  j["component"] = r.component;
  j["event_id"] = r.event_id;
  j["user"] = r.user;
  j["device"] = r.device;
  j["source_ip"] = r.source_ip;
  j["org"] = r.org;
  j["action"] = r.action;
  j["object"] = r.object;
  j["destination"] = r.destination;
  j["bytes"] = r.bytes;
  j["result"] = r.result;
  j["reason"] = r.reason;
  // Round-tripped so invalid UTF-8 in a label becomes U+FFFD, never a throw.
  j["labels"] = r.labels.is_null() ? nlohmann::ordered_json::object()
                                   : nlohmann::ordered_json::parse(r.labels.dump(
                                         -1, ' ', false, nlohmann::json::error_handler_t::replace));
  j["extra"] = r.extra.is_null() ? nlohmann::ordered_json::object()
                                 : nlohmann::ordered_json::parse(r.extra.dump(
                                       -1, ' ', false, nlohmann::json::error_handler_t::replace));
  return j;
}

std::string ToJsonLine(const StoredRecord& sr) {
  nlohmann::ordered_json j;
  j["seq"] = sr.seq;
  nlohmann::ordered_json fields = RecordToJson(sr.record);  // outlives the loop's proxy
  for (auto& [key, value] : fields.items()) j[key] = std::move(value);
  j["hash"] = sr.hash;
  return JsonDump(j);
}

std::string ToSyslogLine(const StoredRecord& sr, std::string_view hostname) {
  const Record& r = sr.record;
  std::string out = "<" + std::to_string(13 * 8 + Severity(r.result)) + ">1 ";
  out += FormatRfc3339Micros(r.time_micros);
  out += ' ';
  out += HeaderField(hostname, 255);
  out += " mamori - ";
  out += HeaderField(r.component, 32);
  out += " [mamori@32473";
  auto param = [&out](const char* name, const std::string& value) {
    out += ' ';
    out += name;
    out += "=\"";
    out += SdValue(value);
    out += '"';
  };
  param("seq", std::to_string(sr.seq));
  param("event_id", r.event_id);
  param("user", r.user);
  param("device", r.device);
  param("source_ip", r.source_ip);
  param("org", r.org);
  param("action", r.action);
  param("object", r.object);
  param("destination", r.destination);
  param("bytes", std::to_string(r.bytes));
  param("result", r.result);
  param("reason", r.reason);
  if (!r.labels.is_null() && !r.labels.empty())
    param("labels", r.labels.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (!r.extra.is_null() && !r.extra.empty())
    param("extra", r.extra.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  param("hash", sr.hash);
  out += "] ";
  // MSG: a short human summary; the facts are in the structured data.
  std::string msg = r.component + " " + r.action + " " + r.result;
  if (!r.reason.empty()) msg += " (" + r.reason + ")";
  for (char& c : msg)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  out += ValidUtf8(msg);
  return out;
}

}  // namespace mamori::audit
