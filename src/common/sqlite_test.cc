#include "common/sqlite.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace mamori::sqlite {
namespace {

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mamori_sqlite_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    path_ = (dir_ / "sub" / "t.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteTest, OpensCreatesParentsAndUsesWal) {
  auto db = Db::Open(path_, {.context = "test db", .file_mode = 0600});
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  Stmt q(**db, "PRAGMA journal_mode");
  auto row = q.Step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ(q.Text(0), "wal");
  EXPECT_EQ(std::filesystem::status(path_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(SqliteTest, BindStepColumnsAndRowIds) {
  auto db = Db::Open(path_);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(
      (*db)->Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, b BLOB, n INTEGER)").ok());
  Stmt ins(**db, "INSERT INTO t(s, b, n) VALUES(?, ?, ?)");
  ins.Bind("漢字").BindBlob(std::string("a\0b", 3)).BindNull();
  ASSERT_TRUE(ins.Run().ok());
  EXPECT_EQ((*db)->LastInsertRowId(), 1);
  ins.Reset();
  ins.Bind(std::string("x")).Bind("").Bind(int64_t{-7});
  ASSERT_TRUE(ins.Run().ok());
  Stmt q(**db, "SELECT s, b, n FROM t ORDER BY id");
  auto r = q.Step();
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(q.Text(0), "漢字");
  EXPECT_EQ(q.Text(1), std::string("a\0b", 3));
  EXPECT_TRUE(q.IsNull(2));
  r = q.Step();
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(q.Int(2), -7);
  r = q.Step();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

TEST_F(SqliteTest, ErrorsCarryContextAndTheRightCode) {
  auto db = Db::Open(path_, {.context = "incident database"});
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER CHECK(v > 0))").ok());
  Stmt a(**db, "INSERT INTO t VALUES('k', 1)");
  ASSERT_TRUE(a.Run().ok());
  Stmt dup(**db, "INSERT INTO t VALUES('k', 2)");
  Status s = dup.Run("add k");
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_EQ(s.message().rfind("incident database: add k: ", 0), 0u) << s.message();
  Stmt check(**db, "INSERT INTO t VALUES('j', 0)");
  EXPECT_EQ(check.Run().code(), StatusCode::kFailedPrecondition);
  Stmt bad(**db, "SELEKT 1");
  EXPECT_EQ(bad.Step().status().code(), StatusCode::kInternal);
  Stmt row(**db, "SELECT 1");
  EXPECT_EQ(row.Run().code(), StatusCode::kInternal);  // Run expects no row
}

TEST_F(SqliteTest, TransactionRollsBackUnlessCommitted) {
  auto db = Db::Open(path_);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t(v INTEGER)").ok());
  {
    auto tx = Transaction::Begin(**db);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO t VALUES(1)").ok());
  }  // rolled back
  {
    auto tx = Transaction::Begin(**db);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO t VALUES(2)").ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  Stmt q(**db, "SELECT group_concat(v) FROM t");
  ASSERT_TRUE(*q.Step());
  EXPECT_EQ(q.Text(0), "2");
}

TEST_F(SqliteTest, SecondWriterWaitsThenFailsAsUnavailable) {
  auto a = Db::Open(path_);
  ASSERT_TRUE(a.ok());
  auto b = Db::Open(path_, {.busy_timeout_ms = 50});
  ASSERT_TRUE(b.ok());
  auto ta = Transaction::Begin(**a);
  ASSERT_TRUE(ta.ok());
  auto tb = Transaction::Begin(**b);
  ASSERT_FALSE(tb.ok());
  EXPECT_EQ(tb.status().code(), StatusCode::kUnavailable) << tb.status().ToString();
}

TEST_F(SqliteTest, RefusesMissingFileWithoutCreateAndGarbageAsDataLoss) {
  auto missing = Db::Open(path_, {.create = false});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  std::filesystem::create_directories(dir_);
  std::string junk = (dir_ / "junk.db").string();
  std::ofstream(junk) << std::string(4096, 'x');
  auto bad = Db::Open(junk);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss) << bad.status().ToString();
  auto ro = Db::Open(junk, {.read_only = true});
  EXPECT_EQ(ro.status().code(), StatusCode::kDataLoss) << ro.status().ToString();
}

}  // namespace
}  // namespace mamori::sqlite
