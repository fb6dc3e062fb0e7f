// Extracts every sample document in examples/ through ExtractFile and checks
// paths, formats, encodings and cell locations. No sample may yield an error
// unit: `make up` scans them and must not report them incomplete.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "extract/extract.h"

namespace mamori::extract {
namespace {

struct Seen {
  std::string format, encoding, text;
  char delimiter = 0;
  std::function<std::string(uint64_t, int32_t)> locate;
  std::string path;
};

std::map<std::string, Seen> ExtractExamples() {
  std::map<std::string, Seen> out;
  std::string dir = std::string(MAMORI_SOURCE_DIR) + "/examples";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().filename().string()[0] == '.') continue;
    std::string name = entry.path().filename().string();
    Status s = ExtractFile(entry.path().string(), Budgets(), [&](const Unit& u, const Status& e) {
      EXPECT_TRUE(e.ok()) << u.path << ": " << e.ToString();
      std::string rel = u.path.substr(dir.size() + 1);
      out[rel] = {u.format, u.encoding, std::string(u.text), u.field_delimiter, u.locate, u.path};
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << name;
  }
  return out;
}

TEST(ExtractExamples, AllSamplesExtractWithoutErrors) {
  auto units = ExtractExamples();
  std::string listing;
  for (const auto& [p, u] : units) listing += p + " [" + u.format + "]\n";

  ASSERT_TRUE(units.count("customers_sjis.csv")) << listing;
  const Seen& csv = units["customers_sjis.csv"];
  EXPECT_EQ(csv.format, "csv");
  EXPECT_EQ(csv.encoding, "SHIFT_JIS");
  EXPECT_EQ(csv.delimiter, ',');
  EXPECT_EQ(csv.text.rfind("顧客番号,氏名,フリガナ", 0), 0u);
  EXPECT_NE(csv.text.find("髙橋 美咲"), std::string::npos);  // an IBM extension in CP932

  ASSERT_TRUE(units.count("employee_master.xlsx!社員名簿")) << listing;
  const Seen& sheet = units["employee_master.xlsx!社員名簿"];
  EXPECT_EQ(sheet.delimiter, '\t');
  ASSERT_TRUE(sheet.locate);
  // Line 2 is the first employee (row 3); field 5 is column F (個人番号).
  EXPECT_EQ(sheet.locate(2, 5), "社員名簿!F3");
  EXPECT_NE(sheet.text.find("\t1980/05/12\t"), std::string::npos);  // a date-styled serial
  EXPECT_EQ(sheet.locate(4, 1), "社員名簿!B7");
  Unit u;
  u.path = sheet.path;
  u.locate = sheet.locate;
  EXPECT_NE(LocationPath(u, 2, 5).find("employee_master.xlsx!社員名簿!F3"), std::string::npos);

  ASSERT_TRUE(units.count("letter.docx")) << listing;
  EXPECT_NE(units["letter.docx"].text.find("090-1234-5678"), std::string::npos);

  ASSERT_TRUE(units.count("mail_with_attachment.eml!headers")) << listing;
  EXPECT_NE(units["mail_with_attachment.eml!headers"].text.find("Subject: 顧客リスト送付の件"),
            std::string::npos);
  ASSERT_TRUE(units.count("mail_with_attachment.eml!顧客リスト.csv")) << listing;
  EXPECT_EQ(units["mail_with_attachment.eml!顧客リスト.csv"].encoding, "SHIFT_JIS");

  ASSERT_TRUE(units.count("bundle.zip!顧客/customers_sjis.csv")) << listing;
  ASSERT_TRUE(units.count("bundle.zip!人事/employee_master.xlsx!社員名簿")) << listing;
  ASSERT_TRUE(units.count("bundle.zip!mail/mail_with_attachment.eml!顧客リスト.csv")) << listing;

  ASSERT_TRUE(units.count("clean_memo.txt")) << listing;
  ASSERT_TRUE(units.count("sales_report.pptx!slide1")) << listing;
}

}  // namespace
}  // namespace mamori::extract
