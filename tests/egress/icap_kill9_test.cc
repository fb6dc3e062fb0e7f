// kill -9 under load: `mamori icap` with the shared audit log answers each
// upload only once its audit record is durable (group commit, the I/O
// threads never wait for the disk). Eight connections post small forms, each
// with its own user name, and the server is SIGKILLed mid-load, ten times.
// Every user whose request was answered must be in the log after each kill,
// the log must reopen (dropping a torn tail) and verify at the end.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit.h"
#include "common/file_util.h"
#include "common/testing/loopback.h"

extern char** environ;

namespace mamori {
namespace {

namespace fs = std::filesystem;

int Connect(uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  int one = 1;
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

// A REQMOD as Squid sends it for a small form post: the whole body in the
// preview, with ieof.
std::string FormPost(uint16_t port, const std::string& user) {
  std::string body =
      "subject=%E4%BC%9A%E8%AD%B0&room=3F-A&date=2026-12-01&body=" + std::string(600, 'x') +
      "&token=" + user;
  std::string http =
      "POST https://upload.kill9-unknown.test/upload HTTP/1.1\r\nHost: "
      "upload.kill9-unknown.test\r\nContent-Type: application/x-www-form-urlencoded\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  char hex[16];
  std::snprintf(hex, sizeof hex, "%zx", body.size());
  return "REQMOD icap://127.0.0.1:" + std::to_string(port) +
         "/reqmod ICAP/1.0\r\nHost: 127.0.0.1\r\nEncapsulated: req-hdr=0, req-body=" +
         std::to_string(http.size()) +
         "\r\nPreview: 4096\r\nAllow: 204\r\nX-Client-Username: " + user +
         "\r\nX-Client-IP: 127.0.0.1\r\n\r\n" + http + hex + "\r\n" + body + "\r\n0; ieof\r\n\r\n";
}

class EgressIcapKill9 : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("egress_icap_kill9_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "policy");
    fs::copy_file(fs::path(MAMORI_SOURCE_DIR) / "rules/egress/destinations.yaml",
                  dir_ / "policy/destinations.yaml");
    ASSERT_TRUE(WriteFileAtomic((dir_ / "policy/policy.yaml").string(),
                                "settings: {preview_bytes: 4096}\n"
                                "categories:\n"
                                "  unknown: {uploads: inspect, content: {block_types: "
                                "[jp.my_number], max_individuals: 50}}\n"
                                "caps:\n"
                                "  - {name: hourly, per: user_destination, window: 1h, "
                                "max_bytes: 1000GB, categories: [unknown]}\n",
                                0644)
                    .ok());
    auto pub = audit::GenerateKeyPair((dir_ / "keys").string());
    ASSERT_TRUE(pub.ok()) << pub.status().ToString();
    pub_ = *pub;
    log_ = (dir_ / "audit.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  pid_t StartServer(uint16_t port) {
    std::vector<std::string> args = {
        MAMORI_BIN,      "icap",
        "--listen",      "127.0.0.1:" + std::to_string(port),
        "--threads",     "2",
        "--policy",      (dir_ / "policy").string(),
        "--audit-log",   log_,
        "--audit-key",   (dir_ / "keys" / audit::kSigningKeyFile).string(),
        "--hash-key",    (dir_ / "hash.key").string(),
        "--spool-dir",   dir_.string(),
        "--cap-journal", (dir_ / "caps.journal").string(),
        "--no-syslog"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, (dir_ / "server.log").c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    for (int i = 0; i < 300; ++i) {
      int s = Connect(port);
      if (s >= 0) {
        ::close(s);
        return pid;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
  }

  // Users with an egress record in the log.
  std::set<std::string> AuditedUsers() {
    std::set<std::string> users;
    audit::ReaderOptions ro;
    ro.path = log_;
    audit::Filter f;
    f.component = "egress";
    Status st = audit::Scan(ro, f, [&](const audit::StoredRecord& r) {
      users.insert(r.record.user);
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return users;
  }

  fs::path dir_;
  std::string log_;
  audit::PublicKey pub_;
};

TEST_F(EgressIcapKill9, AnsweredUploadsAreAuditedAcrossKill9) {
  std::mt19937 rng(20261123);
  std::set<std::string> all_acked;
  for (int round = 0; round < 10; ++round) {
    uint16_t port = testing::FreeLoopbackPort();
    pid_t pid = StartServer(port);
    ASSERT_GT(pid, 0) << "mamori icap did not start; see " << (dir_ / "server.log");
    std::mutex mu;
    std::set<std::string> acked;
    std::atomic<int> answered{0};
    std::atomic<bool> bad_answer{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&, c] {
        int s = Connect(port);
        if (s < 0) return;
        std::string buf;
        char tmp[4096];
        for (int i = 0;; ++i) {
          std::string user =
              "r" + std::to_string(round) + "c" + std::to_string(c) + "n" + std::to_string(i);
          std::string req = FormPost(port, user);
          if (::send(s, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
            break;
          size_t end;
          while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
            ssize_t n = ::recv(s, tmp, sizeof tmp, 0);
            if (n <= 0) break;
            buf.append(tmp, static_cast<size_t>(n));
          }
          if (end == std::string::npos) break;  // the server was killed
          if (buf.rfind("ICAP/1.0 204", 0) != 0) {
            bad_answer = true;
            break;
          }
          buf.erase(0, end + 4);
          {
            std::lock_guard<std::mutex> l(mu);
            acked.insert(user);
          }
          ++answered;
        }
        ::close(s);
      });
    }
    // Let it answer some, then kill it at a random moment.
    for (int i = 0; i < 1000 && answered < 100 && !bad_answer; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 200)(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    for (auto& t : clients) t.join();
    ASSERT_FALSE(bad_answer) << "a clean form post was not answered 204; see "
                             << (dir_ / "server.log");
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "mamori icap exited by itself, status " << status;
    ASSERT_GE(answered.load(), 100) << "round " << round << " made too little progress";

    std::set<std::string> audited = AuditedUsers();
    size_t missing = 0;
    for (const auto& u : acked) {
      if (!audited.count(u)) {
        if (++missing <= 5) ADD_FAILURE() << "answered but not in the audit log: " << u;
      }
    }
    EXPECT_EQ(missing, 0u) << "round " << round;
    std::cout << "round " << round << ": " << acked.size() << " answered, "
              << audited.size() - all_acked.size() << " audited since the last kill\n";
    all_acked.insert(acked.begin(), acked.end());
  }
  // Reopening recovers any torn tail; the chain and signatures then verify.
  {
    audit::LogOptions o;
    o.path = log_;
    o.signing_key_path = (dir_ / "keys" / audit::kSigningKeyFile).string();
    auto log = audit::Log::Open(o);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    ASSERT_TRUE((*log)->Close().ok());
  }
  audit::VerifyOptions v;
  v.log_path = log_;
  v.public_key = pub_;
  auto rep = audit::Verify(v);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->ok()) << rep->ToString();
  EXPECT_GE(rep->records, all_acked.size());
}

}  // namespace
}  // namespace mamori
