#include <gtest/gtest.h>

#include "extract/extract.h"
#include "extract/test_util.h"

namespace mamori::extract {
namespace {

using testing::Dump;
using testing::Find;
using testing::Units;

const char* kSheetNs = R"(xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main")";

std::string SheetXml(const std::string& rows) {
  return std::string("<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet ") + kSheetNs +
         "><sheetData>" + rows + "</sheetData></worksheet>";
}

TEST(ExtractOoxml, XlsxSheetsAsTsvWithRealCellLocations) {
  std::string ss =
      std::string("<sst ") + kSheetNs +
      R"( count="4"><si><t>氏名</t></si><si><t>個人番号</t></si>)"
      R"(<si><r><t>山田</t></r><r><t>太郎</t></r><rPh sb="0" eb="2"><t>ヤマダ</t></rPh></si>)"
      R"(<si><t>備考</t></si></sst>)";
  // Header in row 2 starting at column B; a data row at 7 with a gap in C.
  std::string employees = SheetXml(
      R"(<row r="2"><c r="B2" t="s"><v>0</v></c><c r="C2" t="s"><v>1</v></c><c r="D2" t="s"><v>3</v></c></row>)"
      R"(<row r="7"><c r="B7" t="s"><v>2</v></c><c r="D7" t="inlineStr"><is><t>要確認</t></is></c>)"
      R"(<c r="C7"><v>123456789018</v></c></row>)");
  std::string other = SheetXml(R"(<row r="1"><c r="A1" t="str"><v>clean</v></c></row>)");
  std::string xlsx = testing::MakeXlsx({{"社員名簿", employees}, {"Other", other}}, ss);
  auto units = Units("book.xlsx", xlsx);
  const auto* s1 = Find(units, "book.xlsx!社員名簿");
  ASSERT_NE(s1, nullptr) << Dump(units);
  EXPECT_EQ(s1->format, "xlsx");
  EXPECT_EQ(s1->delimiter, '\t');
  EXPECT_EQ(s1->text, "\t氏名\t個人番号\t備考\n\t山田太郎\t123456789018\t要確認\n");
  ASSERT_TRUE(s1->locate);
  EXPECT_EQ(s1->locate(2, 2), "社員名簿!C7");
  EXPECT_EQ(s1->locate(1, 1), "社員名簿!B2");
  Unit u;
  u.path = s1->path;
  u.locate = s1->locate;
  EXPECT_EQ(LocationPath(u, 2, 2), "book.xlsx!社員名簿!C7");
  const auto* s2 = Find(units, "book.xlsx!Other");
  ASSERT_NE(s2, nullptr) << Dump(units);
  EXPECT_EQ(s2->text, "clean\n");
  EXPECT_EQ(units.size(), 2u) << Dump(units);
}

TEST(ExtractOoxml, XlsxInsideZipKeepsThePath) {
  std::string xlsx = testing::MakeXlsx(
      {{"Sheet1", SheetXml(R"(<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>)")}},
      "");
  auto units = Units("o.zip", testing::MakeZip({{"hr/book.xlsx", xlsx}}));
  ASSERT_NE(Find(units, "o.zip!hr/book.xlsx!Sheet1"), nullptr) << Dump(units);
}

TEST(ExtractOoxml, DocxParagraphsHeadersAndTables) {
  std::string w = R"(xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main")";
  std::string doc = "<?xml version=\"1.0\"?><w:document " + w +
                    "><w:body><w:p><w:r><w:t>拝啓</w:t></w:r><w:r><w:t xml:space=\"preserve\"> "
                    "山田様</w:t></w:r></w:p><w:p><w:r><w:t>電話</w:t><w:tab/><w:t>090-1234-5678"
                    "</w:t></w:r></w:p><w:tbl><w:tr><w:tc><w:p><w:r><w:t>氏名</w:t></w:r></w:p>"
                    "</w:tc><w:tc><w:p><w:r><w:t>住所</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
                    "<w:p><w:r><w:delText>削除</w:delText></w:r></w:p></w:body></w:document>";
  std::string header = "<w:hdr " + w + "><w:p><w:r><w:t>社外秘</w:t></w:r></w:p></w:hdr>";
  auto units = Units("letter.docx", testing::MakeDocx(doc, {{"word/header1.xml", header}}));
  ASSERT_EQ(units.size(), 1u) << Dump(units);
  EXPECT_EQ(units[0].format, "docx");
  EXPECT_EQ(units[0].text, "拝啓 山田様\n電話\t090-1234-5678\n氏名\t住所\n削除\n社外秘\n");
}

TEST(ExtractOoxml, PptxSlidesInOrder) {
  std::string a = R"(xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main")";
  auto slide = [&](const std::string& t) {
    return "<p:sld xmlns:p=\"x\" " + a + "><a:p><a:r><a:t>" + t + "</a:t></a:r></a:p></p:sld>";
  };
  auto units = Units("deck.pptx", testing::MakePptx({slide("一枚目"), slide("二枚目")}));
  ASSERT_EQ(units.size(), 2u) << Dump(units);
  EXPECT_EQ(units[0].path, "deck.pptx!slide1");
  EXPECT_EQ(units[0].text, "一枚目\n");
  EXPECT_EQ(units[1].path, "deck.pptx!slide2");
}

TEST(ExtractOoxml, DtdIsRefusedAndReported) {
  std::string doc =
      "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b "
      "\"&a;&a;&a;&a;&a;&a;&a;&a;\">]><w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>&b;</w:t>"
      "</w:r></w:p></w:body></w:document>";
  auto units = Units("evil.docx", testing::MakeDocx(doc));
  ASSERT_FALSE(units.empty());
  EXPECT_FALSE(units[0].error.ok()) << Dump(units);
  EXPECT_NE(units[0].error.message().find("DTD"), std::string::npos);
}

TEST(ExtractOoxml, BrokenXmlIsAnErrorUnit) {
  auto units = Units("bad.xlsx", testing::MakeXlsx({{"S", "<worksheet><sheetData><row>"}}, ""));
  ASSERT_FALSE(units.empty());
  bool error = false;
  for (const auto& u : units) error |= !u.error.ok();
  EXPECT_TRUE(error) << Dump(units);
}

TEST(ExtractOoxml, EmbeddedWorkbookInDocxIsExtracted) {
  std::string xlsx = testing::MakeXlsx(
      {{"Sheet1",
        SheetXml(R"(<row r="3"><c r="A3" t="inlineStr"><is><t>内部</t></is></c></row>)")}},
      "");
  std::string doc =
      "<w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>本文</w:t></w:r></w:p>"
      "</w:body></w:document>";
  auto units =
      Units("r.docx", testing::MakeDocx(doc, {{"word/embeddings/Microsoft_Excel.xlsx", xlsx}}));
  const auto* e = Find(units, "r.docx!word/embeddings/Microsoft_Excel.xlsx!Sheet1");
  ASSERT_NE(e, nullptr) << Dump(units);
  EXPECT_EQ(e->text, "内部\n");
  EXPECT_EQ(e->locate(1, 0), "Sheet1!A3");
}

}  // namespace
}  // namespace mamori::extract

namespace mamori::extract {
namespace {

TEST(ExtractOoxml, SparseFarRightCellsCannotAmplifyWithoutReport) {
  // Each row holds one cell in column XFD: 45 bytes of XML render as 16 KiB.
  std::string rows;
  for (int r = 1; r <= 1100; ++r) {
    rows += "<row r=\"" + std::to_string(r) + "\"><c r=\"XFD" + std::to_string(r) +
            "\"><v>1</v></c></row>";
  }
  std::string xml = "<worksheet><sheetData>" + rows + "</sheetData></worksheet>";
  auto units = testing::Units("wide.xlsx", testing::MakeXlsx({{"S", xml}}, ""));
  bool budget_error = false;
  for (const auto& u : units) {
    budget_error |= u.error.code() == StatusCode::kResourceExhausted;
    EXPECT_LE(u.text.size(), 16u << 20);
  }
  EXPECT_TRUE(budget_error) << testing::Dump(units);
}

}  // namespace
}  // namespace mamori::extract

namespace mamori::extract {
namespace {

TEST(ExtractOoxml, DateStyledNumbersRenderAsDates) {
  std::string styles =
      R"(<styleSheet><numFmts count="1"><numFmt numFmtId="176" formatCode="[$-ja-JP]ggge&quot;年&quot;m&quot;月&quot;d&quot;日&quot;"/></numFmts>)"
      R"(<cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="176"/><xf numFmtId="3"/></cellXfs></styleSheet>)";
  std::string sheet =
      "<worksheet><sheetData><row r=\"1\"><c r=\"A1\" s=\"1\"><v>31138</v></c>"
      "<c r=\"B1\" s=\"2\"><v>31138</v></c><c r=\"C1\" s=\"3\"><v>31138</v></c>"
      "<c r=\"D1\"><v>123456789018</v></c><c r=\"E1\" s=\"1\"><v>59</v></c>"
      "<c r=\"F1\" s=\"1\"><v>61</v></c></row></sheetData></worksheet>";
  auto units =
      testing::Units("d.xlsx", testing::MakeXlsx({{"S", sheet}}, "", {{"xl/styles.xml", styles}}));
  ASSERT_EQ(units.size(), 1u) << testing::Dump(units);
  EXPECT_EQ(units[0].text, "1985/04/01\t1985/04/01\t31138\t123456789018\t1900/02/28\t1900/03/01\n");
}

}  // namespace
}  // namespace mamori::extract

namespace mamori::extract {
namespace {

TEST(ExtractOoxml, LocationPathWithBangInSheetName) {
  std::string xml =
      "<worksheet><sheetData><row r=\"4\"><c r=\"B4\" t=\"inlineStr\"><is><t>x</t></is></c>"
      "</row></sheetData></worksheet>";
  auto units = testing::Units(
      "o.zip", testing::MakeZip({{"b.xlsx", testing::MakeXlsx({{"A!B", xml}}, "")}}));
  ASSERT_EQ(units.size(), 1u) << testing::Dump(units);
  Unit u;
  u.path = units[0].path;
  u.locate = units[0].locate;
  EXPECT_EQ(u.path, "o.zip!b.xlsx!A!B");
  EXPECT_EQ(LocationPath(u, 1, 1), "o.zip!b.xlsx!A!B!B4");
  Unit plain;
  plain.path = "x.csv";
  EXPECT_EQ(LocationPath(plain, 3, 2), "x.csv");
}

}  // namespace
}  // namespace mamori::extract
