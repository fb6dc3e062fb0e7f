// Shared fixture for the vault integration tests: a real vault behind real
// HTTPS on 127.0.0.1 (ephemeral port), a real audit log, and helpers that
// enrol devices (CSR -> certificate) and log in with password + TOTP.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "audit/audit.h"
#include "audit/env.h"
#include "common/clock.h"
#include "vault/client.h"
#include "vault/identity.h"
#include "vault/pki.h"
#include "vault/server.h"
#include "vault/service.h"

namespace mamori::vault::testing {

using json = nlohmann::json;

// Thread-safe settable clock (the server reads it from connection threads).
class TestClock : public Clock {
 public:
  explicit TestClock(int64_t start) : now_(start) {}
  int64_t NowMicros() const override { return now_.load(); }
  void Advance(int64_t micros) { now_ += micros; }

 private:
  std::atomic<int64_t> now_;
};

inline std::string Base32Decode(const std::string& s) {
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : s) {
    int v = (c >= 'A' && c <= 'Z') ? c - 'A' : (c >= '2' && c <= '7') ? c - '2' + 26 : -1;
    if (v < 0) continue;
    buf = (buf << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<char>((buf >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

struct DeviceCreds {
  std::string cert_path, key_path;
  int64_t device_id = 0;
  std::string totp_secret;  // raw bytes; only after the first enrolment
  std::string poll_secret;
};

class VaultFixture : public ::testing::Test {
 protected:
  static constexpr const char* kPassword = "Kumo-7tsuki&Hoshi9";

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mamori_vault_it_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "keys");
    std::filesystem::create_directories(dir_ / "client");
    opts_.data_dir = (dir_ / "data").string();
    opts_.keyring_path = (dir_ / "keys/kek.keyring").string();
    opts_.clock = &clock_;
    auto init = Vault::Initialize(opts_, "admin", "DNS:localhost,IP:127.0.0.1");
    ASSERT_TRUE(init.ok()) << init.status().ToString();
    admin_token_ = init->enrol_token;
    ca_path_ = init->ca_cert_path;
    auto pub = audit::GenerateKeyPair((dir_ / "keys").string());
    ASSERT_TRUE(pub.ok()) << pub.status().ToString();
    audit_pub_ = *pub;
    StartServer();
  }

  virtual void StartServer() {
    audit::LogOptions lo;
    lo.path = AuditPath();
    lo.signing_key_path = (dir_ / "keys" / audit::kSigningKeyFile).string();
    lo.clock = &clock_;
    lo.env = &fault_env_;
    auto log = audit::Log::Open(lo);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
    opts_.audit_log_path = AuditPath();
    auto v = Vault::Open(opts_, MakeAuditLogSink(log_.get()));
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    vault_ = std::move(v).value();
    ServerOptions so;
    so.port = 0;
    so.cert_path = opts_.data_dir + "/pki/server.crt";
    so.key_path = opts_.data_dir + "/pki/server.key";
    so.client_ca_path = ca_path_;
    so.io_timeout_seconds = 20;
    auto s = Server::Start(so, vault_.get());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    port_ = server_->port();
  }

  virtual void StopServer() {
    server_.reset();
    vault_.reset();
    if (log_) (void)log_->Close();
    log_.reset();
  }

  void TearDown() override {
    StopServer();
    std::filesystem::remove_all(dir_);
  }

  virtual std::string AuditPath() const { return (dir_ / "audit.log").string(); }

  std::unique_ptr<Client> Connect(const DeviceCreds* dev) {
    ClientOptions co;
    co.port = port_;
    co.ca_path = ca_path_;
    if (dev) {
      co.cert_path = dev->cert_path;
      co.key_path = dev->key_path;
    }
    auto c = Client::Connect(co);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  ClientResponse Call(const DeviceCreds* dev, const std::string& method, const std::string& target,
                      const json& body = nullptr, const std::string& token = "") {
    auto c = Connect(dev);
    if (!c) return {};
    std::map<std::string, std::string> h;
    if (!token.empty()) h["authorization"] = "Bearer " + token;
    auto r = c->Call(method, target, h, body.is_null() ? "" : body.dump());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ClientResponse{};
  }

  static json J(const ClientResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    return j.is_discarded() ? json::object() : j;
  }

  // Enrols a device for `user`. With a token: first enrolment sets the
  // password and returns the TOTP secret; the device is active at once.
  DeviceCreds Enroll(const std::string& user, const std::string& token,
                     const std::string& password = kPassword, const std::string& totp = "") {
    static int n = 0;
    DeviceCreds d;
    auto csr = CreateDeviceCsr(user + "-device");
    EXPECT_TRUE(csr.ok());
    json body = {{"user", user},
                 {"device_name", user + "-laptop"},
                 {"csr", csr->csr_pem},
                 {"password", password}};
    if (!token.empty()) body["token"] = token;
    if (!totp.empty()) body["totp"] = totp;
    auto r = Call(nullptr, "POST", "/v1/enroll", body);
    EXPECT_EQ(r.status, 201) << r.body;
    json j = J(r);
    d.device_id = j.value("device_id", int64_t{0});
    d.poll_secret = j.value("poll_secret", std::string());
    if (j.contains("totp_secret")) d.totp_secret = Base32Decode(j["totp_secret"]);
    std::string base = (dir_ / "client" / (user + std::to_string(++n))).string();
    d.key_path = base + ".key";
    d.cert_path = base + ".crt";
    std::ofstream(d.key_path) << csr->key_pem;
    std::ofstream(d.cert_path) << j.value("certificate", std::string());
    return d;
  }

  void FetchCert(DeviceCreds* d) {
    auto r = Call(nullptr, "GET",
                  "/v1/enroll/" + std::to_string(d->device_id) + "?secret=" + d->poll_secret);
    ASSERT_EQ(r.status, 200) << r.body;
    std::ofstream(d->cert_path) << J(r).value("certificate", std::string());
  }

  virtual std::string Totp(const DeviceCreds& d) {
    // A fresh 30 s step per call, so codes are never replays.
    clock_.Advance(30'000'000);
    return TotpCode(d.totp_secret, clock_.NowMicros() / 1000000);
  }

  std::string Login(const DeviceCreds& d, const std::string& user,
                    const std::string& password = kPassword) {
    auto r =
        Call(&d, "POST", "/v1/login", {{"user", user}, {"password", password}, {"totp", Totp(d)}});
    EXPECT_EQ(r.status, 200) << r.body;
    return J(r).value("token", std::string());
  }

  // Admin enrolled and logged in; a member "alice" in group "sales" with rw on
  // folder "顧客" who has accepted the pledge.
  void SetUpOrg() {
    admin_ = Enroll("admin", admin_token_);
    admin_session_ = Login(admin_, "admin");
    ASSERT_FALSE(admin_session_.empty());
    auto u = Call(&admin_, "POST", "/v1/admin/users", {{"name", "alice"}, {"role", "member"}},
                  admin_session_);
    ASSERT_EQ(u.status, 201) << u.body;
    ASSERT_EQ(Call(&admin_, "POST", "/v1/admin/groups", {{"name", "sales"}}, admin_session_).status,
              201);
    ASSERT_EQ(
        Call(&admin_, "POST", "/v1/admin/groups/sales/members", {{"user", "alice"}}, admin_session_)
            .status,
        200);
    auto f = Call(&admin_, "POST", "/v1/admin/folders", {{"name", "顧客"}}, admin_session_);
    ASSERT_EQ(f.status, 201) << f.body;
    folder_ = J(f)["id"].get<int64_t>();
    ASSERT_EQ(Call(&admin_, "PUT", "/v1/admin/folders/" + std::to_string(folder_) + "/acl",
                   {{"group", "sales"}, {"perms", "rw"}}, admin_session_)
                  .status,
              200);
    alice_ = Enroll("alice", J(u)["enrol_token"]);
    alice_session_ = Login(alice_, "alice");
    ASSERT_EQ(Call(&alice_, "POST", "/v1/pledge", {{"accept", true}, {"version", "2026-1"}},
                   alice_session_)
                  .status,
              200);
  }

  std::string FileUrl(const std::string& name) {
    return "/v1/folders/" + std::to_string(folder_) + "/files/" + UrlEncode(name);
  }

  ClientResponse Put(const DeviceCreds& d, const std::string& token, const std::string& name,
                     const std::string& content, const std::string& sha = "") {
    auto c = Connect(&d);
    std::map<std::string, std::string> h{{"authorization", "Bearer " + token}};
    if (!sha.empty()) h["x-mamori-sha256"] = sha;
    size_t off = 0;
    auto r = c->Upload("PUT", FileUrl(name), h, content.size(),
                       [&](char* b, size_t n) -> Result<size_t> {
                         size_t k = std::min(n, content.size() - off);
                         std::memcpy(b, content.data() + off, k);
                         off += k;
                         return k;
                       });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ClientResponse{};
  }

  ClientResponse Get(const DeviceCreds& d, const std::string& token, const std::string& name,
                     std::string* content) {
    auto c = Connect(&d);
    auto r =
        c->Download(FileUrl(name), {{"authorization", "Bearer " + token}}, [&](std::string_view s) {
          content->append(s);
          return Status::Ok();
        });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ClientResponse{};
  }

  // Audit records matching action and user.
  std::vector<audit::Record> AuditRecords(const std::string& action, const std::string& user) {
    std::vector<audit::Record> out;
    audit::ReaderOptions ro;
    ro.path = AuditPath();
    audit::Filter f;
    f.action = action;
    f.user = user;
    Status s = audit::Scan(ro, f, [&](const audit::StoredRecord& r) {
      out.push_back(r.record);
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  std::filesystem::path dir_;
  TestClock clock_{1'800'000'000LL * 1000000};
  audit::FaultInjectionEnv fault_env_{audit::Env::Default()};
  VaultOptions opts_;
  std::string admin_token_, ca_path_;
  audit::PublicKey audit_pub_;
  std::unique_ptr<audit::Log> log_;
  std::unique_ptr<Vault> vault_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
  DeviceCreds admin_, alice_;
  std::string admin_session_, alice_session_;
  int64_t folder_ = 0;
};

}  // namespace mamori::vault::testing
