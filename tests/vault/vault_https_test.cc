// Behaviour tests of the vault over real HTTPS on 127.0.0.1 (issue 4).
#include <cerrno>

#include "crypto/crypto.h"
#include "vault_fixture.h"

namespace mamori::vault::testing {
namespace {

std::string Sha(std::string_view s) {
  crypto::Sha256 h;
  h.Update(s);
  return h.FinishHex();
}

std::string ReadAllFiles(const std::filesystem::path& dir) {
  std::string all;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), {});
  }
  return all;
}

const std::string kCsv =
    "氏名,電話番号,メールアドレス\n"
    "山田太郎,090-1234-5678,taro.yamada@example.co.jp\n"
    "佐藤花子,080-2345-6789,hanako.sato@example.co.jp\n";

TEST_F(VaultFixture, EndToEndPutListGetWithEncryptedNamesAndContent) {
  SetUpOrg();
  const std::string name = "顧客名簿_山田様.csv";
  auto put = Put(alice_, alice_session_, name, kCsv, Sha(kCsv));
  ASSERT_EQ(put.status, 201) << put.body;
  json pj = J(put);
  EXPECT_EQ(pj["sha256"], Sha(kCsv));
  EXPECT_EQ(pj["version"], 1);

  auto ls = Call(&alice_, "GET", "/v1/folders/" + std::to_string(folder_) + "/files", nullptr,
                 alice_session_);
  ASSERT_EQ(ls.status, 200) << ls.body;
  json files = J(ls)["files"];
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]["name"], name);
  EXPECT_EQ(files[0]["size"], kCsv.size());

  std::string got;
  auto get = Get(alice_, alice_session_, name, &got);
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(got, kCsv);
  EXPECT_EQ(get.header("x-mamori-sha256"), Sha(kCsv));

  // Second version, then versions list.
  std::string v2 = kCsv + "鈴木一郎,070-3456-7890,ichiro@example.co.jp\n";
  ASSERT_EQ(Put(alice_, alice_session_, name, v2).status, 201);
  auto vs = Call(&alice_, "GET", FileUrl(name) + "/versions", nullptr, alice_session_);
  ASSERT_EQ(vs.status, 200);
  EXPECT_EQ(J(vs)["versions"].size(), 2u);

  // Nothing on disk holds the file name, the folder name or the content.
  (void)log_->Checkpoint();
  std::string disk = ReadAllFiles(opts_.data_dir);
  EXPECT_EQ(disk.find("山田"), std::string::npos);
  EXPECT_EQ(disk.find("顧客"), std::string::npos);
  EXPECT_EQ(disk.find("taro.yamada"), std::string::npos);
  // Nor does the audit log.
  std::ifstream al(AuditPath());
  std::string audit_text((std::istreambuf_iterator<char>(al)), {});
  EXPECT_EQ(audit_text.find("山田"), std::string::npos);
  EXPECT_FALSE(AuditRecords("put", "alice").empty());
  EXPECT_FALSE(AuditRecords("get", "alice").empty());
}

TEST_F(VaultFixture, UploadWithWrongHashStoresNothing) {
  SetUpOrg();
  auto put = Put(alice_, alice_session_, "a.txt", "hello", std::string(64, '0'));
  EXPECT_EQ(put.status, 400) << put.body;
  auto ls = Call(&alice_, "GET", "/v1/folders/" + std::to_string(folder_) + "/files", nullptr,
                 alice_session_);
  EXPECT_TRUE(J(ls)["files"].empty());
  EXPECT_TRUE(std::filesystem::is_empty(opts_.data_dir + "/blobs/objects"));
}

TEST_F(VaultFixture, LoginWithoutTotpIsRefused) {
  admin_ = Enroll("admin", admin_token_);
  auto r = Call(&admin_, "POST", "/v1/login", {{"user", "admin"}, {"password", kPassword}});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("TOTP"), std::string::npos);
  auto wrong = Call(&admin_, "POST", "/v1/login",
                    {{"user", "admin"}, {"password", kPassword}, {"totp", "000000"}});
  EXPECT_EQ(wrong.status, 403);
  auto recs = AuditRecords("login", "admin");
  ASSERT_GE(recs.size(), 2u);
  EXPECT_EQ(recs[0].result, "deny");
}

TEST_F(VaultFixture, TotpCodeCannotBeReplayed) {
  admin_ = Enroll("admin", admin_token_);
  clock_.Advance(30'000'000);
  std::string code = TotpCode(admin_.totp_secret, clock_.NowMicros() / 1000000);
  json body = {{"user", "admin"}, {"password", kPassword}, {"totp", code}};
  EXPECT_EQ(Call(&admin_, "POST", "/v1/login", body).status, 200);
  EXPECT_EQ(Call(&admin_, "POST", "/v1/login", body).status, 403);
}

TEST_F(VaultFixture, CorrectPasswordOnUnenrolledDeviceIsRefused) {
  admin_ = Enroll("admin", admin_token_);
  // No client certificate at all.
  auto r = Call(nullptr, "POST", "/v1/login",
                {{"user", "admin"}, {"password", kPassword}, {"totp", Totp(admin_)}});
  EXPECT_EQ(r.status, 403) << r.body;
  // A certificate from another CA (self-made), with the right key shape.
  auto other_ca = CreateCa("rogue", 30);
  auto csr = CreateDeviceCsr("rogue");
  auto cert = SignDeviceCsr(*other_ca, csr->csr_pem, "rogue", 1, 30);
  ASSERT_TRUE(cert.ok());
  DeviceCreds rogue;
  rogue.cert_path = (dir_ / "client/rogue.crt").string();
  rogue.key_path = (dir_ / "client/rogue.key").string();
  std::ofstream(rogue.cert_path) << *cert;
  std::ofstream(rogue.key_path) << csr->key_pem;
  auto r2 = Call(&rogue, "POST", "/v1/login",
                 {{"user", "admin"}, {"password", kPassword}, {"totp", Totp(admin_)}});
  EXPECT_EQ(r2.status, 403) << r2.body;
}

TEST_F(VaultFixture, PendingDeviceNeedsAdminApproval) {
  SetUpOrg();
  auto second = Enroll("alice", "", kPassword, Totp(alice_));
  auto st =
      Call(nullptr, "GET",
           "/v1/enroll/" + std::to_string(second.device_id) + "?secret=" + second.poll_secret);
  EXPECT_EQ(J(st)["status"], "pending");
  EXPECT_FALSE(J(st).contains("certificate"));
  EXPECT_EQ(
      Call(nullptr, "GET", "/v1/enroll/" + std::to_string(second.device_id) + "?secret=x").status,
      404);
  // The owner cannot approve; only an admin.
  EXPECT_EQ(
      Call(&alice_, "POST", "/v1/admin/devices/" + std::to_string(second.device_id) + "/approve",
           nullptr, alice_session_)
          .status,
      403);
  auto ap =
      Call(&admin_, "POST", "/v1/admin/devices/" + std::to_string(second.device_id) + "/approve",
           nullptr, admin_session_);
  ASSERT_EQ(ap.status, 200) << ap.body;
  FetchCert(&second);
  second.totp_secret = alice_.totp_secret;
  EXPECT_FALSE(Login(second, "alice").empty());
}

TEST_F(VaultFixture, LockedDeviceIsRefusedOnItsNextRequest) {
  SetUpOrg();
  auto ok = Call(&alice_, "GET", "/v1/me", nullptr, alice_session_);
  ASSERT_EQ(ok.status, 200);
  auto lock =
      Call(&admin_, "POST", "/v1/admin/devices/" + std::to_string(alice_.device_id) + "/lock",
           nullptr, admin_session_);
  ASSERT_EQ(lock.status, 200) << lock.body;
  EXPECT_EQ(J(lock)["sessions_revoked"], 1);
  auto next = Call(&alice_, "GET", "/v1/me", nullptr, alice_session_);
  EXPECT_EQ(next.status, 403);
  EXPECT_NE(next.body.find("locked"), std::string::npos);
  // Even a fresh login with the right password and TOTP is refused.
  auto login = Call(&alice_, "POST", "/v1/login",
                    {{"user", "alice"}, {"password", kPassword}, {"totp", Totp(alice_)}});
  EXPECT_EQ(login.status, 403);
  // The device list shows when and from where it was last seen.
  auto devs = Call(&admin_, "GET", "/v1/admin/devices", nullptr, admin_session_);
  ASSERT_EQ(devs.status, 200) << devs.body;
  bool found = false;
  json dj = J(devs);
  for (auto& d : dj["devices"])
    if (d["id"] == alice_.device_id) {
      found = true;
      EXPECT_EQ(d["status"], "locked");
      EXPECT_EQ(d["last_ip"], "127.0.0.1");
      EXPECT_GT(d["last_seen_micros"].get<int64_t>(), 0);
    }
  EXPECT_TRUE(found);
}

TEST_F(VaultFixture, AdminReadingContentIsRefusedAndAudited) {
  SetUpOrg();
  ASSERT_EQ(Put(alice_, alice_session_, "list.csv", kCsv).status, 201);
  std::string got;
  auto r = Get(admin_, admin_session_, "list.csv", &got);
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(got.empty());
  auto recs = AuditRecords("get", "admin");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].result, "deny");
  EXPECT_NE(recs[0].reason.find("separation of duties"), std::string::npos);
  // The admin cannot grant itself access either.
  auto self =
      Call(&admin_, "POST", "/v1/admin/groups/sales/members", {{"user", "admin"}}, admin_session_);
  EXPECT_EQ(self.status, 403);
  EXPECT_EQ(Get(admin_, admin_session_, "list.csv", &got).status, 403);
}

TEST_F(VaultFixture, MaintenanceCannotReadContentOrNames) {
  SetUpOrg();
  ASSERT_EQ(Put(alice_, alice_session_, "list.csv", kCsv).status, 201);
  auto u = Call(&admin_, "POST", "/v1/admin/users", {{"name", "ops"}, {"role", "maintenance"}},
                admin_session_);
  ASSERT_EQ(u.status, 201);
  ASSERT_EQ(
      Call(&admin_, "POST", "/v1/admin/groups/sales/members", {{"user", "ops"}}, admin_session_)
          .status,
      200);  // even with group membership
  auto ops = Enroll("ops", J(u)["enrol_token"]);
  std::string s = Login(ops, "ops");
  std::string got;
  EXPECT_EQ(Get(ops, s, "list.csv", &got).status, 403);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(Call(&ops, "GET", "/v1/folders", nullptr, s).status, 403);
  EXPECT_EQ(
      Call(&ops, "GET", "/v1/folders/" + std::to_string(folder_) + "/files", nullptr, s).status,
      403);
  EXPECT_EQ(Call(&ops, "GET", "/v1/health", nullptr, s).status, 200);
}

// The auditor reads the audit log (GET /v1/audit) and nothing else; no other
// role reads the log through the API, and every read is itself audited.
TEST_F(VaultFixture, AuditorReadsTheAuditLogButNotContent) {
  SetUpOrg();
  ASSERT_EQ(Put(alice_, alice_session_, "list.csv", kCsv).status, 201);
  std::string got;
  ASSERT_EQ(Get(alice_, alice_session_, "list.csv", &got).status, 200);
  auto u = Call(&admin_, "POST", "/v1/admin/users", {{"name", "audra"}, {"role", "auditor"}},
                admin_session_);
  ASSERT_EQ(u.status, 201);
  ASSERT_EQ(
      Call(&admin_, "POST", "/v1/admin/groups/sales/members", {{"user", "audra"}}, admin_session_)
          .status,
      200);  // even with group membership
  auto audra = Enroll("audra", J(u)["enrol_token"]);
  std::string s = Login(audra, "audra");
  // Content: refused.
  got.clear();
  EXPECT_EQ(Get(audra, s, "list.csv", &got).status, 403);
  EXPECT_TRUE(got.empty());
  // The log, filtered: alice's download, with its label, and no content.
  auto r = Call(&audra, "GET", "/v1/audit?user=alice&action=get", nullptr, s);
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = J(r);
  ASSERT_EQ(j["records"].size(), 1u) << r.body;
  EXPECT_EQ(j["records"][0]["user"], "alice");
  EXPECT_EQ(j["records"][0]["result"], "allow");
  EXPECT_TRUE(j["records"][0]["labels"].is_object());
  EXPECT_EQ(r.body.find("123456789018"), std::string::npos);  // no raw values in the log
  // Limits and times are checked; a bad one says what to fix.
  auto limited = Call(&audra, "GET", "/v1/audit?limit=2", nullptr, s);
  ASSERT_EQ(limited.status, 200);
  EXPECT_EQ(J(limited)["records"].size(), 2u);
  EXPECT_TRUE(J(limited)["truncated"].get<bool>());
  EXPECT_EQ(Call(&audra, "GET", "/v1/audit?limit=0", nullptr, s).status, 400);
  auto bad_time = Call(&audra, "GET", "/v1/audit?since=yesterday", nullptr, s);
  EXPECT_EQ(bad_time.status, 400);
  EXPECT_NE(bad_time.body.find("ISO 8601"), std::string::npos);
  EXPECT_EQ(Call(&audra, "GET", "/v1/audit?since=2099-01-01T00:00:00%2B09:00", nullptr, s).status,
            200);
  // No other role reads the log through the API.
  EXPECT_EQ(Call(&admin_, "GET", "/v1/audit", nullptr, admin_session_).status, 403);
  EXPECT_EQ(Call(&alice_, "GET", "/v1/audit", nullptr, alice_session_).status, 403);
  // Reads are audited.
  EXPECT_GE(AuditRecords("audit.read", "audra").size(), 4u);
}

TEST_F(VaultFixture, ContentNeedsThePledge) {
  SetUpOrg();
  auto u = Call(&admin_, "POST", "/v1/admin/users", {{"name", "bob"}}, admin_session_);
  ASSERT_EQ(
      Call(&admin_, "POST", "/v1/admin/groups/sales/members", {{"user", "bob"}}, admin_session_)
          .status,
      200);
  auto bob = Enroll("bob", J(u)["enrol_token"]);
  std::string s = Login(bob, "bob");
  auto r = Call(&bob, "GET", "/v1/folders/" + std::to_string(folder_) + "/files", nullptr, s);
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("pledge"), std::string::npos);
  ASSERT_EQ(Call(&bob, "POST", "/v1/pledge", {{"accept", true}, {"version", "2026-1"}}, s).status,
            200);
  EXPECT_EQ(
      Call(&bob, "GET", "/v1/folders/" + std::to_string(folder_) + "/files", nullptr, s).status,
      200);
  EXPECT_EQ(AuditRecords("pledge", "bob").size(), 1u);
}

TEST_F(VaultFixture, BudgetExceededRefusesAndLocksTheDevice) {
  SetUpOrg();
  ASSERT_EQ(Put(alice_, alice_session_, "a.csv", kCsv).status, 201);
  ASSERT_EQ(Put(alice_, alice_session_, "b.csv", kCsv).status, 201);
  auto pol = Call(&admin_, "PUT", "/v1/admin/policies/download_budget",
                  {{"device_per_hour", {{"files", 1}}}, {"lock_device", true}}, admin_session_);
  ASSERT_EQ(pol.status, 200) << pol.body;
  std::string got;
  EXPECT_EQ(Get(alice_, alice_session_, "a.csv", &got).status, 200);
  got.clear();
  auto over = Get(alice_, alice_session_, "b.csv", &got);
  EXPECT_EQ(over.status, 429);
  EXPECT_TRUE(got.empty());
  auto next = Call(&alice_, "GET", "/v1/me", nullptr, alice_session_);
  EXPECT_EQ(next.status, 403);  // the device is locked
  auto recs = AuditRecords("get", "alice");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].result, "deny");
  EXPECT_EQ(recs[1].extra.value("device_locked", false), true);
}

TEST_F(VaultFixture, UnwritableAuditLogCausesRefusals) {
  SetUpOrg();
  ASSERT_EQ(Put(alice_, alice_session_, "a.csv", kCsv).status, 201);
  fault_env_.FailSyncs(EIO);
  std::string got;
  auto r = Get(alice_, alice_session_, "a.csv", &got);
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(Put(alice_, alice_session_, "b.csv", kCsv).status, 503);
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 503);
  fault_env_.Heal();
  // The log stays failed until reopened (fail closed), and no blob was added.
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 503);
  size_t blobs = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(opts_.data_dir + "/blobs/objects"))
    blobs += e.is_regular_file();
  EXPECT_EQ(blobs, 1u);
}

TEST_F(VaultFixture, RepeatedFailuresLockTheAccount) {
  admin_ = Enroll("admin", admin_token_);
  for (int i = 0; i < 5; ++i) {
    auto r = Call(&admin_, "POST", "/v1/login",
                  {{"user", "admin"}, {"password", "Wrong-password-123"}, {"totp", Totp(admin_)}});
    EXPECT_EQ(r.status, 403);
  }
  auto locked = Call(&admin_, "POST", "/v1/login",
                     {{"user", "admin"}, {"password", kPassword}, {"totp", Totp(admin_)}});
  EXPECT_EQ(locked.status, 403);
  EXPECT_NE(locked.body.find("locked"), std::string::npos);
  clock_.Advance(16LL * 60 * 1000000);
  EXPECT_FALSE(Login(admin_, "admin").empty());
}

TEST_F(VaultFixture, SessionsExpire) {
  SetUpOrg();
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 200);
  clock_.Advance(16LL * 60 * 1000000);
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 403);
}

TEST_F(VaultFixture, KeyRotationRewrapsAndContentStillReads) {
  SetUpOrg();
  ASSERT_EQ(Put(alice_, alice_session_, "a.csv", kCsv).status, 201);
  std::string before = ReadAllFiles(opts_.data_dir + "/blobs/objects");
  auto rot = Call(&admin_, "POST", "/v1/admin/keys/rotate", nullptr, admin_session_);
  ASSERT_EQ(rot.status, 200) << rot.body;
  EXPECT_EQ(J(rot)["kek_version"], 2);
  EXPECT_EQ(J(rot)["rewrapped"], 2);  // the data key and the metadata key
  EXPECT_EQ(ReadAllFiles(opts_.data_dir + "/blobs/objects"), before);  // content untouched
  std::string got;
  ASSERT_EQ(Get(alice_, alice_session_, "a.csv", &got).status, 200);
  EXPECT_EQ(got, kCsv);
  // And after a restart with only the new keyring file.
  StopServer();
  StartServer();
  alice_session_ = Login(alice_, "alice");
  got.clear();
  ASSERT_EQ(Get(alice_, alice_session_, "a.csv", &got).status, 200);
  EXPECT_EQ(got, kCsv);
}

TEST_F(VaultFixture, AuditChainVerifies) {
  SetUpOrg();
  ASSERT_EQ(Put(alice_, alice_session_, "a.csv", kCsv).status, 201);
  StopServer();
  audit::VerifyOptions vo;
  vo.log_path = AuditPath();
  vo.public_key = audit_pub_;
  auto rep = audit::Verify(vo);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->ok()) << rep->ToString();
  EXPECT_GT(rep->records, 10u);
}

}  // namespace
}  // namespace mamori::vault::testing
