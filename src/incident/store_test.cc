#include "incident/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace mamori::incident {
namespace {

class IncidentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("incident_store_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    path_ = (dir_ / "sub" / "mamori.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Facts Initial() {
    auto f = ParseFacts(R"({"aware_at": "2026-12-20T10:00:00+09:00", "sector": "private",
      "persons": 0, "data_items": [], "malicious_suspected": false, "publicly_viewable": false,
      "encryption": null, "processor_notified_controller": false})");
    EXPECT_TRUE(f.ok());
    return *f;
  }
  std::filesystem::path dir_;
  std::string path_;
  FakeClock clock_{1'800'000'000'000'000};
};

TEST_F(IncidentStoreTest, AFileThatIsNotADatabaseIsRefusedAtOpen) {
  std::filesystem::create_directories(dir_ / "sub");
  {
    std::FILE* f = std::fopen(path_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(std::string(8192, 'z').c_str(), f);
    std::fclose(f);
  }
  auto s = IncidentStore::Open(path_, &clock_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss) << s.status().ToString();
  EXPECT_NE(s.status().message().find(path_), std::string::npos) << s.status().message();
}

TEST_F(IncidentStoreTest, OpenNoteTimelineAndChain) {
  auto s = IncidentStore::Open(path_, &clock_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  // Owner-only: the timeline names users.
  EXPECT_EQ(std::filesystem::status(path_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto id = (*s)->Create("紛失したノートPC", Initial(), "compliance@example.jp");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  clock_.Advance(60'000'000);
  Event n;
  n.kind = "note";
  n.who = "営業部 A";
  n.what = "ノートPCを電車内で紛失";
  n.where = "JR山手線";
  auto e = (*s)->Append(*id, n);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->seq, 2);
  EXPECT_EQ(e->at_micros, 1'800'000'060'000'000);
  auto c = (*s)->Get(*id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->aware_at, "2026-12-20T10:00:00+09:00");
  EXPECT_EQ(c->opened_at_micros, 1'800'000'000'000'000);
  Facts f = c->facts;
  f.persons = 1200;
  ASSERT_TRUE((*s)->UpdateFacts(*id, f, "x", "scope", {{"objects", 3}}).ok());
  auto tl = (*s)->Timeline(*id);
  ASSERT_TRUE(tl.ok());
  ASSERT_EQ(tl->size(), 3u);
  EXPECT_EQ((*tl)[0].kind, "open");
  EXPECT_EQ((*tl)[1].where, "JR山手線");
  EXPECT_EQ((*tl)[2].detail["facts"]["persons"], 1200);
  EXPECT_TRUE((*s)->VerifyChain(*id).ok());
  EXPECT_EQ((*s)->Get(*id)->facts.persons, 1200);
  EXPECT_EQ((*s)->Get(999).status().code(), StatusCode::kNotFound);
}

TEST_F(IncidentStoreTest, AwarenessTimeIsImmutableAndTimelineAppendOnly) {
  auto s = IncidentStore::Open(path_, &clock_);
  ASSERT_TRUE(s.ok());
  auto id = (*s)->Create("t", Initial(), "a");
  ASSERT_TRUE(id.ok());
  Facts f = Initial();
  f.aware_at = "2026-12-21T10:00:00+09:00";
  f.aware_at_micros += 86'400'000'000;
  EXPECT_EQ((*s)->UpdateFacts(*id, f, "a", "facts", {}).code(), StatusCode::kFailedPrecondition);

  // Direct SQL edits are refused by triggers.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  EXPECT_NE(
      sqlite3_exec(db, "UPDATE incident_events SET actor='mallory'", nullptr, nullptr, nullptr),
      SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "DELETE FROM incident_events", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(
      sqlite3_exec(db, "UPDATE incident_cases SET aware_at_micros=0", nullptr, nullptr, nullptr),
      SQLITE_OK);
  // Someone drops the trigger and edits anyway: the hash chain finds it.
  ASSERT_EQ(sqlite3_exec(db, "DROP TRIGGER incident_events_no_update", nullptr, nullptr, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE incident_events SET actor='mallory' WHERE seq=1", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto st = (*s)->VerifyChain(*id);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("event 1"), std::string::npos);
}

TEST_F(IncidentStoreTest, BudgetsAreErrors) {
  auto s = IncidentStore::Open(path_, &clock_);
  ASSERT_TRUE(s.ok());
  auto id = (*s)->Create("t", Initial(), "a");
  ASSERT_TRUE(id.ok());
  Event big;
  big.kind = "note";
  big.what = std::string(300 * 1024, 'x');
  EXPECT_EQ((*s)->Append(*id, big).status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE((*s)->Create("", Initial(), "a").ok());
}

// kill -9 while a child appends: every committed event survives, the chain
// verifies and the sequence has no holes.
TEST_F(IncidentStoreTest, SurvivesKillNine) {
  int64_t id;
  {
    auto s = IncidentStore::Open(path_, &clock_);
    ASSERT_TRUE(s.ok());
    auto r = (*s)->Create("t", Initial(), "a");
    ASSERT_TRUE(r.ok());
    id = *r;
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    auto s = IncidentStore::Open(path_, &clock_);
    if (!s.ok()) ::_exit(3);
    for (int i = 0;; ++i) {
      Event n;
      n.kind = "note";
      n.what = "note " + std::to_string(i);
      if (!(*s)->Append(id, n).ok()) ::_exit(4);
      if (i == 20) (void)!::write(fds[1], "x", 1);
    }
  }
  ::close(fds[1]);
  char c;
  ASSERT_EQ(::read(fds[0], &c, 1), 1);  // at least 21 notes committed
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fds[0]);
  auto s = IncidentStore::Open(path_, &clock_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE((*s)->VerifyChain(id).ok()) << (*s)->VerifyChain(id).ToString();
  auto tl = (*s)->Timeline(id);
  ASSERT_TRUE(tl.ok());
  EXPECT_GE(tl->size(), 22u);
  Event n;
  n.kind = "note";
  EXPECT_TRUE((*s)->Append(id, n).ok());
}

}  // namespace
}  // namespace mamori::incident
