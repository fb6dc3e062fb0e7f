#include "mail/store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/file_util.h"

namespace mamori::mail {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/mamori_mail_store_XXXXXX";
  return mkdtemp(tmpl);
}

TEST(MailStore, HoldLifecycle) {
  std::string dir = TempDir();
  auto s = HoldStore::Open(dir + "/mail.db");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  HeldMail m;
  m.event_id = "MEVENT1";
  m.queue_id = "4QABC123";
  m.time_micros = 10;
  m.reasons = {"my_number"};
  m.recipient_domains = {"client.jp"};
  m.release_at_micros = 500;
  ASSERT_TRUE((*s)->Insert(m).ok());
  EXPECT_FALSE((*s)->Insert(m).ok()) << "event ids are unique";
  auto f = (*s)->Find("4QABC123");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->event_id, "MEVENT1");
  EXPECT_EQ(f->reasons, std::vector<std::string>{"my_number"});
  EXPECT_EQ(f->status, "held");
  EXPECT_TRUE((*s)->DueForRelease(499)->empty());
  EXPECT_EQ((*s)->DueForRelease(500)->size(), 1u);
  ASSERT_TRUE((*s)->AddApproval("MEVENT1", "alice", 20).ok());
  ASSERT_TRUE((*s)->AddApproval("MEVENT1", "alice", 21).ok());
  EXPECT_EQ((*s)->Find("MEVENT1")->approvals.size(), 1u);
  ASSERT_TRUE((*s)->SetStatus("MEVENT1", "released", 30).ok());
  EXPECT_TRUE((*s)->List(false)->empty());
  EXPECT_EQ((*s)->List(true)->size(), 1u);
  EXPECT_EQ((*s)->Find("nope").status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(MailStore, TransitionsAreCompareAndSetAcrossConnections) {
  std::string dir = TempDir();
  // Two connections stand for two processes (admin CLI and the milter).
  auto a = HoldStore::Open(dir + "/mail.db");
  auto b = HoldStore::Open(dir + "/mail.db");
  ASSERT_TRUE(a.ok() && b.ok());
  HeldMail m;
  m.event_id = "MEVENT9";
  m.queue_id = "4QDEF";
  m.time_micros = 10;
  ASSERT_TRUE((*a)->Insert(m).ok());
  EXPECT_EQ(*(*a)->AddApproval("MEVENT9", "boss1", 11), 1u);
  EXPECT_EQ(*(*b)->AddApproval("MEVENT9", "boss1", 12), 1u) << "same person twice";
  EXPECT_EQ(*(*b)->AddApproval("MEVENT9", "boss2", 13), 2u);
  EXPECT_EQ(*(*a)->Transition("MEVENT9", "held", "releasing", 14), true);
  EXPECT_EQ(*(*b)->Transition("MEVENT9", "held", "discarding", 15), false)
      << "only one actor may claim a held mail";
  EXPECT_EQ((*b)->AddApproval("MEVENT9", "boss3", 16).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ((*b)->Interrupted(13)->size(), 0u) << "claimed at 14, not stale at 13";
  ASSERT_EQ((*b)->Interrupted(14)->size(), 1u);
  EXPECT_EQ((*b)->Interrupted(14)->front().status, "releasing");
  EXPECT_EQ(*(*b)->Transition("MEVENT9", "releasing", "released", 17), true);
  EXPECT_EQ((*a)->Find("MEVENT9")->status, "released");
  EXPECT_TRUE((*a)->Interrupted(100)->empty());
  std::filesystem::remove_all(dir);
}

TEST(MailStore, SinkStoresHoldsAndAuditsEveryVerdictWithoutRawAddresses) {
  std::string dir = TempDir();
  auto holds = HoldStore::Open(dir + "/mail.db");
  ASSERT_TRUE(holds.ok());
  FakeClock clock(1000);
  AuditOptions ao;
  ao.log_path = dir + "/audit.jsonl";
  ao.clock = &clock;
  HashKey key;
  auto audit = OpenAuditWriter(ao, key);
  ASSERT_TRUE(audit.ok());
  StoreSink sink(holds->get(), audit->get(), key);
  VerdictRecord r;
  r.event_id = "MEV2";
  r.queue_id = "4QXYZ";
  r.envelope.sender = "taro.yamada@example.co.jp";
  r.envelope.recipients = {"x@client.jp"};
  r.verdict.action = Action::kHold;
  r.verdict.reasons = {"my_number"};
  r.verdict.recipient_domains = {"client.jp"};
  r.content.scanned = true;
  r.content.my_numbers = 50;
  r.content.types["jp.my_number"] = 50;
  ASSERT_TRUE(sink.Record(r).ok());
  r.event_id = "MEV3";
  r.verdict.action = Action::kAccept;
  ASSERT_TRUE(sink.Record(r).ok());
  EXPECT_EQ((*holds)->List(false)->size(), 1u);
  EXPECT_EQ((*holds)->Find("MEV2")->sender_masked.find("taro.yamada"), std::string::npos);
  auto text = ReadFile(ao.log_path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->find("taro.yamada"), std::string::npos) << *text;
  EXPECT_EQ(text->find("x@client.jp"), std::string::npos);
  size_t nl = text->find('\n');
  ASSERT_NE(nl, std::string::npos);
  auto j = nlohmann::json::parse(text->substr(0, nl));
  EXPECT_EQ(j["result"], "hold");
  EXPECT_EQ(j["labels"]["my_numbers"], 50);
  EXPECT_EQ(j["destination"], "client.jp");
  std::filesystem::remove_all(dir);
}

// Which verdicts wait for their fsync (--audit-sync findings): only a clean
// accept may return once written.
class FlagRecorder : public AuditWriter {
 public:
  Status Write(const std::string&, const VerdictRecord&, bool synced) override {
    flags.push_back(synced);
    return Status::Ok();
  }
  Status WriteAdmin(const std::string&, const HeldMail&, const std::string&,
                    const std::string&) override {
    return Status::Ok();
  }
  std::vector<bool> flags;
};

TEST(MailStore, OnlyCleanAcceptsSkipTheFsyncAndOnlyWhenAsked) {
  std::string dir = TempDir();
  auto holds = HoldStore::Open(dir + "/mail.db");
  ASSERT_TRUE(holds.ok());
  HashKey key;
  FlagRecorder audit;
  StoreSink findings(holds->get(), &audit, key, /*sync_every_verdict=*/false);
  VerdictRecord clean;
  clean.event_id = "MEV1";
  clean.verdict.action = Action::kAccept;
  VerdictRecord with_data = clean;
  with_data.content.types["jp.phone"] = 1;
  VerdictRecord bcc = clean;
  bcc.verdict.bcc_convert = true;
  VerdictRecord held = clean;
  held.event_id = "MEV2";
  held.verdict.action = Action::kHold;
  held.verdict.reasons = {"typo_domain"};
  VerdictRecord unreadable = clean;
  unreadable.content.unreadable = {"a.zip: encrypted"};
  VerdictRecord photo = clean;  // a part with no text is not a clean accept
  photo.content.not_inspected = 1;
  for (const auto* r : {&clean, &with_data, &bcc, &held, &unreadable, &photo})
    ASSERT_TRUE(findings.Record(*r).ok());
  EXPECT_EQ(audit.flags, (std::vector<bool>{false, true, true, true, true, true}));
  audit.flags.clear();
  StoreSink all(holds->get(), &audit, key, /*sync_every_verdict=*/true);
  ASSERT_TRUE(all.Record(clean).ok());
  EXPECT_EQ(audit.flags, std::vector<bool>{true});
  std::filesystem::remove_all(dir);
}

// The JSONL writer: a record written without its sync is in the file at once
// (a kill -9 loses nothing), and the writer closes cleanly with its sync
// thread running.
TEST(MailStore, JsonlWriterWritesUnsyncedRecordsAtOnce) {
  std::string dir = TempDir();
  AuditOptions ao;
  ao.log_path = dir + "/audit.jsonl";
  HashKey key;
  auto audit = OpenAuditWriter(ao, key);
  ASSERT_TRUE(audit.ok());
  VerdictRecord r;
  r.event_id = "MEVW";
  r.verdict.action = Action::kAccept;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*audit)->Write("mail.send", r, false).ok());
  auto text = ReadFile(ao.log_path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(std::count(text->begin(), text->end(), '\n'), 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the sync window passes
  ASSERT_TRUE((*audit)->Write("mail.send", r, true).ok());
  audit->reset();  // joins the sync thread
  text = ReadFile(ao.log_path);
  EXPECT_EQ(std::count(text->begin(), text->end(), '\n'), 4);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mamori::mail
