#include "alert/alert.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/testing/loopback.h"

extern char** environ;

namespace mamori::alert {
namespace {

namespace fs = std::filesystem;

int FreePort() { return testing::FreeLoopbackPort(); }

bool CanConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// Postfix's smtp-sink on 127.0.0.1, dumping each message into a directory.
class SmtpSink {
 public:
  SmtpSink() {
    dir_ = fs::temp_directory_path() / ("mamori_alert_sink_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    port_ = FreePort();
    std::string bin = fs::exists("/usr/sbin/smtp-sink") ? "/usr/sbin/smtp-sink"
                                                        : "/usr/lib/postfix/sbin/smtp-sink";
    std::string dump = (dir_ / "msg").string();
    std::string addr = "127.0.0.1:" + std::to_string(port_);
    std::vector<std::string> args = {bin, "-d", dump, addr, "10"};
    if (::geteuid() == 0) args.insert(args.begin() + 1, {"-u", "root"});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, bin.c_str(), nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
    for (int i = 0; i < 100 && pid_ > 0 && !CanConnect(port_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~SmtpSink() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }
  bool running() const { return pid_ > 0 && CanConnect(port_); }
  std::string relay() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> Messages() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::ifstream f(e.path(), std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      out.push_back(ss.str());
    }
    return out;
  }

 private:
  fs::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

SmtpOptions Mail(const std::string& relay) {
  SmtpOptions o;
  o.relay = relay;
  o.from = "mamori@example.jp";
  o.to = {"security@example.jp", "ciso@example.jp"};
  return o;
}

TEST(SmtpTest, DeliversToARealSinkWithDotStuffing) {
  SmtpSink sink;
  ASSERT_TRUE(sink.running()) << "Postfix smtp-sink did not start (apt-get install postfix)";
  // Lines that would end DATA early, or lose a dot, if not stuffed.
  std::string body = "first line\n.\n..two dots\n.starts with a dot\n漢字の行\nlast line";
  Status s = SendMail(Mail(sink.relay()), "[mamori] test", body, 5000);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<std::string> msgs;
  for (int i = 0; i < 50 && msgs.empty(); ++i) {
    msgs = sink.Messages();
    if (msgs.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(msgs.size(), 1u);
  const std::string& m = msgs[0];
  EXPECT_NE(m.find("X-Mail-Args: <mamori@example.jp>"), std::string::npos) << m;
  EXPECT_NE(m.find("<security@example.jp>"), std::string::npos) << m;
  EXPECT_NE(m.find("<ciso@example.jp>"), std::string::npos) << m;
  EXPECT_NE(m.find("Subject: [mamori] test"), std::string::npos) << m;
  // The sink un-stuffs: the body arrives exactly as written.
  EXPECT_NE(m.find("first line\n.\n..two dots\n.starts with a dot\n漢字の行\nlast line\n"),
            std::string::npos)
      << m;
}

TEST(SmtpTest, ClosedRelayAndBadAddressesAreErrors) {
  int port = FreePort();
  Status s = SendMail(Mail("127.0.0.1:" + std::to_string(port)), "x", "y", 2000);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  SmtpOptions bad = Mail("127.0.0.1:25");
  bad.to = {"a@b.jp>\r\nRCPT TO:<evil@x.jp"};
  EXPECT_EQ(ValidateSmtpOptions(bad).code(), StatusCode::kInvalidArgument);
  bad = Mail("127.0.0.1:25");
  bad.to.clear();
  EXPECT_EQ(ValidateSmtpOptions(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSmtpOptions(Mail("host:port")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SendMail(Mail("127.0.0.1:25"), "bad\r\nBcc: x@y.jp", "y", 100).code(),
            StatusCode::kInvalidArgument);
}

TEST(AlerterTest, WebhookAndMailBothDeliver) {
  SmtpSink sink;
  ASSERT_TRUE(sink.running());
  testing::HttpSink hook;
  AlertOptions o;
  o.webhook_url = hook.url("/hook");
  o.smtp = Mail(sink.relay());
  o.syslog = false;
  auto a = Alerter::Start(o);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  (*a)->Send({{"kind", "vault.budget_exceeded"}, {"user", "alice"}});
  (*a)->Flush(10000);
  EXPECT_EQ((*a)->sent(), 2u);
  EXPECT_EQ((*a)->failed(), 0u);
  ASSERT_EQ(hook.requests().size(), 1u);
  std::string req = hook.requests()[0];
  EXPECT_EQ(req.rfind("POST /hook HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("application/json"), std::string::npos);
  EXPECT_NE(req.find("\"kind\":\"vault.budget_exceeded\""), std::string::npos) << req;
  std::vector<std::string> msgs;
  for (int i = 0; i < 50 && msgs.empty(); ++i) {
    msgs = sink.Messages();
    if (msgs.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_NE(msgs[0].find("Subject: [mamori] vault.budget_exceeded"), std::string::npos);
  EXPECT_NE(msgs[0].find("\"user\": \"alice\""), std::string::npos) << msgs[0];
}

TEST(AlerterTest, DeadEndpointsCountAsFailed) {
  AlertOptions o;
  o.webhook_url = "http://127.0.0.1:" + std::to_string(FreePort()) + "/x";
  o.smtp = Mail("127.0.0.1:" + std::to_string(FreePort()));
  o.syslog = false;
  o.timeout_ms = 1000;
  auto a = Alerter::Start(o);
  ASSERT_TRUE(a.ok());
  (*a)->Send({{"kind", "x"}});
  (*a)->Flush(10000);
  EXPECT_EQ((*a)->sent(), 0u);
  EXPECT_EQ((*a)->failed(), 2u);
}

TEST(AlerterTest, BadSettingsAreRefusedAtStart) {
  AlertOptions o;
  o.webhook_url = "https://example.jp/hook";
  EXPECT_FALSE(Alerter::Start(o).ok());
  o.webhook_url.clear();
  o.smtp.relay = "127.0.0.1:25";  // no sender, no recipients
  EXPECT_EQ(Alerter::Start(o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mamori::alert
