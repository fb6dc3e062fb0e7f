#include "common/redact.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace mamori {
namespace {

TEST(MaskValue, KeepsShapeAndEnds) {
  EXPECT_EQ(MaskValue("1234-5678-9018", 4, 2), "1234-****-**18");
  EXPECT_EQ(MaskValue("123456789018", 4, 2), "1234******18");
  // A short value never shows more than half of itself.
  EXPECT_EQ(MaskValue("1234", 4, 2), "1**4");
}

TEST(MaskValue, NonAsciiKeepsFirstCharacterOnly) {
  EXPECT_EQ(MaskValue("山田太郎"), "山***");
  EXPECT_EQ(MaskEmail("taro.yamada@example.co.jp"), "t**********@example.co.jp");
}

TEST(MaskPath, FileNamesAreMaskedStructureKept) {
  EXPECT_EQ(MaskPath("upload.zip!山田太郎_保険証.jpg"), "u*****.zip!山***_***.jpg");
  EXPECT_EQ(MaskPath("message.eml!part2.1!body"), "m******.eml!part2.1!body");
  EXPECT_EQ(MaskPath("form:file file=yamada_taro.png"), "form:file file=y*****_****.png");
  EXPECT_EQ(MaskPath("docs/customers.xlsx!xl/worksheets/sheet1.xml"),
            "d***/c********.xlsx!x*/w*********/s*****.xml");
  // No extension (or an implausible one): the whole name is masked.
  EXPECT_EQ(MaskPath("yamada.taro-private"), "y*****.****-*******");
  EXPECT_EQ(MaskPath(""), "");
}

TEST(HashKey, KeyedAndStable) {
  std::array<unsigned char, 32> a{}, b{};
  b[0] = 1;
  HashKey ka(a), kb(b);
  EXPECT_EQ(ka.Hash("jp.my_number", "123456789018"), ka.Hash("jp.my_number", "123456789018"));
  EXPECT_NE(ka.Hash("jp.my_number", "123456789018"), kb.Hash("jp.my_number", "123456789018"));
  EXPECT_NE(ka.Hash("jp.my_number", "123456789018"), ka.Hash("email", "123456789018"));
  EXPECT_EQ(ka.Hash("email", "x").size(), 32u);
}

TEST(HashKey, LoadOrCreateIsPrivateAndStable) {
  auto dir =
      std::filesystem::temp_directory_path() / ("mamori_key_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::string path = (dir / "hash.key").string();
  auto k1 = HashKey::LoadOrCreate(path);
  ASSERT_TRUE(k1.ok()) << k1.status().ToString();
  auto perms = std::filesystem::status(path).permissions();
  EXPECT_EQ(perms & std::filesystem::perms::group_read, std::filesystem::perms::none);
  auto k2 = HashKey::LoadOrCreate(path);
  ASSERT_TRUE(k2.ok());
  EXPECT_EQ(k1->Hash("t", "v"), k2->Hash("t", "v"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mamori
