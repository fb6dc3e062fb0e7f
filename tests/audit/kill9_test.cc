// kill -9 test: a child appends with 4 threads and is SIGKILLed at random
// points, 20 times. After each kill the log must reopen (dropping any torn
// tail), still hold every record the child was told was durable, and verify.
// Run once with blocking appends and once with AppendAsync (group commit
// from the log's own commit threads).
// Half of the rounds also cut the file at a random point after the last
// acknowledged record, as a power cut losing unsynced page cache would.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

#include "audit/audit.h"
#include "audit/format.h"
#include "common/file_util.h"

extern char** environ;

namespace mamori::audit {
namespace {

namespace fs = std::filesystem;

// Offset just past the line holding record `seq` (0 if seq == 0).
uint64_t EndOfRecord(const std::string& data, uint64_t seq) {
  if (seq == 0) return 0;
  size_t start = 0;
  while (start < data.size()) {
    size_t nl = data.find('\n', start);
    if (nl == std::string::npos) break;
    auto e = internal::ParseLine(std::string_view(data).substr(start, nl - start));
    if (e.ok() && e->kind == internal::Entry::kRecord && e->seq == seq) return nl + 1;
    start = nl + 1;
  }
  ADD_FAILURE() << "acknowledged record " << seq << " is not in the file";
  return data.size();
}

class AuditKill9 : public ::testing::TestWithParam<std::string> {};

TEST_P(AuditKill9, RepeatedKillsNeverLoseAcknowledgedRecords) {
  fs::path dir =
      fs::temp_directory_path() / ("audit_kill9_" + GetParam() + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto pub = GenerateKeyPair((dir / "keys").string());
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  std::string log_path = (dir / "audit.log").string();
  std::string key_path = (dir / "keys" / kSigningKeyFile).string();

  std::mt19937 rng(20261123);
  uint64_t last_head = 0;
  int torn_recoveries = 0, cuts = 0;
  for (int round = 0; round < 20; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    std::string writer = AUDIT_CRASH_WRITER;
    std::string mode = GetParam();
    char* argv[] = {writer.data(), log_path.data(), key_path.data(), mode.data(), nullptr};
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, writer.c_str(), &fa, nullptr, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);

    // Let it run until it has acknowledged a few records, then a random while.
    std::string acks;
    char buf[4096];
    while (acks.find('\n') == std::string::npos) {
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      ASSERT_GT(n, 0) << "writer died before its first append (round " << round << ")";
      acks.append(buf, static_cast<size_t>(n));
    }
    ::usleep(std::uniform_int_distribution<int>(1000, 150000)(rng));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "writer exited by itself, status " << status;
    while (true) {
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      acks.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    uint64_t max_acked = 0;
    size_t start = 0;
    while (true) {
      size_t nl = acks.find('\n', start);
      if (nl == std::string::npos) break;
      max_acked = std::max<uint64_t>(max_acked, std::stoull(acks.substr(start, nl - start)));
      start = nl + 1;
    }
    ASSERT_GT(max_acked, last_head) << "round " << round << " made no progress";

    if (round % 2 == 1) {
      // Power-cut simulation: lose a random part of what was never acknowledged.
      std::string data = ReadFile(log_path).value();
      uint64_t keep_from = EndOfRecord(data, max_acked);
      uint64_t cut = std::uniform_int_distribution<uint64_t>(keep_from, data.size())(rng);
      if (cut < data.size()) {
        fs::resize_file(log_path, cut);
        ++cuts;
      }
    }

    LogOptions o;
    o.path = log_path;
    o.signing_key_path = key_path;
    auto log = Log::Open(o);
    ASSERT_TRUE(log.ok()) << "round " << round << ": " << log.status().ToString();
    if ((*log)->recovered_tail_bytes() > 0) ++torn_recoveries;
    Head head = (*log)->head();
    std::cout << "round " << round << ": acknowledged up to seq " << max_acked
              << ", reopened at seq " << head.seq << ", dropped " << (*log)->recovered_tail_bytes()
              << " torn bytes\n";
    EXPECT_GE(head.seq, max_acked) << "round " << round << " lost acknowledged records";
    ASSERT_TRUE((*log)->Close().ok());
    last_head = head.seq;

    VerifyOptions v;
    v.log_path = log_path;
    v.public_key = *pub;
    v.head = head;
    auto rep = Verify(v);
    ASSERT_TRUE(rep.ok()) << rep.status().ToString();
    ASSERT_TRUE(rep->ok()) << "round " << round << ":\n" << rep->ToString();
    EXPECT_EQ(rep->torn_tail_bytes, 0u);
    EXPECT_EQ(rep->last_seq, head.seq);
  }
  std::cout << "kill -9: 20 rounds, " << last_head << " records, " << cuts
            << " simulated power cuts, " << torn_recoveries << " torn tails recovered\n";
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Modes, AuditKill9, ::testing::Values("loop", "loop-async"),
                         [](const auto& info) {
                           return info.param == "loop" ? std::string("Blocking")
                                                       : std::string("Async");
                         });

}  // namespace
}  // namespace mamori::audit
