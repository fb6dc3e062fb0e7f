#include "vault/meta_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace mamori::vault {
namespace {

class MetaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mamori_meta_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto s = OpenSqliteMetaStore((dir_ / "meta.db").string());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    db_ = std::move(s).value();
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<MetaStore> db_;
};

TEST_F(MetaStoreTest, MigratesAndReopens) {
  EXPECT_EQ(db_->schema_version(), 3);
  ASSERT_TRUE(db_->PutMeta("k", std::string("a\0b", 3)).ok());
  db_.reset();
  auto again = OpenSqliteMetaStore((dir_ / "meta.db").string());
  ASSERT_TRUE(again.ok());
  auto v = (*again)->GetMeta("k");
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ(**v, std::string("a\0b", 3));
}

TEST_F(MetaStoreTest, UsersGroupsDevicesSessions) {
  User u;
  u.name = "alice";
  u.role = Role::kMember;
  u.created_micros = 5;
  auto id = db_->CreateUser(u);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(db_->CreateUser(u).status().code(), StatusCode::kAlreadyExists);
  auto got = db_->GetUserByName("alice");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, *id);
  got->failed_logins = 3;
  got->role = Role::kAuditor;
  ASSERT_TRUE(db_->UpdateUser(*got).ok());
  EXPECT_EQ(db_->GetUser(*id)->failed_logins, 3);
  EXPECT_EQ(db_->GetUser(*id)->role, Role::kAuditor);

  auto g = db_->CreateGroup("sales");
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(db_->AddMember(*g, *id).ok());
  EXPECT_EQ(*db_->GroupsOf(*id), std::vector<int64_t>{*g});
  ASSERT_TRUE(db_->RemoveMember(*g, *id).ok());
  EXPECT_TRUE(db_->GroupsOf(*id)->empty());

  Device d;
  d.user_id = *id;
  d.name = "laptop";
  d.status = "pending";
  d.csr_pem = "csr";
  d.poll_secret_hash = "h";
  auto did = db_->CreateDevice(d);
  ASSERT_TRUE(did.ok());
  auto dev = db_->GetDevice(*did);
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ(dev->status, "pending");
  dev->status = "active";
  dev->fingerprint = "ff";
  ASSERT_TRUE(db_->UpdateDevice(*dev).ok());
  EXPECT_EQ(db_->GetDeviceByFingerprint("ff")->id, *did);
  ASSERT_TRUE(db_->TouchDevice(*did, 99, "127.0.0.1").ok());
  EXPECT_EQ(db_->GetDevice(*did)->last_ip, "127.0.0.1");

  Session s{"tok", *id, *did, 1, 100, "127.0.0.1"};
  ASSERT_TRUE(db_->CreateSession(s).ok());
  EXPECT_TRUE(db_->GetSession("tok").ok());
  EXPECT_EQ(*db_->DeleteSessionsOfDevice(*did), 1);
  EXPECT_EQ(db_->GetSession("tok").status().code(), StatusCode::kNotFound);
}

TEST_F(MetaStoreTest, EnrolTokenWorksOnceAndExpires) {
  ASSERT_TRUE(db_->CreateEnrolToken({"t1", 7, 1000, false}).ok());
  EXPECT_FALSE(db_->ConsumeEnrolToken("t1", 1000).ok());  // expired at 1000
  auto ok = db_->ConsumeEnrolToken("t1", 999);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->user_id, 7);
  EXPECT_EQ(db_->ConsumeEnrolToken("t1", 1).status().code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(db_->ConsumeEnrolToken("nope", 1).ok());
}

TEST_F(MetaStoreTest, ObjectsVersionsTrash) {
  auto f = db_->CreateFolder({0, "sealed", "tag-f", 1});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(db_->CreateFolder({0, "sealed2", "tag-f", 1}).status().code(),
            StatusCode::kAlreadyExists);
  ObjectVersion v;
  v.blob_id = "b1";
  v.wrapped_key = "w1";
  v.size = 10;
  v.sha256 = "s";
  auto v1 = db_->AddVersion(*f, "n", "tag-o", v, "obj1");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->version, 1);
  v.blob_id = "b2";
  auto v2 = db_->AddVersion(*f, "n", "tag-o", v, "ignored");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->object_id, "obj1");
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(db_->FindObject(*f, "tag-o")->current_version, 2);
  EXPECT_EQ(db_->ListVersions("obj1")->size(), 2u);
  ASSERT_TRUE(db_->SetWrappedKey("obj1", 1, "w1b").ok());
  EXPECT_EQ(db_->GetVersion("obj1", 1)->wrapped_key, "w1b");

  v.blob_id = "b3";
  v.size = 30;
  ASSERT_TRUE(db_->AddVersion(*f, "n2", "tag-o2", v, "obj2").ok());
  auto listed = db_->ListObjectsWithCurrent(*f, false);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].first.id, "obj1");
  EXPECT_EQ((*listed)[0].second.version, 2);
  EXPECT_EQ((*listed)[0].second.blob_id, "b2");
  EXPECT_EQ((*listed)[1].first.id, "obj2");
  EXPECT_EQ((*listed)[1].second.size, 30u);
  ASSERT_TRUE(db_->TrashObject("obj2", 400).ok());
  ASSERT_TRUE(db_->PurgeTrash(401).ok());

  ASSERT_TRUE(db_->TrashObject("obj1", 500).ok());
  EXPECT_TRUE(db_->ListObjects(*f, false)->empty());
  EXPECT_EQ(db_->ListObjects(*f, true)->size(), 1u);
  EXPECT_TRUE(db_->ListObjectsWithCurrent(*f, false)->empty());
  EXPECT_EQ(db_->ListObjectsWithCurrent(*f, true)->size(), 1u);
  ASSERT_TRUE(db_->RestoreObject("obj1").ok());
  EXPECT_EQ(db_->ListObjects(*f, false)->size(), 1u);
  ASSERT_TRUE(db_->TrashObject("obj1", 500).ok());
  EXPECT_TRUE(db_->PurgeTrash(500)->empty());  // not older than the cutoff
  auto purged = db_->PurgeTrash(501);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged->size(), 2u);
  EXPECT_EQ(db_->FindObject(*f, "tag-o").status().code(), StatusCode::kNotFound);
}

TEST_F(MetaStoreTest, AclsPoliciesUsage) {
  auto f = db_->CreateFolder({0, "s", "t", 1});
  auto g = db_->CreateGroup("hr");
  ASSERT_TRUE(db_->SetAcl({*f, *g, "r"}).ok());
  ASSERT_TRUE(db_->SetAcl({*f, *g, "rw"}).ok());
  auto acls = db_->AclsOf(*f);
  ASSERT_EQ(acls->size(), 1u);
  EXPECT_EQ((*acls)[0].perms, "rw");
  ASSERT_TRUE(db_->SetAcl({*f, *g, ""}).ok());
  EXPECT_TRUE(db_->AclsOf(*f)->empty());

  ASSERT_TRUE(db_->PutPolicy("budget", "{\"x\":1}").ok());
  EXPECT_EQ(**db_->GetPolicy("budget"), "{\"x\":1}");

  ASSERT_TRUE(db_->RecordDownload(10, 1, 2, 100, 5).ok());
  ASSERT_TRUE(db_->RecordDownload(20, 1, 3, 50, 1).ok());
  auto all = db_->UsageSince(0, 1, std::nullopt);
  EXPECT_EQ(all->bytes, 150u);
  EXPECT_EQ(all->files, 2u);
  EXPECT_EQ(all->individuals, 6u);
  EXPECT_EQ(db_->UsageSince(15, std::nullopt, 3)->bytes, 50u);
  EXPECT_EQ(db_->UsageSince(0, std::nullopt, 9)->files, 0u);
}

TEST_F(MetaStoreTest, GovernanceRulesOrgsAndApprovals) {
  ASSERT_TRUE(db_->PutNetworkRule({"group", "sales", "10.0.0.0/8"}).ok());
  ASSERT_TRUE(db_->PutNetworkRule({"group", "sales", "10.1.0.0/16"}).ok());  // replaces
  ASSERT_TRUE(db_->PutNetworkRule({"role", "member", "127.0.0.0/8"}).ok());
  auto rules = db_->ListNetworkRules();
  ASSERT_TRUE(rules.ok());
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[0].cidrs, "10.1.0.0/16");
  ASSERT_TRUE(db_->PutNetworkRule({"group", "sales", ""}).ok());  // removes
  EXPECT_EQ(db_->ListNetworkRules()->size(), 1u);

  User u;
  u.name = "yamada";
  u.created_micros = 1;
  int64_t uid = *db_->CreateUser(u);
  Org o;
  o.name = "acme";
  o.scope = {3, 5};
  o.expires_micros = 100;
  int64_t acme = *db_->CreateOrg(o);
  EXPECT_EQ(db_->CreateOrg(o).status().code(), StatusCode::kAlreadyExists);
  o.name = "beta";
  int64_t beta = *db_->CreateOrg(o);
  ASSERT_TRUE(db_->SetUserOrg(uid, acme).ok());
  ASSERT_TRUE(db_->SetUserOrg(uid, beta).ok());  // moves: one organisation per user
  auto of = db_->OrgOfUser(uid);
  ASSERT_TRUE(of.ok() && of->has_value());
  EXPECT_EQ((*of)->name, "beta");
  EXPECT_EQ((*of)->scope, (std::vector<int64_t>{3, 5}));
  EXPECT_TRUE(db_->OrgMembers(acme)->empty());
  ASSERT_TRUE(db_->SetUserOrg(uid, std::nullopt).ok());
  EXPECT_FALSE(db_->OrgOfUser(uid)->has_value());

  Approval a;
  a.kind = "export";
  a.requester_id = uid;
  a.folder_id = 3;
  a.object_id = "abc";
  a.version = 2;
  a.created_micros = 10;
  a.duration_micros = 60;
  int64_t id = *db_->CreateApproval(a);
  a = *db_->GetApproval(id);
  a.status = "approved";
  a.expires_micros = 70;
  ASSERT_TRUE(db_->UpdateApproval(a, "pending").ok());
  // A second approver, or a second download, loses the compare-and-set.
  EXPECT_EQ(db_->UpdateApproval(a, "pending").code(), StatusCode::kFailedPrecondition);
  a.status = "used";
  ASSERT_TRUE(db_->UpdateApproval(a, "approved").ok());
  EXPECT_EQ(db_->UpdateApproval(a, "approved").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(db_->GetApproval(id)->status, "used");
  EXPECT_EQ(db_->ListApprovals("export", uid, 10)->size(), 1u);
  EXPECT_TRUE(db_->ListApprovals("break_glass", 0, 10)->empty());
  EXPECT_EQ(db_->GetApproval(999).status().code(), StatusCode::kNotFound);

  // A backup is a complete, openable copy.
  std::string copy = (dir_ / "copy.db").string();
  ASSERT_TRUE(db_->BackupTo(copy).ok());
  EXPECT_FALSE(db_->BackupTo(copy).ok());  // never overwrites
  auto c = OpenSqliteMetaStore(copy);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->GetApproval(id)->status, "used");
}

TEST_F(MetaStoreTest, LinksCountDownloadsAtomicallyAndRevokeAfterFailures) {
  Share link;
  link.object_id = "obj";
  link.kind = "link";
  link.token_hash = "h1";
  link.expires_micros = 1000;
  link.max_downloads = 2;
  auto id = db_->CreateShare(link);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_TRUE(db_->CountLinkDownload(*id, 10).ok());
  EXPECT_TRUE(db_->CountLinkDownload(*id, 10).ok());
  EXPECT_EQ(db_->CountLinkDownload(*id, 10).code(), StatusCode::kFailedPrecondition);  // limit
  link.token_hash = "h2";
  auto id2 = db_->CreateShare(link);
  ASSERT_TRUE(id2.ok());
  EXPECT_EQ(db_->CountLinkDownload(*id2, 1000).code(), StatusCode::kFailedPrecondition);  // expired
  ASSERT_TRUE(db_->CountLinkPasswordFailure(*id2, 2, 5).ok());
  auto n = db_->CountLinkPasswordFailure(*id2, 2, 6);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  auto s = db_->GetShareByToken("h2");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->revoked_micros, 6);
  EXPECT_EQ(db_->CountLinkDownload(*id2, 10).code(), StatusCode::kFailedPrecondition);  // revoked
  link.token_hash = "h1";
  EXPECT_FALSE(db_->CreateShare(link).ok());  // token hashes are unique
}

TEST_F(MetaStoreTest, UploadOffsetsOnlyMoveFromTheCurrentOffset) {
  UploadSession u;
  u.id = "00112233445566778899aabbccddeeff";
  u.folder_id = 1;
  u.user_id = 7;
  u.size = 100;
  u.expires_micros = 50;
  ASSERT_TRUE(db_->CreateUpload(u).ok());
  EXPECT_TRUE(db_->AdvanceUpload(u.id, 0, 40, 60).ok());
  EXPECT_EQ(db_->AdvanceUpload(u.id, 0, 80, 60).code(), StatusCode::kFailedPrecondition);
  auto got = db_->GetUpload(u.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->committed, 40u);
  EXPECT_EQ(got->expires_micros, 60);
  EXPECT_EQ(*db_->CountUploadsOf(7, 59), 1);
  EXPECT_EQ(*db_->CountUploadsOf(7, 60), 0);
  auto expired = db_->ExpiredUploads(60);
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(expired->size(), 1u);
  ASSERT_TRUE(db_->DeleteUpload(u.id).ok());
  EXPECT_EQ(db_->GetUpload(u.id).status().code(), StatusCode::kNotFound);
}

TEST_F(MetaStoreTest, MoveAndRestoreVersions) {
  auto f = db_->CreateFolder({0, "sealed", "tag-f", 1});
  ASSERT_TRUE(f.ok());
  ObjectVersion v;
  v.blob_id = "b1";
  v.wrapped_key = "k";
  ASSERT_TRUE(db_->AddVersion(*f, "n", "a", v, "obj1").ok());
  v.blob_id = "b2";
  ASSERT_TRUE(db_->AddVersion(*f, "n", "a", v, "x").ok());
  ASSERT_TRUE(db_->AddVersion(*f, "n", "b", v, "obj2").ok());
  EXPECT_EQ(db_->MoveObject("obj1", *f, "n2", "b").code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(db_->MoveObject("obj1", *f, "n2", "c").ok());
  EXPECT_TRUE(db_->FindObject(*f, "c").ok());
  EXPECT_FALSE(db_->FindObject(*f, "a").ok());
  ASSERT_TRUE(db_->TrashObject("obj1", 5).ok());
  EXPECT_EQ(db_->SetCurrentVersion("obj1", 3).code(), StatusCode::kNotFound);
  ASSERT_TRUE(db_->SetCurrentVersion("obj1", 1).ok());
  auto o = db_->GetObject("obj1");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->current_version, 1);
  EXPECT_EQ(o->deleted_micros, 0);
}

// The store caches the rows every request reads (device by certificate, user,
// session, folder, groups, ACLs). Each lookup is made once to fill the cache,
// then the row is changed: the next lookup must see the change (remote lock,
// logout, membership and ACL changes apply to the very next request).
TEST_F(MetaStoreTest, CachedLookupsSeeEveryWrite) {
  User u;
  u.name = "bob";
  u.created_micros = 1;
  int64_t uid = db_->CreateUser(u).value();
  Device d;
  d.user_id = uid;
  d.name = "pc";
  d.status = "active";
  d.csr_pem = "csr";
  d.fingerprint = "fp1";
  d.poll_secret_hash = "h";
  d.id = db_->CreateDevice(d).value();
  int64_t gid = db_->CreateGroup("g").value();
  ASSERT_TRUE(db_->AddMember(gid, uid).ok());
  int64_t fid = db_->CreateFolder(Folder{0, "sealed", "tag", 1}).value();
  ASSERT_TRUE(db_->SetAcl(Acl{fid, gid, "r"}).ok());
  ASSERT_TRUE(db_->CreateSession(Session{"th", uid, d.id, 1, 100, "127.0.0.1"}).ok());
  auto fill = [&] {
    ASSERT_TRUE(db_->GetDeviceByFingerprint("fp1").ok());
    ASSERT_TRUE(db_->GetUser(uid).ok());
    ASSERT_TRUE(db_->GetSession("th").ok());
    ASSERT_TRUE(db_->GetFolder(fid).ok());
    ASSERT_TRUE(db_->GroupsOf(uid).ok());
    ASSERT_TRUE(db_->AclsOf(fid).ok());
  };
  fill();
  EXPECT_EQ(db_->GetDeviceByFingerprint("fp1")->status, "active");

  // Touch keeps the cached device current.
  ASSERT_TRUE(db_->TouchDevice(d.id, 777, "10.0.0.9").ok());
  EXPECT_EQ(db_->GetDeviceByFingerprint("fp1")->last_seen_micros, 777);
  EXPECT_EQ(db_->GetDeviceByFingerprint("fp1")->last_ip, "10.0.0.9");

  d.status = "locked";
  ASSERT_TRUE(db_->UpdateDevice(d).ok());
  EXPECT_EQ(db_->GetDeviceByFingerprint("fp1")->status, "locked");
  EXPECT_EQ(db_->GetDeviceByFingerprint("fp1")->last_seen_micros, 777);

  fill();
  User changed = db_->GetUser(uid).value();
  changed.status = "disabled";
  ASSERT_TRUE(db_->UpdateUser(changed).ok());
  EXPECT_EQ(db_->GetUser(uid)->status, "disabled");

  fill();
  ASSERT_TRUE(db_->SetAcl(Acl{fid, gid, "rw"}).ok());
  EXPECT_EQ(db_->AclsOf(fid)->at(0).perms, "rw");
  fill();
  ASSERT_TRUE(db_->SetAcl(Acl{fid, gid, ""}).ok());
  EXPECT_TRUE(db_->AclsOf(fid)->empty());

  fill();
  ASSERT_TRUE(db_->RemoveMember(gid, uid).ok());
  EXPECT_TRUE(db_->GroupsOf(uid)->empty());

  fill();
  ASSERT_TRUE(db_->DeleteSession("th").ok());
  EXPECT_EQ(db_->GetSession("th").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(db_->CreateSession(Session{"th2", uid, d.id, 1, 100, "127.0.0.1"}).ok());
  ASSERT_TRUE(db_->GetSession("th2").ok());
  ASSERT_EQ(db_->DeleteSessionsOfDevice(d.id).value(), 1);
  EXPECT_EQ(db_->GetSession("th2").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(db_->CreateSession(Session{"th3", uid, d.id, 1, 100, "127.0.0.1"}).ok());
  ASSERT_TRUE(db_->GetSession("th3").ok());
  ASSERT_EQ(db_->DeleteSessionsOfUser(uid).value(), 1);
  EXPECT_EQ(db_->GetSession("th3").status().code(), StatusCode::kNotFound);

  // A device that was not found is not remembered as absent.
  EXPECT_EQ(db_->GetDeviceByFingerprint("fp2").status().code(), StatusCode::kNotFound);
  d.fingerprint = "fp2";
  ASSERT_TRUE(db_->UpdateDevice(d).ok());
  EXPECT_TRUE(db_->GetDeviceByFingerprint("fp2").ok());
  EXPECT_EQ(db_->GetDeviceByFingerprint("fp1").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace mamori::vault
