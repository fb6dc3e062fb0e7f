// Cost of the governance checks on the request path: Vault::Handle for an
// authenticated GET /v1/me, in process (no TLS, audit records discarded so the
// fsync does not hide the difference), with and without governance rules:
//   /0  no network rules, no contractor organisations (the common case)
//   /1  a group rule, a role rule, a user rule and the user in an organisation
// Compare the two in the same run; run on an idle machine for absolute numbers.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "vault/identity.h"
#include "vault/pki.h"
#include "vault/service.h"

using namespace mamori;
using namespace mamori::vault;
using json = nlohmann::json;

namespace {

class NullAudit : public AuditSink {
 public:
  Status Append(audit::Record) override { return Status::Ok(); }
};

class FixedClock : public Clock {
 public:
  int64_t NowMicros() const override { return now; }
  int64_t now = 1'800'000'000LL * 1000000;
};

class StringBody : public BodySource {
 public:
  explicit StringBody(std::string s) : s_(std::move(s)) {}
  Result<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min(n, s_.size() - off_);
    std::memcpy(buf, s_.data() + off_, k);
    off_ += k;
    return k;
  }

 private:
  std::string s_;
  size_t off_ = 0;
};

class StringSink : public ResponseSink {
 public:
  Status Start(int status, const std::vector<std::pair<std::string, std::string>>&,
               std::optional<uint64_t>) override {
    this->status = status;
    started_ = true;
    return Status::Ok();
  }
  Status Write(std::string_view d) override {
    body.append(d);
    return Status::Ok();
  }
  Status Finish() override { return Status::Ok(); }
  bool started() const override { return started_; }
  int status = 0;
  std::string body;

 private:
  bool started_ = false;
};

struct Env {
  std::filesystem::path dir;
  FixedClock clock;
  std::unique_ptr<Vault> vault;
  std::string admin_fp, admin_token, alice_fp, alice_token;

  json Do(const std::string& method, const std::string& target, const std::string& fp,
          const std::string& token, const json& body = nullptr, int* status = nullptr) {
    HttpRequest r;
    r.method = method;
    r.target = target;
    r.source_ip = "127.0.0.1";
    r.cert_fingerprint = fp;
    if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
    StringBody b(body.is_null() ? "" : body.dump());
    StringSink s;
    vault->Handle(r, b, s);
    if (status) *status = s.status;
    json j = json::parse(s.body, nullptr, false);
    return j.is_discarded() ? json::object() : j;
  }
  // Enrols with a token and logs in; returns {fingerprint, session}.
  std::pair<std::string, std::string> Join(const std::string& user, const std::string& token) {
    auto csr = CreateDeviceCsr(user);
    json e = Do("POST", "/v1/enroll", "", "",
                {{"user", user},
                 {"device_name", user + "-pc"},
                 {"csr", csr->csr_pem},
                 {"token", token},
                 {"password", "Kumo-7tsuki&Hoshi9"}});
    std::string secret = e["totp_secret"];
    std::string raw;
    uint32_t buf = 0;
    int bits = 0;
    for (char ch : secret) {
      int v = (ch >= 'A' && ch <= 'Z') ? ch - 'A' : (ch >= '2' && ch <= '7') ? ch - '2' + 26 : -1;
      if (v < 0) continue;
      buf = (buf << 5) | static_cast<uint32_t>(v);
      bits += 5;
      if (bits >= 8) {
        raw.push_back(static_cast<char>((buf >> (bits - 8)) & 0xff));
        bits -= 8;
      }
    }
    std::string fp = *CertFingerprint(e["certificate"]);
    clock.now += 30'000'000;
    json l = Do("POST", "/v1/login", fp, "",
                {{"user", user},
                 {"password", "Kumo-7tsuki&Hoshi9"},
                 {"totp", TotpCode(raw, clock.now / 1000000)}});
    return {fp, l.value("token", "")};
  }
};

std::unique_ptr<Env> MakeEnv(bool rules) {
  auto env = std::make_unique<Env>();
  env->dir = std::filesystem::temp_directory_path() /
             ("mamori_gov_bench_" + std::to_string(::getpid()) + (rules ? "_r" : "_n"));
  std::filesystem::remove_all(env->dir);
  VaultOptions o;
  o.data_dir = (env->dir / "data").string();
  o.keyring_path = (env->dir / "keys/kek.keyring").string();
  o.clock = &env->clock;
  o.session_ttl_micros = 24LL * 3600 * 1000000;
  auto init = Vault::Initialize(o, "admin", "DNS:localhost");
  if (!init.ok()) return nullptr;
  auto v = Vault::Open(o, std::make_unique<NullAudit>());
  if (!v.ok()) return nullptr;
  env->vault = std::move(v).value();
  std::tie(env->admin_fp, env->admin_token) = env->Join("admin", init->enrol_token);
  json u = env->Do("POST", "/v1/admin/users", env->admin_fp, env->admin_token,
                   {{"name", "alice"}, {"role", "member"}});
  env->Do("POST", "/v1/admin/groups", env->admin_fp, env->admin_token, {{"name", "sales"}});
  env->Do("POST", "/v1/admin/groups/sales/members", env->admin_fp, env->admin_token,
          {{"user", "alice"}});
  json f = env->Do("POST", "/v1/admin/folders", env->admin_fp, env->admin_token, {{"name", "f"}});
  if (rules) {
    env->Do("PUT", "/v1/admin/network/group/sales", env->admin_fp, env->admin_token,
            {{"cidrs", "10.0.0.0/8,127.0.0.0/8"}});
    env->Do("PUT", "/v1/admin/network/role/member", env->admin_fp, env->admin_token,
            {{"cidrs", "127.0.0.0/8"}});
    env->Do("PUT", "/v1/admin/network/user/alice", env->admin_fp, env->admin_token,
            {{"cidrs", "127.0.0.1/32"}});
    env->Do("POST", "/v1/admin/orgs", env->admin_fp, env->admin_token,
            {{"name", "acme"},
             {"scope", {f["id"]}},
             {"expires_micros", env->clock.now + 86400LL * 1000000}});
    env->Do("POST", "/v1/admin/orgs/acme/members", env->admin_fp, env->admin_token,
            {{"user", "alice"}});
  }
  std::tie(env->alice_fp, env->alice_token) = env->Join("alice", u["enrol_token"]);
  return env;
}

void BM_AuthenticatedRequest(benchmark::State& state) {
  auto env = MakeEnv(state.range(0) == 1);
  if (!env) {
    state.SkipWithError("cannot set up the vault");
    return;
  }
  int status = 0;
  env->Do("GET", "/v1/me", env->alice_fp, env->alice_token, nullptr, &status);
  if (status != 200) {
    state.SkipWithError("GET /v1/me was refused");
    return;
  }
  for (auto _ : state) {
    json j = env->Do("GET", "/v1/me", env->alice_fp, env->alice_token, nullptr, &status);
    benchmark::DoNotOptimize(j);
  }
  if (status != 200) state.SkipWithError("refused during the run");
  env->vault.reset();
  std::filesystem::remove_all(env->dir);
}
BENCHMARK(BM_AuthenticatedRequest)->Arg(0)->Arg(1)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
