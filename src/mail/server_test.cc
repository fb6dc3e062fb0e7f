#include "mail/server.h"

#include <gtest/gtest.h>
#include <netinet/tcp.h>

#include <boost/asio.hpp>
#include <condition_variable>
#include <thread>

namespace mamori::mail {
namespace {

namespace asio = boost::asio;

class NoInspector : public ContentInspector {
 public:
  Result<ContentSummary> Inspect(std::string_view) override {
    ContentSummary s;
    s.scanned = true;
    s.my_numbers = 2;
    return s;
  }
};
class CountingSink : public VerdictSink {
 public:
  Status Record(const VerdictRecord& r) override {
    std::unique_lock<std::mutex> l(mu);
    // A slow audit disk: the verdict for `hold_back` waits until released.
    if (r.queue_id == hold_back) cv.wait(l, [&] { return released; });
    queue_ids.push_back(r.queue_id);
    return Status::Ok();
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu);
    released = true;
    cv.notify_all();
  }
  std::mutex mu;
  std::condition_variable cv;
  std::string hold_back;
  bool released = false;
  std::vector<std::string> queue_ids;
};

std::string Pkt(char c, const std::string& d) {
  std::string s;
  milter::AppendPacket(&s, c, d);
  return s;
}
std::string Z(std::initializer_list<std::string> parts) {
  std::string s;
  for (const auto& p : parts) s += p + std::string(1, '\0');
  return s;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(/*threads=*/2, /*verdict_threads=*/8); }
  void Start(int threads, int verdict_threads) {
    auto p = Policy::Parse("internal_domains: [corp.example.jp]\n", "t");
    ASSERT_TRUE(p.ok());
    policy = *p;
    policy.budgets.max_packet_bytes = 70000;
    SessionDeps deps;
    deps.policy = &policy;
    deps.inspector = &inspector;
    deps.sink = &sink;
    deps.new_event_id = [] { return std::string("MEV"); };
    ServerOptions so;
    so.listen = "inet:127.0.0.1:0";
    so.threads = threads;
    so.verdict_threads = verdict_threads;
    auto s = Server::Create(so, deps);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server = std::move(*s);
    ASSERT_NE(server->port(), 0);
    runner = std::thread([this] { (void)server->Run(false); });
  }
  void TearDown() override {
    server->Stop();
    runner.join();
  }

  // Reads replies until `last` arrives or the peer closes. The reader persists
  // across calls: one read may carry the replies to several messages.
  std::vector<milter::Packet> ReadUntil(asio::ip::tcp::socket& s, char last) {
    milter::PacketReader& r = replies_;
    std::vector<milter::Packet> got;
    while (true) {
      auto p = r.Next();
      if (!p.ok() || !p->has_value()) break;
      got.push_back(**p);
      if (got.back().command == last) return got;
    }
    char buf[4096];
    boost::system::error_code ec;
    while (true) {
      size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) return got;
      r.Append(std::string_view(buf, n));
      while (true) {
        auto p = r.Next();
        if (!p.ok() || !p->has_value()) break;
        got.push_back(**p);
        if (got.back().command == last) return got;
      }
    }
  }

  Policy policy;
  NoInspector inspector;
  CountingSink sink;
  std::unique_ptr<Server> server;
  std::thread runner;
  milter::PacketReader replies_{1 << 20};
};

TEST_F(ServerTest, FullMessageOverTcpWithPipelining) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), server->port()});
  std::string opt;
  milter::AppendOptions(&opt, {6, 0x1ff, 0x1fffff, {}});
  asio::write(s, asio::buffer(opt));
  auto r = ReadUntil(s, 'O');
  ASSERT_EQ(r.size(), 1u);
  // Two messages, all packets in one write, as Postfix does with NR flags.
  std::string wire;
  for (const char* qid : {"QID1", "QID2"}) {
    wire += Pkt('D', "M" + Z({"{i}", qid}));
    wire += Pkt('M', Z({"<a@corp.example.jp>"})) + Pkt('R', Z({"<x@client.jp>"}));
    wire += Pkt('L', Z({"To", "x@client.jp"})) + Pkt('N', "");
    wire += Pkt('B', std::string(65535, 'b')) + Pkt('E', "");
  }
  asio::write(s, asio::buffer(wire));
  for (int i = 0; i < 2; ++i) {
    r = ReadUntil(s, 'c');
    ASSERT_FALSE(r.empty());
    bool quarantined = false;
    for (const auto& p : r) quarantined |= p.command == 'q';
    EXPECT_TRUE(quarantined) << "message " << i;
  }
  asio::write(s, asio::buffer(Pkt('Q', "")));
  std::lock_guard<std::mutex> l(sink.mu);
  EXPECT_EQ(sink.queue_ids, (std::vector<std::string>{"QID1", "QID2"}));
}

// One I/O thread: a verdict stuck on a slow audit write must not hold up
// another connection's mail on the same thread.
class OneIoThreadTest : public ServerTest {
 protected:
  void SetUp() override {
    sink.hold_back = "SLOW";
    Start(/*threads=*/1, /*verdict_threads=*/2);
  }
  void TearDown() override {
    sink.Release();  // in case a check failed first
    ServerTest::TearDown();
  }
};

TEST_F(OneIoThreadTest, ASlowVerdictDoesNotBlockOtherConnections) {
  asio::io_context io;
  asio::ip::tcp::socket slow(io), fast(io);
  std::string opt;
  milter::AppendOptions(&opt, {6, 0x1ff, 0x1fffff, {}});
  auto message = [](const char* qid) {
    return Pkt('D', "M" + Z({"{i}", qid})) + Pkt('M', Z({"<a@corp.example.jp>"})) +
           Pkt('R', Z({"<b@corp.example.jp>"})) + Pkt('L', Z({"To", "b@corp.example.jp"})) +
           Pkt('N', "") + Pkt('B', "hello\r\n") + Pkt('E', "");
  };
  for (auto* s : {&slow, &fast}) {
    s->connect({asio::ip::make_address("127.0.0.1"), server->port()});
    asio::write(*s, asio::buffer(opt));
    milter::PacketReader r(1 << 20);
    char buf[256];
    while (true) {  // the OPTNEG reply
      r.Append(std::string_view(buf, s->read_some(asio::buffer(buf))));
      auto p = r.Next();
      ASSERT_TRUE(p.ok());
      if (p->has_value()) break;
    }
  }
  asio::write(slow, asio::buffer(message("SLOW")));
  asio::write(fast, asio::buffer(message("FAST")));
  auto r = ReadUntil(fast, 'c');  // answered while SLOW's record is stuck
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r.back().command, 'c');
  {
    std::lock_guard<std::mutex> l(sink.mu);
    EXPECT_EQ(sink.queue_ids, std::vector<std::string>{"FAST"});
  }
  sink.Release();
  replies_ = milter::PacketReader(1 << 20);
  r = ReadUntil(slow, 'c');
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r.back().command, 'c');
  std::lock_guard<std::mutex> l(sink.mu);
  EXPECT_EQ(sink.queue_ids, (std::vector<std::string>{"FAST", "SLOW"}));
}

TEST_F(ServerTest, OversizedPacketClosesTheConnection) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), server->port()});
  std::string opt;
  milter::AppendOptions(&opt, {6, 0x1ff, 0x1fffff, {}});
  asio::write(s, asio::buffer(opt));
  ASSERT_EQ(ReadUntil(s, 'O').size(), 1u);
  asio::write(s, asio::buffer(std::string("\x7f\0\0\0B", 5)));  // 2 GiB claimed
  auto r = ReadUntil(s, 'c');
  EXPECT_TRUE(r.empty()) << "the server must close, not answer";
}

TEST(ServerCreate, RejectsBadListenSpecs) {
  Policy p;
  SessionDeps d;
  d.policy = &p;
  for (const char* spec : {"127.0.0.1:25", "inet:nohost", "inet:999.1.1.1:25", "tcp:1"}) {
    ServerOptions so;
    so.listen = spec;
    EXPECT_FALSE(Server::Create(so, d).ok()) << spec;
  }
}

}  // namespace
}  // namespace mamori::mail
