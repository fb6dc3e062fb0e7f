#include <gtest/gtest.h>

#include "extract/extract.h"
#include "extract/internal.h"
#include "extract/test_util.h"

namespace mamori::extract {
namespace {

using testing::Dump;
using testing::Find;
using testing::Units;

// ISO-2022-JP "山田様へのご連絡" as an RFC 2047 B word, split in two words.
const char* kMail =
    "From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.co.jp>\r\n"
    "To: =?UTF-8?Q?=E4=BD=90=E8=97=A4?= <sato@example.jp>\r\n"
    "Subject: =?ISO-2022-JP?B?GyRCOzNFRE1NJFgkThsoQg==?=\r\n"
    " =?ISO-2022-JP?B?GyRCJDRPIk1tGyhC?=\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
    "Content-Transfer-Encoding: 7bit\r\n"
    "\r\n"
    "\x1b$B;3EDB@O:\x1b(B 090-1234-5678\r\n"
    "--inner\r\n"
    "Content-Type: text/html; charset=UTF-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<p>=E5=B1=B1=E7=94=B0=E5=A4=AA=E9=83=8E &amp; co</p>=\r\n"
    "<p>next</p>\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: text/csv; charset=Shift_JIS\r\n"
    "Content-Disposition: attachment;\r\n"
    " filename*=UTF-8''%E9%A1%A7%E5%AE%A2%E4%B8%80%E8%A6%A7.csv\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "joGWvCyTZJhilNSNhgqOUpNjkb6YWSwwOTAtMTIzNC01Njc4Cg==\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: inner mail\r\n"
    "From: a@example.jp\r\n"
    "\r\n"
    "inner body\r\n"
    "--outer--\r\n";

TEST(ExtractMime, EveryPartCharsetsAndNames) {
  auto units = Units("mail.eml", kMail);
  const auto* h = Find(units, "mail.eml!headers");
  ASSERT_NE(h, nullptr) << Dump(units);
  EXPECT_EQ(h->format, "eml-headers");
  EXPECT_EQ(h->text,
            "From: 山田 <yamada@example.co.jp>\nTo: 佐藤 <sato@example.jp>\n"
            "Subject: 山田様へのご連絡\n");
  const auto* plain = Find(units, "mail.eml!part1.1");
  ASSERT_NE(plain, nullptr) << Dump(units);
  EXPECT_EQ(plain->text, "山田太郎 090-1234-5678");
  EXPECT_EQ(plain->encoding, "ISO-2022-JP");
  const auto* html = Find(units, "mail.eml!part1.2");
  ASSERT_NE(html, nullptr) << Dump(units);
  EXPECT_EQ(html->format, "html");
  EXPECT_EQ(html->text, "山田太郎 & co\nnext\n");
  const auto* csv = Find(units, "mail.eml!顧客一覧.csv");
  ASSERT_NE(csv, nullptr) << Dump(units);
  EXPECT_EQ(csv->format, "csv");
  EXPECT_EQ(csv->encoding, "SHIFT_JIS");
  EXPECT_EQ(csv->text, "氏名,電話番号\n山田太郎,090-1234-5678\n");
  ASSERT_NE(Find(units, "mail.eml!part3.eml!headers"), nullptr) << Dump(units);
  const auto* inner = Find(units, "mail.eml!part3.eml!body");
  ASSERT_NE(inner, nullptr) << Dump(units);
  EXPECT_EQ(inner->text, "inner body");  // the last CRLF belongs to the delimiter
}

TEST(ExtractMime, CsvAttachmentInMailInZip) {
  std::string zip = testing::MakeZip({{"archive/mail.eml", kMail}});
  auto units = Units("box.zip", zip);
  ASSERT_NE(Find(units, "box.zip!archive/mail.eml!顧客一覧.csv"), nullptr) << Dump(units);
}

TEST(ExtractMime, Rfc2231ContinuationsAndRfc2047QuotedName) {
  std::string mail =
      "From: a@example.jp\nSubject: x\nContent-Type: multipart/mixed; boundary=b\n\n"
      "--b\nContent-Type: text/plain\nContent-Disposition: attachment;\n"
      " filename*0*=ISO-2022-JP''%1B%24B%3B3ED;\n filename*1*=%1B%28B.txt\n\nabc\n"
      "--b\nContent-Type: text/plain; name=\"=?UTF-8?B?5L2P5omA6YyyLnR4dA==?=\"\n\ndef\n--b--\n";
  auto units = Units("m.eml", mail);
  ASSERT_NE(Find(units, "m.eml!山田.txt"), nullptr) << Dump(units);
  ASSERT_NE(Find(units, "m.eml!住所録.txt"), nullptr) << Dump(units);
}

TEST(ExtractMime, DeepMultipartNestingIsBounded) {
  std::string mail = "From: a@example.jp\nTo: b@example.jp\n";
  std::string tail;
  for (int i = 0; i < 200; ++i) {
    mail += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\n\n--b" +
            std::to_string(i) + "\n";
  }
  mail += "Content-Type: text/plain\n\nx\n";
  auto units = Units("deep.eml", mail);
  bool error = false;
  for (const auto& u : units) error |= u.error.code() == StatusCode::kResourceExhausted;
  EXPECT_TRUE(error) << Dump(units);
}

}  // namespace
}  // namespace mamori::extract

namespace mamori::extract {
// The four-at-a-time path and the bit-by-bit path must agree wherever line
// breaks and junk fall.
TEST(Mime, Base64DecodeRoundTripsAcrossLineBreaksAndJunk) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245u + 12345u; };
  for (int round = 0; round < 300; ++round) {
    std::string raw(next() % 200, '\0');
    for (char& c : raw) c = static_cast<char>(next() >> 16);
    std::string enc;
    for (size_t i = 0; i < raw.size(); i += 3) {
      uint32_t v = 0;
      size_t n = std::min<size_t>(3, raw.size() - i);
      for (size_t k = 0; k < 3; ++k)
        v = (v << 8) | (k < n ? static_cast<unsigned char>(raw[i + k]) : 0);
      for (size_t k = 0; k < 4; ++k)
        enc.push_back(k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=');
    }
    std::string noisy;
    for (char c : enc) {
      if (next() % 7 == 0) noisy += (next() % 2) ? "\r\n" : " ";
      noisy.push_back(c);
    }
    ASSERT_EQ(internal::Base64Decode(enc), raw) << enc;
    ASSERT_EQ(internal::Base64Decode(noisy), raw) << noisy;
  }
  EXPECT_EQ(internal::Base64Decode("5bGx55Sw"), "山田");
  EXPECT_EQ(internal::Base64Decode("5bGx\r\n55Sw=="), "山田");
}
}  // namespace mamori::extract
