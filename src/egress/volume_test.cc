#include "egress/volume.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

class EgressVolumeJournal : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mamori-volume-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    opt_.path = (dir_ / "caps.journal").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<VolumeTracker> OpenOk() {
    auto t = VolumeTracker::Open(&clock_, opt_);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }
  void KillMidStream() {
    // The child records 1,000-byte uploads and acknowledges each one on a pipe
    // only after CheckAndAdd returned; the parent kills it mid-stream.
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto t = VolumeTracker::Open(&clock_, opt_);
      if (!t.ok()) ::_exit(3);
      std::vector<CapCheck> c = {{"k", 3600, 0, 0, "k"}};
      for (int i = 0; i < 1'000'000; ++i) {
        if (!(*t)->CheckAndAdd(c, 1000, 0).ok()) ::_exit(4);
        char b = 1;
        if (::write(fds[1], &b, 1) != 1) ::_exit(5);
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    uint64_t acked = 0;
    char b;
    while (acked < 300 && ::read(fds[0], &b, 1) == 1) ++acked;
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    while (::read(fds[0], &b, 1) == 1) ++acked;  // acks written before the kill
    ::close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);
    ASSERT_GE(acked, 300u);
    auto t = OpenOk();
    ASSERT_TRUE(t);
    uint64_t bytes = t->Usage("k", 3600).bytes;
    // Every acknowledged upload is there; at most one more (recorded, killed
    // before its ack).
    EXPECT_GE(bytes, acked * 1000);
    EXPECT_LE(bytes, (acked + 1) * 1000);
  }
  std::filesystem::path dir_;
  VolumeJournalOptions opt_;
  FakeClock clock_{1'700'000'000'000'000};
  const std::vector<CapCheck> caps_ = {{"hourly|alice|gigafile.nu", 3600, 200'000'000, 0, "hourly"},
                                       {"daily|alice", 86400, 0, 100, "daily"}};
};

TEST_F(EgressVolumeJournal, ChunksSplitAcrossARestartAreStillSummed) {
  const uint64_t chunk = 50'000'000;
  {
    auto t = OpenOk();
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->CheckAndAdd(caps_, chunk, 3).ok());
    clock_.Advance(5'000'000);
    EXPECT_TRUE(t->CheckAndAdd(caps_, chunk, 4).ok());
    // A refused chunk is not recorded.
    EXPECT_FALSE(t->CheckAndAdd(caps_, 150'000'000, 0).ok());
  }
  clock_.Advance(60'000'000);
  auto t = OpenOk();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Usage("hourly|alice|gigafile.nu", 3600).bytes, 2 * chunk);
  EXPECT_EQ(t->Usage("daily|alice", 86400).individuals, 7u);
  EXPECT_TRUE(t->CheckAndAdd(caps_, chunk, 0).ok());
  EXPECT_TRUE(t->CheckAndAdd(caps_, chunk, 0).ok());
  size_t idx = 9;
  EXPECT_EQ(t->CheckAndAdd(caps_, chunk, 0, &idx).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(idx, 0u);
  // After the window, the replayed entries are gone.
  t.reset();
  clock_.Advance(3600'000'000LL);
  t = OpenOk();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Usage("hourly|alice|gigafile.nu", 3600).bytes, 0u);
  EXPECT_EQ(t->Usage("daily|alice", 86400).individuals, 7u);
}

TEST_F(EgressVolumeJournal, SurvivesKill9) {
  // Both sync modes: written records survive the process even before the
  // batched fdatasync.
  for (int64_t interval : {int64_t{0}, int64_t{100}}) {
    SCOPED_TRACE("sync_interval_ms " + std::to_string(interval));
    opt_.sync_interval_ms = interval;
    std::filesystem::remove(opt_.path);
    KillMidStream();
  }
}

TEST_F(EgressVolumeJournal, TornTailIsDroppedDamageInsideIsDataLoss) {
  {
    auto t = OpenOk();
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->CheckAndAdd(caps_, 1000, 1).ok());
    ASSERT_TRUE(t->CheckAndAdd(caps_, 2000, 1).ok());
  }
  auto size = std::filesystem::file_size(opt_.path);
  {  // a crash mid-append: half a record at the end
    std::ofstream f(opt_.path, std::ios::app | std::ios::binary);
    f << std::string("\x30\x00\x00\x00\x12\x34", 6);
  }
  {
    auto t = OpenOk();
    ASSERT_TRUE(t);
    EXPECT_EQ(t->Usage("hourly|alice|gigafile.nu", 3600).bytes, 3000u);
    EXPECT_EQ(std::filesystem::file_size(opt_.path), size);  // truncated back
    EXPECT_TRUE(t->CheckAndAdd(caps_, 500, 0).ok());         // appends after it
  }
  {
    auto t = OpenOk();
    ASSERT_TRUE(t);
    EXPECT_EQ(t->Usage("hourly|alice|gigafile.nu", 3600).bytes, 3500u);
  }
  {  // flip a byte inside the first record: not a crash, refuse to start
    std::fstream f(opt_.path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(30);
    f.put('\x7f');
  }
  auto t = VolumeTracker::Open(&clock_, opt_);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(t.status().message().find("move it aside"), std::string::npos);
  // Not a journal at all.
  std::ofstream(opt_.path, std::ios::trunc) << "hello\n";
  EXPECT_EQ(VolumeTracker::Open(&clock_, opt_).status().code(), StatusCode::kDataLoss);
}

TEST_F(EgressVolumeJournal, CompactionKeepsTheFileBoundedAndTheState) {
  opt_.compact_min_bytes = 4096;
  std::vector<CapCheck> c = {{"minute|bob|x.test", 60, 0, 0, "minute"}};
  auto t = OpenOk();
  ASSERT_TRUE(t);
  uint64_t max_seen = 0;
  for (int i = 0; i < 600; ++i) {
    ASSERT_TRUE(t->CheckAndAdd(c, 10, 0).ok());
    clock_.Advance(1'000'000);  // one per second: 60 live entries at most
    max_seen = std::max(max_seen, t->journal_bytes());
  }
  EXPECT_LE(max_seen, 3 * 4096u);
  EXPECT_EQ(t->Usage("minute|bob|x.test", 60).bytes, 590u);
  t.reset();
  EXPECT_LE(std::filesystem::file_size(opt_.path), 3 * 4096u);
  t = OpenOk();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Usage("minute|bob|x.test", 60).bytes, 590u);
  EXPECT_FALSE(std::filesystem::exists(opt_.path + ".compact"));
}

TEST_F(EgressVolumeJournal, BudgetsAndLocking) {
  // A second process (or tracker) on the same journal is refused.
  auto t = OpenOk();
  ASSERT_TRUE(t);
  auto second = VolumeTracker::Open(&clock_, opt_);
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  // Live windows larger than the file budget: additions fail (closed).
  t.reset();
  std::filesystem::remove(opt_.path);
  opt_.compact_min_bytes = 1024;
  opt_.max_file_bytes = 2048;
  t = OpenOk();
  ASSERT_TRUE(t);
  Status last;
  for (int i = 0; i < 200 && last.ok(); ++i) {
    last = t->CheckAndAdd({{"user" + std::to_string(i), 3600, 0, 0, "c"}}, 1, 0);
  }
  EXPECT_EQ(last.code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(t->CheckAndAdd({{"again", 3600, 0, 0, "c"}}, 1, 0).ok());  // stays failed
  // A directory that does not exist: a clear error.
  opt_.path = (dir_ / "missing" / "caps.journal").string();
  auto bad = VolumeTracker::Open(&clock_, opt_);
  EXPECT_EQ(bad.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(bad.status().message().find("cannot open cap journal"), std::string::npos);
}

}  // namespace
}  // namespace mamori::egress
