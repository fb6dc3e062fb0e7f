// The vault's content features over real HTTPS on 127.0.0.1 (issue 4):
// trash and restore, purge (admin and timer), mv, internal shares, external
// links and each of their refusals, resumable uploads across a dropped
// connection, container-aware labels and label policies.
#include <fstream>
#include <sstream>
#include <thread>

#include "crypto/crypto.h"
#include "detect/detect.h"
#include "extract/test_util.h"
#include "vault_fixture.h"

namespace mamori::vault::testing {
namespace {

std::string Sha(std::string_view s) {
  crypto::Sha256 h;
  h.Update(s);
  return h.FinishHex();
}

const std::string kCsv =
    "氏名,電話番号,メールアドレス\n"
    "山田太郎,090-1234-5678,taro.yamada@example.co.jp\n"
    "佐藤花子,080-2345-6789,hanako.sato@example.co.jp\n";
const std::string kMyNumber = "氏名,個人番号\n山田太郎,4652-8126-6333\n";
constexpr int64_t kDay = 86400LL * 1000000;
constexpr const char* kLinkPassword = "Sora-iro&Umi7kaze";

class VaultContentTest : public VaultFixture {
 protected:
  void SetUp() override {
    // Labels need the real detection rules.
    static auto rules = detect::RuleSet::LoadDefault();
    ASSERT_TRUE(rules.ok()) << rules.status().ToString();
    opts_.rules = *rules;
    std::array<unsigned char, HashKey::kSize> k{};
    k.fill(7);
    opts_.label_hash_key = HashKey(k);
    VaultFixture::SetUp();
  }
  std::string Folder(int64_t f) { return "/v1/folders/" + std::to_string(f); }
  std::string Url(int64_t f, const std::string& name) {
    return Folder(f) + "/files/" + UrlEncode(name);
  }
  ClientResponse A(const std::string& method, const std::string& target,
                   const json& body = nullptr) {
    return Call(&alice_, method, target, body, alice_session_);
  }
  ClientResponse Admin(const std::string& method, const std::string& target,
                       const json& body = nullptr) {
    return Call(&admin_, method, target, body, admin_session_);
  }
  // A second folder ("経理") where group sales has `perms`.
  int64_t SecondFolder(const std::string& perms) {
    auto f = Admin("POST", "/v1/admin/folders", {{"name", "経理"}});
    EXPECT_EQ(f.status, 201) << f.body;
    int64_t id = J(f)["id"].get<int64_t>();
    EXPECT_EQ(Admin("PUT", "/v1/admin/folders/" + std::to_string(id) + "/acl",
                    {{"group", "sales"}, {"perms", perms}})
                  .status,
              200);
    return id;
  }
  ClientResponse PutIn(int64_t f, const std::string& name, const std::string& content) {
    auto c = Connect(&alice_);
    size_t off = 0;
    auto r = c->Upload("PUT", Url(f, name), {{"authorization", "Bearer " + alice_session_}},
                       content.size(), [&](char* b, size_t n) -> Result<size_t> {
                         size_t k = std::min(n, content.size() - off);
                         std::memcpy(b, content.data() + off, k);
                         off += k;
                         return k;
                       });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ClientResponse{};
  }
  // Member "bob" in group "hr" (no folder access), logged in, pledge accepted.
  void SetUpBob() {
    auto u = Admin("POST", "/v1/admin/users", {{"name", "bob"}, {"role", "member"}});
    ASSERT_EQ(u.status, 201) << u.body;
    ASSERT_EQ(Admin("POST", "/v1/admin/groups", {{"name", "hr"}}).status, 201);
    ASSERT_EQ(Admin("POST", "/v1/admin/groups/hr/members", {{"user", "bob"}}).status, 200);
    bob_ = Enroll("bob", J(u)["enrol_token"]);
    bob_session_ = Login(bob_, "bob");
    ASSERT_EQ(
        Call(&bob_, "POST", "/v1/pledge", {{"accept", true}, {"version", "2026-1"}}, bob_session_)
            .status,
        200);
  }
  ClientResponse LinkGet(const std::string& path, const std::string& password, std::string* body) {
    auto c = Connect(nullptr);  // no device certificate
    std::map<std::string, std::string> h;
    if (!password.empty()) h["x-mamori-link-password"] = password;
    auto r = c->Download(path, h, [&](std::string_view d) {
      body->append(d);
      return Status::Ok();
    });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok() && r->status != 200) body->append(r->body);  // refusals come back in body
    return r.ok() ? *r : ClientResponse{};
  }
  void Relogin() {
    admin_session_ = Login(admin_, "admin");
    alice_session_ = Login(alice_, "alice");
    if (!bob_.cert_path.empty()) bob_session_ = Login(bob_, "bob");
  }
  void Restart(const std::function<void(VaultOptions*)>& change) {
    StopServer();
    change(&opts_);
    StartServer();
  }
  size_t BlobCount() {
    size_t n = 0;
    for (auto& e : std::filesystem::recursive_directory_iterator(opts_.data_dir + "/blobs/objects"))
      n += e.is_regular_file();
    return n;
  }

  DeviceCreds bob_;
  std::string bob_session_;
};

// ---------------------------------------------------------------- trash
TEST_F(VaultContentTest, DeleteGoesToTrashRestoreBringsItBackAndPurgeDeletesBlobs) {
  SetUpOrg();
  ASSERT_EQ(Put(alice_, alice_session_, "a.csv", kCsv).status, 201);
  ASSERT_EQ(A("DELETE", FileUrl("a.csv")).status, 200);
  std::string got;
  EXPECT_EQ(Get(alice_, alice_session_, "a.csv", &got).status, 404);
  auto t = A("GET", Folder(folder_) + "/trash");
  ASSERT_EQ(t.status, 200) << t.body;
  ASSERT_EQ(J(t)["trash"].size(), 1u);
  EXPECT_EQ(J(t)["trash"][0]["name"], "a.csv");
  EXPECT_EQ(J(t)["trash"][0]["purge_after_micros"].get<int64_t>() -
                J(t)["trash"][0]["deleted_micros"].get<int64_t>(),
            30 * kDay);  // the default retention

  auto r = A("POST", FileUrl("a.csv") + "/restore", json::object());
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Get(alice_, alice_session_, "a.csv", &got).status, 200);
  EXPECT_EQ(got, kCsv);
  EXPECT_TRUE(J(A("GET", Folder(folder_) + "/trash"))["trash"].empty());
  // Restoring a live file without a version is a mistake the message explains.
  EXPECT_EQ(A("POST", FileUrl("a.csv") + "/restore", json::object()).status, 409);

  // Deleted again; a purge inside the retention keeps it, after it deletes it.
  ASSERT_EQ(A("DELETE", FileUrl("a.csv")).status, 200);
  ASSERT_EQ(BlobCount(), 1u);
  auto p1 = Admin("POST", "/v1/admin/trash/purge");
  ASSERT_EQ(p1.status, 200) << p1.body;
  EXPECT_EQ(J(p1)["purged_files"], 0);
  clock_.Advance(31 * kDay);
  Relogin();
  auto p2 = Admin("POST", "/v1/admin/trash/purge");
  ASSERT_EQ(p2.status, 200) << p2.body;
  EXPECT_EQ(J(p2)["purged_files"], 1);
  EXPECT_EQ(J(p2)["deleted_blobs"], 1);
  EXPECT_EQ(BlobCount(), 0u);
  EXPECT_TRUE(J(A("GET", Folder(folder_) + "/trash"))["trash"].empty());
  EXPECT_EQ(A("POST", FileUrl("a.csv") + "/restore", json::object()).status, 404);

  EXPECT_EQ(AuditRecords("delete", "alice").size(), 2u);
  EXPECT_FALSE(AuditRecords("restore", "alice").empty());
  auto purges = AuditRecords("trash.purge", "admin");
  ASSERT_EQ(purges.size(), 2u);
  EXPECT_EQ(purges[1].extra["object_count"], 1);
}

TEST_F(VaultContentTest, RestoreAnOlderVersion) {
  SetUpOrg();
  ASSERT_EQ(Put(alice_, alice_session_, "a.txt", "version one").status, 201);
  ASSERT_EQ(Put(alice_, alice_session_, "a.txt", "version two").status, 201);
  ASSERT_EQ(A("DELETE", FileUrl("a.txt")).status, 200);
  auto r = A("POST", FileUrl("a.txt") + "/restore", {{"version", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::string got;
  ASSERT_EQ(Get(alice_, alice_session_, "a.txt", &got).status, 200);
  EXPECT_EQ(got, "version one");
  EXPECT_EQ(A("POST", FileUrl("a.txt") + "/restore", {{"version", 9}}).status, 404);
  EXPECT_EQ(A("POST", FileUrl("a.txt") + "/restore", {{"version", "x"}}).status, 400);
  auto recs = AuditRecords("restore", "alice");
  ASSERT_FALSE(recs.empty());
  EXPECT_EQ(recs[0].extra["version"], 1);
}

TEST_F(VaultContentTest, TrashRetentionPolicyAndTimerPurge) {
  SetUpOrg();
  EXPECT_EQ(Admin("PUT", "/v1/admin/policies/trash", {{"retention_days", 0}}).status, 400);
  ASSERT_EQ(Admin("PUT", "/v1/admin/policies/trash", {{"retention_days", 2}}).status, 200);
  ASSERT_EQ(Put(alice_, alice_session_, "a.csv", kCsv).status, 201);
  ASSERT_EQ(A("DELETE", FileUrl("a.csv")).status, 200);
  clock_.Advance(3 * kDay);
  Restart([](VaultOptions* o) { o->janitor_interval_seconds = 1; });
  for (int i = 0; i < 100 && BlobCount() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(BlobCount(), 0u);
  auto recs = AuditRecords("trash.purge", "system:janitor");
  ASSERT_FALSE(recs.empty());
  bool purged = false;
  for (const auto& r : recs) purged |= r.extra.value("object_count", 0) == 1;
  EXPECT_TRUE(purged);
}

// ---------------------------------------------------------------- mv
TEST_F(VaultContentTest, MoveRenamesAndMovesBetweenFoldersWithWriteOnBoth) {
  SetUpOrg();
  int64_t f2 = SecondFolder("rw");
  ASSERT_EQ(Put(alice_, alice_session_, "顧客名簿_山田様.csv", kCsv).status, 201);
  auto r = A("POST", FileUrl("顧客名簿_山田様.csv") + "/move", {{"name", "名簿_佐藤様.csv"}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::string got;
  EXPECT_EQ(Get(alice_, alice_session_, "顧客名簿_山田様.csv", &got).status, 404);
  ASSERT_EQ(Get(alice_, alice_session_, "名簿_佐藤様.csv", &got).status, 200);
  EXPECT_EQ(got, kCsv);
  r = A("POST", FileUrl("名簿_佐藤様.csv") + "/move", {{"folder", f2}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto ls = A("GET", Folder(f2) + "/files");
  ASSERT_EQ(J(ls)["files"].size(), 1u);
  EXPECT_EQ(J(ls)["files"][0]["name"], "名簿_佐藤様.csv");
  EXPECT_TRUE(J(A("GET", Folder(folder_) + "/files"))["files"].empty());
  // Name taken in the target: refused, nothing changes.
  ASSERT_EQ(Put(alice_, alice_session_, "x.csv", "x").status, 201);
  EXPECT_EQ(
      A("POST", FileUrl("x.csv") + "/move", {{"folder", f2}, {"name", "名簿_佐藤様.csv"}}).status,
      409);
  // Names stay encrypted on disk.
  (void)log_->Checkpoint();
  std::string disk;
  for (auto& e : std::filesystem::recursive_directory_iterator(opts_.data_dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    disk.append(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_EQ(disk.find("佐藤様"), std::string::npos);
  EXPECT_FALSE(AuditRecords("move", "alice").empty());
}

TEST_F(VaultContentTest, MoveNeedsWriteAccessToTheTargetFolder) {
  SetUpOrg();
  int64_t f2 = SecondFolder("r");
  ASSERT_EQ(Put(alice_, alice_session_, "a.csv", kCsv).status, 201);
  auto r = A("POST", FileUrl("a.csv") + "/move", {{"folder", f2}});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("no write access"), std::string::npos);
  std::string got;
  EXPECT_EQ(Get(alice_, alice_session_, "a.csv", &got).status, 200);
  auto recs = AuditRecords("move", "alice");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].result, "deny");
}

// ---------------------------------------------------------------- shares
TEST_F(VaultContentTest, InternalSharesAreReadOnlyExpireAndCanBeRevoked) {
  SetUpOrg();
  SetUpBob();
  ASSERT_EQ(Put(alice_, alice_session_, "a.csv", kCsv).status, 201);
  // bob has no folder access.
  std::string got;
  EXPECT_EQ(Get(bob_, bob_session_, "a.csv", &got).status, 403);
  auto s1 = A("POST", FileUrl("a.csv") + "/shares", {{"user", "bob"}});
  ASSERT_EQ(s1.status, 201) << s1.body;
  auto s2 = A("POST", FileUrl("a.csv") + "/shares", {{"group", "hr"}, {"expires_in_hours", 1}});
  ASSERT_EQ(s2.status, 201) << s2.body;
  EXPECT_EQ(A("POST", FileUrl("a.csv") + "/shares", {{"group", "nope"}}).status, 404);
  EXPECT_EQ(A("POST", FileUrl("a.csv") + "/shares", json::object()).status, 400);
  int64_t id1 = J(s1)["id"], id2 = J(s2)["id"];
  auto mine = Call(&bob_, "GET", "/v1/shares", nullptr, bob_session_);
  ASSERT_EQ(mine.status, 200) << mine.body;
  ASSERT_EQ(J(mine)["shares"].size(), 2u);
  EXPECT_EQ(J(mine)["shares"][0]["name"], "a.csv");

  auto fetch = [&](int64_t id, std::string* body) {
    auto c = Connect(&bob_);
    auto r = c->Download("/v1/shares/" + std::to_string(id) + "/content",
                         {{"authorization", "Bearer " + bob_session_}}, [&](std::string_view d) {
                           body->append(d);
                           return Status::Ok();
                         });
    if (r.ok() && r->status != 200) body->append(r->body);
    return r.ok() ? r->status : 0;
  };
  std::string b1, b2;
  EXPECT_EQ(fetch(id1, &b1), 200);
  EXPECT_EQ(b1, kCsv);
  EXPECT_EQ(fetch(id2, &b2), 200);
  // Read-only: the share gives no write path, and the folder stays closed.
  EXPECT_EQ(PutIn(folder_, "a.csv", "x").status, 201);  // alice still can
  EXPECT_EQ(Call(&bob_, "DELETE", FileUrl("a.csv"), nullptr, bob_session_).status, 403);
  // alice's device cannot use bob's share.
  EXPECT_EQ(A("GET", "/v1/shares/" + std::to_string(id1) + "/content").status, 404);

  clock_.Advance(2 * 3600LL * 1000000);  // the group share expires
  Relogin();
  std::string b3;
  EXPECT_EQ(fetch(id2, &b3), 403);
  ASSERT_EQ(A("DELETE", "/v1/shares/" + std::to_string(id1)).status, 200);
  std::string b4;
  EXPECT_EQ(fetch(id1, &b4), 403);
  EXPECT_TRUE(b4.find("revoked") != std::string::npos) << b4;
  EXPECT_FALSE(AuditRecords("share.create", "alice").empty());
  EXPECT_FALSE(AuditRecords("share.revoke", "alice").empty());
  EXPECT_EQ(AuditRecords("share.get", "bob").size(), 4u);
}

class ExternalLinkTest : public VaultContentTest {
 protected:
  void SetUp() override {
    VaultContentTest::SetUp();
    SetUpOrg();
    ASSERT_EQ(Put(alice_, alice_session_, "a.csv", kCsv).status, 201);
  }
  ClientResponse Link(json body) { return A("POST", FileUrl("a.csv") + "/shares", body); }
  json Good(int64_t max_downloads = 2) {
    return {{"external", true},
            {"expires_in_hours", 24},
            {"password", kLinkPassword},
            {"max_downloads", max_downloads}};
  }
  void Enable() {
    ASSERT_EQ(Admin("PUT", "/v1/admin/policies/external_links",
                    {{"enabled", true}, {"max_days", 7}, {"max_downloads", 5}})
                  .status,
              200);
  }
};

TEST_F(ExternalLinkTest, OffUnlessPolicyEnablesThem) {
  auto r = Link(Good());
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("disabled by policy"), std::string::npos);
}

TEST_F(ExternalLinkTest, CreationNeedsExpiryPasswordAndLimitWithinPolicy) {
  Enable();
  json j = Good();
  j.erase("expires_in_hours");
  EXPECT_EQ(Link(j).status, 400);
  j = Good();
  j.erase("password");
  EXPECT_EQ(Link(j).status, 400);
  j = Good();
  j.erase("max_downloads");
  EXPECT_EQ(Link(j).status, 400);
  j = Good();
  j["password"] = "password";  // pwquality refuses it
  EXPECT_EQ(Link(j).status, 400);
  j = Good();
  j["expires_in_hours"] = 8 * 24;  // policy max 7 days
  EXPECT_EQ(Link(j).status, 400);
  EXPECT_EQ(Link(Good(6)).status, 400);  // policy max 5 downloads
  EXPECT_EQ(Link(Good()).status, 201);
}

TEST_F(ExternalLinkTest, DownloadWithoutDeviceIsAuditedCountedAndLimited) {
  Enable();
  auto r = Link(Good(2));
  ASSERT_EQ(r.status, 201) << r.body;
  std::string path = J(r)["path"];
  // Only the token's hash is stored.
  std::string token = J(r)["token"];
  std::ifstream db(opts_.data_dir + "/meta.db", std::ios::binary);
  std::string dbtext((std::istreambuf_iterator<char>(db)), {});
  EXPECT_EQ(dbtext.find(token), std::string::npos);

  std::string body;
  EXPECT_EQ(LinkGet(path, "", &body).status, 403);  // no password
  body.clear();
  EXPECT_EQ(LinkGet(path, "Wrong-Password-123", &body).status, 403);
  body.clear();
  ASSERT_EQ(LinkGet(path, kLinkPassword, &body).status, 200);
  EXPECT_EQ(body, kCsv);
  body.clear();
  ASSERT_EQ(LinkGet(path, kLinkPassword, &body).status, 200);
  body.clear();
  auto third = LinkGet(path, kLinkPassword, &body);
  EXPECT_EQ(third.status, 429) << body;  // the download limit
  body.clear();
  EXPECT_EQ(LinkGet("/v1/links/not-a-token", kLinkPassword, &body).status, 404);

  auto recs = AuditRecords("link.download", "link");
  ASSERT_EQ(recs.size(), 6u);
  EXPECT_EQ(recs[2].result, "allow");
  EXPECT_EQ(recs[2].source_ip, "127.0.0.1");
  EXPECT_EQ(recs[2].extra["shared_by"], "alice");
  EXPECT_EQ(recs[4].result, "deny");
}

// A link is its creator's way out: what it hands out counts against the
// creator's user budgets (and what the creator downloads counts against the
// link), so a budget cannot be sidestepped by linking instead of downloading.
TEST_F(ExternalLinkTest, DownloadsCountAgainstTheCreatorsBudget) {
  Enable();
  ASSERT_EQ(Admin("PUT", "/v1/admin/policies/download_budget", {{"user_per_hour", {{"files", 2}}}})
                .status,
            200);
  std::string got;
  ASSERT_EQ(Get(alice_, alice_session_, "a.csv", &got).status, 200);  // alice: 1 of 2
  auto r = Link(Good(5));
  ASSERT_EQ(r.status, 201) << r.body;
  std::string body;
  ASSERT_EQ(LinkGet(J(r)["path"], kLinkPassword, &body).status, 200);  // 2 of 2
  body.clear();
  auto over = LinkGet(J(r)["path"], kLinkPassword, &body);
  EXPECT_EQ(over.status, 429) << body;
  EXPECT_NE(body.find("user_per_hour, files"), std::string::npos) << body;
  got.clear();
  EXPECT_EQ(Get(alice_, alice_session_, "a.csv", &got).status, 429);  // the link used her budget
  auto recs = AuditRecords("link.download", "link");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].result, "deny");
  EXPECT_EQ(recs[1].extra["budget"], "user_per_hour.files");
}

// Bulk export needs a second person's approval for one named download; a link
// download cannot carry one, so past the threshold it is refused and alerted.
TEST_F(ExternalLinkTest, PastTheBulkExportThresholdLinksAreRefused) {
  Enable();
  ASSERT_EQ(Admin("PUT", "/v1/admin/policies/bulk_export", {{"individuals", 3}}).status, 200);
  auto r = Link(Good(5));
  ASSERT_EQ(r.status, 201) << r.body;
  std::string body;
  ASSERT_EQ(LinkGet(J(r)["path"], kLinkPassword, &body).status, 200);  // 2 people of 3
  body.clear();
  auto over = LinkGet(J(r)["path"], kLinkPassword, &body);  // 4 people > 3
  EXPECT_EQ(over.status, 403) << body;
  EXPECT_NE(body.find("bulk-export threshold (individuals)"), std::string::npos) << body;
  auto recs = AuditRecords("link.download", "link");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].result, "deny");
  EXPECT_EQ(recs[1].extra["bulk_export"], "individuals");
}

TEST_F(ExternalLinkTest, RefusedAfterExpiryRevocationOrPolicyOff) {
  Enable();
  auto r1 = Link(Good(5));
  auto r2 = Link(Good(5));
  auto r3 = Link(Good(5));
  ASSERT_EQ(r3.status, 201);
  std::string body;
  ASSERT_EQ(A("DELETE", "/v1/shares/" + std::to_string(J(r1)["id"].get<int64_t>())).status, 200);
  auto revoked = LinkGet(J(r1)["path"], kLinkPassword, &body);
  EXPECT_EQ(revoked.status, 403);
  EXPECT_NE(body.find("revoked"), std::string::npos) << body;
  body.clear();
  // Policy switched off: existing links stop working too.
  ASSERT_EQ(Admin("PUT", "/v1/admin/policies/external_links", {{"enabled", false}}).status, 200);
  EXPECT_EQ(LinkGet(J(r3)["path"], kLinkPassword, &body).status, 403);
  body.clear();
  Enable();
  clock_.Advance(25 * 3600LL * 1000000);
  auto expired = LinkGet(J(r2)["path"], kLinkPassword, &body);
  EXPECT_EQ(expired.status, 403);
  EXPECT_NE(body.find("expired"), std::string::npos) << body;
}

TEST_F(ExternalLinkTest, ManyWrongPasswordsRevokeTheLink) {
  Enable();
  auto r = Link(Good(5));
  ASSERT_EQ(r.status, 201);
  std::string body;
  for (int i = 0; i < 10; ++i) LinkGet(J(r)["path"], "Wrong-Password-123", &body);
  body.clear();
  EXPECT_EQ(LinkGet(J(r)["path"], kLinkPassword, &body).status, 403);
  EXPECT_NE(body.find("revoked"), std::string::npos) << body;
}

TEST_F(ExternalLinkTest, MyNumberFilesCannotBeLinked) {
  Enable();
  ASSERT_EQ(Put(alice_, alice_session_, "mn.csv", kMyNumber).status, 201);
  auto r = A("POST", FileUrl("mn.csv") + "/shares", Good());
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("jp.my_number"), std::string::npos);
  // A link made before My Number arrived in a new version stops working.
  auto l = Link(Good(5));
  ASSERT_EQ(l.status, 201);
  ASSERT_EQ(Put(alice_, alice_session_, "a.csv", kMyNumber).status, 201);
  std::string body;
  EXPECT_EQ(LinkGet(J(l)["path"], kLinkPassword, &body).status, 403);
  // The label policy can widen the list.
  ASSERT_EQ(Admin("PUT", "/v1/admin/policies/labels", {{"no_external_links", {"jp.phone"}}}).status,
            200);
  ASSERT_EQ(Put(alice_, alice_session_, "b.csv", kCsv).status, 201);
  auto p = A("POST", FileUrl("b.csv") + "/shares", Good());
  EXPECT_EQ(p.status, 403) << p.body;
}

// ---------------------------------------------------------------- uploads
class ResumableUploadTest : public VaultContentTest {
 protected:
  // Sends content[off, off + n) to the upload session at `base` as alice.
  ClientResponse PutPart(const std::string& base, const std::string& content, uint64_t off,
                         uint64_t n) {
    auto cl = Connect(&alice_);
    uint64_t pos = off;
    auto r = cl->Upload("PUT", base + "?offset=" + std::to_string(off),
                        {{"authorization", "Bearer " + alice_session_}}, n,
                        [&](char* b, size_t k) -> Result<size_t> {
                          size_t m = std::min<uint64_t>(k, off + n - pos);
                          std::memcpy(b, content.data() + pos, m);
                          pos += m;
                          return m;
                        });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ClientResponse{};
  }
  void SetUp() override {
    VaultContentTest::SetUp();
    Restart([](VaultOptions* o) { o->upload_segment_bytes = 256 * 1024; });
    SetUpOrg();
  }
  ClientOptions Opts(const DeviceCreds& d) {
    ClientOptions co;
    co.port = port_;
    co.ca_path = ca_path_;
    co.cert_path = d.cert_path;
    co.key_path = d.key_path;
    return co;
  }
};

TEST_F(ResumableUploadTest, DroppedConnectionResumesAndHashMatches) {
  std::string content;
  for (int i = 0; content.size() < 3 * 1024 * 1024; ++i)
    content += "山田" + std::to_string(i) + ",090-1234-" + std::to_string(1000 + i % 9000) + "\n";
  uint64_t read_total = 0;
  int from_zero = 0;
  bool cut = false;
  ResumableUploadOptions ro;
  ro.part_bytes = 2 * 1024 * 1024;
  ro.retry_delay_ms = 50;
  auto r = UploadResumable(
      Opts(alice_), {{"authorization", "Bearer " + alice_session_}}, std::to_string(folder_),
      "big.csv", content.size(), Sha(content),
      [&](uint64_t off, char* b, size_t n) -> Result<size_t> {
        if (!cut && off > 1536 * 1024) {
          cut = true;  // the connection drops in the middle of the first part
          return Unavailable("network cable pulled");
        }
        size_t k = std::min<uint64_t>(n, content.size() - off);
        std::memcpy(b, content.data() + off, k);
        read_total += k;
        from_zero += off == 0;
        return k;
      },
      ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 201) << r->body;
  EXPECT_TRUE(cut);
  // Resumed from the committed offset (whole segments), never from zero.
  EXPECT_EQ(from_zero, 1);
  EXPECT_LT(read_total, 2 * content.size());
  EXPECT_GE(read_total, content.size());
  std::string got;
  auto g = Get(alice_, alice_session_, "big.csv", &got);
  ASSERT_EQ(g.status, 200);
  EXPECT_EQ(Sha(got), Sha(content));
  EXPECT_EQ(J(*r)["label"]["scanned"], true) << r->body;
  EXPECT_GT(J(*r)["label"]["types"].value("jp.phone", 0), 0) << r->body;
  EXPECT_TRUE(std::filesystem::is_empty(opts_.data_dir + "/uploads"));
  EXPECT_FALSE(AuditRecords("upload.complete", "alice").empty());
}

TEST_F(ResumableUploadTest, NothingVisibleUntilCompleteAndHashChecked) {
  std::string content(700 * 1024, 'x');
  auto c = A("POST", Folder(folder_) + "/uploads", {{"name", "p.bin"}, {"size", content.size()}});
  ASSERT_EQ(c.status, 201) << c.body;
  std::string base = Folder(folder_) + "/uploads/" + J(c)["id"].get<std::string>();
  auto put_part = [&](uint64_t off, uint64_t n) { return PutPart(base, content, off, n); };
  auto p1 = put_part(0, 300 * 1024);
  ASSERT_EQ(p1.status, 200) << p1.body;
  EXPECT_EQ(J(p1)["offset"], 300 * 1024);
  EXPECT_EQ(put_part(0, 10).status, 409);  // wrong offset
  EXPECT_TRUE(J(A("GET", Folder(folder_) + "/files"))["files"].empty());
  EXPECT_EQ(A("POST", base + "/complete", {{"sha256", Sha(content)}}).status, 409);  // incomplete
  auto st = A("GET", base);
  ASSERT_EQ(st.status, 200);
  EXPECT_EQ(J(st)["offset"], 300 * 1024);
  ASSERT_EQ(put_part(300 * 1024, 400 * 1024).status, 200);
  EXPECT_EQ(put_part(700 * 1024, 1).status, 429);  // past the declared size
  EXPECT_EQ(A("POST", base + "/complete", {{"sha256", std::string(64, '0')}}).status, 400);
  EXPECT_TRUE(J(A("GET", Folder(folder_) + "/files"))["files"].empty());
  auto done = A("POST", base + "/complete", {{"sha256", Sha(content)}});
  ASSERT_EQ(done.status, 201) << done.body;
  std::string got;
  ASSERT_EQ(Get(alice_, alice_session_, "p.bin", &got).status, 200);
  EXPECT_EQ(got, content);
  EXPECT_EQ(A("GET", base).status, 404);  // the session is gone
  // Segments on disk were encrypted: no run of plaintext in the data dir.
}

// Key rotation re-wraps unfinished uploads' segment keys as well, so an upload
// still completes after the old KEK is retired from the keyring.
TEST_F(ResumableUploadTest, KeyRotationRewrapsOpenUploads) {
  std::string content(600 * 1024, 'y');
  auto c = A("POST", Folder(folder_) + "/uploads", {{"name", "r.bin"}, {"size", content.size()}});
  ASSERT_EQ(c.status, 201) << c.body;
  std::string base = Folder(folder_) + "/uploads/" + J(c)["id"].get<std::string>();
  auto put_part = [&](uint64_t off, uint64_t n) { return PutPart(base, content, off, n); };
  ASSERT_EQ(put_part(0, 300 * 1024).status, 200);
  auto rot = Admin("POST", "/v1/admin/keys/rotate");
  ASSERT_EQ(rot.status, 200) << rot.body;
  EXPECT_EQ(J(rot)["rewrapped"], 2);  // the metadata key and the upload's segment key
  // Retire KEK 1: drop its line from the keyring file.
  StopServer();
  std::string ring;
  {
    std::ifstream in(opts_.keyring_path);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("kek 1 ", 0) != 0) ring += line + "\n";
  }
  ASSERT_NE(ring.find("kek 2 "), std::string::npos);
  {
    std::ofstream out(opts_.keyring_path, std::ios::trunc);
    out << ring;
  }
  StartServer();
  Relogin();
  ASSERT_EQ(put_part(300 * 1024, 300 * 1024).status, 200);
  auto done = A("POST", base + "/complete", {{"sha256", Sha(content)}});
  ASSERT_EQ(done.status, 201) << done.body;
  std::string got;
  ASSERT_EQ(Get(alice_, alice_session_, "r.bin", &got).status, 200);
  EXPECT_EQ(got, content);
}

TEST_F(ResumableUploadTest, OpenSessionsPerUserAreBounded) {
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    auto c = A("POST", Folder(folder_) + "/uploads", {{"name", "p.bin"}, {"size", 10}});
    ASSERT_EQ(c.status, 201) << c.body;
    ids.push_back(J(c)["id"]);
  }
  auto over = A("POST", Folder(folder_) + "/uploads", {{"name", "p.bin"}, {"size", 10}});
  EXPECT_EQ(over.status, 429) << over.body;
  ASSERT_EQ(A("DELETE", Folder(folder_) + "/uploads/" + ids[0]).status, 200);
  EXPECT_FALSE(std::filesystem::exists(opts_.data_dir + "/uploads/" + ids[0]));
  EXPECT_EQ(A("POST", Folder(folder_) + "/uploads", {{"name", "p.bin"}, {"size", 10}}).status, 201);
}

TEST_F(VaultContentTest, ContainerInspectionMemoryIsBoundedAcrossUploads) {
  // A total budget below one container: it is stored, flagged as not inspected.
  Restart([](VaultOptions* o) { o->max_label_buffer_total_bytes = 64; });
  SetUpOrg();
  std::string zip = extract::testing::MakeZip({{"list.csv", kCsv}});
  auto r = Put(alice_, alice_session_, "list.zip", zip);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(J(r)["label"]["scanned"], false) << r.body;
  EXPECT_NE(J(r)["label"].value("incomplete", "").find("inspection memory"), std::string::npos);
}

TEST_F(ResumableUploadTest, AbandonedSessionsExpireAndAreCleaned) {
  auto c = A("POST", Folder(folder_) + "/uploads", {{"name", "p.bin"}, {"size", 1000}});
  ASSERT_EQ(c.status, 201) << c.body;
  std::string id = J(c)["id"];
  ASSERT_TRUE(std::filesystem::exists(opts_.data_dir + "/uploads/" + id));
  clock_.Advance(25 * 3600LL * 1000000);
  Relogin();
  EXPECT_EQ(A("GET", Folder(folder_) + "/uploads/" + id).status, 404);
  auto p = Admin("POST", "/v1/admin/trash/purge");
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(J(p)["expired_uploads"], 1);
  EXPECT_FALSE(std::filesystem::exists(opts_.data_dir + "/uploads/" + id));
}

// ---------------------------------------------------------------- labels
TEST_F(VaultContentTest, ContainersAreLabelledByTheirExtractedText) {
  SetUpOrg();
  std::string zip = extract::testing::MakeZip({{"list.csv", kCsv}});
  auto r = Put(alice_, alice_session_, "list.zip", zip);
  ASSERT_EQ(r.status, 201) << r.body;
  json label = J(r)["label"];
  EXPECT_EQ(label["scanned"], true) << label;
  EXPECT_EQ(label["extracted"], true) << label;
  EXPECT_GT(label["types"].value("jp.phone", 0), 0) << label;
  EXPECT_GE(label["individuals"].get<int>(), 2) << label;

  // An encrypted member cannot be inspected: stored by default, flagged.
  std::string locked = extract::testing::MakeZip({{"list.csv", kCsv}}, "secret-pass");
  auto e = Put(alice_, alice_session_, "locked.zip", locked);
  ASSERT_EQ(e.status, 201) << e.body;
  EXPECT_EQ(J(e)["label"]["scanned"], false);
  EXPECT_TRUE(J(e)["label"].contains("incomplete")) << e.body;
  EXPECT_EQ(J(e)["label"]["incomplete"].get<std::string>().find("list.csv"), std::string::npos);
  // Policy can refuse what cannot be inspected.
  ASSERT_EQ(Admin("PUT", "/v1/admin/policies/labels", {{"unscanned", "refuse"}}).status, 200);
  auto refused = Put(alice_, alice_session_, "locked2.zip", locked);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("not inspected"), std::string::npos);
}

TEST_F(VaultContentTest, CsvUploadsAreLabelledWithTheirColumnHeaders) {
  SetUpOrg();
  // Names are only recognised with their column's header as context.
  const std::string csv = "氏名,電話番号\n山田太郎,090-1234-5678\n佐藤花子,080-2345-6789\n";
  auto as_csv = Put(alice_, alice_session_, "list.csv", csv);
  ASSERT_EQ(as_csv.status, 201) << as_csv.body;
  EXPECT_GT(J(as_csv)["label"]["types"].value("jp.person_name", 0), 0) << as_csv.body;
  EXPECT_GE(J(as_csv)["label"]["individuals"].get<int>(), 2) << as_csv.body;
}

// A photo or an unknown binary format has no text to inspect. Its label says
// so (scanned: false), so it is never taken for "checked, no personal data"
// (and, like anything uninspected, cannot go out by external link).
TEST_F(VaultContentTest, ContentWithoutTextIsLabelledNotInspected) {
  SetUpOrg();
  std::string png("\x89PNG\r\n\x1a\n", 8);
  for (int i = 0; i < 4096; ++i) png += static_cast<char>((i * 7919) & 0xff);
  auto r = Put(alice_, alice_session_, "card.png", png);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(J(r)["label"]["scanned"], false) << r.body;
  EXPECT_NE(J(r)["label"].value("incomplete", "").find("image"), std::string::npos) << r.body;
  std::string noise;
  for (int i = 0; i < 70000; ++i) noise += static_cast<char>((i * 2654435761u) >> 24);
  auto b = Put(alice_, alice_session_, "blob.dat", noise);
  ASSERT_EQ(b.status, 201) << b.body;
  EXPECT_EQ(J(b)["label"]["scanned"], false) << b.body;
  // Text is still labelled as before.
  auto t = Put(alice_, alice_session_, "memo.txt", "連絡先: taro.yamada@example.co.jp\n");
  ASSERT_EQ(t.status, 201) << t.body;
  EXPECT_EQ(J(t)["label"]["scanned"], true) << t.body;
}

// A Shift_JIS (CP932) customer list, as Excel in Japan saves CSV: labelled
// after decoding, so its names and My Numbers count, not only its digits.
TEST_F(VaultContentTest, ShiftJisCsvIsLabelledAfterDecoding) {
  SetUpOrg();
  std::ifstream in(std::string(MAMORI_SOURCE_DIR) + "/examples/customers_sjis.csv",
                   std::ios::binary);
  std::stringstream sjis;
  sjis << in.rdbuf();
  ASSERT_GT(sjis.str().size(), 100u);
  auto r = Put(alice_, alice_session_, "customers.csv", sjis.str());
  ASSERT_EQ(r.status, 201) << r.body;
  auto label = J(r)["label"];
  EXPECT_TRUE(label.value("scanned", false)) << r.body;
  EXPECT_GT(label["types"].value("jp.person_name", 0), 0) << r.body;
  EXPECT_GT(label["types"].value("jp.my_number", 0), 0) << r.body;
  EXPECT_EQ(label["individuals"].get<int>(), 5) << r.body;
}

TEST_F(VaultContentTest, LabelPolicyKeepsMyNumberInsideItsFolder) {
  SetUpOrg();
  int64_t f2 = SecondFolder("rw");
  EXPECT_EQ(Admin("PUT", "/v1/admin/policies/labels",
                  {{"rules", {{{"type", "jp.nope"}, {"only_folders", {f2}}}}}})
                .status,
            400);
  EXPECT_EQ(Admin("PUT", "/v1/admin/policies/labels",
                  {{"rules", {{{"type", "jp.my_number"}, {"only_folders", {999}}}}}})
                .status,
            400);
  ASSERT_EQ(Admin("PUT", "/v1/admin/policies/labels",
                  {{"rules", {{{"type", "jp.my_number"}, {"only_folders", {f2}}}}}})
                .status,
            200);
  auto g = Admin("GET", "/v1/admin/policies/labels");
  ASSERT_EQ(g.status, 200);
  EXPECT_EQ(J(g)["value"]["rules"][0]["type"], "jp.my_number");

  auto bad = Put(alice_, alice_session_, "mn.csv", kMyNumber);
  EXPECT_EQ(bad.status, 403) << bad.body;
  EXPECT_NE(bad.body.find("jp.my_number"), std::string::npos);
  EXPECT_NE(bad.body.find("folder(s) " + std::to_string(f2)), std::string::npos);
  EXPECT_EQ(BlobCount(), 0u);  // nothing kept
  auto recs = AuditRecords("put", "alice");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].result, "deny");
  EXPECT_EQ(recs[0].extra["label_rule"], "jp.my_number");

  ASSERT_EQ(PutIn(f2, "mn.csv", kMyNumber).status, 201);
  EXPECT_EQ(Put(alice_, alice_session_, "plain.csv", kCsv).status, 201);  // other types: fine
  // Moving it out is refused too.
  auto mv = A("POST", Url(f2, "mn.csv") + "/move", {{"folder", folder_}});
  EXPECT_EQ(mv.status, 403) << mv.body;
}

}  // namespace
}  // namespace mamori::vault::testing
