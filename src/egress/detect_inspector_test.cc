// The production inspector against the real detection engine.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "egress/inspector.h"

namespace mamori::egress {
namespace {

std::string MyNumber(std::mt19937& rng) {
  int d[11];
  for (int& x : d) x = static_cast<int>(rng() % 10);
  int sum = 0;
  for (int n = 1; n <= 11; ++n) sum += d[11 - n] * (n <= 6 ? n + 1 : n - 5);
  int r = sum % 11;
  std::string out;
  for (int x : d) out.push_back(static_cast<char>('0' + x));
  out.push_back(static_cast<char>('0' + (r <= 1 ? 0 : 11 - r)));
  return out;
}

TEST(EgressDetectInspector, FindsMyNumbersFedInTinyPieces) {
  auto factory = NewDetectInspectorFactory(HashKey());
  ASSERT_TRUE(factory.ok()) << factory.status().ToString();
  std::mt19937 rng(7);
  std::string csv = "氏名,マイナンバー,電話番号\n";
  for (int i = 0; i < 20; ++i) {
    csv += "顧客" + std::to_string(i) + "," + MyNumber(rng) + ",03-1234-" +
           std::to_string(5000 + i) + "\n";
  }
  for (size_t step : {size_t{1}, size_t{7}, size_t{1} << 20}) {
    auto ins = (*factory)->New("medium", 1 << 30);
    ASSERT_TRUE(ins.ok());
    ASSERT_TRUE((*ins)->BeginUnit("form:file file=list.csv").ok());
    for (size_t i = 0; i < csv.size(); i += step) {
      ASSERT_TRUE((*ins)->Text(std::string_view(csv).substr(i, step)).ok());
    }
    ASSERT_TRUE((*ins)->EndUnit().ok());
    auto s = (*ins)->Finish();
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->types["jp.my_number"], 20u) << step;
    EXPECT_GE(s->individuals, 10u) << step;
    EXPECT_EQ(s->bytes, csv.size());
  }
  // Clean text: nothing found.
  auto ins = (*factory)->New("medium", 1 << 30);
  ASSERT_TRUE(ins.ok());
  ASSERT_TRUE((*ins)->Text("hello world, nothing to see here\n").ok());
  auto s = (*ins)->Finish();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->types.empty());
}

// A zip of one member, written with libarchive.
std::string Zip(const std::string& member, const std::string& content, bool encrypt = false) {
  std::string out(content.size() + 4096, '\0');
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  if (encrypt) {
    archive_write_set_options(a, "zip:encryption=zipcrypt");
    archive_write_set_passphrase(a, "secret");
  }
  archive_write_open_memory(a, out.data(), out.size(), &used);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, member.c_str());
  archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_write_header(a, e);
  archive_write_data(a, content.data(), content.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

// Raw bytes of a zip hide what is inside: the member must be extracted.
TEST(EgressDetectInspector, ExtractsZipUploads) {
  auto factory = NewDetectInspectorFactory(HashKey());
  ASSERT_TRUE(factory.ok()) << factory.status().ToString();
  std::mt19937 rng(11);
  std::string csv = "氏名,個人番号\n";
  for (int i = 0; i < 30; ++i) csv += "顧客" + std::to_string(i) + "," + MyNumber(rng) + "\n";
  std::string zip = Zip("customers.csv", csv);
  for (size_t step : {size_t{3}, size_t{4096}}) {
    auto ins = (*factory)->New("medium", 1 << 30);
    ASSERT_TRUE(ins.ok());
    ASSERT_TRUE((*ins)->BeginUnit("form:file file=export.zip").ok());
    for (size_t i = 0; i < zip.size(); i += step)
      ASSERT_TRUE((*ins)->Text(std::string_view(zip).substr(i, step)).ok());
    auto s = (*ins)->Finish();
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->types["jp.my_number"], 30u) << step;
  }
  // An encrypted member cannot be inspected: an error, so policy fails closed.
  auto ins = (*factory)->New("medium", 1 << 30);
  ASSERT_TRUE(ins.ok());
  ASSERT_TRUE((*ins)->BeginUnit("form:file file=secret.zip").ok());
  ASSERT_TRUE((*ins)->Text(Zip("customers.csv", csv, /*encrypt=*/true)).ok());
  EXPECT_FALSE((*ins)->Finish().ok());
  // Over the budget: an error, not a silent pass.
  auto small = (*factory)->New("medium", 64);
  ASSERT_TRUE(small.ok());
  ASSERT_TRUE((*small)->BeginUnit("form:file file=export.zip").ok());
  EXPECT_FALSE((*small)->Text(zip).ok());
}

// An image (a photo of a card, a scanned form) has no text: the summary
// counts it as not inspected instead of passing it as clean, whether it is
// uploaded as it is or inside a zip.
TEST(EgressDetectInspector, ImagesAreCountedAsNotInspected) {
  auto factory = NewDetectInspectorFactory(HashKey());
  ASSERT_TRUE(factory.ok()) << factory.status().ToString();
  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0", 33);
  const std::string jpeg("\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xFF\xD9", 22);
  struct Case {
    const char* unit;
    std::string body;
  };
  for (const Case& c : {Case{"form:file file=card.png", png}, Case{"form:file file=card.jpg", jpeg},
                        Case{"form:file file=cards.zip", Zip("scan/card.jpg", jpeg)}}) {
    auto ins = (*factory)->New("medium", 1 << 30);
    ASSERT_TRUE(ins.ok());
    ASSERT_TRUE((*ins)->BeginUnit(c.unit).ok());
    ASSERT_TRUE((*ins)->Text(c.body).ok());
    ASSERT_TRUE((*ins)->BeginUnit("form:field comment").ok());
    ASSERT_TRUE((*ins)->Text("see the attached card").ok());
    auto s = (*ins)->Finish();
    ASSERT_TRUE(s.ok()) << c.unit << ": " << s.status().ToString();
    EXPECT_EQ(s->not_inspected, 1u) << c.unit;
    ASSERT_EQ(s->not_inspected_parts.size(), 1u) << c.unit;
    EXPECT_NE(s->not_inspected_parts[0].find("(image)"), std::string::npos)
        << s->not_inspected_parts[0];
    // A file name can name a person: it reaches the audit record masked.
    EXPECT_EQ(s->not_inspected_parts[0].find("card"), std::string::npos)
        << s->not_inspected_parts[0];
  }
  // Text is not counted.
  auto ins = (*factory)->New("medium", 1 << 30);
  ASSERT_TRUE(ins.ok());
  ASSERT_TRUE((*ins)->BeginUnit("form:file file=notes.txt").ok());
  ASSERT_TRUE((*ins)->Text("meeting notes, nothing personal").ok());
  auto s = (*ins)->Finish();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->not_inspected, 0u);
}

// A Shift_JIS CSV (Excel's default in Japan) is decoded before it is scanned,
// so a name column and its My Numbers count as people; the same bytes scanned
// raw would show digits only.
TEST(EgressDetectInspector, DecodesShiftJisUploadsBeforeScanning) {
  auto factory = NewDetectInspectorFactory(HashKey());
  ASSERT_TRUE(factory.ok()) << factory.status().ToString();
  std::ifstream in(std::string(MAMORI_SOURCE_DIR) + "/examples/customers_sjis.csv",
                   std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string sjis = ss.str();
  ASSERT_GT(sjis.size(), 100u);
  for (size_t step : {size_t{5}, size_t{1} << 20}) {
    auto ins = (*factory)->New("medium", 1 << 30);
    ASSERT_TRUE(ins.ok());
    ASSERT_TRUE((*ins)->BeginUnit("form:file file=customers.csv").ok());
    for (size_t i = 0; i < sjis.size(); i += step)
      ASSERT_TRUE((*ins)->Text(std::string_view(sjis).substr(i, step)).ok());
    auto s = (*ins)->Finish();
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_GT(s->types["jp.person_name"], 0u) << step;
    EXPECT_EQ(s->types["jp.my_number"], 5u) << step;
    EXPECT_EQ(s->individuals, 5u) << step;
  }
}

// Containers wait whole for extraction; the shared memory budget decides
// whether they wait in memory, in a temp file, or are refused.
TEST(EgressDetectInspector, ContainerOverTheMemoryBudgetGoesToDiskOrFails) {
  auto factory = NewDetectInspectorFactory(HashKey());
  ASSERT_TRUE(factory.ok()) << factory.status().ToString();
  std::mt19937 rng(5);
  std::string csv = "氏名,個人番号\n";
  for (int i = 0; i < 30; ++i) csv += "顧客" + std::to_string(i) + "," + MyNumber(rng) + "\n";
  std::string zip = Zip("customers.csv", csv);
  MemoryBudget budget(1 << 20);
  ASSERT_TRUE(budget.TryReserve((1 << 20) - 100));  // other uploads hold nearly all of it
  InspectOptions o;
  o.memory = &budget;
  o.spill_dir = ::testing::TempDir();
  for (bool disk : {true, false}) {
    o.disk_over_budget = disk;
    auto ins = (*factory)->New(o);
    ASSERT_TRUE(ins.ok());
    ASSERT_TRUE((*ins)->BeginUnit("form:file file=export.zip").ok());
    Status st;
    for (size_t i = 0; i < zip.size() && st.ok(); i += 50)
      st = (*ins)->Text(std::string_view(zip).substr(i, 50));
    if (disk) {
      ASSERT_TRUE(st.ok()) << st.ToString();
      auto s = (*ins)->Finish();
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      EXPECT_EQ(s->types["jp.my_number"], 30u);
    } else {
      EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
      EXPECT_NE(st.message().find("over_memory_budget: block"), std::string::npos);
    }
    (*ins).reset();
    EXPECT_EQ(budget.used(), (1u << 20) - 100) << "reservations returned, disk " << disk;
  }
  // With room in the budget the container is held in memory, and the
  // reservation is returned after extraction.
  budget.Release((1 << 20) - 100);
  auto ins = (*factory)->New(o);
  ASSERT_TRUE(ins.ok());
  ASSERT_TRUE((*ins)->BeginUnit("form:file file=export.zip").ok());
  ASSERT_TRUE((*ins)->Text(zip).ok());
  EXPECT_GT(budget.used(), 0u);
  auto s = (*ins)->Finish();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->types["jp.my_number"], 30u);
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace mamori::egress
