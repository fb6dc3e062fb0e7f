#include "vault/blob_store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>

namespace mamori::vault {
namespace {

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("mamori_blob_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    auto s = OpenLocalBlobStore(root_.string());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string ReadAll(const std::string& id) {
    auto r = store_->Open(id);
    EXPECT_TRUE(r.ok());
    std::string out;
    char buf[7];
    while (true) {
      auto n = (*r)->Read(buf, sizeof buf);
      EXPECT_TRUE(n.ok());
      if (!n.ok() || *n == 0) break;
      out.append(buf, *n);
    }
    return out;
  }
  std::filesystem::path root_;
  std::unique_ptr<BlobStore> store_;
};

const std::string kId = "0123456789abcdef0123456789abcdef";

TEST_F(BlobStoreTest, WriteCommitRead) {
  auto w = store_->Create(kId);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("hello ").ok());
  ASSERT_TRUE((*w)->Write("world").ok());
  EXPECT_FALSE(store_->Exists(kId));  // invisible before commit
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_TRUE(store_->Exists(kId));
  EXPECT_EQ(ReadAll(kId), "hello world");
  EXPECT_EQ(store_->Create(kId).status().code(), StatusCode::kAlreadyExists);
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, std::vector<std::string>{kId});
  ASSERT_TRUE(store_->Delete(kId).ok());
  EXPECT_FALSE(store_->Exists(kId));
  EXPECT_EQ(store_->Open(kId).status().code(), StatusCode::kNotFound);
}

TEST_F(BlobStoreTest, AbandonedWriterLeavesNothing) {
  {
    auto w = store_->Create(kId);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("partial").ok());
  }
  EXPECT_FALSE(store_->Exists(kId));
  auto n = store_->CleanupTemporary();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);  // the destructor already removed it
}

TEST_F(BlobStoreTest, KilledWriterLeavesOnlyTemporaries) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto s = OpenLocalBlobStore(root_.string());
    auto w = (*s)->Create(kId);
    (void)(*w)->Write(std::string(1 << 20, 'x'));
    ::kill(::getpid(), SIGKILL);
    _exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(store_->Exists(kId));
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  auto n = store_->CleanupTemporary();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
}

TEST_F(BlobStoreTest, RejectsBadIds) {
  EXPECT_FALSE(store_->Create("../../etc/passwd").ok());
  EXPECT_FALSE(store_->Create("ABCDEF0123456789").ok());
  EXPECT_FALSE(store_->Create("abc").ok());
  EXPECT_FALSE(store_->Open("../x").ok());
  EXPECT_FALSE(ValidBlobId(""));
  EXPECT_TRUE(ValidBlobId(kId));
}

}  // namespace
}  // namespace mamori::vault
