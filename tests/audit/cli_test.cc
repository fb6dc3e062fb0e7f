// `mamori audit` end to end: keygen, verify (OK, tampered, truncated with a
// head), head, export jsonl/syslog with filters; exit codes 0/1/2.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "common/file_util.h"

namespace {

namespace fs = std::filesystem;

struct CmdResult {
  int code;
  std::string out;
};

CmdResult Sh(const std::string& cmd) {
  std::string full = cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

class AuditCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("audit_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    keys_ = (dir_ / "keys").string();
    log_ = (dir_ / "audit.log").string();
    CmdResult r = Sh(bin_ + " audit keygen --out " + keys_);
    ASSERT_EQ(r.code, 0) << r.out;
    r = Sh(std::string(AUDIT_CRASH_WRITER) + " " + log_ + " " + keys_ +
           "/audit_signing.key count 120");
    ASSERT_EQ(r.code, 0) << r.out;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Verify(const std::string& extra = "") {
    return bin_ + " audit verify --log " + log_ + " --pubkey " + keys_ + "/audit_signing.pub" +
           extra;
  }
  fs::path dir_;
  std::string keys_, log_, bin_ = MAMORI_BIN;
};

TEST_F(AuditCli, KeygenWritesA0600KeyAndRefusesToOverwrite) {
  struct stat st {};
  ASSERT_EQ(::stat((keys_ + "/audit_signing.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  CmdResult r = Sh(bin_ + " audit keygen --out " + keys_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("already holds an audit key"), std::string::npos) << r.out;
}

TEST_F(AuditCli, VerifyOkThenTamperedThenTruncated) {
  CmdResult ok = Sh(Verify());
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_EQ(ok.out.rfind("OK: 120 records", 0), 0u) << ok.out;

  CmdResult head = Sh(bin_ + " audit head --log " + log_);
  ASSERT_EQ(head.code, 0) << head.out;
  std::string anchor = head.out.substr(0, head.out.find('\n'));
  EXPECT_EQ(anchor.rfind("120:", 0), 0u) << anchor;
  EXPECT_EQ(Sh(Verify(" --head " + anchor)).code, 0);

  std::string good = mamori::ReadFile(log_).value();
  // Flip one byte inside record 7's body.
  std::string bad = good;
  size_t pos = bad.find("\"seq\":7,");
  ASSERT_NE(pos, std::string::npos);
  size_t obj = bad.find("\"object\":\"obj", pos);
  bad[obj + 13] = 'Z';
  std::ofstream(log_, std::ios::trunc | std::ios::binary) << bad;
  CmdResult t = Sh(Verify());
  EXPECT_EQ(t.code, 1) << t.out;
  EXPECT_NE(t.out.find("record 7 (line 7"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("hash mismatch"), std::string::npos) << t.out;

  // Truncate: keep only the first 60 lines.
  std::istringstream in(good);
  std::string line, cut;
  for (int i = 0; i < 60 && std::getline(in, line); ++i) cut += line + "\n";
  std::ofstream(log_, std::ios::trunc | std::ios::binary) << cut;
  CmdResult tr = Sh(Verify(" --head " + anchor));
  EXPECT_EQ(tr.code, 1) << tr.out;
  EXPECT_NE(tr.out.find("truncated after seq 59"), std::string::npos) << tr.out;

  EXPECT_EQ(Sh(Verify(" --head nonsense")).code, 2);
  EXPECT_EQ(Sh(bin_ + " audit verify --log " + log_ + " --pubkey /nonexistent").code, 2);
  EXPECT_EQ(
      Sh(bin_ + " audit verify --log /nonexistent --pubkey " + keys_ + "/audit_signing.pub").code,
      2);
}

TEST_F(AuditCli, ExportJsonlAndSyslog) {
  CmdResult j = Sh(bin_ + " audit export --log " + log_ + " --format jsonl");
  ASSERT_EQ(j.code, 0) << j.out;
  std::istringstream in(j.out);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    auto v = nlohmann::json::parse(line);
    EXPECT_EQ(v["seq"], n + 1);
    EXPECT_EQ(v["component"], "vault");
    ++n;
  }
  EXPECT_EQ(n, 120);

  CmdResult f =
      Sh(bin_ + " audit export --log " + log_ + " --format jsonl --action put --device dev0");
  ASSERT_EQ(f.code, 0) << f.out;
  // i even and i % 5 == 0: i = 0, 10, ..., 110.
  EXPECT_EQ(std::count(f.out.begin(), f.out.end(), '\n'), 12);

  CmdResult future = Sh(bin_ + " audit export --log " + log_ + " --since 2999-01-01");
  EXPECT_EQ(future.code, 0);
  EXPECT_EQ(future.out, "");
  CmdResult past = Sh(bin_ + " audit export --log " + log_ + " --until 2000-01-01T00:00:00+09:00");
  EXPECT_EQ(past.out, "");
  EXPECT_EQ(Sh(bin_ + " audit export --log " + log_ + " --since yesterday").code, 2);

  CmdResult s = Sh(bin_ + " audit export --log " + log_ + " --format syslog --hostname vault1");
  ASSERT_EQ(s.code, 0) << s.out;
  std::string first = s.out.substr(0, s.out.find('\n'));
  EXPECT_EQ(first.rfind("<108>1 ", 0), 0u) << first;  // seq 1 is i=0: deny -> warning
  EXPECT_NE(first.find(" vault1 mamori - vault [mamori@32473 seq=\"1\""), std::string::npos)
      << first;

  CmdResult bad = Sh(bin_ + " audit export --log " + log_ + " --format csv");
  EXPECT_EQ(bad.code, 2);
}

}  // namespace
