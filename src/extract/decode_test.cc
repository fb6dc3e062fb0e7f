#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "extract/extract.h"
#include "extract/internal.h"
#include "extract/test_util.h"

namespace mamori::extract {
namespace {

using testing::Units;

const std::string kUtf8Csv = "氏名,電話番号\n山田太郎,090-1234-5678\nお問い合わせは～まで";
const std::string kSjisCsv =
    "\x8e\x81\x96\xbc\x2c\x93\x64\x98\x62\x94\xd4\x8d\x86\x0a\x8e\x52\x93\x63\x91\xbe\x98\x59\x2c"
    "\x30\x39\x30\x2d\x31\x32\x33\x34\x2d\x35\x36\x37\x38\x0a\x82\xa8\x96\xe2\x82\xa2\x8d\x87\x82"
    "\xed\x82\xb9\x82\xcd\x81\x60\x82\xdc\x82\xc5";
const std::string kEucCsv =
    "\xbb\xe1\xcc\xbe\x2c\xc5\xc5\xcf\xc3\xc8\xd6\xb9\xe6\x0a\xbb\xb3\xc5\xc4\xc2\xc0\xcf\xba\x2c"
    "\x30\x39\x30\x2d\x31\x32\x33\x34\x2d\x35\x36\x37\x38\x0a\xa4\xaa\xcc\xe4\xa4\xa4\xb9\xe7\xa4"
    "\xef\xa4\xbb\xa4\xcf\xa4\xde\xa4\xc7";
const std::string kJis =
    "\x1b\x24\x42\x37\x6f\x4c\x3e\x21\x27\x3b\x33\x45\x44\x4d\x4d\x24\x58\x24\x4e\x24\x34\x4f\x22"
    "\x4d\x6d\x1b\x28\x42";

std::string Utf16(const std::string& utf8, bool big_endian) {
  // Enough for the BMP text in these tests.
  std::string out;
  for (size_t i = 0; i < utf8.size();) {
    unsigned char c = utf8[i];
    uint32_t cp;
    int n;
    if (c < 0x80) {
      cp = c;
      n = 1;
    } else if (c < 0xE0) {
      cp = ((c & 0x1F) << 6) | (utf8[i + 1] & 0x3F);
      n = 2;
    } else {
      cp = ((c & 0x0F) << 12) | ((utf8[i + 1] & 0x3F) << 6) | (utf8[i + 2] & 0x3F);
      n = 3;
    }
    i += n;
    char hi = static_cast<char>(cp >> 8), lo = static_cast<char>(cp & 0xFF);
    if (big_endian) {
      out += hi;
      out += lo;
    } else {
      out += lo;
      out += hi;
    }
  }
  return out;
}

TEST(ExtractDecode, Utf8WithAndWithoutBom) {
  std::string enc;
  auto r = DecodeToUtf8(kUtf8Csv, &enc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kUtf8Csv);
  EXPECT_EQ(enc, "UTF-8");
  r = DecodeToUtf8("\xEF\xBB\xBF" + kUtf8Csv, &enc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kUtf8Csv);
  EXPECT_EQ(enc, "UTF-8");
}

TEST(ExtractDecode, Utf16WithBom) {
  std::string enc;
  auto r = DecodeToUtf8("\xFF\xFE" + Utf16(kUtf8Csv, false), &enc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kUtf8Csv);
  EXPECT_EQ(enc, "UTF-16LE");
  r = DecodeToUtf8("\xFE\xFF" + Utf16(kUtf8Csv, true), &enc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kUtf8Csv);
  EXPECT_EQ(enc, "UTF-16BE");
}

TEST(ExtractDecode, Utf16WithoutBomByNulPattern) {
  std::string enc;
  auto r = DecodeToUtf8(Utf16(kUtf8Csv, false), &enc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kUtf8Csv);
  EXPECT_EQ(enc, "UTF-16LE");
  r = DecodeToUtf8(Utf16(kUtf8Csv, true), &enc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kUtf8Csv);
  EXPECT_EQ(enc, "UTF-16BE");
}

TEST(ExtractDecode, ShiftJisAsCp932) {
  std::string enc;
  auto r = DecodeToUtf8(kSjisCsv, &enc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kUtf8Csv);  // 0x8160 is U+FF5E FULLWIDTH TILDE, as Windows reads it
  EXPECT_EQ(enc, "SHIFT_JIS");
}

TEST(ExtractDecode, Cp932Extensions) {
  // NEC row 13 (①), IBM extensions (ⅰ at FA40, 髙 at FBFC), wave dash.
  std::string sjis = kSjisCsv + "\n\x87\x40\xfa\x40\xfb\xfc\x81\x60";
  std::string enc;
  auto r = DecodeToUtf8(sjis, &enc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(enc, "SHIFT_JIS");
  EXPECT_EQ(r->substr(r->size() - 12), "①ⅰ髙～");
}

TEST(ExtractDecode, EucJp) {
  std::string enc;
  auto r = DecodeToUtf8(kEucCsv, &enc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "氏名,電話番号\n山田太郎,090-1234-5678\nお問い合わせはまで");
  EXPECT_EQ(enc, "EUC-JP");
}

TEST(ExtractDecode, Iso2022Jp) {
  std::string enc;
  auto r = DecodeToUtf8(kJis, &enc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "件名：山田様へのご連絡");
  EXPECT_EQ(enc, "ISO-2022-JP");
}

TEST(ExtractDecode, ShortKanjiOnlyShiftJis) {
  std::string enc;
  auto r = DecodeToUtf8("\x8e\x81\x96\xbc\x2c\x8f\x5a\x8f\x8a\n", &enc);  // 氏名,住所
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "氏名,住所\n");
  EXPECT_EQ(enc, "SHIFT_JIS");
}

TEST(ExtractDecode, InvalidSequencesBecomeReplacementAndContinue) {
  // A lead byte followed by a newline in the middle of Shift_JIS text.
  std::string bad = kSjisCsv.substr(0, 14) + "\x82\n" + kSjisCsv.substr(14);
  std::string enc;
  auto r = DecodeToUtf8(bad, &enc);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(enc, "SHIFT_JIS");
  EXPECT_NE(r->find("\xEF\xBF\xBD"), std::string::npos);            // U+FFFD
  EXPECT_NE(r->find("山田太郎,090-1234-5678"), std::string::npos);  // decoding went on
}

TEST(ExtractDecode, BinaryIsNotText) {
  std::string bin("\x01\x02\x00\x00\x7f\x00\x10\x00\x00\x00\xff\xfe\x03\x00\x00\x00", 16);
  for (int i = 0; i < 6; ++i) bin += bin;
  std::string enc;
  auto r = DecodeToUtf8(bin, &enc);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(enc, "binary");
  auto units = Units("blob.dat", bin);
  ASSERT_EQ(units.size(), 1u) << testing::Dump(units);
  EXPECT_EQ(units[0].format, "binary");
  EXPECT_TRUE(units[0].error.ok());
  EXPECT_TRUE(units[0].text.empty());
}

TEST(ExtractDecode, ExtractBufferReportsEncodingAndCsv) {
  auto units = Units("customers.csv", kSjisCsv);
  ASSERT_EQ(units.size(), 1u) << testing::Dump(units);
  EXPECT_EQ(units[0].path, "customers.csv");
  EXPECT_EQ(units[0].format, "csv");
  EXPECT_EQ(units[0].encoding, "SHIFT_JIS");
  EXPECT_EQ(units[0].delimiter, ',');
  EXPECT_EQ(units[0].text, kUtf8Csv);
}

TEST(ExtractDecode, ExtractFileMapsAndStripsBom) {
  std::string path = ::testing::TempDir() + "/extract_bom.txt";
  {
    std::ofstream f(path, std::ios::binary);
    f << "\xEF\xBB\xBF"
      << "山田太郎\n";
  }
  std::vector<std::string> texts;
  Status s = ExtractFile(path, Budgets(), [&](const Unit& u, const Status& e) {
    EXPECT_TRUE(e.ok()) << e.ToString();
    EXPECT_EQ(u.encoding, "UTF-8");
    texts.emplace_back(u.text);
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok());
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(texts[0], "山田太郎\n");
  std::remove(path.c_str());
}

TEST(ExtractDecode, ExtractFileMissingIsAnErrorUnit) {
  std::vector<Status> errors;
  Status s =
      ExtractFile("/nonexistent/mamori/x.csv", Budgets(), [&](const Unit& u, const Status& e) {
        errors.push_back(e);
        return Status::Ok();
      });
  EXPECT_TRUE(s.ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code(), StatusCode::kNotFound);
}

TEST(ExtractDecode, VisitorStopIsReturned) {
  Status s = ExtractBuffer("a.txt", "hello", Budgets(),
                           [](const Unit&, const Status&) { return Internal("stop here"); });
  EXPECT_EQ(s.code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace mamori::extract

// IsValidUtf8 has a fast path for three-byte sequences; it must agree with a
// plain RFC 3629 decoder on every lead byte with every pair of next bytes.
namespace {
bool ReferenceUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    int n = c < 0x80             ? 0
            : (c & 0xE0) == 0xC0 ? 1
            : (c & 0xF0) == 0xE0 ? 2
            : (c & 0xF8) == 0xF0 ? 3
                                 : -1;
    if (n < 0 || i + n >= s.size()) return false;
    uint32_t cp = n == 0 ? c : c & (0x3F >> n);
    for (int k = 1; k <= n; ++k) {
      unsigned char d = s[i + k];
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}
}  // namespace

namespace mamori::extract {
TEST(Decode, IsValidUtf8AgreesWithReferenceDecoder) {
  // Prefixes put the sequence at different offsets of a 16-byte block, so the
  // vector path meets it inside a block, across two blocks and in the tail.
  // 29 and 30 do the same for the 32-byte AVX2 blocks.
  const std::string prefixes[] = {"ab",
                                  std::string(13, 'a'),
                                  std::string(14, 'a'),
                                  std::string(29, 'a'),
                                  std::string(30, 'a'),
                                  "あいうえおか",
                                  "あいうえおかきくけこ"};
  const std::string suffixes[] = {"", "x", "\x80", "漢字漢字漢字テキスト", std::string(40, 'z')};
  int checked = 0;
  for (int a = 0x80; a < 0x100; ++a) {
    for (int b = 0x70; b < 0xD0; b += 3) {
      for (int c = 0x70; c < 0xD0; c += 5) {
        for (const auto& prefix : prefixes) {
          for (const auto& suffix : suffixes) {
            std::string s = prefix;
            s.push_back(static_cast<char>(a));
            s.push_back(static_cast<char>(b));
            s.push_back(static_cast<char>(c));
            s += suffix;
            bool want = ReferenceUtf8(s);
            for (int level : {0, 1, 2})
              ASSERT_EQ(internal::IsValidUtf8Using(s, level), want)
                  << std::hex << a << " " << b << " " << c << " after " << prefix.size()
                  << " bytes, implementation " << level;
            ++checked;
          }
          // Truncated at every length: a sequence cut by the end is invalid.
          std::string s =
              prefix + static_cast<char>(a) + static_cast<char>(b) + static_cast<char>(c);
          for (size_t cut = 1; cut < s.size(); ++cut)
            for (int level : {0, 1, 2})
              ASSERT_EQ(internal::IsValidUtf8Using(std::string_view(s).substr(0, cut), level),
                        ReferenceUtf8(std::string_view(s).substr(0, cut)));
        }
      }
    }
  }
  EXPECT_GT(checked, 100000);
  EXPECT_TRUE(internal::IsValidUtf8("個人番号１２３４"));
  EXPECT_TRUE(internal::IsValidUtf8(std::string(1000, 'a') + "😀" + std::string(100, 'b')));
  EXPECT_FALSE(internal::IsValidUtf8("\xED\xA0\x80"));                               // a surrogate
  EXPECT_FALSE(internal::IsValidUtf8("\xE0\x80\xAF"));                               // overlong
  EXPECT_FALSE(internal::IsValidUtf8(std::string(2000, 'a') + "\xF5\x80\x80\x80"));  // > U+10FFFF
}
}  // namespace mamori::extract

namespace mamori::extract {
TEST(Decode, NeedsDecodingTellsUtf8FromEverythingElse) {
  EXPECT_FALSE(NeedsDecoding("氏名,電話番号\n山田太郎,090-1234-5678\n"));
  EXPECT_FALSE(NeedsDecoding("plain ascii"));
  EXPECT_FALSE(NeedsDecoding(""));
  std::string cut = "氏名";                       // E6 B0 8F E5 90 8D
  EXPECT_FALSE(NeedsDecoding(cut.substr(0, 4)));  // a sequence cut by the end of the head
  EXPECT_FALSE(NeedsDecoding(cut.substr(0, 5)));
  EXPECT_TRUE(NeedsDecoding("\x8e\x81\x96\xbc,abc"));              // Shift_JIS 氏名
  EXPECT_TRUE(NeedsDecoding("abc,\xbb\xe1\xcc\xbe,def"));          // EUC-JP 氏名
  EXPECT_TRUE(NeedsDecoding(std::string("\xFF\xFE\x0f\x6c", 4)));  // UTF-16LE with BOM
  EXPECT_TRUE(NeedsDecoding(std::string("a\0b\0", 4)));            // UTF-16 without BOM
  EXPECT_TRUE(NeedsDecoding("\x1b$B;aL>\x1b(B"));                  // ISO-2022-JP
}
}  // namespace mamori::extract
