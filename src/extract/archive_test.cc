#include <gtest/gtest.h>
#include <zlib.h>

#include "extract/extract.h"
#include "extract/test_util.h"

namespace mamori::extract {
namespace {

using testing::Dump;
using testing::Find;
using testing::MakeRawZip;
using testing::MakeTarGz;
using testing::MakeZerosZip;
using testing::MakeZip;
using testing::Units;

// A clock that moves one second every time it is read.
class TickingClock : public Clock {
 public:
  int64_t NowMicros() const override { return now_ += 1'000'000; }

 private:
  mutable int64_t now_ = 0;
};

TEST(ExtractArchive, NestedZipPaths) {
  std::string inner = MakeZip({{"data/file.csv", "氏名,電話\n山田,090-1111-2222\n"}});
  std::string outer = MakeZip({{"inner/file.csv", "a,b\n1,2\n"}, {"nested.zip", inner}});
  auto units = Units("outer.zip", outer);
  const auto* a = Find(units, "outer.zip!inner/file.csv");
  ASSERT_NE(a, nullptr) << Dump(units);
  EXPECT_EQ(a->format, "csv");
  EXPECT_EQ(a->text, "a,b\n1,2\n");
  const auto* b = Find(units, "outer.zip!nested.zip!data/file.csv");
  ASSERT_NE(b, nullptr) << Dump(units);
  EXPECT_EQ(b->text, "氏名,電話\n山田,090-1111-2222\n");
  EXPECT_EQ(units.size(), 2u) << Dump(units);
}

TEST(ExtractArchive, ShiftJisMemberNamesAreDecoded) {
  // 顧客.csv in Shift_JIS, without the zip UTF-8 flag, as Windows writes it.
  std::string zip = MakeRawZip({{"\x8c\xda\x8b\x71.csv", "a,b\n1,2\n"}});
  auto units = Units("x.zip", zip);
  ASSERT_NE(Find(units, "x.zip!顧客.csv"), nullptr) << Dump(units);
}

TEST(ExtractArchive, Utf8FlaggedMemberNamesSurviveTheCLocale) {
  testing::RawMember m{"顧客/名簿.csv", "a,b\n1,2\n"};
  m.utf8_flag = true;
  auto units = Units("u.zip", MakeRawZip({m}));
  ASSERT_NE(Find(units, "u.zip!顧客/名簿.csv"), nullptr) << Dump(units);
}

TEST(ExtractArchive, EncryptedMemberIsAnErrorAndOthersContinue) {
  std::string zip = MakeZip({{"secret.csv", "氏名\n山田\n"}}, "pass");
  std::string outer = MakeZip({{"plain.txt", "hello"}, {"locked.zip", zip}});
  auto units = Units("o.zip", outer);
  const auto* e = Find(units, "o.zip!locked.zip!secret.csv");
  ASSERT_NE(e, nullptr) << Dump(units);
  EXPECT_FALSE(e->error.ok());
  EXPECT_EQ(e->format, "encrypted");
  EXPECT_NE(e->error.message().find("encrypted member, cannot inspect"), std::string::npos);
  ASSERT_NE(Find(units, "o.zip!plain.txt"), nullptr) << Dump(units);
}

TEST(ExtractArchive, EncryptedFlagInCentralDirectory) {
  testing::RawMember m{"x.txt", "hello", true, -1, true};
  auto units = Units("e.zip", MakeRawZip({m}));
  ASSERT_EQ(units.size(), 1u) << Dump(units);
  EXPECT_FALSE(units[0].error.ok());
  EXPECT_EQ(units[0].path, "e.zip!x.txt");
}

TEST(ExtractArchive, TenGigabytesOfZerosIsAnErrorUnit) {
  // 10 GiB declared and really deflated (10 MiB of repeated deflate blocks).
  std::string bomb = MakeZerosZip("zeros.bin", 10ull << 30);
  std::string outer = MakeZip({{"ok.txt", "fine"}});
  auto units = Units("bomb.zip", bomb);
  ASSERT_EQ(units.size(), 1u) << Dump(units);
  EXPECT_EQ(units[0].path, "bomb.zip!zeros.bin");
  EXPECT_EQ(units[0].error.code(), StatusCode::kResourceExhausted);
}

TEST(ExtractArchive, LyingHeaderIsCaughtWhileInflating) {
  // The header says 1000 bytes; the data inflates to 256 MiB.
  std::string bomb = MakeZerosZip("small.txt", 256ull << 20, 1000);
  auto units = Units("liar.zip", bomb);
  ASSERT_EQ(units.size(), 1u) << Dump(units);
  EXPECT_EQ(units[0].path, "liar.zip!small.txt");
  EXPECT_EQ(units[0].error.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(units[0].error.message().find("max_ratio"), std::string::npos)
      << units[0].error.message();
}

TEST(ExtractArchive, FortyTwoStyleNestingEndsInErrorUnits) {
  std::string level = MakeZerosZip("4gb.bin", 4ull << 30);
  for (int depth = 0; depth < 3; ++depth) {
    testing::Files copies;
    for (int i = 0; i < 8; ++i) copies.emplace_back("lib" + std::to_string(i) + ".zip", level);
    level = MakeZip(copies);
  }
  auto units = Units("42.zip", level);
  size_t errors = 0;
  for (const auto& u : units) {
    EXPECT_FALSE(u.error.ok()) << u.path;
    errors += !u.error.ok();
  }
  // Each innermost layer is refused by its ratio, before anything is inflated.
  EXPECT_EQ(errors, 8u * 8u * 8u);
  bool found = false;
  for (const auto& u : units) {
    found |= u.path.rfind("42.zip!lib0.zip!lib7.zip!lib3.zip", 0) == 0 &&
             u.error.code() == StatusCode::kResourceExhausted;
  }
  EXPECT_TRUE(found) << units[0].path << ": " << units[0].error.ToString();
}

TEST(ExtractArchive, TotalExpandedBudgetAbortsTheRest) {
  std::string zip = MakeZip({{"a.txt", std::string(800, 'a')},
                             {"b.txt", std::string(800, 'b')},
                             {"c.txt", std::string(800, 'c')}});
  Budgets b;
  b.max_expanded_bytes = 1000;
  auto units = Units("x.zip", zip, b);
  ASSERT_EQ(units.size(), 2u) << Dump(units);
  EXPECT_TRUE(units[0].error.ok());
  EXPECT_EQ(units[1].path, "x.zip!b.txt");
  EXPECT_EQ(units[1].error.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(units[1].error.message().find("max_expanded_bytes"), std::string::npos);
}

TEST(ExtractArchive, DepthBudget) {
  std::string z = MakeZip({{"deep.txt", "bottom"}});
  for (int i = 0; i < 5; ++i) z = MakeZip({{"l" + std::to_string(i) + ".zip", z}});
  Budgets b;
  b.max_depth = 3;
  auto units = Units("top.zip", z, b);
  ASSERT_EQ(units.size(), 1u) << Dump(units);
  EXPECT_EQ(units[0].path, "top.zip!l4.zip!l3.zip!l2.zip");
  EXPECT_EQ(units[0].error.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(units[0].error.message().find("max_depth"), std::string::npos);
  b.max_depth = 8;
  units = Units("top.zip", z, b);
  ASSERT_NE(Find(units, "top.zip!l4.zip!l3.zip!l2.zip!l1.zip!l0.zip!deep.txt"), nullptr)
      << Dump(units);
}

TEST(ExtractArchive, MemberCountBudget) {
  testing::Files files;
  for (int i = 0; i < 5; ++i) files.emplace_back(std::to_string(i) + ".txt", "x");
  Budgets b;
  b.max_members = 3;
  auto units = Units("m.zip", MakeZip(files), b);
  ASSERT_EQ(units.size(), 4u) << Dump(units);
  EXPECT_EQ(units[3].error.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(units[3].error.message().find("max_members"), std::string::npos);
}

TEST(ExtractArchive, TimeBudget) {
  testing::Files files;
  for (int i = 0; i < 50; ++i) files.emplace_back(std::to_string(i) + ".txt", "x");
  TickingClock clock;
  Budgets b;
  b.clock = &clock;
  b.max_seconds = 10;
  auto units = Units("t.zip", MakeZip(files), b);
  ASSERT_FALSE(units.empty());
  EXPECT_LT(units.size(), 50u);
  EXPECT_EQ(units.back().error.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(units.back().error.message().find("max_seconds"), std::string::npos);
}

TEST(ExtractArchive, TarGzAndSingleGzip) {
  auto units = Units("a.tar.gz", MakeTarGz({{"dir/x.txt", "hello"}, {"y.csv", "a,b\n1,2\n"}}));
  ASSERT_NE(Find(units, "a.tar.gz!dir/x.txt"), nullptr) << Dump(units);
  ASSERT_NE(Find(units, "a.tar.gz!y.csv"), nullptr) << Dump(units);

  std::string text = "山田太郎 090-1234-5678\n";
  uLongf n = compressBound(text.size()) + 32;
  std::string gz(n, '\0');
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);  // gzip wrapper
  z.next_in = reinterpret_cast<Bytef*>(text.data());
  z.avail_in = text.size();
  z.next_out = reinterpret_cast<Bytef*>(gz.data());
  z.avail_out = n;
  deflate(&z, Z_FINISH);
  gz.resize(z.total_out);
  deflateEnd(&z);
  units = Units("notes.txt.gz", gz);
  const auto* u = Find(units, "notes.txt.gz!notes.txt");
  ASSERT_NE(u, nullptr) << Dump(units);
  EXPECT_EQ(u->text, text);
}

TEST(ExtractArchive, SevenZip) {
  auto units = Units("a.7z", testing::Make7z({{"名簿/list.csv", "氏名,電話\n山田,090\n"}}));
  const auto* u = Find(units, "a.7z!名簿/list.csv");
  ASSERT_NE(u, nullptr) << Dump(units);
  EXPECT_EQ(u->format, "csv");
}

TEST(ExtractArchive, TarGzBombStopsOnTheArchiveRatio) {
  auto units = Units("b.tar.gz", MakeTarGz({{"zeros.bin", std::string(64 << 20, '\0')},
                                            {"after.txt", "never reached"}}));
  ASSERT_FALSE(units.empty());
  EXPECT_EQ(units[0].path, "b.tar.gz!zeros.bin");
  EXPECT_EQ(units[0].error.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(units[0].error.message().find("max_ratio"), std::string::npos);
  // The rest of a compressed stream is not inflated just to skip it: reported.
  ASSERT_EQ(units.size(), 2u) << Dump(units);
  EXPECT_EQ(units[1].path, "b.tar.gz");
  EXPECT_FALSE(units[1].error.ok());
}

TEST(ExtractArchive, DamagedZipIsAnErrorUnit) {
  std::string zip = MakeZip({{"a.txt", std::string(5000, 'a')}, {"b.txt", "bbb"}});
  std::string cut = zip.substr(0, zip.size() / 2);
  auto units = Units("cut.zip", cut);
  ASSERT_FALSE(units.empty());
  bool any_error = false;
  for (const auto& u : units) any_error |= !u.error.ok();
  EXPECT_TRUE(any_error) << Dump(units);
}

}  // namespace
}  // namespace mamori::extract
