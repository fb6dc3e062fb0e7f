// UTF-8 helpers for the detection engine (internal).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mamori::detect {

// Length of the UTF-8 sequence that starts with byte c (1 for stray bytes).
inline size_t Utf8SeqLen(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xE) return 3;
  if ((c >> 3) == 0x1E) return 4;
  return 1;
}

// Decodes the code point at s[i]; sets *len. Invalid bytes decode as themselves.
uint32_t DecodeAt(std::string_view s, size_t i, size_t* len);
// Decodes the code point that ends just before s[end]; sets *len. 0 if none.
uint32_t DecodeBefore(std::string_view s, size_t end, size_t* len);

// Full-width forms (U+FF01..U+FF5E) to ASCII, ideographic space to space.
uint32_t FoldWidth(uint32_t cp);
bool IsDigitCp(uint32_t cp);        // ASCII or full-width digit
bool IsAsciiLetterCp(uint32_t cp);  // after FoldWidth
bool IsSeparatorCp(uint32_t cp);    // hyphens, dashes, dots, spaces used between digit groups
bool IsKanjiCp(uint32_t cp);
bool IsKanaCp(uint32_t cp);

// The ASCII digits of s (full-width folded); other characters are dropped.
std::string DigitsOf(std::string_view s);
// Number of characters (code points) in s.
size_t CountChars(std::string_view s);
// ASCII lower-case of s after width folding (non-ASCII kept as is).
std::string FoldForMatch(std::string_view s);

// The Western-date patterns of birth_date.yaml without their {ND} byte,
//   (?:19|20){D}{2}(?:/|-|\.|年|／|－){D}{1,2}(?:/|-|\.|月|／|－){D}{1,2}(?:日)?
// with the century "１９"/"２０" instead when `wide_century`, matched at s[at]
// as Vectorscan would: every end offset of a match, ascending, goes to ends[]
// (at most 3). Returns their number, or -1 if s ends before that is decided
// and more bytes may follow (`final` false). The caller checks the {ND} byte.
int WesternDateEnds(std::string_view s, size_t at, bool wide_century, bool final, size_t ends[3]);
// The longest such match: a full-width century, year, month and day, two
// full-width separators and 日 (6 + 6 + 3 + 6 + 3 + 6 + 3 bytes).
inline constexpr size_t kMaxWesternDateBytes = 33;

}  // namespace mamori::detect
