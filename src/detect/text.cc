#include "detect/text.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mamori::detect {

uint32_t DecodeAt(std::string_view s, size_t i, size_t* len) {
  unsigned char c = s[i];
  size_t n = Utf8SeqLen(c);
  if (n == 1 || i + n > s.size()) {
    *len = 1;
    return c;
  }
  uint32_t cp = n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = s[i + k];
    if ((cc & 0xC0) != 0x80) {
      *len = 1;
      return c;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  *len = n;
  return cp;
}

uint32_t DecodeBefore(std::string_view s, size_t end, size_t* len) {
  if (end == 0) {
    *len = 0;
    return 0;
  }
  size_t start = end - 1;
  int back = 0;
  while (start > 0 && back < 3 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
    --start;
    ++back;
  }
  size_t n = 0;
  uint32_t cp = DecodeAt(s, start, &n);
  if (start + n != end) {  // not a clean sequence: treat the last byte alone
    *len = 1;
    return static_cast<unsigned char>(s[end - 1]);
  }
  *len = n;
  return cp;
}

uint32_t FoldWidth(uint32_t cp) {
  if (cp >= 0xFF01 && cp <= 0xFF5E) return cp - 0xFF01 + 0x21;
  if (cp == 0x3000) return ' ';
  return cp;
}

bool IsDigitCp(uint32_t cp) { return (cp >= '0' && cp <= '9') || (cp >= 0xFF10 && cp <= 0xFF19); }
bool IsAsciiLetterCp(uint32_t cp) { return (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z'); }
bool IsSeparatorCp(uint32_t cp) {
  switch (cp) {
    case ' ':
    case '-':
    case '.':
    case 0x3000:
    case 0xFF0D:
    case 0x2010:
    case 0x2011:
    case 0x2012:
    case 0x2013:
    case 0x2014:
    case 0x2015:
    case 0x2212:
    case 0x30FC:
    case 0xFF70:
    case 0xFF0E:
      return true;
    default:
      return false;
  }
}
bool IsKanjiCp(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || cp == 0x3005 ||
         (cp >= 0xF900 && cp <= 0xFAFF);
}
bool IsKanaCp(uint32_t cp) {
  return (cp >= 0x3041 && cp <= 0x30FF) || (cp >= 0xFF66 && cp <= 0xFF9F);
}

std::string DigitsOf(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s[i] >= '0' && s[i] <= '9') {  // ASCII digits need no decoding
      out.push_back(s[i++]);
      continue;
    }
    size_t n;
    uint32_t cp = FoldWidth(DecodeAt(s, i, &n));
    if (cp >= '0' && cp <= '9') out.push_back(static_cast<char>(cp));
    i += n;
  }
  return out;
}

size_t CountChars(std::string_view s) {
  // Characters are the bytes that are not UTF-8 continuation bytes
  // (10xxxxxx, i.e. -128..-65 as signed bytes). Columns of candidates on long
  // lines of prose count thousands of bytes, so sixteen at a time.
  size_t n = 0, i = 0;
#if defined(__SSE2__)
  const __m128i limit = _mm_set1_epi8(static_cast<char>(0xBF));  // -65
  for (; i + 16 <= s.size(); i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    n += static_cast<size_t>(
        __builtin_popcount(static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpgt_epi8(v, limit)))));
  }
#endif
  for (; i < s.size(); ++i) n += (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
  return n;
}

std::string FoldForMatch(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n;
    uint32_t cp = FoldWidth(DecodeAt(s, i, &n));
    if (cp < 0x80) {
      char c = static_cast<char>(cp);
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      out.push_back(c);
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

int WesternDateEnds(std::string_view s, size_t at, bool wide_century, bool final, size_t ends[3]) {
  bool short_data = false;  // a decision read past the end of s
  auto byte = [&](size_t k) -> int {
    if (k < s.size()) return static_cast<unsigned char>(s[k]);
    short_data = true;
    return -1;
  };
  auto digit = [&](size_t k) -> size_t {  // length of the digit at k, 0 if none
    int c = byte(k);
    if (c >= '0' && c <= '9') return 1;
    if (c == 0xEF && byte(k + 1) == 0xBC) {
      int d = byte(k + 2);
      if (d >= 0x90 && d <= 0x99) return 3;
    }
    return 0;
  };
  // (?:/|-|\.|年|／|－), with 月 instead of 年 for the second separator.
  auto separator = [&](size_t k, bool second) -> size_t {
    int c = byte(k);
    if (c == '/' || c == '-' || c == '.') return 1;
    if (c == 0xEF) {
      if (byte(k + 1) != 0xBC) return 0;
      int d = byte(k + 2);
      return d == 0x8F || d == 0x8D ? 3 : 0;
    }
    if (!second && c == 0xE5) return byte(k + 1) == 0xB9 && byte(k + 2) == 0xB4 ? 3 : 0;
    if (second && c == 0xE6) return byte(k + 1) == 0x9C && byte(k + 2) == 0x88 ? 3 : 0;
    return 0;
  };
  auto done = [&](int n) { return short_data && !final ? -1 : n; };

  size_t k = at;
  if (!wide_century) {
    int a = byte(k);
    if (a != '1' && a != '2') return done(0);
    int b = byte(k + 1);
    if (!((a == '1' && b == '9') || (a == '2' && b == '0'))) return done(0);
    k += 2;
  } else {  // １９ = EF BC 91 EF BC 99, ２０ = EF BC 92 EF BC 90
    if (byte(k) != 0xEF || byte(k + 1) != 0xBC) return done(0);
    int a = byte(k + 2);
    if (a != 0x91 && a != 0x92) return done(0);
    if (byte(k + 3) != 0xEF || byte(k + 4) != 0xBC) return done(0);
    int b = byte(k + 5);
    if (!((a == 0x91 && b == 0x99) || (a == 0x92 && b == 0x90))) return done(0);
    k += 6;
  }
  for (int i = 0; i < 2; ++i) {
    size_t n = digit(k);
    if (!n) return done(0);
    k += n;
  }
  size_t n = separator(k, false);
  if (!n) return done(0);
  k += n;
  // The month: one or two digits, then the second separator.
  if (!(n = digit(k))) return done(0);
  k += n;
  size_t sep = separator(k, true);
  if (!sep) {
    if (!(n = digit(k))) return done(0);
    k += n;
    if (!(sep = separator(k, true))) return done(0);
  }
  k += sep;
  // The day: a match ends after its first digit, after a second one, and
  // after a 日 that follows the last of them.
  int count = 0;
  if (!(n = digit(k))) return done(0);
  k += n;
  ends[count++] = k;
  if ((n = digit(k))) {
    k += n;
    ends[count++] = k;
  }
  if (byte(k) == 0xE6 && byte(k + 1) == 0x97 && byte(k + 2) == 0xA5) ends[count++] = k + 3;
  return done(count);
}

}  // namespace mamori::detect
