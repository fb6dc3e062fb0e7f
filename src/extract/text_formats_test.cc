#include <gtest/gtest.h>

#include "extract/extract.h"
#include "extract/test_util.h"

namespace mamori::extract {
namespace {

using testing::Dump;
using testing::Find;
using testing::Units;

TEST(ExtractText, CsvQuotedNewlinesAndDelimitersKeepRecordsOnOneLine) {
  std::string csv = "氏名,住所,電話\n\"山田 太郎\",\"東京都千代田区1-1\n2F, 受付\",090-1234-5678\n";
  auto units = Units("c.csv", csv);
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].format, "csv");
  EXPECT_EQ(units[0].delimiter, ',');
  EXPECT_EQ(units[0].text,
            "氏名,住所,電話\n\"山田 太郎\",\"東京都千代田区1-1 2F  受付\",090-1234-5678\n");
  EXPECT_EQ(units[0].text.size(), csv.size());
}

TEST(ExtractText, CsvUnterminatedQuoteIsLeftAlone) {
  std::string csv = "a,b\n\"open,x\ny,z\n";
  auto units = Units("c.csv", csv);
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].text, csv);
}

TEST(ExtractText, TsvByExtensionAndByContent) {
  auto units = Units("t.tsv", "a\tb\n1\t2\n");
  EXPECT_EQ(units[0].format, "tsv");
  EXPECT_EQ(units[0].delimiter, '\t');
  units = Units("export.txt", "氏名\t電話\n山田\t090\n佐藤\t080\n");
  EXPECT_EQ(units[0].format, "tsv");
  units = Units("semi.csv", "氏名;電話\n山田;090\n");
  EXPECT_EQ(units[0].delimiter, ';');
  units = Units("prose.txt", "これは普通の文章です。\n二行目。\n");
  EXPECT_EQ(units[0].format, "text");
  EXPECT_EQ(units[0].delimiter, 0);
}

TEST(ExtractText, JsonKeyPaths) {
  std::string json =
      R"({"customers":[{"name":"山田","phone":"090-1234-5678"},{"name":"佐藤","my_number":123456789018,"tags":["a\nb"]}],"ok":true})";
  auto units = Units("c.json", json);
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].format, "json");
  EXPECT_EQ(units[0].text,
            "customers[0].name: 山田\ncustomers[0].phone: 090-1234-5678\ncustomers[1].name: "
            "佐藤\ncustomers[1].my_number: 123456789018\ncustomers[1].tags[0]: a b\n");
}

TEST(ExtractText, JsonLinesAndInvalidJson) {
  auto units = Units("log.jsonl", "{\"email\":\"a@example.jp\"}\n{\"email\":\"b@example.jp\"}\n");
  EXPECT_EQ(units[0].text, "[0].email: a@example.jp\n[1].email: b@example.jp\n");
  units = Units("bad.json", "{\"a\": 090-1234");
  EXPECT_EQ(units[0].format, "text");
  EXPECT_EQ(units[0].text, "{\"a\": 090-1234");
}

TEST(ExtractText, JsonTooDeepFallsBackToText) {
  std::string deep(1000, '[');
  auto units = Units("d.json", deep);
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].format, "text");
}

TEST(ExtractText, HtmlStripsScriptsDecodesEntitiesAndSplitsHeaderTables) {
  std::string html =
      "<!DOCTYPE html><html><head><title>顧客</title><style>p{}</style>"
      "<script>var x = '<p>no</p>';</script></head><body><p>お客様&nbsp;各位 &amp; "
      "&#x5C71;&#30000;</p><!-- 090-0000-0000 -->"
      "<table><tr><th>氏名</th><th>電話</th></tr><tr><td>山田</td><td>090-1234-5678</td></tr>"
      "</table><table><tr><td>layout</td><td>cell</td></tr></table><div>end</div></body></html>";
  auto units = Units("page.html", html);
  ASSERT_EQ(units.size(), 2u) << Dump(units);
  EXPECT_EQ(units[0].format, "html");
  EXPECT_EQ(units[0].text, "顧客\nお客様 各位 & 山田\nlayout\tcell\nend\n");
  EXPECT_EQ(units[1].path, "page.html!table1");
  EXPECT_EQ(units[1].delimiter, '\t');
  EXPECT_EQ(units[1].text, "氏名\t電話\n山田\t090-1234-5678\n");
}

TEST(ExtractText, ImagesAndLegacyOfficeAreReported) {
  auto units = Units("p.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].format, "image");
  EXPECT_TRUE(units[0].error.ok());
  units =
      Units("old.xls", std::string("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8) + std::string(600, '\0'));
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].error.code(), StatusCode::kUnimplemented);
}

TEST(ExtractText, MagicBeatsExtension) {
  std::string zip = testing::MakeZip({{"x.txt", "inside"}});
  auto units = Units("report.csv", zip);
  ASSERT_NE(Find(units, "report.csv!x.txt"), nullptr) << Dump(units);
}

TEST(ExtractText, EmptyInputIsAnEmptyUnit) {
  auto units = Units("empty.txt", "");
  ASSERT_EQ(units.size(), 1u);
  EXPECT_TRUE(units[0].error.ok());
  EXPECT_TRUE(units[0].text.empty());
}

}  // namespace
}  // namespace mamori::extract

namespace mamori::extract {
namespace {

// Regression guards for quadratic scans on malformed input: each of these
// would run for hours if a scan restarted from every position.
TEST(ExtractText, MalformedInputStaysLinear) {
  auto units = testing::Units("amp.html", std::string(2 << 20, '&'));
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].text.size(), (2u << 20) + 1);  // and the final line break
  std::string header = "From: a@example.jp\nSubject: ";
  for (int i = 0; i < 200000; ++i) header += "=?a";
  header += "\n\nbody\n";
  units = testing::Units("m.eml", header);
  ASSERT_NE(testing::Find(units, "m.eml!body"), nullptr) << testing::Dump(units);
}

}  // namespace
}  // namespace mamori::extract
