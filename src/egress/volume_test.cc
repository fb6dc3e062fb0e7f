#include "egress/volume.h"

#include <gtest/gtest.h>

namespace mamori::egress {
namespace {

TEST(EgressVolume, SumsChunksAndBlocksPastTheCap) {
  FakeClock clock(1'000'000'000'000);
  VolumeTracker t(&clock);
  std::vector<CapCheck> caps = {{"h|alice|gigafile.nu", 3600, 200'000'000, 0, "hourly"}};
  const uint64_t chunk = 50'000'000;
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(t.CheckAndAdd(caps, chunk, 0).ok()) << i;
    clock.Advance(10'000'000);
  }
  size_t idx = 99;
  Status st = t.CheckAndAdd(caps, chunk, 0, &idx);
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(idx, 0u);
  EXPECT_NE(st.message().find("hourly"), std::string::npos);
  EXPECT_EQ(t.Usage("h|alice|gigafile.nu", 3600).bytes, 4 * chunk);
  // Another user is not affected.
  std::vector<CapCheck> bob = {{"h|bob|gigafile.nu", 3600, 200'000'000, 0, "hourly"}};
  EXPECT_TRUE(t.CheckAndAdd(bob, chunk, 0).ok());
  // The window rolls: an hour after the first chunk, room for one more.
  clock.Set(1'000'000'000'000 + 3600'000'000LL);
  EXPECT_TRUE(t.CheckAndAdd(caps, chunk, 0).ok());
  EXPECT_FALSE(t.CheckAndAdd(caps, chunk, 0).ok());
}

TEST(EgressVolume, IndividualsCapAndCheckWithoutAdding) {
  FakeClock clock(5'000'000);
  VolumeTracker t(&clock);
  std::vector<CapCheck> caps = {{"k", 60, 0, 100, "people"}};
  EXPECT_TRUE(t.Check(caps, 1, 100).ok());
  EXPECT_TRUE(t.CheckAndAdd(caps, 1, 60).ok());
  EXPECT_FALSE(t.Check(caps, 1, 41).ok());
  EXPECT_TRUE(t.CheckAndAdd(caps, 1, 40).ok());
  EXPECT_FALSE(t.CheckAndAdd(caps, 0, 1).ok());
  EXPECT_EQ(t.Usage("k", 60).individuals, 100u);
}

TEST(EgressVolume, AllOrNothingAcrossCaps) {
  FakeClock clock(5'000'000);
  VolumeTracker t(&clock);
  std::vector<CapCheck> caps = {{"a", 60, 100, 0, "a"}, {"b", 60, 50, 0, "b"}};
  size_t idx = 0;
  EXPECT_FALSE(t.CheckAndAdd(caps, 60, 0, &idx).ok());
  EXPECT_EQ(idx, 1u);
  EXPECT_EQ(t.Usage("a", 60).bytes, 0u);  // nothing recorded
}

TEST(EgressVolume, KeyBudgetIsAnError) {
  FakeClock clock(5'000'000);
  VolumeTracker t(&clock, 2);
  EXPECT_TRUE(t.CheckAndAdd({{"a", 60, 10, 0, "c"}}, 1, 0).ok());
  EXPECT_TRUE(t.CheckAndAdd({{"b", 60, 10, 0, "c"}}, 1, 0).ok());
  EXPECT_EQ(t.CheckAndAdd({{"c", 60, 10, 0, "c"}}, 1, 0).code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace mamori::egress
