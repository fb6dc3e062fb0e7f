// Encoding detection and conversion to UTF-8.
#include <uchardet.h>
#include <unicode/ucnv.h>
#include <unicode/ucnv_cb.h>

#if defined(__x86_64__)
#include <immintrin.h>  // SSSE3 and AVX2 (each function enables its own target)
#endif
#include <algorithm>
#include <cstring>
#include <memory>

#include "extract/internal.h"

namespace mamori::extract::internal {
namespace {

constexpr size_t kSniffBytes = 64 * 1024;

void CountingSubstitute(const void* context, UConverterToUnicodeArgs* args,
                        const char* /*code_units*/, int32_t /*length*/,
                        UConverterCallbackReason reason, UErrorCode* err) {
  if (reason > UCNV_IRREGULAR) return;  // reset, close, clone
  ++*static_cast<uint64_t*>(const_cast<void*>(context));
  static const UChar kReplacement = 0xFFFD;
  *err = U_ZERO_ERROR;
  ucnv_cbToUWriteUChars(args, &kReplacement, 1, 0, err);
}

struct ConverterCloser {
  void operator()(UConverter* c) const { ucnv_close(c); }
};
using ConverterPtr = std::unique_ptr<UConverter, ConverterCloser>;

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Maps a declared or detected charset name to the ICU converter we use.
std::string IcuName(std::string_view charset) {
  std::string u = Upper(charset);
  if (u == "SHIFT_JIS" || u == "SHIFT-JIS" || u == "SJIS" || u == "X-SJIS" || u == "CP932" ||
      u == "MS932" || u == "WINDOWS-31J" || u == "CSSHIFTJIS" || u == "MS_KANJI" ||
      u == "CSWINDOWS31J" || u == "X-MS-CP932")
    return "windows-31j";
  if (u.rfind("ISO-2022-JP", 0) == 0 || u == "CSISO2022JP") return "ISO-2022-JP";
  if (u == "EUC-JP" || u == "X-EUC-JP" || u == "EUCJP" || u == "CSEUCPKDFMTJAPANESE" ||
      u == "EUCJP-MS" || u == "EUC-JP-MS" || u == "CP51932")
    return "EUC-JP";
  if (u == "UTF8") return "UTF-8";
  return std::string(charset);
}

bool IsUtf8Name(std::string_view charset) {
  std::string u = Upper(charset);
  return u == "UTF-8" || u == "UTF8" || u == "US-ASCII" || u == "ASCII" || u == "ANSI_X3.4-1968";
}

// Appends UTF-16 code units as UTF-8; *pending carries a high surrogate over
// buffer boundaries. Unpaired surrogates become U+FFFD. Writes through a raw
// pointer into space reserved up front (at most 3 bytes per code unit).
void AppendUtf16(std::string* out, const UChar* s, size_t n, UChar* pending) {
  size_t old = out->size();
  out->resize(old + n * 3 + 4);
  char* p = out->data() + old;
  auto put = [&p](uint32_t cp) {
    if (cp < 0x80) {
      *p++ = static_cast<char>(cp);
    } else if (cp < 0x800) {
      *p++ = static_cast<char>(0xC0 | (cp >> 6));
      *p++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *p++ = static_cast<char>(0xE0 | (cp >> 12));
      *p++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *p++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *p++ = static_cast<char>(0xF0 | (cp >> 18));
      *p++ = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *p++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *p++ = static_cast<char>(0x80 | (cp & 0x3F));
    }
  };
  for (size_t i = 0; i < n; ++i) {
    uint32_t c = s[i];
    if (*pending) {
      if (c >= 0xDC00 && c <= 0xDFFF) {
        put(0x10000 + ((static_cast<uint32_t>(*pending) - 0xD800) << 10) + (c - 0xDC00));
        *pending = 0;
        continue;
      }
      put(0xFFFD);
      *pending = 0;
    }
    if (c < 0x80) {
      *p++ = static_cast<char>(c);
    } else if (c >= 0xD800 && c <= 0xDBFF) {
      *pending = static_cast<UChar>(c);
    } else if (c >= 0xDC00 && c <= 0xDFFF) {
      put(0xFFFD);
    } else {
      put(c);
    }
  }
  out->resize(static_cast<size_t>(p - out->data()));
}

// Counts what a Japanese reader would expect in decoded text.
struct Score {
  uint64_t invalid = 0;
  uint64_t non_ascii = 0;
  uint64_t japanese = 0;  // kana, CJK ideographs, full-width forms, CJK punctuation
  uint64_t kana = 0;
  uint64_t controls = 0;
};

Score ScoreUtf8(std::string_view s, uint64_t invalid) {
  Score sc;
  sc.invalid = invalid;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    uint32_t cp;
    size_t len;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if (c < 0xE0) {
      cp = ((c & 0x1F) << 6) | (i + 1 < s.size() ? (s[i + 1] & 0x3F) : 0);
      len = 2;
    } else if (c < 0xF0) {
      cp = ((c & 0x0F) << 12) | (i + 1 < s.size() ? ((s[i + 1] & 0x3F) << 6) : 0) |
           (i + 2 < s.size() ? (s[i + 2] & 0x3F) : 0);
      len = 3;
    } else {
      cp = 0x10000;
      len = 4;
    }
    i += len;
    if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r' && cp != 0x0C) ++sc.controls;
    if (cp < 0x80) continue;
    ++sc.non_ascii;
    if ((cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0xFF66 && cp <= 0xFF9F)) {
      ++sc.kana;
      ++sc.japanese;
    } else if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3000 && cp <= 0x303F) ||
               (cp >= 0xFF00 && cp <= 0xFF65) || (cp >= 0x2460 && cp <= 0x24FF) ||
               (cp >= 0x3200 && cp <= 0x33FF)) {
      ++sc.japanese;
    }
  }
  return sc;
}

// Decides between UTF-16LE, UTF-16BE and neither, from the NUL pattern of a
// BOM-less sample. ASCII in UTF-16LE puts NULs at odd offsets.
std::string_view Utf16ByNulPattern(std::string_view sample) {
  size_t pairs = sample.size() / 2;
  if (pairs < 2) return {};
  size_t zero_even = 0, zero_odd = 0;
  for (size_t i = 0; i + 1 < sample.size(); i += 2) {
    if (sample[i] == 0) ++zero_even;
    if (sample[i + 1] == 0) ++zero_odd;
  }
  std::string_view guess;
  if (zero_odd * 100 >= pairs && zero_odd >= 1 && zero_even * 4 <= zero_odd) guess = "UTF-16LE";
  if (zero_even * 100 >= pairs && zero_even >= 1 && zero_odd * 4 <= zero_even) guess = "UTF-16BE";
  if (guess.empty()) return {};
  // Confirm: the decoded sample must be text (few controls, few bad surrogates).
  uint64_t invalid = 0;
  auto decoded = ConvertCharset(sample.substr(0, pairs * 2), guess, &invalid);
  if (!decoded.ok()) return {};
  Score sc = ScoreUtf8(*decoded, invalid);
  uint64_t chars = pairs;
  if (sc.controls * 50 > chars || sc.invalid * 100 > chars) return {};
  return guess;
}

std::string Uchardet(std::string_view sample) {
  uchardet_t ud = uchardet_new();
  if (ud == nullptr) return {};
  std::string result;
  if (uchardet_handle_data(ud, sample.data(), sample.size()) == 0) {
    uchardet_data_end(ud);
    const char* cs = uchardet_get_charset(ud);
    if (cs != nullptr) result = cs;
  }
  uchardet_delete(ud);
  return result;
}

bool IsJapaneseCharset(std::string_view name) {
  std::string u = Upper(name);
  return u == "SHIFT_JIS" || u == "EUC-JP" || u == "ISO-2022-JP" || u == "CP932" ||
         u == "WINDOWS-31J";
}

Decoded Convert(std::string_view data, std::string* storage, std::string_view charset,
                std::string reported) {
  Decoded d;
  uint64_t invalid = 0;
  auto r = ConvertCharset(data, charset, &invalid);
  if (!r.ok()) {  // unknown converter: fall back to CP932 with replacements
    r = ConvertCharset(data, "windows-31j", &invalid);
    reported = "SHIFT_JIS";
  }
  *storage = std::move(r).value();
  d.text = *storage;
  d.encoding = std::move(reported);
  d.invalid = invalid;
  return d;
}

}  // namespace

bool HasIso2022Escapes(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) >= 0x80) return false;
  }
  return s.find("\x1b$B") != std::string_view::npos || s.find("\x1b$@") != std::string_view::npos ||
         s.find("\x1b$(D") != std::string_view::npos || s.find("\x1b(I") != std::string_view::npos;
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValidUtf8Scalar(std::string_view s) {
  // Japanese text is mostly three-byte sequences, which take the second branch
  // with two comparisons; the general branch handles the rest per RFC 3629.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char* end = p + s.size();
  while (p < end) {
    // ASCII fast path, 8 bytes at a time.
    while (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if (w & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p >= end) break;
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    // E1..EC and EE..EF lead bytes accept any two continuation bytes.
    if (c >= 0xE1 && c <= 0xEF && c != 0xED && end - p >= 3) {
      if ((p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return false;
      p += 3;
      continue;
    }
    size_t n;
    uint32_t min;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      min = 0x80;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      min = 0x800;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      min = 0x10000;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<size_t>(end - p) <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      if ((p[k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

#if defined(__x86_64__)
// Keiser & Lemire, "Validating UTF-8 in less than one instruction per byte"
// (Software: Practice and Experience, 2021): three nibble lookups classify
// every pair of adjacent bytes, and a fourth check catches the continuation
// bytes of three- and four-byte sequences. SSSE3 for pshufb; chosen at run
// time, with the scalar loop as the reference and the fallback.
namespace utf8simd {
constexpr uint8_t kTooShort = 1 << 0, kTooLong = 1 << 1, kOverlong3 = 1 << 2, kTooLarge = 1 << 3,
                  kSurrogate = 1 << 4, kOverlong2 = 1 << 5, kTooLarge1000 = 1 << 6,
                  kOverlong4 = 1 << 6, kTwoConts = 1 << 7,
                  kCarry = kTooShort | kTooLong | kTwoConts;

struct State {
  __m128i prev, error, incomplete;
};

__attribute__((target("ssse3"))) inline void Block(State& st, __m128i in) {
  const __m128i t1h =
      _mm_setr_epi8(kTooLong, kTooLong, kTooLong, kTooLong, kTooLong, kTooLong, kTooLong, kTooLong,
                    static_cast<char>(kTwoConts), static_cast<char>(kTwoConts),
                    static_cast<char>(kTwoConts), static_cast<char>(kTwoConts),
                    kTooShort | kOverlong2, kTooShort, kTooShort | kOverlong3 | kSurrogate,
                    static_cast<char>(kTooShort | kTooLarge | kTooLarge1000 | kOverlong4));
  constexpr char kBig = static_cast<char>(kCarry | kTooLarge | kTooLarge1000);
  const __m128i t1l = _mm_setr_epi8(
      static_cast<char>(kCarry | kOverlong3 | kOverlong2 | kOverlong4),
      static_cast<char>(kCarry | kOverlong2), static_cast<char>(kCarry), static_cast<char>(kCarry),
      static_cast<char>(kCarry | kTooLarge), kBig, kBig, kBig, kBig, kBig, kBig, kBig, kBig,
      static_cast<char>(kCarry | kTooLarge | kTooLarge1000 | kSurrogate), kBig, kBig);
  const __m128i t2h = _mm_setr_epi8(
      kTooShort, kTooShort, kTooShort, kTooShort, kTooShort, kTooShort, kTooShort, kTooShort,
      static_cast<char>(kTooLong | kOverlong2 | kTwoConts | kOverlong3 | kTooLarge1000 |
                        kOverlong4),
      static_cast<char>(kTooLong | kOverlong2 | kTwoConts | kOverlong3 | kTooLarge),
      static_cast<char>(kTooLong | kOverlong2 | kTwoConts | kSurrogate | kTooLarge),
      static_cast<char>(kTooLong | kOverlong2 | kTwoConts | kSurrogate | kTooLarge), kTooShort,
      kTooShort, kTooShort, kTooShort);
  // Bytes that, in the last three positions, start a sequence the block does not finish.
  const __m128i max_end =
      _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, static_cast<char>(0xF0 - 1),
                    static_cast<char>(0xE0 - 1), static_cast<char>(0xC0 - 1));
  const __m128i nib = _mm_set1_epi8(0x0F);
  if (_mm_movemask_epi8(in) == 0) {  // ASCII: only an unfinished sequence before it is wrong
    st.error = _mm_or_si128(st.error, st.incomplete);
    st.prev = in;
    st.incomplete = _mm_setzero_si128();
    return;
  }
  __m128i prev1 = _mm_alignr_epi8(in, st.prev, 15);
  __m128i b1h = _mm_shuffle_epi8(t1h, _mm_and_si128(_mm_srli_epi16(prev1, 4), nib));
  __m128i b1l = _mm_shuffle_epi8(t1l, _mm_and_si128(prev1, nib));
  __m128i b2h = _mm_shuffle_epi8(t2h, _mm_and_si128(_mm_srli_epi16(in, 4), nib));
  __m128i special = _mm_and_si128(_mm_and_si128(b1h, b1l), b2h);
  __m128i prev2 = _mm_alignr_epi8(in, st.prev, 14), prev3 = _mm_alignr_epi8(in, st.prev, 13);
  __m128i third = _mm_subs_epu8(prev2, _mm_set1_epi8(static_cast<char>(0xE0 - 0x80)));
  __m128i fourth = _mm_subs_epu8(prev3, _mm_set1_epi8(static_cast<char>(0xF0 - 0x80)));
  __m128i must23 =
      _mm_and_si128(_mm_or_si128(third, fourth), _mm_set1_epi8(static_cast<char>(0x80)));
  st.error = _mm_or_si128(st.error, _mm_xor_si128(must23, special));
  st.incomplete = _mm_subs_epu8(in, max_end);
  st.prev = in;
}

__attribute__((target("ssse3"))) bool Validate(const unsigned char* p, size_t n) {
  State st{_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
  auto clean = [](__m128i e) {
    return _mm_movemask_epi8(_mm_cmpeq_epi8(e, _mm_setzero_si128())) == 0xFFFF;
  };
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    Block(st, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
    // Stop early on garbage (binary or another encoding), checked every 1 KiB.
    if ((i & 1023) == 1008 && !clean(st.error)) return false;
  }
  if (i < n) {
    alignas(16) unsigned char tail[16] = {0};  // NUL padding is ASCII
    std::memcpy(tail, p + i, n - i);
    Block(st, _mm_load_si128(reinterpret_cast<const __m128i*>(tail)));
  }
  return clean(_mm_or_si128(st.error, st.incomplete));
}
}  // namespace utf8simd

// The same algorithm 32 bytes at a time: half the instructions per byte of
// the SSSE3 loop (the validation pass was a tenth of `mamori scan` on prose).
namespace utf8avx2 {
struct State {
  __m256i prev, error, incomplete;
};

__attribute__((target("avx2"))) inline void Block(State& st, __m256i in) {
  using namespace utf8simd;
  const __m256i t1h = _mm256_broadcastsi128_si256(
      _mm_setr_epi8(kTooLong, kTooLong, kTooLong, kTooLong, kTooLong, kTooLong, kTooLong, kTooLong,
                    static_cast<char>(kTwoConts), static_cast<char>(kTwoConts),
                    static_cast<char>(kTwoConts), static_cast<char>(kTwoConts),
                    kTooShort | kOverlong2, kTooShort, kTooShort | kOverlong3 | kSurrogate,
                    static_cast<char>(kTooShort | kTooLarge | kTooLarge1000 | kOverlong4)));
  constexpr char kBig = static_cast<char>(kCarry | kTooLarge | kTooLarge1000);
  const __m256i t1l = _mm256_broadcastsi128_si256(_mm_setr_epi8(
      static_cast<char>(kCarry | kOverlong3 | kOverlong2 | kOverlong4),
      static_cast<char>(kCarry | kOverlong2), static_cast<char>(kCarry), static_cast<char>(kCarry),
      static_cast<char>(kCarry | kTooLarge), kBig, kBig, kBig, kBig, kBig, kBig, kBig, kBig,
      static_cast<char>(kCarry | kTooLarge | kTooLarge1000 | kSurrogate), kBig, kBig));
  const __m256i t2h = _mm256_broadcastsi128_si256(_mm_setr_epi8(
      kTooShort, kTooShort, kTooShort, kTooShort, kTooShort, kTooShort, kTooShort, kTooShort,
      static_cast<char>(kTooLong | kOverlong2 | kTwoConts | kOverlong3 | kTooLarge1000 |
                        kOverlong4),
      static_cast<char>(kTooLong | kOverlong2 | kTwoConts | kOverlong3 | kTooLarge),
      static_cast<char>(kTooLong | kOverlong2 | kTwoConts | kSurrogate | kTooLarge),
      static_cast<char>(kTooLong | kOverlong2 | kTwoConts | kSurrogate | kTooLarge), kTooShort,
      kTooShort, kTooShort, kTooShort));
  // Bytes that, in the last three positions, start a sequence the block does not finish.
  const __m256i max_end =
      _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                       -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, static_cast<char>(0xF0 - 1),
                       static_cast<char>(0xE0 - 1), static_cast<char>(0xC0 - 1));
  const __m256i nib = _mm256_set1_epi8(0x0F);
  if (_mm256_movemask_epi8(in) == 0) {  // ASCII: only an unfinished sequence before it is wrong
    st.error = _mm256_or_si256(st.error, st.incomplete);
    st.prev = in;
    st.incomplete = _mm256_setzero_si256();
    return;
  }
  // The 32 bytes before each byte's position: the previous block's high lane
  // and this block's low lane, shifted in per lane.
  __m256i before = _mm256_permute2x128_si256(st.prev, in, 0x21);
  __m256i prev1 = _mm256_alignr_epi8(in, before, 15);
  __m256i b1h = _mm256_shuffle_epi8(t1h, _mm256_and_si256(_mm256_srli_epi16(prev1, 4), nib));
  __m256i b1l = _mm256_shuffle_epi8(t1l, _mm256_and_si256(prev1, nib));
  __m256i b2h = _mm256_shuffle_epi8(t2h, _mm256_and_si256(_mm256_srli_epi16(in, 4), nib));
  __m256i special = _mm256_and_si256(_mm256_and_si256(b1h, b1l), b2h);
  __m256i prev2 = _mm256_alignr_epi8(in, before, 14), prev3 = _mm256_alignr_epi8(in, before, 13);
  __m256i third = _mm256_subs_epu8(prev2, _mm256_set1_epi8(static_cast<char>(0xE0 - 0x80)));
  __m256i fourth = _mm256_subs_epu8(prev3, _mm256_set1_epi8(static_cast<char>(0xF0 - 0x80)));
  __m256i must23 =
      _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8(static_cast<char>(0x80)));
  st.error = _mm256_or_si256(st.error, _mm256_xor_si256(must23, special));
  st.incomplete = _mm256_subs_epu8(in, max_end);
  st.prev = in;
}

__attribute__((target("avx2"))) inline bool Clean(__m256i e) {
  return _mm256_testz_si256(e, e) != 0;
}

__attribute__((target("avx2"))) bool Validate(const unsigned char* p, size_t n) {
  State st{_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    Block(st, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    // Stop early on garbage (binary or another encoding), checked every 1 KiB.
    if ((i & 1023) == 992 && !Clean(st.error)) return false;
  }
  if (i < n) {
    alignas(32) unsigned char tail[32] = {0};  // NUL padding is ASCII
    std::memcpy(tail, p + i, n - i);
    Block(st, _mm256_load_si256(reinterpret_cast<const __m256i*>(tail)));
  }
  return Clean(_mm256_or_si256(st.error, st.incomplete));
}
}  // namespace utf8avx2
#endif

bool IsValidUtf8Using(std::string_view s, int level) {
#if defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  static const bool ssse3 = __builtin_cpu_supports("ssse3");
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  if (level >= 2 && avx2) return utf8avx2::Validate(p, s.size());
  if (level >= 1 && ssse3) return utf8simd::Validate(p, s.size());
#else
  (void)level;
#endif
  return IsValidUtf8Scalar(s);
}

bool IsValidUtf8(std::string_view s) {
  // Every file is validated before it is scanned, so this runs over every byte.
  return IsValidUtf8Using(s, 2);
}

bool LooksBinary(std::string_view data) {
  std::string_view sample = data.substr(0, kSniffBytes);
  if (sample.empty()) return false;
  size_t nul = 0, controls = 0;
  for (unsigned char c : sample) {
    if (c == 0) {
      ++nul;
    } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != 0x0C && c != 0x1B) {
      ++controls;
    }
  }
  if (nul > 0 && Utf16ByNulPattern(sample).empty()) return true;
  return controls * 10 > sample.size();
}

Result<std::string> ConvertCharset(std::string_view data, std::string_view charset,
                                   uint64_t* invalid) {
  uint64_t local_invalid = 0;
  uint64_t* count = invalid ? invalid : &local_invalid;
  std::string icu = IcuName(charset);
  if (IsUtf8Name(icu) && IsValidUtf8(data)) return std::string(data);
  UErrorCode err = U_ZERO_ERROR;
  ConverterPtr cnv(ucnv_open(icu.c_str(), &err));
  if (U_FAILURE(err) || !cnv) {
    return Unimplemented("unknown character set '" + CleanName(charset.substr(0, 64)) +
                         "'; cannot decode it");
  }
  ucnv_setToUCallBack(cnv.get(), CountingSubstitute, count, nullptr, nullptr, &err);
  if (U_FAILURE(err)) return Internal("ICU refused a conversion callback");
  std::string out;
  out.reserve(data.size() + data.size() / 2);
  const char* src = data.data();
  const char* end = src + data.size();
  UChar buf[16384];
  UChar pending = 0;
  while (true) {
    UChar* target = buf;
    err = U_ZERO_ERROR;
    ucnv_toUnicode(cnv.get(), &target, buf + std::size(buf), &src, end, nullptr, true, &err);
    AppendUtf16(&out, buf, static_cast<size_t>(target - buf), &pending);
    if (err == U_BUFFER_OVERFLOW_ERROR) continue;
    if (U_FAILURE(err)) {
      return DataLoss(std::string("cannot decode ") + icu + ": " + u_errorName(err));
    }
    break;
  }
  if (pending) AppendUtf8(&out, 0xFFFD);
  return out;
}

std::string CleanName(std::string_view raw) {
  std::string s;
  if (IsValidUtf8(raw)) {
    s.assign(raw);
  } else {
    auto r = ConvertCharset(raw, "windows-31j");
    s = r.ok() ? std::move(r).value() : std::string(raw.size(), '?');
  }
  for (char& c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) c = '?';
  }
  return s;
}

Decoded DecodeText(std::string_view data, std::string* storage, std::string_view hint) {
  Decoded d;
  // 1. Byte order marks.
  if (data.size() >= 3 && data.substr(0, 3) == "\xEF\xBB\xBF") {
    std::string_view rest = data.substr(3);
    if (IsValidUtf8(rest)) {
      d.text = rest;
      d.encoding = "UTF-8";
      return d;
    }
    return Convert(rest, storage, "UTF-8", "UTF-8");
  }
  if (data.size() >= 4 && data.substr(0, 4) == std::string_view("\xFF\xFE\0\0", 4))
    return Convert(data.substr(4), storage, "UTF-32LE", "UTF-32LE");
  if (data.size() >= 4 && data.substr(0, 4) == std::string_view("\0\0\xFE\xFF", 4))
    return Convert(data.substr(4), storage, "UTF-32BE", "UTF-32BE");
  if (data.size() >= 2 && data.substr(0, 2) == "\xFF\xFE")
    return Convert(data.substr(2), storage, "UTF-16LE", "UTF-16LE");
  if (data.size() >= 2 && data.substr(0, 2) == "\xFE\xFF")
    return Convert(data.substr(2), storage, "UTF-16BE", "UTF-16BE");

  std::string_view sample = data.substr(0, kSniffBytes);
  // 2. NULs: BOM-less UTF-16, or binary.
  if (sample.find('\0') != std::string_view::npos) {
    std::string_view u16 = Utf16ByNulPattern(sample);
    if (!u16.empty()) return Convert(data, storage, u16, std::string(u16));
  }
  if (LooksBinary(data)) {
    d.binary = true;
    d.encoding = "binary";
    return d;
  }
  // 3. A declared charset, if it decodes cleanly.
  if (!hint.empty()) {
    if (IsUtf8Name(hint) && IsValidUtf8(data)) {
      d.text = data;
      d.encoding = "UTF-8";
      return d;
    }
    uint64_t invalid = 0;
    auto r = ConvertCharset(data, hint, &invalid);
    if (r.ok() && invalid * 100 <= data.size()) {
      *storage = std::move(r).value();
      d.text = *storage;
      d.encoding = Upper(hint);
      d.invalid = invalid;
      return d;
    }
  }
  // 4. ISO-2022-JP is 7-bit, so it must be caught before UTF-8.
  if (HasIso2022Escapes(sample)) return Convert(data, storage, "ISO-2022-JP", "ISO-2022-JP");
  // 5. Valid UTF-8 (including pure ASCII) is used in place.
  if (IsValidUtf8(data)) {
    d.text = data;
    d.encoding = "UTF-8";
    return d;
  }
  // 6. uchardet, trusted for Japanese and Unicode answers.
  std::string guess = Upper(Uchardet(data.substr(0, kSniffBytes)));
  if (guess == "UTF-8") return Convert(data, storage, "UTF-8", "UTF-8");
  if (guess == "UTF-16" || guess == "UTF-16LE")
    return Convert(data, storage, "UTF-16LE", "UTF-16LE");
  if (guess == "UTF-16BE") return Convert(data, storage, "UTF-16BE", "UTF-16BE");
  if (IsJapaneseCharset(guess))
    return Convert(data, storage, guess, guess == "CP932" ? "SHIFT_JIS" : guess);
  // 7. Japanese-aware fallback: score CP932 and EUC-JP on the sample.
  std::string_view jsample = data.substr(0, kSniffBytes);
  uint64_t inv_sjis = 0, inv_euc = 0;
  auto sjis = ConvertCharset(jsample, "windows-31j", &inv_sjis);
  auto euc = ConvertCharset(jsample, "EUC-JP", &inv_euc);
  Score s1 = sjis.ok() ? ScoreUtf8(*sjis, inv_sjis) : Score{~0ull};
  Score s2 = euc.ok() ? ScoreUtf8(*euc, inv_euc) : Score{~0ull};
  auto better = [](const Score& a, const Score& b) {
    if (a.invalid != b.invalid) return a.invalid < b.invalid;
    return a.japanese > b.japanese;
  };
  const Score& best = better(s2, s1) ? s2 : s1;
  const char* best_name = better(s2, s1) ? "EUC-JP" : "windows-31j";
  const char* best_report = better(s2, s1) ? "EUC-JP" : "SHIFT_JIS";
  bool japanese = best.invalid * 200 <= best.non_ascii && best.japanese * 2 >= best.non_ascii;
  if (japanese || guess.empty() || guess == "ASCII")
    return Convert(data, storage, best_name, best_report);
  // Something else uchardet is confident about (e.g. WINDOWS-1252).
  return Convert(data, storage, guess, guess);
}

}  // namespace mamori::extract::internal
