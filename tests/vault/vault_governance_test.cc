// Governance over real HTTPS on 127.0.0.1: network rules per group and role,
// break-glass, contractors and their report, bulk-export approval, alerts.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <sstream>
#include <thread>

#include "alert/alert.h"
#include "common/testing/loopback.h"
#include "vault/report.h"
#include "vault_fixture.h"

namespace mamori::vault::testing {
namespace {

constexpr int64_t kMinute = 60LL * 1000000;

// A webhook receiver on 127.0.0.1 whose JSON bodies can be looked up by kind.
class WebhookSink {
 public:
  std::string url() const { return http_.url("/alerts"); }
  std::vector<json> Kinds(const std::string& kind) {
    std::vector<json> out;
    for (const auto& r : http_.requests()) {
      json j = json::parse(mamori::testing::HttpSink::BodyOf(r), nullptr, false);
      if (!j.is_discarded() && j.value("kind", "") == kind) out.push_back(j);
    }
    return out;
  }

 private:
  mamori::testing::HttpSink http_;
};

class GovernanceTest : public VaultFixture {
 protected:
  void StartServer() override {
    alert::AlertOptions ao;
    ao.webhook_url = hook_.url();
    ao.syslog = false;
    auto a = alert::Alerter::Start(ao);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    alerter_ = std::move(a).value();
    opts_.alerter = alerter_.get();
    VaultFixture::StartServer();
  }
  void StopServer() override {
    VaultFixture::StopServer();
    alerter_.reset();
  }

  // A second admin, enrolled and logged in.
  void AddSecondAdmin() {
    auto u = Call(&admin_, "POST", "/v1/admin/users", {{"name", "admin2"}, {"role", "admin"}},
                  admin_session_);
    ASSERT_EQ(u.status, 201) << u.body;
    admin2_ = Enroll("admin2", J(u)["enrol_token"]);
    admin2_session_ = Login(admin2_, "admin2");
    ASSERT_FALSE(admin2_session_.empty());
  }

  ClientResponse AdminCall(const std::string& method, const std::string& target,
                           const json& body = nullptr) {
    return Call(&admin_, method, target, body, admin_session_);
  }

  std::vector<json> Alerts(const std::string& kind) {
    alerter_->Flush(10000);
    return hook_.Kinds(kind);
  }

  WebhookSink hook_;
  std::unique_ptr<alert::Alerter> alerter_;
  DeviceCreds admin2_;
  std::string admin2_session_;
};

// ---------------------------------------------------------------- network

TEST_F(GovernanceTest, GroupAndRoleNetworkRulesApplyOnTheNextRequest) {
  SetUpOrg();
  ASSERT_EQ(Put(alice_, alice_session_, "a.txt", "hello").status, 201);
  // The group allows loopback, the role allows loopback: both satisfied.
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/network/group/sales", {{"cidrs", "127.0.0.0/8"}}).status,
            200);
  ASSERT_EQ(
      AdminCall("PUT", "/v1/admin/network/role/member", {{"cidrs", "127.0.0.1/32,::1/128"}}).status,
      200);
  std::string got;
  EXPECT_EQ(Get(alice_, alice_session_, "a.txt", &got).status, 200);
  EXPECT_EQ(got, "hello");
  // The group moves to another network: alice's very next request is refused,
  // although her role still allows loopback (user ∩ groups ∩ role).
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/network/group/sales", {{"cidrs", "10.20.0.0/16"}}).status,
            200);
  auto r = Call(&alice_, "GET", "/v1/me", nullptr, alice_session_);
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(J(r).value("error", "").find("回線認証"), std::string::npos) << r.body;
  // Login from there is refused too.
  auto login = Call(&alice_, "POST", "/v1/login",
                    {{"user", "alice"}, {"password", kPassword}, {"totp", Totp(alice_)}});
  EXPECT_EQ(login.status, 403);
  auto recs = AuditRecords("me", "alice");
  ASSERT_FALSE(recs.empty());
  EXPECT_EQ(recs.back().result, "deny");
  EXPECT_EQ(recs.back().extra.value("network_rule", ""), "group:sales");
  // Clearing the group rule: the role rule alone decides again.
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/network/group/sales", {{"cidrs", ""}}).status, 200);
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 200);
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/network/role/member", {{"cidrs", "192.168.0.0/16"}}).status,
            200);
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 403);
  // A rule on the admin role does not touch members, and vice versa.
  EXPECT_EQ(AdminCall("GET", "/v1/admin/network").status, 200);
  auto list = J(AdminCall("GET", "/v1/admin/network"));
  ASSERT_EQ(list["rules"].size(), 1u) << list.dump();
  EXPECT_EQ(list["rules"][0]["name"], "member");
  // Bad input says what to fix.
  auto bad = AdminCall("PUT", "/v1/admin/network/group/sales", {{"cidrs", "10.0.0.0/33"}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(AdminCall("PUT", "/v1/admin/network/group/nosuch", {{"cidrs", "10.0.0.0/8"}}).status,
            404);
  EXPECT_EQ(AdminCall("PUT", "/v1/admin/network/planet/x", {{"cidrs", "10.0.0.0/8"}}).status, 400);
  // An admin cannot shut itself out.
  auto out = AdminCall("PUT", "/v1/admin/network/role/admin", {{"cidrs", "10.0.0.0/8"}});
  EXPECT_EQ(out.status, 400);
  EXPECT_NE(out.body.find("lock you out"), std::string::npos) << out.body;
  EXPECT_EQ(AdminCall("PUT", "/v1/admin/network/role/admin", {{"cidrs", "127.0.0.0/8"}}).status,
            200);
  EXPECT_EQ(AdminCall("GET", "/v1/admin/network").status, 200);
}

TEST_F(GovernanceTest, UserRuleSetLaterAlsoApplies) {
  SetUpOrg();
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/network/user/alice", {{"cidrs", "10.1.0.0/16"}}).status,
            200);
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 403);
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/network/user/alice", {{"cidrs", ""}}).status, 200);
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 200);
}

TEST_F(GovernanceTest, AdminApiOnlyFromAdminNetworks) {
  StopServer();
  opts_.admin_networks = *ParseCidrList("10.9.0.0/16");
  StartServer();
  admin_ = Enroll("admin", admin_token_);
  admin_session_ = Login(admin_, "admin");
  auto r = AdminCall("GET", "/v1/admin/network");
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("admin networks"), std::string::npos);
  EXPECT_EQ(AdminCall("GET", "/v1/admin/users").status, 403);
}

// ---------------------------------------------------------------- break-glass

TEST_F(GovernanceTest, BreakGlassNeedsASecondAdminIsReadOnlyAndExpires) {
  SetUpOrg();
  AddSecondAdmin();
  ASSERT_EQ(Put(alice_, alice_session_, "顧客.csv", "氏名,電話\n").status, 201);
  ASSERT_EQ(
      Call(&admin_, "POST", "/v1/pledge", {{"accept", true}, {"version", "2026-1"}}, admin_session_)
          .status,
      200);
  auto req =
      AdminCall("POST", "/v1/admin/break-glass",
                {{"folder", folder_}, {"reason", "incident INC-42: verify leak"}, {"minutes", 30}});
  ASSERT_EQ(req.status, 201) << req.body;
  int64_t id = J(req)["id"].get<int64_t>();
  std::string got;
  // Unapproved: refused.
  EXPECT_EQ(Get(admin_, admin_session_, "顧客.csv", &got).status, 403);
  EXPECT_TRUE(got.empty());
  // Self-approval: refused.
  auto self = AdminCall("POST", "/v1/approvals/" + std::to_string(id) + "/approve");
  EXPECT_EQ(self.status, 403) << self.body;
  EXPECT_NE(self.body.find("own request"), std::string::npos);
  // A member cannot approve break-glass.
  EXPECT_EQ(Call(&alice_, "POST", "/v1/approvals/" + std::to_string(id) + "/approve", nullptr,
                 alice_session_)
                .status,
            403);
  // The second admin sees the reason and approves.
  auto pending = J(Call(&admin2_, "GET", "/v1/approvals", nullptr, admin2_session_));
  ASSERT_FALSE(pending["approvals"].empty()) << pending.dump();
  EXPECT_EQ(pending["approvals"][0]["reason"], "incident INC-42: verify leak");
  auto ok = Call(&admin2_, "POST", "/v1/approvals/" + std::to_string(id) + "/approve", nullptr,
                 admin2_session_);
  ASSERT_EQ(ok.status, 200) << ok.body;
  // Approved: reads work, loudly audited under their own action names.
  EXPECT_EQ(Get(admin_, admin_session_, "顧客.csv", &got).status, 200);
  EXPECT_EQ(got, "氏名,電話\n");
  EXPECT_EQ(Call(&admin_, "GET", "/v1/folders/" + std::to_string(folder_) + "/files", nullptr,
                 admin_session_)
                .status,
            200);
  // Never write.
  EXPECT_EQ(Put(admin_, admin_session_, "new.csv", "x").status, 403);
  auto reads = AuditRecords("breakglass.get", "admin");
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].result, "allow");
  EXPECT_EQ(reads[0].extra.value("break_glass", int64_t{0}), id);
  EXPECT_EQ(AuditRecords("breakglass.list", "admin").size(), 1u);
  EXPECT_EQ(AuditRecords("breakglass.request", "admin").size(), 1u);
  ASSERT_EQ(AuditRecords("breakglass.approve", "admin2").size(), 1u);
  EXPECT_EQ(AuditRecords("breakglass.approve", "admin").size(), 1u);  // the refused self-approval
  EXPECT_EQ(AuditRecords("breakglass.approve", "admin")[0].result, "deny");
  EXPECT_EQ(Alerts("vault.break_glass.requested").size(), 1u);
  EXPECT_EQ(Alerts("vault.break_glass.approved").size(), 1u);
  auto read_alerts = Alerts("vault.break_glass.read");
  ASSERT_EQ(read_alerts.size(), 2u);
  EXPECT_EQ(read_alerts[0].value("user", ""), "admin");
  // Approval cannot be given twice.
  EXPECT_EQ(Call(&admin2_, "POST", "/v1/approvals/" + std::to_string(id) + "/approve", nullptr,
                 admin2_session_)
                .status,
            409);
  // Expired (injected clock): refused, with a message that says so.
  clock_.Advance(31 * kMinute);
  admin_session_ = Login(admin_, "admin");
  got.clear();
  auto late = Get(admin_, admin_session_, "顧客.csv", &got);
  EXPECT_EQ(late.status, 403);
  EXPECT_NE(late.body.find("expired"), std::string::npos) << late.body;
  EXPECT_TRUE(got.empty());
}

TEST_F(GovernanceTest, BreakGlassIsForOneFolderAndBadRequestsSayWhatToFix) {
  SetUpOrg();
  AddSecondAdmin();
  auto f2 = AdminCall("POST", "/v1/admin/folders", {{"name", "人事"}});
  ASSERT_EQ(f2.status, 201);
  int64_t other = J(f2)["id"].get<int64_t>();
  ASSERT_EQ(
      Call(&admin_, "POST", "/v1/pledge", {{"accept", true}, {"version", "2026-1"}}, admin_session_)
          .status,
      200);
  EXPECT_EQ(
      AdminCall("POST", "/v1/admin/break-glass", {{"folder", folder_}, {"reason", "x"}}).status,
      400);
  EXPECT_EQ(AdminCall("POST", "/v1/admin/break-glass",
                      {{"folder", folder_}, {"reason", "a good reason"}, {"minutes", 100000}})
                .status,
            400);
  // Wrong types are refused with a message, never a crash.
  auto typed = AdminCall("POST", "/v1/admin/break-glass",
                         {{"folder", folder_}, {"reason", "a good reason"}, {"minutes", "ten"}});
  EXPECT_EQ(typed.status, 400);
  EXPECT_NE(typed.body.find("minutes must be an integer"), std::string::npos) << typed.body;
  EXPECT_EQ(AdminCall("POST", "/v1/admin/break-glass", {{"folder", "1"}, {"reason", "a good one"}})
                .status,
            400);
  EXPECT_EQ(
      AdminCall("PUT", "/v1/admin/policies/bulk_export", {{"window_seconds", 1LL << 60}}).status,
      400);
  EXPECT_EQ(AdminCall("PUT", "/v1/admin/policies/bulk_export", {{"approvers", "bob"}}).status, 400);
  EXPECT_EQ(AdminCall("PUT", "/v1/admin/orgs/none", {{"expires_micros", "soon"}}).status, 404);
  EXPECT_EQ(AdminCall("POST", "/v1/admin/orgs",
                      {{"name", "acme"}, {"scope", {"x"}}, {"expires_micros", 1LL << 60}})
                .status,
            400);
  EXPECT_EQ(
      AdminCall("POST", "/v1/admin/break-glass", {{"folder", 9999}, {"reason", "a good reason"}})
          .status,
      404);
  auto req =
      AdminCall("POST", "/v1/admin/break-glass", {{"folder", other}, {"reason", "a good reason"}});
  ASSERT_EQ(req.status, 201);
  ASSERT_EQ(Call(&admin2_, "POST", "/v1/approvals/" + J(req)["id"].dump() + "/approve", nullptr,
                 admin2_session_)
                .status,
            200);
  std::string got;
  ASSERT_EQ(Put(alice_, alice_session_, "a.txt", "A").status, 201);
  EXPECT_EQ(Get(admin_, admin_session_, "a.txt", &got).status, 403);  // other folder only
}

// ---------------------------------------------------------------- contractors

TEST_F(GovernanceTest, ContractorScopeExpiryAuditAndReport) {
  SetUpOrg();
  auto f2 = AdminCall("POST", "/v1/admin/folders", {{"name", "経理"}});
  ASSERT_EQ(f2.status, 201);
  int64_t outside = J(f2)["id"].get<int64_t>();
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/folders/" + std::to_string(outside) + "/acl",
                      {{"group", "sales"}, {"perms", "rw"}})
                .status,
            200);
  ASSERT_EQ(Put(alice_, alice_session_, "in.csv", "inside").status, 201);
  int64_t expires = clock_.NowMicros() + 24 * 60 * kMinute;
  auto add = AdminCall("POST", "/v1/admin/orgs",
                       {{"name", "acme"}, {"scope", {folder_}}, {"expires_micros", expires}});
  ASSERT_EQ(add.status, 201) << add.body;
  ASSERT_EQ(AdminCall("POST", "/v1/admin/orgs",
                      {{"name", "beta"}, {"scope", {outside}}, {"expires_micros", expires * 2}})
                .status,
            201);
  EXPECT_EQ(
      AdminCall(
          "POST", "/v1/admin/orgs",
          {{"name", "gamma"}, {"scope", {folder_}}, {"expires_micros", clock_.NowMicros() - 1}})
          .status,
      400);
  ASSERT_EQ(AdminCall("POST", "/v1/admin/orgs/acme/members", {{"user", "alice"}}).status, 200);
  // At most one organisation per user.
  auto twice = AdminCall("POST", "/v1/admin/orgs/beta/members", {{"user", "alice"}});
  EXPECT_EQ(twice.status, 409) << twice.body;
  // Membership changes end the user's sessions.
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 403);
  alice_session_ = Login(alice_, "alice");
  std::string got;
  EXPECT_EQ(Get(alice_, alice_session_, "in.csv", &got).status, 200);
  // Outside the scope: refused although the ACL allows it, and not listed.
  auto out = Call(&alice_, "GET", "/v1/folders/" + std::to_string(outside) + "/files", nullptr,
                  alice_session_);
  EXPECT_EQ(out.status, 403);
  EXPECT_NE(out.body.find("委託先"), std::string::npos);
  auto folders = J(Call(&alice_, "GET", "/v1/folders", nullptr, alice_session_));
  ASSERT_EQ(folders["folders"].size(), 1u) << folders.dump();
  EXPECT_EQ(folders["folders"][0]["id"], folder_);
  // Records carry the organisation.
  auto gets = AuditRecords("get", "alice");
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0].org, "acme");
  // After the expiry the organisation's users are refused, login included.
  clock_.Advance(25 * 60 * kMinute);
  auto r = Call(&alice_, "POST", "/v1/login",
                {{"user", "alice"}, {"password", kPassword}, {"totp", Totp(alice_)}});
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("expired"), std::string::npos) << r.body;
  admin_session_ = Login(admin_, "admin");
  auto orgs = J(AdminCall("GET", "/v1/admin/orgs"));
  ASSERT_EQ(orgs["orgs"].size(), 2u);
  EXPECT_EQ(orgs["orgs"][0]["name"], "acme");
  EXPECT_EQ(orgs["orgs"][0]["expired"], true);
  EXPECT_EQ(orgs["orgs"][0]["members"][0], "alice");
  EXPECT_EQ(orgs["orgs"][1]["expired"], false);
  // An admin can end an organisation's access at once.
  ASSERT_EQ(
      AdminCall("PUT", "/v1/admin/orgs/beta", {{"expires_micros", clock_.NowMicros() - 1}}).status,
      200);
  EXPECT_EQ(J(AdminCall("GET", "/v1/admin/orgs"))["orgs"][1]["expired"], true);

  // The report: everything acme's users did, from the audit log.
  ContractorReportOptions ro;
  ro.log.path = AuditPath();
  ro.org = "acme";
  ro.json = true;
  std::ostringstream js;
  Status s = ContractorReport(ro, js);
  ASSERT_TRUE(s.ok()) << s.ToString();
  json rep = json::parse(js.str(), nullptr, false);
  ASSERT_FALSE(rep.is_discarded()) << js.str();
  EXPECT_EQ(rep["org"], "acme");
  bool saw_get = false, saw_denied_list = false, saw_expired_login = false;
  for (const auto& rec : rep["records"]) {
    EXPECT_EQ(rec["user"], "alice");
    if (rec["action"] == "get" && rec["result"] == "allow") saw_get = true;
    if (rec["action"] == "list" && rec["result"] == "deny") saw_denied_list = true;
    if (rec["action"] == "login" && rec["result"] == "deny") saw_expired_login = true;
  }
  EXPECT_TRUE(saw_get && saw_denied_list && saw_expired_login) << rep.dump(1);
  EXPECT_EQ(rep["summary"]["records"].get<uint64_t>(), rep["records"].size());
  EXPECT_EQ(rep["summary"]["per_user"]["alice"].get<uint64_t>(), rep["records"].size());
  EXPECT_EQ(rep["summary"]["bytes"].get<uint64_t>(), 6u);  // "inside", the one allowed download
  ro.json = false;
  std::ostringstream text;
  ASSERT_TRUE(ContractorReport(ro, text).ok());
  EXPECT_NE(text.str().find("contractor organisation acme"), std::string::npos);
  EXPECT_NE(text.str().find("  get  "), std::string::npos) << text.str();
  // Another organisation's report does not include alice.
  ro.org = "beta";
  std::ostringstream none;
  ASSERT_TRUE(ContractorReport(ro, none).ok());
  EXPECT_EQ(none.str().find("alice"), std::string::npos) << none.str();
}

// ---------------------------------------------------------------- bulk export

TEST_F(GovernanceTest, BulkExportNeedsASecondPersonForExactlyThatDownload) {
  SetUpOrg();
  auto bob_u = AdminCall("POST", "/v1/admin/users", {{"name", "bob"}, {"role", "member"}});
  ASSERT_EQ(bob_u.status, 201);
  DeviceCreds bob = Enroll("bob", J(bob_u)["enrol_token"]);
  std::string bob_session = Login(bob, "bob");
  EXPECT_EQ(
      AdminCall("PUT", "/v1/admin/policies/bulk_export", {{"files", 2}, {"colour", 1}}).status,
      400);
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/bulk_export",
                      {{"files", 2},
                       {"window_seconds", 3600},
                       {"approval_minutes", 30},
                       {"approvers", {"bob"}}})
                .status,
            200);
  for (const char* n : {"a.csv", "b.csv", "c.csv"})
    ASSERT_EQ(Put(alice_, alice_session_, n, std::string("data ") + n).status, 201);
  std::string got;
  EXPECT_EQ(Get(alice_, alice_session_, "a.csv", &got).status, 200);
  EXPECT_EQ(Get(alice_, alice_session_, "b.csv", &got).status, 200);
  got.clear();
  auto refused = Get(alice_, alice_session_, "c.csv", &got);
  EXPECT_EQ(refused.status, 403);
  EXPECT_TRUE(got.empty());
  json rj = J(refused);
  ASSERT_TRUE(rj.contains("approval_id")) << refused.body;
  int64_t id = rj["approval_id"].get<int64_t>();
  EXPECT_NE(rj.value("error", "").find("mamori admin approve " + std::to_string(id)),
            std::string::npos);
  // Asking again files no second request.
  EXPECT_EQ(J(Get(alice_, alice_session_, "c.csv", &got))["approval_id"], id);
  EXPECT_EQ(Alerts("vault.bulk_export.approval_requested").size(), 1u);
  // Nobody approves their own request.
  EXPECT_EQ(Call(&alice_, "POST", "/v1/approvals/" + std::to_string(id) + "/approve", nullptr,
                 alice_session_)
                .status,
            403);
  // The designated approver (a member) approves.
  auto ok =
      Call(&bob, "POST", "/v1/approvals/" + std::to_string(id) + "/approve", nullptr, bob_session);
  ASSERT_EQ(ok.status, 200) << ok.body;
  // Approval covers exactly c.csv, once.
  EXPECT_EQ(Get(alice_, alice_session_, "b.csv", &got).status, 403);
  got.clear();
  EXPECT_EQ(Get(alice_, alice_session_, "c.csv", &got).status, 200);
  EXPECT_EQ(got, "data c.csv");
  auto again = Get(alice_, alice_session_, "c.csv", &got);
  EXPECT_EQ(again.status, 403);
  int64_t id2 = J(again)["approval_id"].get<int64_t>();
  EXPECT_NE(id2, id);
  auto used = AuditRecords("get", "alice");
  int allowed_with_approval = 0;
  for (const auto& r : used)
    if (r.result == "allow" && r.extra.value("approval_id", int64_t{0}) == id)
      ++allowed_with_approval;
  EXPECT_EQ(allowed_with_approval, 1);
  // An admin approves too; past its window the approval is worth nothing.
  ASSERT_EQ(AdminCall("POST", "/v1/approvals/" + std::to_string(id2) + "/approve").status, 200);
  clock_.Advance(31 * kMinute);
  alice_session_ = Login(alice_, "alice");
  got.clear();
  auto late = Get(alice_, alice_session_, "c.csv", &got);
  EXPECT_EQ(late.status, 403);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(AuditRecords("export.approve", "bob").size(), 1u);
  EXPECT_EQ(AuditRecords("export.approve", "admin").size(), 1u);
}

// ---------------------------------------------------------------- maintenance

TEST_F(GovernanceTest, MaintenanceBackupIsConsistentAndDecryptsNothing) {
  SetUpOrg();
  ASSERT_EQ(Put(alice_, alice_session_, "顧客名簿_山田様.csv", "山田太郎,090-1234-5678\n").status,
            201);
  ASSERT_EQ(Put(alice_, alice_session_, "顧客名簿_山田様.csv", "v2\n").status, 201);
  auto m = AdminCall("POST", "/v1/admin/users", {{"name", "ops"}, {"role", "maintenance"}});
  ASSERT_EQ(m.status, 201);
  DeviceCreds ops = Enroll("ops", J(m)["enrol_token"]);
  std::string ops_session = Login(ops, "ops");
  // Only the maintenance role.
  EXPECT_EQ(AdminCall("POST", "/v1/maintenance/backup").status, 403);
  EXPECT_EQ(Call(&alice_, "POST", "/v1/maintenance/backup", nullptr, alice_session_).status, 403);
  auto r = Call(&ops, "POST", "/v1/maintenance/backup", nullptr, ops_session);
  ASSERT_EQ(r.status, 201) << r.body;
  json j = J(r);
  EXPECT_EQ(j["blob_count"], 2);  // both versions
  std::filesystem::path dir = j["path"].get<std::string>();
  std::ifstream mf(dir / "manifest.json");
  json manifest = json::parse(mf, nullptr, false);
  ASSERT_FALSE(manifest.is_discarded());
  EXPECT_EQ(manifest["format"], "mamori.vault.backup.v1");
  EXPECT_EQ(manifest["blobs"].size(), 2u);
  EXPECT_EQ(manifest["meta_db_sha256"], j["meta_db_sha256"]);
  for (const auto& b : manifest["blobs"])
    EXPECT_TRUE(std::filesystem::exists(opts_.data_dir + "/blobs/objects/" +
                                        b["blob_id"].get<std::string>().substr(0, 2) + "/" +
                                        b["blob_id"].get<std::string>()));
  // The copy is a complete database (users, sealed names), and neither the copy
  // nor the manifest holds a plaintext name or value.
  auto copy = OpenSqliteMetaStore((dir / "meta.db").string());
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_TRUE((*copy)->GetUserByName("alice").ok());
  EXPECT_EQ((*copy)->AllVersions()->size(), 2u);
  std::ifstream db(dir / "meta.db", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(db)), {});
  EXPECT_EQ(bytes.find("山田"), std::string::npos);
  EXPECT_EQ(manifest.dump().find("山田"), std::string::npos);
  auto recs = AuditRecords("maintenance.backup", "ops");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].result, "allow");
}

// ---------------------------------------------------------------- CLI

// Runs `mamori ARGS` and returns its exit code; stdout goes to *out.
int RunMamori(const std::string& args, std::string* out) {
  std::string cmd = std::string(MAMORI_BIN) + " " + args + " 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  int st = ::pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

class GovernanceCliTest : public GovernanceTest {
 protected:
  // A client profile directory as `mamori enroll` + `mamori login` leave it.
  std::string Profile(const std::string& name, const DeviceCreds& d, const std::string& session) {
    std::filesystem::path p = dir_ / ("profile-" + name);
    std::filesystem::create_directories(p);
    std::ofstream(p / "profile.json")
        << json{{"server", "https://127.0.0.1:" + std::to_string(port_)}}.dump();
    std::filesystem::copy_file(ca_path_, p / "ca.crt");
    std::filesystem::copy_file(d.cert_path, p / "device.crt");
    std::filesystem::copy_file(d.key_path, p / "device.key");
    std::ofstream(p / "session") << session;
    return p.string();
  }
};

TEST_F(GovernanceCliTest, AdminSubcommandsDriveTheServer) {
  SetUpOrg();
  AddSecondAdmin();
  std::string admin = Profile("admin", admin_, admin_session_);
  std::string admin2 = Profile("admin2", admin2_, admin2_session_);
  std::string out;
  // Network rules.
  ASSERT_EQ(RunMamori("admin --profile " + admin + " network set group sales 10.20.0.0/16", &out),
            0)
      << out;
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 403);
  out.clear();
  EXPECT_EQ(RunMamori("admin --profile " + admin + " network list", &out), 0) << out;
  EXPECT_NE(out.find("10.20.0.0/16"), std::string::npos) << out;
  ASSERT_EQ(RunMamori("admin --profile " + admin + " network clear group sales", &out), 0) << out;
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 200);
  out.clear();
  EXPECT_EQ(RunMamori("admin --profile " + admin + " network set group sales 10.0.0.0/99", &out),
            2);
  EXPECT_NE(out.find("mamori: "), std::string::npos) << out;
  // Break-glass: request, self-approval refused (exit 1), the second admin approves.
  out.clear();
  ASSERT_EQ(RunMamori("admin --profile " + admin + " break-glass request " +
                          std::to_string(folder_) + " --reason 'INC-7 check' --minutes 10",
                      &out),
            0)
      << out;
  json req = json::parse(out, nullptr, false);
  ASSERT_TRUE(req.is_object()) << out;
  std::string id = std::to_string(req["id"].get<int64_t>());
  out.clear();
  EXPECT_EQ(RunMamori("admin --profile " + admin + " approve " + id, &out), 1) << out;
  EXPECT_NE(out.find("own request"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(RunMamori("admin --profile " + admin2 + " approvals", &out), 0) << out;
  EXPECT_NE(out.find("INC-7 check"), std::string::npos) << out;
  EXPECT_EQ(RunMamori("admin --profile " + admin2 + " approve " + id, &out), 0) << out;
  EXPECT_EQ(RunMamori("admin --profile " + admin2 + " approve x1", &out), 2);
  // Contractors and the report.
  out.clear();
  ASSERT_EQ(RunMamori("admin --profile " + admin + " orgs add acme --scope " +
                          std::to_string(folder_) + " --expires 2030-03-31",
                      &out),
            0)
      << out;
  ASSERT_EQ(RunMamori("admin --profile " + admin + " orgs member acme alice", &out), 0) << out;
  alice_session_ = Login(alice_, "alice");
  ASSERT_EQ(Put(alice_, alice_session_, "x.csv", "x").status, 201);
  out.clear();
  ASSERT_EQ(
      RunMamori("admin report contractor acme --format json --audit-log " + AuditPath(), &out), 0)
      << out;
  json rep = json::parse(out, nullptr, false);
  ASSERT_TRUE(rep.is_object()) << out;
  EXPECT_EQ(rep["org"], "acme");
  bool put = false;
  for (const auto& r : rep["records"])
    if (r["action"] == "put" && r["user"] == "alice") put = true;
  EXPECT_TRUE(put) << out;
  out.clear();
  ASSERT_EQ(RunMamori("admin report contractor acme --audit-log " + AuditPath(), &out), 0);
  EXPECT_NE(out.find("summary:"), std::string::npos) << out;
}

// ---------------------------------------------------------------- robustness

// Wrongly typed JSON fields once threw out of json::value and ended the server.
TEST_F(GovernanceTest, WronglyTypedFieldsAreErrorsNotCrashes) {
  SetUpOrg();
  auto r = AdminCall("POST", "/v1/admin/users", {{"name", "bob"}, {"role", 5}});
  EXPECT_EQ(r.status, 400) << r.body;
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/download_budget",
                      {{"device_per_hour", {{"files", 1}}}, {"lock_device", "yes"}})
                .status,
            200);
  ASSERT_EQ(Put(alice_, alice_session_, "a.txt", "A").status, 201);
  std::string got;
  EXPECT_EQ(Get(alice_, alice_session_, "a.txt", &got).status, 200);
  EXPECT_EQ(Get(alice_, alice_session_, "a.txt", &got).status, 429);  // not locked: "yes" != true
  EXPECT_EQ(Call(&alice_, "GET", "/v1/me", nullptr, alice_session_).status, 200);
}

// ---------------------------------------------------------------- alerts

TEST_F(GovernanceTest, AlertsOnBudgetLockLoginFailuresAndAuditFailure) {
  SetUpOrg();
  ASSERT_EQ(AdminCall("PUT", "/v1/admin/policies/download_budget",
                      {{"device_per_hour", {{"files", 1}}}, {"lock_device", true}})
                .status,
            200);
  ASSERT_EQ(Put(alice_, alice_session_, "a.txt", "A").status, 201);
  std::string got;
  EXPECT_EQ(Get(alice_, alice_session_, "a.txt", &got).status, 200);
  EXPECT_EQ(Get(alice_, alice_session_, "a.txt", &got).status, 429);
  auto budget = Alerts("vault.budget_exceeded");
  ASSERT_EQ(budget.size(), 1u);
  EXPECT_EQ(budget[0].value("user", ""), "alice");
  EXPECT_EQ(budget[0].value("budget", ""), "device_per_hour.files");
  EXPECT_EQ(Alerts("vault.device_locked").size(), 1u);

  for (int i = 0; i < 5; ++i)
    Call(&admin_, "POST", "/v1/login",
         {{"user", "admin"}, {"password", "wrong-password-1"}, {"totp", Totp(admin_)}});
  auto fails = Alerts("vault.login_failures");
  ASSERT_FALSE(fails.empty());
  EXPECT_EQ(fails[0].value("account", ""), "admin");
  EXPECT_EQ(fails[0].dump().find("wrong-password"), std::string::npos);  // no secrets

  fault_env_.FailSyncs(EIO);
  EXPECT_EQ(Call(&admin_, "GET", "/v1/me", nullptr, admin_session_).status, 503);
  EXPECT_EQ(Call(&admin_, "GET", "/v1/me", nullptr, admin_session_).status, 503);
  EXPECT_EQ(Alerts("vault.audit_failure").size(), 1u);  // throttled: one a minute
  clock_.Advance(61'000'000);
  EXPECT_EQ(Call(&admin_, "GET", "/v1/me", nullptr, admin_session_).status, 503);
  EXPECT_EQ(Alerts("vault.audit_failure").size(), 2u);
}

}  // namespace
}  // namespace mamori::vault::testing
