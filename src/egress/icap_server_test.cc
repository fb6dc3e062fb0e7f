// The ICAP server against a real socket client, with a fake inspector (the
// detection engine has its own tests): known pitfalls of ICAP services.
#include "egress/icap_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace mamori::egress {
namespace {

// Counts "MYNUMBER" as jp.my_number and "PERSON" as one individual each.
// Keeps the text (test bodies are small).
class FakeInspector : public Inspector {
 public:
  Status BeginUnit(std::string_view) override {
    ++s_.units;
    return Status::Ok();
  }
  Status Text(std::string_view t) override {
    text_ += t;
    s_.bytes += t.size();
    return Status::Ok();
  }
  Status EndUnit() override { return Status::Ok(); }
  Result<InspectionSummary> Finish() override {
    if (fail_) return ResourceExhausted("fake budget");
    for (size_t p = text_.find("MYNUMBER"); p != std::string::npos;
         p = text_.find("MYNUMBER", p + 1))
      s_.types["jp.my_number"]++;
    for (size_t p = text_.find("PERSON"); p != std::string::npos; p = text_.find("PERSON", p + 1))
      s_.individuals++;
    return s_;
  }
  bool fail_ = false;

 private:
  std::string text_;
  InspectionSummary s_;
};

class FakeFactory : public InspectorFactory {
 public:
  Result<std::unique_ptr<Inspector>> New(const InspectOptions&) override {
    auto f = std::make_unique<FakeInspector>();
    f->fail_ = fail;
    return std::unique_ptr<Inspector>(std::move(f));
  }
  std::atomic<bool> fail{false};
};

const char kPolicy[] = R"(
settings: {preview_bytes: 1024, spool_memory_bytes: 64KiB, spool_max_bytes: 8MiB, memory_budget: 100KiB}
categories:
  strict: {uploads: inspect, over_memory_budget: block, domains: [strict.test]}
  unknown: {uploads: inspect, content: {block_types: [jp.my_number], max_individuals: 100}}
  personal_storage: {uploads: block, domains: [gigafile.nu]}
  downloads: {uploads: inspect, inspect_downloads: true, domains: [dl.test], content: {block_types: [jp.my_number]}}
  approved:
    uploads: allow
    domains: [corp.test]
    tenant_headers:
      - hosts: [login.corp.test]
        headers: {Restrict-Access-To-Tenants: "example.co.jp"}
caps:
  - {name: hourly, window: 1h, max_bytes: 1MB, categories: [unknown]}
)";

struct Response {
  std::string status_line;
  std::string head;        // ICAP head
  std::string http_head;   // encapsulated HTTP head, if any
  std::string body;        // de-chunked body
  std::string last_chunk;  // the zero chunk line
  bool ok = false;
};

class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~Client() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }
  bool Send(std::string_view s) {
    while (!s.empty()) {
      ssize_t w = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (w <= 0) return false;
      s.remove_prefix(static_cast<size_t>(w));
    }
    return true;
  }
  // Reads until `n` bytes are buffered; false on EOF/timeout.
  bool Need(size_t n) {
    char buf[65536];
    while (buf_.size() < n) {
      ssize_t r = ::recv(fd_, buf, sizeof(buf), 0);
      if (r <= 0) return false;
      buf_.append(buf, static_cast<size_t>(r));
    }
    return true;
  }
  bool ReadUntil(std::string_view delim, std::string* out) {
    char buf[65536];
    while (true) {
      size_t pos = buf_.find(delim);
      if (pos != std::string::npos) {
        *out = buf_.substr(0, pos + delim.size());
        buf_.erase(0, pos + delim.size());
        return true;
      }
      ssize_t r = ::recv(fd_, buf, sizeof(buf), 0);
      if (r <= 0) return false;
      buf_.append(buf, static_cast<size_t>(r));
    }
  }
  bool AtEof() {
    char c;
    return buf_.empty() && ::recv(fd_, &c, 1, 0) == 0;
  }
  Response Read() {
    Response r;
    if (!ReadUntil("\r\n\r\n", &r.head)) return r;
    r.status_line = r.head.substr(0, r.head.find("\r\n"));
    size_t e = r.head.find("Encapsulated: ");
    if (e == std::string::npos) return r;
    std::string enc = r.head.substr(e + 14, r.head.find("\r\n", e) - e - 14);
    bool has_body =
        enc.find("req-body=") != std::string::npos || enc.find("res-body=") != std::string::npos;
    size_t eq = enc.rfind('=');
    size_t hdr_len = std::stoul(enc.substr(eq + 1));
    if (!Need(hdr_len)) return r;
    r.http_head = buf_.substr(0, hdr_len);
    buf_.erase(0, hdr_len);
    if (has_body) {
      while (true) {
        std::string line;
        if (!ReadUntil("\r\n", &line)) return r;
        size_t size = std::stoul(line, nullptr, 16);
        if (size == 0) {
          r.last_chunk = line;
          std::string crlf;
          if (!ReadUntil("\r\n", &crlf)) return r;
          break;
        }
        if (!Need(size + 2)) return r;
        r.body += buf_.substr(0, size);
        buf_.erase(0, size + 2);
      }
    }
    r.ok = true;
    return r;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string Chunk(std::string_view d) {
  std::string out;
  AppendChunk(&out, d);
  return out;
}

// A REQMOD request. preview < 0: no Preview header (whole body sent).
std::string Reqmod(const std::string& http_head, std::string_view body, long preview, bool allow204,
                   bool has_body = true, const std::string& extra = "") {
  std::string enc = has_body ? "req-hdr=0, req-body=" + std::to_string(http_head.size())
                             : "req-hdr=0, null-body=" + std::to_string(http_head.size());
  std::string out = "REQMOD icap://127.0.0.1/reqmod ICAP/1.0\r\nHost: 127.0.0.1\r\n";
  if (allow204) out += "Allow: 204\r\n";
  if (preview >= 0) out += "Preview: " + std::to_string(preview) + "\r\n";
  out += extra + "X-Client-IP: 127.0.0.1\r\nEncapsulated: " + enc + "\r\n\r\n" + http_head;
  if (!has_body) return out;
  if (preview >= 0) {
    size_t n = std::min<size_t>(static_cast<size_t>(preview), body.size());
    if (n > 0) out += Chunk(body.substr(0, n));
    out += n == body.size() ? "0; ieof\r\n\r\n" : "0\r\n\r\n";
    return out;
  }
  for (size_t i = 0; i < body.size(); i += 10000) out += Chunk(body.substr(i, 10000));
  out += "0\r\n\r\n";
  return out;
}

std::string Post(const std::string& url, size_t len, const std::string& type = "text/plain") {
  return "POST " + url + " HTTP/1.1\r\nHost: x\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(len) + "\r\n\r\n";
}

class EgressIcapServer : public ::testing::Test {
 protected:
  // `clients` connections at once, each sending `each` clean uploads in
  // turn; returns how many were answered 204.
  int CleanUploadsFromManyClients(int clients, int each) {
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
      threads.emplace_back([&, t] {
        Client c(server_->port());
        for (int i = 0; i < each; ++i) {
          std::string body = "clean " + std::to_string(t * 100 + i);
          if (!c.Send(Reqmod(Post("http://host" + std::to_string(t) + ".example/", body.size()),
                             body, 1024, true))) {
            return;
          }
          if (c.Read().status_line == "ICAP/1.0 204 No Content") ++ok;
        }
      });
    }
    for (auto& t : threads) t.join();
    return ok.load();
  }

  void SetUp() override {
    dir_ = ::testing::TempDir() + "egress_server_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    { std::ofstream(dir_ + "/p.yaml") << kPolicy; }
    auto store = PolicyStore::Open(dir_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    ServerOptions o;
    o.port = 0;
    o.threads = 2;
    o.policies = store_.get();
    o.inspectors = &factory_;
    o.audit = &audit_;
    o.clock = &clock_;
    o.spool_dir = dir_;
    o.policy_poll_ms = 0;
    o.new_event_id = [this] { return "EV" + std::to_string(++ids_); };
    auto s = IcapServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  FakeFactory factory_;
  MemoryAuditSink audit_;
  FakeClock clock_{1'700'000'000'000'000};
  std::unique_ptr<PolicyStore> store_;
  std::unique_ptr<IcapServer> server_;
  std::atomic<int> ids_{0};
};

TEST_F(EgressIcapServer, OptionsAdvertisesTheService) {
  Client c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("OPTIONS icap://127.0.0.1/reqmod ICAP/1.0\r\nHost: 127.0.0.1\r\n\r\n"));
  Response r = c.Read();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status_line, "ICAP/1.0 200 OK");
  for (const char* h : {"Methods: REQMOD", "ISTag: \"mamori-", "Max-Connections: 1000",
                        "Options-TTL: 60", "Allow: 204", "Preview: 1024", "Service: "}) {
    EXPECT_NE(r.head.find(h), std::string::npos) << h;
  }
  // Persistent: a second request on the same connection.
  ASSERT_TRUE(c.Send("OPTIONS icap://127.0.0.1/respmod ICAP/1.0\r\nHost: 127.0.0.1\r\n\r\n"));
  Response r2 = c.Read();
  ASSERT_TRUE(r2.ok);
  EXPECT_NE(r2.head.find("Methods: RESPMOD"), std::string::npos);
  ASSERT_TRUE(c.Send("OPTIONS icap://127.0.0.1/nope ICAP/1.0\r\n\r\n"));
  EXPECT_EQ(c.Read().status_line, "ICAP/1.0 404 ICAP Service Not Found");
}

TEST_F(EgressIcapServer, CleanBodyInPreviewWithIeofGets204) {
  Client c(server_->port());
  std::string body = "hello, nothing personal here";
  ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", body.size()), body, 1024, true)));
  Response r = c.Read();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status_line, "ICAP/1.0 204 No Content");
  auto recs = audit_.records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].result, "allow");
  EXPECT_EQ(recs[0].destination, "files.example.org");
  EXPECT_EQ(recs[0].user, "ip:127.0.0.1");
  EXPECT_EQ(recs[0].bytes, body.size());
}

TEST_F(EgressIcapServer, IeofOnEmptyBody) {
  Client c(server_->port());
  ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", 0), "", 0, true)));
  Response r = c.Read();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status_line, "ICAP/1.0 204 No Content");
  // No 100 Continue may follow ieof: the next request on the connection works.
  ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", 0), "", 0, true)));
  EXPECT_EQ(c.Read().status_line, "ICAP/1.0 204 No Content");
}

TEST_F(EgressIcapServer, MyNumberBlockedWith403PageAndEventId) {
  Client c(server_->port());
  std::string body = "name,number\nTaro,MYNUMBER\n";
  ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", body.size()), body, 1024, true)));
  Response r = c.Read();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status_line, "ICAP/1.0 200 OK");
  EXPECT_NE(r.head.find("res-hdr=0, res-body="), std::string::npos);
  EXPECT_EQ(r.http_head.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u);
  EXPECT_NE(r.http_head.find("X-Mamori-Event-Id: EV1"), std::string::npos);
  EXPECT_NE(r.body.find("EV1"), std::string::npos);
  EXPECT_NE(r.body.find("マイナンバー"), std::string::npos);
  auto recs = audit_.records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].result, "block");
  EXPECT_EQ(recs[0].reason, "sensitive_content");
  EXPECT_EQ(recs[0].event_id, "EV1");
  EXPECT_EQ(recs[0].labels["types"]["jp.my_number"], 1);
}

TEST_F(EgressIcapServer, PersonalStorageBlockedInPreviewWithout100Continue) {
  Client c(server_->port());
  std::string body(50000, 'x');
  ASSERT_TRUE(c.Send(
      Reqmod(Post("https://103.gigafile.nu/upload_chunk.php", body.size()), body, 1024, true)));
  Response r = c.Read();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.http_head.rfind("HTTP/1.1 403", 0), 0u);
  EXPECT_NE(r.http_head.find("X-Mamori-Reason: destination_blocked"), std::string::npos);
  // The connection is in sync: the next request is answered.
  ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", 2), "ok", 1024, true)));
  EXPECT_EQ(c.Read().status_line, "ICAP/1.0 204 No Content");
}

TEST_F(EgressIcapServer, LargeBodyAfter100ContinueIsEchoedByteIdentical) {
  // > 64 KB, no Allow: 204 (as Squid does for large bodies): the body must be
  // returned whole, and the server must not stall waiting for it.
  std::string body;
  for (int i = 0; body.size() < 300000; ++i) body += "row " + std::to_string(i) + " clean data\n";
  Client c(server_->port());
  std::string http = Post("http://files.example.org/up", body.size());
  ASSERT_TRUE(c.Send(Reqmod(http, body, 1024, false)));
  std::string cont;
  ASSERT_TRUE(c.ReadUntil("\r\n\r\n", &cont));
  EXPECT_EQ(cont, "ICAP/1.0 100 Continue\r\n\r\n");
  std::string rest;
  for (size_t i = 1024; i < body.size(); i += 7000) {
    rest += Chunk(std::string_view(body).substr(i, 7000));
  }
  rest += "0\r\n\r\n";
  ASSERT_TRUE(c.Send(rest));
  Response r = c.Read();
  ASSERT_TRUE(r.ok) << r.head << "|" << r.http_head << "|" << r.body.size();
  EXPECT_EQ(r.status_line, "ICAP/1.0 200 OK");
  EXPECT_EQ(r.http_head, http);
  EXPECT_TRUE(r.body == body) << r.body.size() << " vs " << body.size();
}

TEST_F(EgressIcapServer, NoPreviewLargeBodyEchoedFromDiskSpool) {
  std::string body(900'000, 'a');  // spool_memory_bytes is 64 KiB: goes to a temp file
  for (size_t i = 0; i < body.size(); i += 997) body[i] = static_cast<char>('a' + i % 26);
  Client c(server_->port());
  std::string http = Post("http://big.example.net/up", body.size(), "application/octet-stream");
  std::thread sender([&] { c.Send(Reqmod(http, body, -1, false)); });
  Response r = c.Read();
  sender.join();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status_line, "ICAP/1.0 200 OK");
  EXPECT_TRUE(r.body == body);
}

TEST_F(EgressIcapServer, ClientAbortMidBodyIsRecordedAndServerStaysUp) {
  {
    Client c(server_->port());
    std::string http = Post("http://files.example.org/up", 100000);
    std::string msg = Reqmod(http, std::string(100000, 'z'), -1, true);
    ASSERT_TRUE(c.Send(msg.substr(0, msg.size() / 2)));
    c.Close();
  }
  for (int i = 0; i < 200 && audit_.records().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto recs = audit_.records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].result, "error");
  EXPECT_EQ(recs[0].reason, "client_abort");
  Client c2(server_->port());
  ASSERT_TRUE(c2.Send(Reqmod(Post("http://files.example.org/up", 2), "ok", 1024, true)));
  EXPECT_EQ(c2.Read().status_line, "ICAP/1.0 204 No Content");
}

TEST_F(EgressIcapServer, TenantHeaderAddedOnNullBodyAnd206OnUpload) {
  Client c(server_->port());
  std::string get =
      "GET https://login.corp.test/authorize HTTP/1.1\r\nHost: login.corp.test\r\n"
      "Restrict-Access-To-Tenants: evil.example\r\n\r\n";
  ASSERT_TRUE(c.Send(Reqmod(get, "", -1, true, false)));
  Response r = c.Read();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status_line, "ICAP/1.0 200 OK");
  EXPECT_NE(r.http_head.find("Restrict-Access-To-Tenants: example.co.jp\r\n"), std::string::npos);
  EXPECT_EQ(r.http_head.find("evil.example"), std::string::npos);
  std::string body = "MYNUMBER to an approved service is allowed";
  std::string post = Post("https://login.corp.test/upload", body.size());
  ASSERT_TRUE(c.Send(Reqmod(post, body, 10, true, true, "Allow: 206\r\n")));
  Response r2 = c.Read();
  ASSERT_TRUE(r2.ok) << r2.head << "|" << r2.http_head << "|" << r2.body;
  EXPECT_EQ(r2.status_line, "ICAP/1.0 206 Partial Content");
  EXPECT_NE(r2.http_head.find("Restrict-Access-To-Tenants: example.co.jp"), std::string::npos);
  EXPECT_EQ(r2.last_chunk, "0; use-original-body=0\r\n");
  // Without 206, the body is read after 100 Continue and echoed with the header.
  ASSERT_TRUE(c.Send(Reqmod(post, body, 10, true)));
  std::string cont;
  ASSERT_TRUE(c.ReadUntil("\r\n\r\n", &cont));
  EXPECT_EQ(cont, "ICAP/1.0 100 Continue\r\n\r\n");
  ASSERT_TRUE(c.Send(Chunk(std::string_view(body).substr(10)) + "0\r\n\r\n"));
  Response r3 = c.Read();
  ASSERT_TRUE(r3.ok);
  EXPECT_NE(r3.http_head.find("Restrict-Access-To-Tenants: example.co.jp"), std::string::npos);
  EXPECT_EQ(r3.body, body);
}

TEST_F(EgressIcapServer, VolumeCapAcrossRequests) {
  // Cap: 1 MB per hour to unknown destinations; 300 KB chunks.
  std::string chunk(300'000, 'c');
  int blocked = 0, allowed = 0;
  Client c(server_->port());
  for (int i = 0; i < 5; ++i) {
    std::string http =
        Post("https://7.bigfiles.example/upload", chunk.size(), "application/octet-stream");
    std::thread sender([&] { c.Send(Reqmod(http, chunk, -1, false)); });
    Response r = c.Read();
    sender.join();
    ASSERT_TRUE(r.ok);
    if (r.http_head.rfind("HTTP/1.1 403", 0) == 0) {
      ++blocked;
      EXPECT_NE(r.http_head.find("volume_cap"), std::string::npos);
    } else {
      ++allowed;
    }
  }
  EXPECT_EQ(allowed, 3);
  EXPECT_EQ(blocked, 2);
}

TEST_F(EgressIcapServer, FailsClosedOnInspectionErrorAndAuditFailure) {
  factory_.fail = true;
  Client c(server_->port());
  ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", 2), "ok", 1024, true)));
  Response r = c.Read();
  EXPECT_NE(r.http_head.find("inspection_failed"), std::string::npos);
  factory_.fail = false;
  audit_.set_fail(true);
  ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", 2), "ok", 1024, true)));
  Response r2 = c.Read();
  EXPECT_EQ(r2.http_head.rfind("HTTP/1.1 403", 0), 0u);
}

TEST_F(EgressIcapServer, MalformedRequestsGet400AndClose) {
  Client c(server_->port());
  ASSERT_TRUE(c.Send("REQMOD icap://127.0.0.1/reqmod ICAP/1.0\r\nEncapsulated: bogus\r\n\r\n"));
  Response r = c.Read();
  EXPECT_EQ(r.status_line, "ICAP/1.0 400 Bad Request");
  EXPECT_TRUE(c.AtEof());
  Client c2(server_->port());
  std::string bad = Reqmod(Post("http://x.example/", 5), "", -1, true);
  bad.resize(bad.size() - 5);  // drop "0\r\n\r\n"
  ASSERT_TRUE(c2.Send(bad + "zz\r\nhello\r\n"));
  // Bad chunk size: the connection is closed without an answer.
  EXPECT_FALSE(c2.Read().ok);
}

TEST_F(EgressIcapServer, RespmodInspectsDownloadsWhenPolicyAsks) {
  auto respmod = [](const std::string& host, const std::string& body) {
    std::string req = "GET http://" + host + "/export.csv HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
    std::string res = "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n";
    std::string out =
        "RESPMOD icap://127.0.0.1/respmod ICAP/1.0\r\nHost: 127.0.0.1\r\nAllow: 204\r\n"
        "Encapsulated: req-hdr=0, res-hdr=" +
        std::to_string(req.size()) + ", res-body=" + std::to_string(req.size() + res.size()) +
        "\r\n\r\n" + req + res;
    out += Chunk(body) + "0\r\n\r\n";
    return out;
  };
  Client c(server_->port());
  ASSERT_TRUE(c.Send(respmod("files.dl.test", "id,number\n1,MYNUMBER\n")));
  Response r = c.Read();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.http_head.rfind("HTTP/1.1 403", 0), 0u);
  ASSERT_TRUE(c.Send(respmod("files.dl.test", "id,number\n1,clean\n")));
  EXPECT_EQ(c.Read().status_line, "ICAP/1.0 204 No Content");
  // Categories without inspect_downloads are not inspected.
  ASSERT_TRUE(c.Send(respmod("www.example.org", "MYNUMBER")));
  EXPECT_EQ(c.Read().status_line, "ICAP/1.0 204 No Content");
  auto recs = audit_.records();
  ASSERT_GE(recs.size(), 2u);
  EXPECT_EQ(recs[0].action, "download");
  EXPECT_EQ(recs[0].result, "block");
  // REQMOD to the RESPMOD service is refused.
  ASSERT_TRUE(
      c.Send("REQMOD icap://127.0.0.1/respmod ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n"));
  EXPECT_EQ(c.Read().status_line, "ICAP/1.0 405 Method Not Allowed for Service");
}

TEST_F(EgressIcapServer, ManyConcurrentConnections) {
  EXPECT_EQ(CleanUploadsFromManyClients(40, 5), 200);
  EXPECT_GE(server_->stats().connections, 40u);
}

// The same server with the shared audit log (src/audit) underneath, whose
// appends complete on the log's commit threads while the I/O threads go on.
class EgressIcapServerAuditLog : public EgressIcapServer {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "egress_server_log_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    { std::ofstream(dir_ + "/p.yaml") << kPolicy; }
    auto store = PolicyStore::Open(dir_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto pub = audit::GenerateKeyPair(dir_ + "/keys");
    ASSERT_TRUE(pub.ok()) << pub.status().ToString();
    pub_ = *pub;
    audit::LogOptions lo;
    lo.path = dir_ + "/audit.log";
    lo.signing_key_path = dir_ + "/keys/" + audit::kSigningKeyFile;
    lo.env = &env_;
    auto sink = OpenAuditLog(lo);
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    log_ = std::move(sink).value();
    ServerOptions o;
    o.port = 0;
    o.threads = 2;
    o.policies = store_.get();
    o.inspectors = &factory_;
    o.audit = log_.get();
    o.spool_dir = dir_;
    o.policy_poll_ms = 0;
    o.audit_sync_every_decision = SyncEveryDecision();
    auto s = IcapServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
  }
  // These tests check that an answer waits for its record's fdatasync, so
  // every decision is synced first (--audit-sync all).
  virtual bool SyncEveryDecision() const { return true; }
  void TearDown() override {
    server_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  audit::VerifyReport VerifyLog() {
    audit::VerifyOptions v;
    v.log_path = dir_ + "/audit.log";
    v.public_key = pub_;
    auto rep = audit::Verify(v);
    EXPECT_TRUE(rep.ok()) << rep.status().ToString();
    return rep.ok() ? *rep : audit::VerifyReport{};
  }
  audit::FaultInjectionEnv env_{audit::Env::Default()};
  std::unique_ptr<AuditSink> log_;
  audit::PublicKey pub_;
};

TEST_F(EgressIcapServerAuditLog, ConcurrentDecisionsAreAllDurablyAudited) {
  EXPECT_EQ(CleanUploadsFromManyClients(40, 5), 200);
  server_.reset();
  log_.reset();
  auto rep = VerifyLog();
  EXPECT_TRUE(rep.ok()) << rep.ToString();
  EXPECT_EQ(rep.records, 200u);
  std::cout << "200 audited decisions, " << env_.syncs() << " fdatasyncs\n";
}

TEST_F(EgressIcapServerAuditLog, AuditSyncFailureBlocks) {
  Client c(server_->port());
  ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", 5), "clean", 1024, true)));
  EXPECT_EQ(c.Read().status_line, "ICAP/1.0 204 No Content");
  env_.FailSyncs(EIO);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", 5), "clean", 1024, true)));
    Response r = c.Read();
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.http_head.rfind("HTTP/1.1 403", 0), 0u) << "attempt " << i;
    EXPECT_NE(r.http_head.find("X-Mamori-Reason: inspection_failed"), std::string::npos);
  }
  // A destination blocked before the body is still answered (with the block page).
  ASSERT_TRUE(c.Send(Reqmod(Post("http://gigafile.nu/up", 5), "clean", 1024, true)));
  Response r = c.Read();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.http_head.rfind("HTTP/1.1 403", 0), 0u);
  EXPECT_EQ(server_->stats().allowed, 1u);
}

// --audit-sync findings (the default): a clean allow is answered once its
// record is written; a sync that then fails fails the log within the sync
// delay, and from then on every upload is blocked.
class EgressIcapServerAuditLogFindings : public EgressIcapServerAuditLog {
 protected:
  bool SyncEveryDecision() const override { return false; }
};

TEST_F(EgressIcapServerAuditLogFindings, CleanAllowsAnswerOnWriteAndAFailedSyncThenBlocks) {
  Client c(server_->port());
  env_.FailSyncs(EIO);
  ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", 5), "clean", 1024, true)));
  EXPECT_EQ(c.Read().status_line, "ICAP/1.0 204 No Content") << "written, its sync still to come";
  bool blocked = false;
  for (int i = 0; i < 100 && !blocked; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", 5), "clean", 1024, true)));
    Response r = c.Read();
    ASSERT_TRUE(r.ok);
    blocked = r.http_head.rfind("HTTP/1.1 403", 0) == 0;
  }
  EXPECT_TRUE(blocked) << "the failed background sync did not fail the log";
  EXPECT_FALSE(log_->Append(audit::Record{}).ok());
}

using GatedEnv = audit::GatedSyncEnv;  // holds every Sync until Release()

// Stop() while a decision's audit record is still being committed: the
// answer is not sent before the record is durable, Stop() waits for the
// commit instead of freeing what the commit thread will touch, and the
// record is in the log afterwards.
TEST(EgressIcapStop, StopWaitsForAnAuditCommitInFlight) {
  std::string dir = ::testing::TempDir() + "egress_stop_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/p.yaml") << kPolicy; }
  auto store = PolicyStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto pub = audit::GenerateKeyPair(dir + "/keys");
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  GatedEnv env(audit::Env::Default());
  audit::LogOptions lo;
  lo.path = dir + "/audit.log";
  lo.signing_key_path = dir + "/keys/" + audit::kSigningKeyFile;
  lo.env = &env;
  auto sink = OpenAuditLog(lo);
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  FakeFactory factory;
  ServerOptions o;
  o.port = 0;
  o.policies = store->get();
  o.inspectors = &factory;
  o.audit = sink->get();
  o.spool_dir = dir;
  o.policy_poll_ms = 0;
  o.audit_sync_every_decision = true;  // the answer waits for the held sync
  auto server = IcapServer::Start(o);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Client c((*server)->port());
  ASSERT_TRUE(c.Send(Reqmod(Post("http://files.example.org/up", 5), "clean", 1024, true)));
  ASSERT_TRUE(env.WaitSyncsStarted(1));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    (*server)->Stop();
    stopped = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(stopped) << "Stop() returned while an audit commit was in flight";
  env.Release();
  stopper.join();
  EXPECT_TRUE(stopped);
  // The server stopped before it could answer (its connections close with
  // it): no answer was sent.
  server->reset();
  EXPECT_FALSE(c.Read().ok);
  sink->reset();
  audit::VerifyOptions v;
  v.log_path = lo.path;
  v.public_key = *pub;
  auto rep = audit::Verify(v);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->ok()) << rep->ToString();
  EXPECT_EQ(rep->records, 1u);
  std::filesystem::remove_all(dir);
}

// The idle timeout closes a connection that sends nothing, and leaves one
// alone that keeps sending (the timer is armed once, not per read).
TEST(EgressIcapIdle, SilentConnectionClosedBusyOneKept) {
  std::string dir = ::testing::TempDir() + "egress_idle_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir + "/p.yaml") << "settings: {idle_timeout: 1s, preview_bytes: 1024}\n"
                                      "categories:\n  unknown: {uploads: inspect}\n";
  }
  auto store = PolicyStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  FakeFactory factory;
  MemoryAuditSink audit;
  ServerOptions o;
  o.port = 0;
  o.policies = store->get();
  o.inspectors = &factory;
  o.audit = &audit;
  o.spool_dir = dir;
  o.policy_poll_ms = 0;
  auto server = IcapServer::Start(o);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Client silent((*server)->port());
  Client busy((*server)->port());
  ASSERT_TRUE(silent.connected() && busy.connected());
  // Busy: a request every 400 ms for 2.4 s, twice the idle timeout in all.
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(busy.Send(Reqmod(Post("http://files.example.org/up", 5), "clean", 1024, true)));
    EXPECT_EQ(busy.Read().status_line, "ICAP/1.0 204 No Content") << "request " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  // Silent: closed by the server by now (recv would time out after 10 s).
  EXPECT_TRUE(silent.AtEof());
  (*server)->Stop();
  std::filesystem::remove_all(dir);
}

// Event IDs come from a per-thread pool of random bytes: each ID is fresh,
// 10 Crockford base32 characters, across pool refills and threads.
TEST(EgressEventId, UniqueAcrossRefillsAndThreads) {
  std::mutex mu;
  std::set<std::string> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {  // 20 KB of random bytes: several refills
        std::string id = RandomEventId();
        ASSERT_EQ(id.size(), 10u);
        ASSERT_EQ(id.find_first_not_of("0123456789ABCDEFGHJKMNPQRSTVWXYZ"), std::string::npos)
            << id;
        std::lock_guard<std::mutex> l(mu);
        ids.insert(id);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ids.size(), 6000u);
}

// Content-Encoding that cannot be decoded cannot be inspected: blocked.
TEST_F(EgressIcapServer, UnknownContentEncodingFailsClosed) {
  for (const char* enc : {"zstd", "compress", "gzip, br"}) {
    Client c(server_->port());
    std::string http =
        "POST http://files.example.org/up HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Encoding: " +
        std::string(enc) + "\r\nContent-Length: 4\r\n\r\n";
    ASSERT_TRUE(c.Send(Reqmod(http, "abcd", 1024, true)));
    Response r = c.Read();
    ASSERT_TRUE(r.ok) << enc;
    EXPECT_EQ(r.http_head.rfind("HTTP/1.1 403", 0), 0u) << enc;
    EXPECT_NE(r.http_head.find("X-Mamori-Reason: inspection_failed"), std::string::npos) << enc;
    auto recs = audit_.records();
    ASSERT_FALSE(recs.empty());
    EXPECT_NE(recs.back().extra["detail"].get<std::string>().find("cannot be inspected"),
              std::string::npos);
  }
}

// Bodies held for their verdict share settings.memory_budget (100 KiB here).
// While another upload holds it: an "over_memory_budget: disk" category
// spools to a temp file and passes; a "block" category fails closed.
TEST_F(EgressIcapServer, MemoryBudgetSpillsToDiskOrBlocksPerCategory) {
  // A holds 60,000 bytes in memory and waits (no zero chunk yet).
  Client a(server_->port());
  std::string big(60'000, 'a');
  std::string msg = Reqmod(Post("http://files.example.org/a", big.size()), big, -1, false);
  std::string last = "0\r\n\r\n";
  ASSERT_TRUE(a.Send(msg.substr(0, msg.size() - last.size())));
  for (int i = 0; i < 500 && server_->stats().held_bytes < 60'000; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(server_->stats().held_bytes, 60'000u);
  // B (50,000 bytes) does not fit in what is left: unknown goes to disk...
  std::string mid(50'000, 'b');
  Client b(server_->port());
  ASSERT_TRUE(b.Send(Reqmod(Post("http://files.example.org/b", mid.size()), mid, -1, false)));
  Response rb = b.Read();
  ASSERT_TRUE(rb.ok);
  EXPECT_EQ(rb.status_line, "ICAP/1.0 200 OK");
  EXPECT_EQ(rb.body, mid);
  // ...and the strict category refuses to hold it.
  Client s(server_->port());
  ASSERT_TRUE(s.Send(Reqmod(Post("http://up.strict.test/s", mid.size()), mid, -1, false)));
  Response rs = s.Read();
  ASSERT_TRUE(rs.ok);
  EXPECT_EQ(rs.http_head.rfind("HTTP/1.1 403", 0), 0u);
  EXPECT_NE(rs.http_head.find("X-Mamori-Reason: inspection_failed"), std::string::npos);
  auto recs = audit_.records();
  ASSERT_FALSE(recs.empty());
  EXPECT_NE(recs.back().extra["detail"].get<std::string>().find("over_memory_budget"),
            std::string::npos);
  // A small strict upload still fits.
  ASSERT_TRUE(
      s.Send(Reqmod(Post("http://up.strict.test/s", 100), std::string(100, 's'), -1, false)));
  EXPECT_EQ(s.Read().status_line, "ICAP/1.0 200 OK");
  // A finishes; every reservation is returned.
  ASSERT_TRUE(a.Send(last));
  Response ra = a.Read();
  EXPECT_EQ(ra.body, big);
  for (int i = 0; i < 500 && server_->stats().held_bytes > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server_->stats().held_bytes, 0u);
}

}  // namespace
}  // namespace mamori::egress
