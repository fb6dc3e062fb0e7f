#include "egress/decision.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>

namespace mamori::egress {
namespace {

const char kPolicy[] = R"(
categories:
  unknown: {uploads: inspect, on_error: block, content: {block_types: [jp.my_number], max_individuals: 10}}
  lenient: {uploads: inspect, on_error: allow, domains: [lenient.test], content: {not_inspected: allow}}
  personal_storage: {uploads: block, domains: [gigafile.nu]}
  webmail: {uploads: inspect, max_upload_bytes: 1000, domains: [mail.test]}
  approved: {uploads: allow, domains: [corp.test]}
caps:
  - {name: hourly, window: 1h, max_bytes: 200MB, max_individuals: 15, categories: [unknown, approved]}
)";

class EgressDecision : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = ParsePolicy({{"p.yaml", kPolicy}});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    policy_ = *p;
  }
  Exchange Ex(const std::string& host, std::optional<uint64_t> len = 100) {
    Exchange ex;
    ex.user = "alice";
    ex.host = host;
    ex.method = "POST";
    ex.category = &policy_->Classify(host, &ex.site);
    ex.has_body = true;
    ex.content_length = len;
    return ex;
  }
  FakeClock clock_{1'700'000'000'000'000};
  VolumeTracker volume_{&clock_};
  Decider d_{&volume_};
  std::shared_ptr<const Policy> policy_;
};

TEST_F(EgressDecision, BlocksPersonalStorageBeforeTheBody) {
  Verdict v;
  EXPECT_EQ(d_.PreBody(*policy_, Ex("103.gigafile.nu"), &v), PreAction::kBlock);
  EXPECT_EQ(v.reason, "destination_blocked");
  EXPECT_TRUE(v.alert);
  auto get = Ex("103.gigafile.nu");
  get.has_body = false;
  get.method = "GET";
  EXPECT_EQ(d_.PreBody(*policy_, get, &v), PreAction::kAllow);
}

TEST_F(EgressDecision, WebmailAttachmentLimit) {
  Verdict v;
  EXPECT_EQ(d_.PreBody(*policy_, Ex("mail.test", 1001), &v), PreAction::kBlock);
  EXPECT_EQ(v.reason, "upload_too_large");
  EXPECT_EQ(d_.PreBody(*policy_, Ex("mail.test", 1000), &v), PreAction::kInspect);
}

TEST_F(EgressDecision, ContentThresholds) {
  auto ex = Ex("upload.example.com");
  InspectionSummary s;
  s.types["jp.my_number"] = 1;
  Verdict v = d_.PostBody(*policy_, ex, 100, s);
  EXPECT_TRUE(v.block);
  EXPECT_EQ(v.reason, "sensitive_content");
  InspectionSummary many;
  many.types["jp.phone"] = 30;
  many.individuals = 10;
  v = d_.PostBody(*policy_, ex, 100, many);
  EXPECT_EQ(v.reason, "too_many_individuals");
  many.individuals = 9;
  v = d_.PostBody(*policy_, ex, 100, many);
  EXPECT_FALSE(v.block) << v.reason;
  EXPECT_EQ(v.reason, "inspected_clean");
  // The individuals cap (15 per hour) sums across requests: 9 + 9 > 15.
  v = d_.PostBody(*policy_, ex, 100, many);
  EXPECT_TRUE(v.block);
  EXPECT_EQ(v.reason, "volume_cap");
}

TEST_F(EgressDecision, FailClosedOrOpenPerCategory) {
  Result<InspectionSummary> failed = ResourceExhausted("budget");
  Verdict v = d_.PostBody(*policy_, Ex("x.example.org"), 100, failed);
  EXPECT_TRUE(v.block);
  EXPECT_EQ(v.reason, "inspection_failed");
  v = d_.PostBody(*policy_, Ex("lenient.test"), 100, failed);
  EXPECT_FALSE(v.block);
  EXPECT_EQ(v.reason, "inspection_failed_open");
}

// A photo of a My Number card has no text: by default the upload stops; a
// category with `not_inspected: allow` lets it through, recorded as such.
TEST_F(EgressDecision, ContentWithoutTextIsNotCalledClean) {
  InspectionSummary photo;
  photo.units = 2;
  photo.not_inspected = 1;
  photo.not_inspected_parts = {"form:file file=card.jpg (image)"};
  Verdict v = d_.PostBody(*policy_, Ex("upload.example.com"), 100, photo);
  EXPECT_TRUE(v.block);
  EXPECT_TRUE(v.alert);
  EXPECT_EQ(v.reason, "not_inspected");
  EXPECT_NE(v.detail.find("card.jpg (image)"), std::string::npos) << v.detail;
  BlockPage page = MakeBlockPage(Settings{}, Ex("upload.example.com"), v, "E1", 0);
  EXPECT_NE(page.body.find("cannot be inspected"), std::string::npos);
  v = d_.PostBody(*policy_, Ex("lenient.test"), 100, photo);
  EXPECT_FALSE(v.block);
  EXPECT_EQ(v.reason, "not_inspected");
  // A download is never blocked for it (every web page has pictures).
  auto dl = Ex("upload.example.com");
  dl.is_response = true;
  v = d_.PostBody(*policy_, dl, 100, photo);
  EXPECT_FALSE(v.block);
  EXPECT_EQ(v.reason, "not_inspected");
  // Found personal data still decides first.
  photo.types["jp.my_number"] = 1;
  EXPECT_EQ(d_.PostBody(*policy_, Ex("upload.example.com"), 100, photo).reason,
            "sensitive_content");
  // A bad setting says what to write.
  auto bad = ParsePolicy(
      {{"p.yaml",
        "categories:\n  unknown: {uploads: inspect, content: {not_inspected: maybe}}\n"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("must be block (fail closed) or allow"), std::string::npos)
      << bad.status().ToString();
}

TEST_F(EgressDecision, ChunkedUploadsSummedAgainstTheCap) {
  const uint64_t chunk = 50'000'000;
  int blocked_at = -1;
  for (int i = 0; i < 10; ++i) {
    auto ex = Ex("47.bigfiles.example", chunk);
    Verdict v;
    PreAction a = d_.PreBody(*policy_, ex, &v);
    if (a == PreAction::kBlock) {
      EXPECT_EQ(v.reason, "volume_cap");
      if (blocked_at < 0) blocked_at = i;
      continue;
    }
    ASSERT_EQ(a, PreAction::kInspect);
    v = d_.PostBody(*policy_, ex, chunk, InspectionSummary{});
    ASSERT_FALSE(v.block) << i;
    clock_.Advance(5'000'000);
  }
  EXPECT_EQ(blocked_at, 4);  // 4 x 50 MB = 200 MB is the cap
  // Approved destinations with a known size are counted without inspection.
  auto ok = Ex("files.corp.test", chunk);
  Verdict v;
  EXPECT_EQ(d_.PreBody(*policy_, ok, &v), PreAction::kAllow);
  EXPECT_EQ(volume_.Usage("hourly|alice|corp.test", 3600).bytes, chunk);
}

TEST_F(EgressDecision, BlockPageHasEventIdBothLanguagesAndEscapes) {
  auto ex = Ex("<script>.example");
  Verdict v{true, "sensitive_content", "", true, 0};
  auto page = MakeBlockPage(policy_->settings, ex, v, "7K2Q9XMA4B", 1'700'000'000'000'000);
  EXPECT_NE(page.head.find("HTTP/1.1 403 Forbidden\r\n"), std::string::npos);
  EXPECT_NE(page.head.find("X-Mamori-Event-Id: 7K2Q9XMA4B"), std::string::npos);
  EXPECT_NE(page.head.find("Content-Length: " + std::to_string(page.body.size())),
            std::string::npos);
  EXPECT_NE(page.body.find("7K2Q9XMA4B"), std::string::npos);
  EXPECT_NE(page.body.find("マイナンバー"), std::string::npos);
  EXPECT_NE(page.body.find("My Number"), std::string::npos);
  EXPECT_EQ(page.body.find("<script>"), std::string::npos);
  EXPECT_NE(page.body.find("&lt;script&gt;"), std::string::npos);
}

// A cap journal that cannot be written blocks uploads that count against a
// cap, as a failure to decide (not as "cap reached"), and keeps blocking.
TEST_F(EgressDecision, CapJournalWriteFailureBlocksAsInspectionFailed) {
  std::string dir = ::testing::TempDir() + "decision_journal_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  VolumeJournalOptions o;
  o.path = dir + "/caps.journal";
  o.sync_interval_ms = 0;
  auto tracker = VolumeTracker::Open(&clock_, o);
  ASSERT_TRUE(tracker.ok()) << tracker.status().ToString();
  Decider d(tracker->get());
  // The file may not grow past its header: the next append fails (EFBIG).
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tiny = old;
  tiny.rlim_cur = std::filesystem::file_size(o.path);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tiny), 0);
  Verdict v = d.PostBody(*policy_, Ex("upload.example.com"), 100, InspectionSummary{});
  Verdict again = d.PostBody(*policy_, Ex("upload.example.com"), 100, InspectionSummary{});
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(v.block);
  EXPECT_EQ(v.reason, "inspection_failed");
  EXPECT_NE(v.detail.find("cap journal"), std::string::npos) << v.detail;
  EXPECT_TRUE(again.block);  // failed journal stays failed until restart
  EXPECT_EQ(again.reason, "inspection_failed");
  tracker->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mamori::egress
