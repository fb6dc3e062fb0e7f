#include <gtest/gtest.h>
#include <hpdf.h>

#include "extract/extract.h"
#include "extract/test_util.h"

namespace mamori::extract {
namespace {

using testing::Dump;
using testing::Find;
using testing::Units;

void OnError(HPDF_STATUS, HPDF_STATUS, void*) {}

// A PDF written by libharu: one page per entry of `pages` (empty: no text).
std::string MakePdf(const std::vector<std::string>& pages, const std::string& password = "") {
  HPDF_Doc pdf = HPDF_New(OnError, nullptr);
  HPDF_Font font = HPDF_GetFont(pdf, "Helvetica", nullptr);
  for (const auto& text : pages) {
    HPDF_Page page = HPDF_AddPage(pdf);
    if (text.empty()) {
      HPDF_Page_Rectangle(page, 50, 50, 200, 200);  // a drawing, no text
      HPDF_Page_Fill(page);
      continue;
    }
    HPDF_Page_BeginText(page);
    HPDF_Page_SetFontAndSize(page, font, 12);
    HPDF_Page_TextOut(page, 50, 700, text.c_str());
    HPDF_Page_EndText(page);
  }
  if (!password.empty()) {
    HPDF_SetPassword(pdf, "owner-secret", password.c_str());
    HPDF_SetEncryptionMode(pdf, HPDF_ENCRYPT_R3, 16);
  }
  HPDF_SaveToStream(pdf);
  HPDF_ResetStream(pdf);
  std::string out;
  while (true) {
    HPDF_BYTE buf[4096];
    HPDF_UINT32 n = sizeof(buf);
    HPDF_ReadFromStream(pdf, buf, &n);
    if (n == 0) break;
    out.append(reinterpret_cast<char*>(buf), n);
  }
  HPDF_Free(pdf);
  return out;
}

TEST(ExtractPdf, TextPerPage) {
  auto units = Units("report.pdf", MakePdf({"Customer Tel 090-1234-5678", "Page two"}));
  const auto* p1 = Find(units, "report.pdf!page1");
  ASSERT_NE(p1, nullptr) << Dump(units);
  EXPECT_EQ(p1->format, "pdf");
  EXPECT_NE(p1->text.find("Customer Tel 090-1234-5678"), std::string::npos) << p1->text;
  ASSERT_NE(Find(units, "report.pdf!page2"), nullptr) << Dump(units);
}

TEST(ExtractPdf, NoTextLayerIsAnError) {
  auto units = Units("scan.pdf", MakePdf({"", ""}));
  ASSERT_EQ(units.size(), 1u) << Dump(units);
  EXPECT_EQ(units[0].path, "scan.pdf");
  EXPECT_FALSE(units[0].error.ok());
  EXPECT_NE(units[0].error.message().find("no text layer"), std::string::npos);
}

TEST(ExtractPdf, PageWithoutTextInTextPdfIsListed) {
  auto units = Units("mixed.pdf", MakePdf({"text", ""}));
  const auto* p2 = Find(units, "mixed.pdf!page2");
  ASSERT_NE(p2, nullptr) << Dump(units);
  EXPECT_EQ(p2->format, "pdf-no-text");
}

TEST(ExtractPdf, PasswordProtectedIsAnError) {
  auto units = Units("locked.pdf", MakePdf({"secret"}, "user-pass"));
  ASSERT_EQ(units.size(), 1u) << Dump(units);
  EXPECT_EQ(units[0].format, "encrypted");
  EXPECT_FALSE(units[0].error.ok());
}

TEST(ExtractPdf, GarbageAfterMagicIsAnError) {
  auto units = Units("bad.pdf", "%PDF-1.4\n garbage garbage");
  ASSERT_EQ(units.size(), 1u) << Dump(units);
  EXPECT_FALSE(units[0].error.ok());
}

}  // namespace
}  // namespace mamori::extract
