#include "mail/address.h"

#include <algorithm>
#include <vector>

namespace mamori::mail {
namespace {

std::string Lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return r;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) {
    --e;
  }
  return std::string(s.substr(b, e - b));
}

// Lower-cases the domain part of "local@domain" and drops a trailing dot.
std::string CanonicalAddress(std::string_view addr) {
  std::string a = Trim(addr);
  // Source route "@relay1,@relay2:user@host" -> "user@host".
  if (!a.empty() && a[0] == '@') {
    size_t colon = a.find(':');
    a = colon == std::string::npos ? std::string() : a.substr(colon + 1);
  }
  size_t at = a.rfind('@');
  if (at == std::string::npos) return a;
  std::string domain = Lower(std::string_view(a).substr(at + 1));
  while (!domain.empty() && domain.back() == '.') domain.pop_back();
  return a.substr(0, at + 1) + domain;
}

}  // namespace

Result<std::vector<std::string>> ParseAddressList(std::string_view v, size_t max_addresses) {
  std::vector<std::string> out;
  std::string current;  // words outside quotes/comments/angles
  std::string angle;
  bool have_angle = false;
  auto finish = [&]() -> Status {
    std::string candidate = have_angle ? angle : current;
    // Without angle brackets, whitespace is not part of an addr-spec.
    if (!have_angle) {
      candidate.erase(std::remove_if(candidate.begin(), candidate.end(),
                                     [](char c) { return c == ' ' || c == '\t'; }),
                      candidate.end());
    }
    std::string addr = CanonicalAddress(candidate);
    current.clear();
    angle.clear();
    have_angle = false;
    if (addr.find('@') == std::string::npos) return Status::Ok();
    if (out.size() >= max_addresses) {
      return ResourceExhausted("address list has more than " + std::to_string(max_addresses) +
                               " addresses");
    }
    out.push_back(std::move(addr));
    return Status::Ok();
  };
  size_t i = 0;
  const size_t n = v.size();
  while (i < n) {
    char c = v[i];
    if (c == '"') {
      size_t j = i + 1;
      std::string q = "\"";
      bool closed = false;
      while (j < n) {
        if (v[j] == '\\' && j + 1 < n) {
          q.push_back(v[j]);
          q.push_back(v[j + 1]);
          j += 2;
          continue;
        }
        q.push_back(v[j]);
        if (v[j] == '"') {
          closed = true;
          break;
        }
        ++j;
      }
      if (!closed) return InvalidArgument("address list has an unterminated quoted string");
      current += q;
      i = j + 1;
    } else if (c == '(') {
      int depth = 0;
      size_t j = i;
      for (; j < n; ++j) {
        if (v[j] == '\\') {
          ++j;
          continue;
        }
        if (v[j] == '(') ++depth;
        if (v[j] == ')' && --depth == 0) break;
      }
      if (j >= n) return InvalidArgument("address list has an unterminated comment");
      current.push_back(' ');
      i = j + 1;
    } else if (c == '<') {
      size_t close = v.find('>', i + 1);
      if (close == std::string_view::npos) {
        return InvalidArgument("address list has an unterminated '<'");
      }
      angle = std::string(v.substr(i + 1, close - i - 1));
      have_angle = true;
      i = close + 1;
    } else if (c == ':') {
      // Group name: what came before is a display name, not an address.
      current.clear();
      ++i;
    } else if (c == ',' || c == ';') {
      RETURN_IF_ERROR(finish());
      ++i;
    } else {
      current.push_back(c);
      ++i;
    }
  }
  RETURN_IF_ERROR(finish());
  return out;
}

std::string NormalizeEnvelopeAddress(std::string_view raw) {
  std::string a = Trim(raw);
  if (!a.empty() && a.front() == '<') {
    size_t close = a.find('>');
    a = a.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  }
  return CanonicalAddress(a);
}

std::string DomainOf(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return "";
  std::string d = Lower(address.substr(at + 1));
  while (!d.empty() && d.back() == '.') d.pop_back();
  if (d.size() >= 2 && d.front() == '[' && d.back() == ']') d = d.substr(1, d.size() - 2);
  return d;
}

bool DomainMatches(std::string_view domain, std::string_view listed) {
  if (listed.empty()) return false;
  if (domain == listed) return true;
  return domain.size() > listed.size() && domain.ends_with(listed) &&
         domain[domain.size() - listed.size() - 1] == '.';
}

int EditDistance(std::string_view a, std::string_view b, int cap) {
  const int over = cap + 1;
  if (a.size() > 255 || b.size() > 255) return over;
  const int la = static_cast<int>(a.size()), lb = static_cast<int>(b.size());
  if (std::abs(la - lb) > cap) return over;
  std::vector<std::vector<int>> d(la + 1, std::vector<int>(lb + 1));
  for (int i = 0; i <= la; ++i) d[i][0] = i;
  for (int j = 0; j <= lb; ++j) d[0][j] = j;
  for (int i = 1; i <= la; ++i) {
    int row_min = over;
    for (int j = 1; j <= lb; ++j) {
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int v = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        v = std::min(v, d[i - 2][j - 2] + 1);
      }
      d[i][j] = v;
      row_min = std::min(row_min, v);
    }
    if (row_min > cap) return over;
  }
  return std::min(d[la][lb], over);
}

}  // namespace mamori::mail
