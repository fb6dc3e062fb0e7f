#include "audit/audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "audit/format.h"
#include "common/file_util.h"

namespace mamori::audit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Slurp(const std::string& path) { return ReadFile(path).value(); }
void Spit(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}
std::vector<std::string> Lines(const std::string& data) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(data);
  while (std::getline(in, cur)) out.push_back(cur);
  return out;
}
std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("audit_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "keys");
    pub_ = GenerateKeyPair((dir_ / "keys").string()).value();
    path_ = (dir_ / "audit.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  LogOptions Options() {
    LogOptions o;
    o.path = path_;
    o.signing_key_path = (dir_ / "keys" / kSigningKeyFile).string();
    o.clock = &clock_;
    o.checkpoint_every_records = 4;
    o.checkpoint_every_micros = 3600LL * 1000000;
    return o;
  }
  static Record Rec(const std::string& user, const std::string& action = "get") {
    Record r;
    r.component = "vault";
    r.user = user;
    r.device = "dev-" + user;
    r.source_ip = "127.0.0.1";
    r.action = action;
    r.object = "obj-1";
    r.destination = "files.example.jp";
    r.bytes = 42;
    r.result = "allow";
    r.labels = {{"types", {{"jp.my_number", 3}}}, {"individuals", 50}};
    return r;
  }
  // A closed log with n records (checkpoints every 4 records and at Close).
  void Build(int n) {
    auto log = Log::Open(Options());
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    for (int i = 0; i < n; ++i) {
      clock_.Advance(1000000);
      auto seq = (*log)->Append(Rec("user" + std::to_string(i % 3)));
      ASSERT_TRUE(seq.ok()) << seq.status().ToString();
      ASSERT_EQ(*seq, static_cast<uint64_t>(i + 1));
    }
    ASSERT_TRUE((*log)->Close().ok());
  }
  VerifyReport DoVerify(std::optional<Head> head = std::nullopt) {
    VerifyOptions v;
    v.log_path = path_;
    v.public_key = pub_;
    v.head = head;
    auto rep = Verify(v);
    EXPECT_TRUE(rep.ok()) << rep.status().ToString();
    return rep.ok() ? *rep : VerifyReport{};
  }
  // Index of the line holding record `seq`.
  static size_t LineOf(const std::vector<std::string>& lines, uint64_t seq) {
    for (size_t i = 0; i < lines.size(); ++i) {
      auto e = internal::ParseLine(lines[i]);
      if (e.ok() && e->kind == internal::Entry::kRecord && e->seq == seq) return i;
    }
    ADD_FAILURE() << "no record " << seq;
    return 0;
  }

  fs::path dir_;
  std::string path_;
  PublicKey pub_;
  FakeClock clock_{1700000000LL * 1000000};
};

TEST_F(AuditTest, AppendReadBackAndVerify) {
  Build(10);
  auto rep = DoVerify();
  EXPECT_TRUE(rep.ok()) << rep.ToString();
  EXPECT_EQ(rep.records, 10u);
  EXPECT_EQ(rep.last_seq, 10u);
  EXPECT_EQ(rep.checkpoints, 3u);  // after 4, after 8, at Close
  EXPECT_TRUE(rep.ends_with_checkpoint);
  EXPECT_EQ(rep.last_checkpoint_seq, 10u);
  EXPECT_EQ(rep.records_after_last_checkpoint, 0u);
  EXPECT_THAT(rep.ToString(), HasSubstr("OK: 10 records"));

  ReaderOptions ro;
  ro.path = path_;
  auto reader = Reader::Open(ro).value();
  uint64_t expect = 1;
  while (true) {
    auto r = reader->Next();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (!r->has_value()) break;
    EXPECT_EQ((*r)->seq, expect);
    EXPECT_EQ((*r)->record.time_micros,
              1700000000LL * 1000000 + static_cast<int64_t>(expect) * 1000000);
    EXPECT_EQ((*r)->record.event_id.size(), 10u);
    EXPECT_EQ((*r)->record.labels["individuals"], 50);
    ++expect;
  }
  EXPECT_EQ(expect, 11u);
  auto head = ReadHead(ro).value();
  EXPECT_EQ(head.seq, 10u);
  EXPECT_EQ(head.hash, rep.last_hash);
  EXPECT_TRUE(DoVerify(head).ok());
}

TEST_F(AuditTest, FileIsCreated0600) {
  Build(1);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AuditTest, ReopenContinuesTheChain) {
  Build(5);
  auto log = Log::Open(Options()).value();
  EXPECT_EQ(log->head().seq, 5u);
  EXPECT_EQ(log->Append(Rec("x")).value(), 6u);
  ASSERT_TRUE(log->Close().ok());
  auto rep = DoVerify();
  EXPECT_TRUE(rep.ok()) << rep.ToString();
  EXPECT_EQ(rep.records, 6u);
}

TEST_F(AuditTest, EveryFlippedBitIsDetectedAndLocated) {
  Build(5);
  const std::string good = Slurp(path_);
  auto lines = Lines(good);
  // Byte offsets where each line starts, to check the reported location.
  std::vector<uint64_t> starts;
  uint64_t off = 0;
  for (const auto& l : lines) {
    starts.push_back(off);
    off += l.size() + 1;
  }
  for (size_t i = 0; i + 1 < good.size(); ++i) {  // the last '\n': see TornLastNewline
    for (int bit : {0, 5}) {
      if (bit == 5 && i % 5 != 0) continue;  // keep the test quick
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      Spit(path_, bad);
      auto rep = DoVerify();
      ASSERT_FALSE(rep.ok()) << "flip at byte " << i << " bit " << bit << " not detected";
      // The first problem is on the flipped line or the one after it (when
      // the line's newline itself was flipped).
      size_t line = std::upper_bound(starts.begin(), starts.end(), i) - starts.begin();  // 1-based
      EXPECT_TRUE(rep.problems[0].line == line || rep.problems[0].line == line + 1)
          << "flip at byte " << i << " (line " << line << ") reported as: " << rep.ToString();
    }
  }
}

TEST_F(AuditTest, FlippedByteInRecordSaysHashMismatch) {
  Build(6);
  auto lines = Lines(Slurp(path_));
  size_t idx = LineOf(lines, 3);
  size_t pos = lines[idx].find("\"user\":\"");
  ASSERT_NE(pos, std::string::npos);
  lines[idx][pos + 8] = 'X';
  Spit(path_, Join(lines));
  auto rep = DoVerify();
  ASSERT_EQ(rep.problems.size(), 1u) << rep.ToString();
  EXPECT_EQ(rep.problems[0].kind, ProblemKind::kHashMismatch);
  EXPECT_EQ(rep.problems[0].seq, 3u);
  EXPECT_EQ(rep.problems[0].line, idx + 1);
  EXPECT_THAT(rep.ToString(), HasSubstr("record 3 (line " + std::to_string(idx + 1)));
  EXPECT_THAT(rep.ToString(), HasSubstr("hash mismatch"));
}

TEST_F(AuditTest, DeletedRecordSaysMissingSeq) {
  Build(6);
  auto lines = Lines(Slurp(path_));
  lines.erase(lines.begin() + static_cast<long>(LineOf(lines, 2)));
  Spit(path_, Join(lines));
  auto rep = DoVerify();
  ASSERT_EQ(rep.problems.size(), 1u) << rep.ToString();
  EXPECT_EQ(rep.problems[0].kind, ProblemKind::kMissingSeq);
  EXPECT_EQ(rep.problems[0].seq, 3u);
  EXPECT_THAT(rep.problems[0].message, HasSubstr("missing seq: record 2 deleted"));
}

TEST_F(AuditTest, DeletedCheckpointBreaksTheChain) {
  Build(6);
  auto lines = Lines(Slurp(path_));
  size_t idx = LineOf(lines, 4) + 1;  // the checkpoint after record 4
  ASSERT_THAT(lines[idx], HasSubstr("\"k\":\"c\""));
  lines.erase(lines.begin() + static_cast<long>(idx));
  Spit(path_, Join(lines));
  auto rep = DoVerify();
  ASSERT_EQ(rep.problems.size(), 1u) << rep.ToString();
  EXPECT_EQ(rep.problems[0].kind, ProblemKind::kChainBroken);
  EXPECT_EQ(rep.problems[0].seq, 5u);
}

TEST_F(AuditTest, ReorderedRecordsSayReordered) {
  Build(6);
  auto lines = Lines(Slurp(path_));
  std::swap(lines[LineOf(lines, 2)], lines[LineOf(lines, 3)]);
  Spit(path_, Join(lines));
  auto rep = DoVerify();
  ASSERT_FALSE(rep.ok());
  for (const auto& p : rep.problems) EXPECT_EQ(p.kind, ProblemKind::kReordered) << p.message;
  EXPECT_EQ(rep.problems[0].seq, 3u);
  EXPECT_THAT(rep.ToString(), HasSubstr("reordered"));
}

TEST_F(AuditTest, InsertedForgedRecordIsDetected) {
  Build(6);
  auto lines = Lines(Slurp(path_));
  size_t idx = LineOf(lines, 2);
  auto prev = internal::ParseLine(lines[idx]).value();
  // A forger without the key: a well-formed record linked to record 2.
  std::string body =
      internal::RecordBody(3, prev.hash, 1, internal::SerializeRecordFields(Rec("mallory")));
  std::string line = internal::MakeLine(body, nullptr);
  line.pop_back();
  lines.insert(lines.begin() + static_cast<long>(idx) + 1, line);
  Spit(path_, Join(lines));
  auto rep = DoVerify();
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.problems[0].line, idx + 3) << rep.ToString();  // the real record 3 no longer fits
}

TEST_F(AuditTest, RewrittenChainFailsTheCheckpointSignature) {
  Build(6);
  // An attacker rewrites record 2 and recomputes every later hash and link,
  // but cannot re-sign the checkpoint.
  auto lines = Lines(Slurp(path_));
  std::string prev = internal::kGenesisHash;
  for (auto& l : lines) {
    auto e = internal::ParseLine(l).value();
    std::string body = l.substr(65);
    size_t p = body.find(e.prev);
    body.replace(p, e.prev.size(), prev);
    if (e.kind == internal::Entry::kRecord && e.seq == 2) {
      body.replace(body.find("\"bytes\":42"), 10, "\"bytes\":41");
    }
    l = internal::MakeLine(body, &prev);
    l.pop_back();
  }
  Spit(path_, Join(lines));
  auto rep = DoVerify();
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.problems[0].kind, ProblemKind::kBadSignature) << rep.ToString();
  EXPECT_EQ(rep.problems[0].seq, 4u);
  EXPECT_THAT(rep.problems[0].message, HasSubstr("bad signature on checkpoint at seq 4"));
}

TEST_F(AuditTest, BadCheckpointSignature) {
  Build(6);
  auto lines = Lines(Slurp(path_));
  std::string& last = lines.back();  // the Close checkpoint, seq 6
  auto e = internal::ParseLine(last).value();
  ASSERT_EQ(e.kind, internal::Entry::kCheckpoint);
  std::string body = last.substr(65);
  size_t p = body.find(e.sig);
  body[p] = body[p] == '0' ? '1' : '0';
  last = internal::MakeLine(body, nullptr);
  last.pop_back();
  Spit(path_, Join(lines));
  auto rep = DoVerify();
  ASSERT_EQ(rep.problems.size(), 1u) << rep.ToString();
  EXPECT_EQ(rep.problems[0].kind, ProblemKind::kBadSignature);
  EXPECT_THAT(rep.ToString(), HasSubstr("bad signature on checkpoint at seq 6"));
}

TEST_F(AuditTest, WrongPublicKey) {
  Build(3);
  auto other = GenerateKeyPair((dir_ / "other").string()).value();
  VerifyOptions v;
  v.log_path = path_;
  v.public_key = other;
  auto rep = Verify(v).value();
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.problems[0].kind, ProblemKind::kWrongKey);
  EXPECT_THAT(rep.problems[0].message, HasSubstr("not by the given public key"));
}

TEST_F(AuditTest, TruncationAfterLastCheckpointNeedsTheHead) {
  auto log = Log::Open(Options()).value();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(log->Append(Rec("u")).ok());
  Head head = log->head();  // stored off-host by the operator
  EXPECT_EQ(head.seq, 6u);
  log.reset();  // Close: final checkpoint
  // Cut at a line boundary after record 4's checkpoint: records 5, 6 and the
  // final checkpoint are gone.
  auto lines = Lines(Slurp(path_));
  lines.resize(LineOf(lines, 4) + 2);
  Spit(path_, Join(lines));
  // Without the head, the file alone looks like a log stopped after seq 4.
  EXPECT_TRUE(DoVerify().ok());
  auto rep = DoVerify(head);
  ASSERT_EQ(rep.problems.size(), 1u) << rep.ToString();
  EXPECT_EQ(rep.problems[0].kind, ProblemKind::kTruncated);
  EXPECT_THAT(rep.problems[0].message, HasSubstr("truncated after seq 4"));
  EXPECT_THAT(rep.problems[0].message, HasSubstr("records 5..6 were removed"));
}

TEST_F(AuditTest, CheckpointCopyAnchorsTruncation) {
  auto opts = Options();
  std::string anchor_path = (dir_ / "anchor.ckpt").string();
  opts.checkpoint_copy_path = anchor_path;
  auto log = Log::Open(opts).value();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->Append(Rec("u")).ok());
  auto copy = internal::ParseLine(Lines(Slurp(anchor_path))[0]).value();
  EXPECT_EQ(copy.seq, 4u);  // the checkpoint after record 4
  ASSERT_TRUE(log->Append(Rec("u")).ok());
  log.reset();  // Close: checkpoint at seq 6, copied
  std::string anchor = Slurp(anchor_path);
  EXPECT_EQ(internal::ParseLine(Lines(anchor)[0]).value().seq, 6u);
  const std::string good = Slurp(path_);
  auto verify = [&] {
    VerifyOptions v;
    v.log_path = path_;
    v.public_key = pub_;
    v.anchor_checkpoint = anchor;
    return Verify(v);
  };
  EXPECT_TRUE(verify()->ok()) << verify()->ToString();

  // Cut records 5, 6 and the final checkpoint: the file alone looks fine.
  auto lines = Lines(good);
  lines.resize(LineOf(lines, 4) + 2);
  Spit(path_, Join(lines));
  EXPECT_TRUE(DoVerify().ok());
  auto rep = verify().value();
  ASSERT_EQ(rep.problems.size(), 1u) << rep.ToString();
  EXPECT_EQ(rep.problems[0].kind, ProblemKind::kTruncated);
  EXPECT_THAT(rep.problems[0].message, HasSubstr("truncated after seq 4"));
  EXPECT_THAT(rep.problems[0].message, HasSubstr("records 5..6 were removed"));

  // Cut only the final checkpoint.
  lines = Lines(good);
  lines.pop_back();
  Spit(path_, Join(lines));
  rep = verify().value();
  ASSERT_EQ(rep.problems.size(), 1u) << rep.ToString();
  EXPECT_THAT(rep.problems[0].message, HasSubstr("missing from the end"));

  // An anchor must be a checkpoint signed by the given key.
  auto other = GenerateKeyPair((dir_ / "other").string()).value();
  VerifyOptions v;
  v.log_path = path_;
  v.public_key = other;
  v.anchor_checkpoint = anchor;
  EXPECT_EQ(Verify(v).status().code(), StatusCode::kInvalidArgument);
  v.public_key = pub_;
  v.anchor_checkpoint = Lines(good)[0];  // a record, not a checkpoint
  EXPECT_EQ(Verify(v).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(AuditTest, FailingCheckpointCopyFailsClosed) {
  auto opts = Options();
  opts.checkpoint_copy_path = (dir_ / "no-such-dir" / "anchor.ckpt").string();
  auto log = Log::Open(opts).value();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(log->Append(Rec("u")).ok());
  auto r = log->Append(Rec("u"));  // the 4th record triggers a checkpoint
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("copying the checkpoint"));
  EXPECT_FALSE(log->Append(Rec("u")).ok());
}

TEST_F(AuditTest, HeadMismatchWhenRewrittenUpToHead) {
  Build(3);
  ReaderOptions ro;
  ro.path = path_;
  Head head = ReadHead(ro).value();
  head.hash[0] = head.hash[0] == 'a' ? 'b' : 'a';
  auto rep = DoVerify(head);
  ASSERT_EQ(rep.problems.size(), 1u);
  EXPECT_EQ(rep.problems[0].kind, ProblemKind::kHeadMismatch);
}

TEST_F(AuditTest, TornTailIsRecoveredOnOpen) {
  Build(5);
  std::string data = Slurp(path_);
  // Append half of a plausible next line, as a crash in write() leaves it.
  std::string half = data.substr(0, 80);
  Spit(path_, data + half);
  auto rep = DoVerify();
  EXPECT_TRUE(rep.ok()) << rep.ToString();
  EXPECT_EQ(rep.torn_tail_bytes, 80u);
  EXPECT_THAT(rep.ToString(), HasSubstr("torn"));
  // A reader stops quietly at the torn line.
  ReaderOptions ro;
  ro.path = path_;
  auto reader = Reader::Open(ro).value();
  int n = 0;
  while (reader->Next().value()) ++n;
  EXPECT_EQ(n, 5);
  EXPECT_EQ(reader->torn_tail_bytes(), 80u);

  auto opts = Options();
  opts.recover_torn_tail = false;
  auto refused = Log::Open(opts);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kDataLoss);

  auto log = Log::Open(Options()).value();
  EXPECT_EQ(log->recovered_tail_bytes(), 80u);
  EXPECT_EQ(log->head().seq, 6u);  // the recovery record
  EXPECT_EQ(log->Append(Rec("u")).value(), 7u);
  log.reset();
  rep = DoVerify();
  EXPECT_TRUE(rep.ok()) << rep.ToString();
  EXPECT_EQ(rep.torn_tail_bytes, 0u);
  Filter f;
  f.action = "recover";
  std::vector<StoredRecord> found;
  ASSERT_TRUE(Scan(ro, f, [&](const StoredRecord& r) {
                found.push_back(r);
                return Status::Ok();
              }).ok());
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].record.component, "audit");
  EXPECT_EQ(found[0].record.extra["dropped_bytes"], 80);
}

TEST_F(AuditTest, TornLastNewline) {
  Build(2);
  std::string data = Slurp(path_);
  data.pop_back();
  Spit(path_, data);
  auto rep = DoVerify();
  EXPECT_TRUE(rep.ok());
  EXPECT_GT(rep.torn_tail_bytes, 0u);  // the final checkpoint is torn, a warning
}

TEST_F(AuditTest, OpenRefusesATamperedLog) {
  Build(4);
  auto lines = Lines(Slurp(path_));
  lines.erase(lines.begin() + 1);
  Spit(path_, Join(lines));
  auto log = Log::Open(Options());
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(log.status().message(), HasSubstr("refusing to append"));
}

TEST_F(AuditTest, CheckpointEveryNRecordsAndEveryTSeconds) {
  auto opts = Options();
  opts.checkpoint_every_records = 1000;
  opts.checkpoint_every_micros = 60LL * 1000000;
  auto log = Log::Open(opts).value();
  ASSERT_TRUE(log->Append(Rec("a")).ok());
  ASSERT_TRUE(log->Append(Rec("a")).ok());
  clock_.Advance(61LL * 1000000);
  ASSERT_TRUE(log->Append(Rec("a")).ok());  // triggers the time checkpoint
  ASSERT_TRUE(log->Append(Rec("a")).ok());
  auto lines = Lines(Slurp(path_));
  ASSERT_EQ(lines.size(), 5u);
  auto cp = internal::ParseLine(lines[3]).value();
  EXPECT_EQ(cp.kind, internal::Entry::kCheckpoint);
  EXPECT_EQ(cp.seq, 3u);
  ASSERT_TRUE(log->Checkpoint().ok());
  ASSERT_TRUE(log->Checkpoint().ok());  // nothing new: no second checkpoint
  EXPECT_EQ(Lines(Slurp(path_)).size(), 6u);
  ASSERT_TRUE(log->Close().ok());
  EXPECT_EQ(Lines(Slurp(path_)).size(), 6u);
  EXPECT_FALSE(log->Append(Rec("a")).ok());  // closed
}

TEST_F(AuditTest, QuietLogGetsABackgroundCheckpoint) {
  auto opts = Options();
  opts.checkpoint_every_records = 1000;
  opts.checkpoint_every_micros = 20000;  // the thread wakes every 20 ms of real time
  auto log = Log::Open(opts).value();
  ASSERT_TRUE(log->Append(Rec("a")).ok());
  // The fake clock has not moved: no checkpoint may appear, however long we wait.
  ::usleep(100000);
  EXPECT_EQ(Lines(Slurp(path_)).size(), 1u);
  clock_.Advance(1000000);
  size_t lines = 1;
  for (int i = 0; i < 1000 && lines == 1; ++i) {  // liveness only; no timing is asserted
    ::usleep(10000);
    lines = Lines(Slurp(path_)).size();
  }
  ASSERT_EQ(lines, 2u);
  EXPECT_EQ(internal::ParseLine(Lines(Slurp(path_))[1]).value().kind, internal::Entry::kCheckpoint);
  ASSERT_TRUE(log->Close().ok());
  EXPECT_EQ(Lines(Slurp(path_)).size(), 2u);  // nothing new since: no second checkpoint
  EXPECT_TRUE(DoVerify().ok());
}

TEST_F(AuditTest, OversizedRecordIsRefusedAndLogStaysUsable) {
  auto log = Log::Open(Options()).value();
  Record big = Rec("a");
  big.extra = {{"blob", std::string(100 * 1024, 'x')}};
  auto r = log->Append(big);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(log->Append(Rec("a")).value(), 1u);
  Record deep = Rec("a");
  nlohmann::json j = 1;
  for (int i = 0; i < 100; ++i) j = nlohmann::json::array({j});
  deep.labels = j;
  EXPECT_EQ(log->Append(deep).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->Append(Rec("a")).value(), 2u);
}

TEST_F(AuditTest, InvalidUtf8AndControlCharactersStayOneValidLine) {
  auto log = Log::Open(Options()).value();
  Record r = Rec("bad\xff\xfe\nuser\"]\\");
  r.extra = {{"note", "line1\nline2\r\x01"}};
  ASSERT_TRUE(log->Append(r).ok());
  log.reset();
  EXPECT_EQ(Lines(Slurp(path_)).size(), 2u);
  EXPECT_TRUE(DoVerify().ok());
  ReaderOptions ro;
  ro.path = path_;
  auto reader = Reader::Open(ro).value();
  auto got = reader->Next().value();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->record.user, "bad\xEF\xBF\xBD\xEF\xBF\xBD\nuser\"]\\");
}

TEST_F(AuditTest, ReaderFilters) {
  auto log = Log::Open(Options()).value();
  int64_t t0 = clock_.NowMicros();
  for (int i = 0; i < 12; ++i) {
    clock_.Advance(1000000);
    Record r = Rec(i % 2 ? "alice" : "bob", i % 3 ? "get" : "put");
    r.destination = i < 6 ? "a.example.jp" : "b.example.com";
    ASSERT_TRUE(log->Append(r).ok());
  }
  log.reset();
  auto count = [&](Filter f) {
    ReaderOptions ro;
    ro.path = path_;
    int n = 0;
    EXPECT_TRUE(Scan(ro, f, [&](const StoredRecord&) {
                  ++n;
                  return Status::Ok();
                }).ok());
    return n;
  };
  EXPECT_EQ(count({}), 12);
  Filter f;
  f.user = "alice";
  EXPECT_EQ(count(f), 6);
  f.action = "put";
  EXPECT_EQ(count(f), 2);  // i = 3, 9
  Filter d;
  d.device = "dev-bob";
  d.destination = "b.example.com";
  EXPECT_EQ(count(d), 3);  // i = 6, 8, 10
  Filter t;
  t.since_micros = t0 + 3 * 1000000;  // i = 2 onwards
  t.until_micros = t0 + 6 * 1000000;  // before i = 5
  EXPECT_EQ(count(t), 3);
  // A callback error stops the scan and is returned.
  ReaderOptions ro;
  ro.path = path_;
  auto st = Scan(ro, {}, [](const StoredRecord&) { return Internal("stop"); });
  EXPECT_EQ(st.code(), StatusCode::kInternal);
}

TEST_F(AuditTest, ReaderReportsTamperingAsDataLoss) {
  Build(4);
  auto lines = Lines(Slurp(path_));
  std::swap(lines[0], lines[1]);
  Spit(path_, Join(lines));
  ReaderOptions ro;
  ro.path = path_;
  auto st = Scan(ro, {}, [](const StoredRecord&) { return Status::Ok(); });
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_THAT(st.message(), HasSubstr("line 1"));
}

// ---------------------------------------------------------------- fail closed

TEST_F(AuditTest, WriteErrorFailsClosedUntilReopened) {
  FaultInjectionEnv env(Env::Default());
  auto opts = Options();
  opts.env = &env;
  auto log = Log::Open(opts).value();
  ASSERT_EQ(log->Append(Rec("a")).value(), 1u);
  env.FailWritesAfter(0, ENOSPC);
  auto r = log->Append(Rec("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("No space left"));
  EXPECT_FALSE(log->status().ok());
  env.Heal();
  EXPECT_FALSE(log->Append(Rec("a")).ok()) << "a failed log must keep refusing";
  EXPECT_FALSE(log->Checkpoint().ok());
  EXPECT_FALSE(log->Close().ok());
  log.reset();
  auto reopened = Log::Open(opts).value();
  EXPECT_EQ(reopened->Append(Rec("a")).value(), 2u);
  reopened.reset();
  EXPECT_TRUE(DoVerify().ok());
}

TEST_F(AuditTest, ShortWriteLeavesATornTailThatReopenRecovers) {
  FaultInjectionEnv env(Env::Default());
  auto opts = Options();
  opts.env = &env;
  auto log = Log::Open(opts).value();
  ASSERT_TRUE(log->Append(Rec("a")).ok());
  env.FailWritesAfter(50, ENOSPC);  // half a line reaches the disk; truncate fails too
  EXPECT_FALSE(log->Append(Rec("a")).ok());
  EXPECT_FALSE(log->Append(Rec("a")).ok());
  log.reset();
  env.Heal();
  auto rep = DoVerify();
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.torn_tail_bytes, 50u);
  auto reopened = Log::Open(opts).value();
  EXPECT_EQ(reopened->recovered_tail_bytes(), 50u);
  reopened.reset();
  rep = DoVerify();
  EXPECT_TRUE(rep.ok()) << rep.ToString();
  EXPECT_EQ(rep.torn_tail_bytes, 0u);
}

TEST_F(AuditTest, SyncErrorFailsClosed) {
  FaultInjectionEnv env(Env::Default());
  auto opts = Options();
  opts.env = &env;
  auto log = Log::Open(opts).value();
  env.FailSyncs(EIO);
  auto r = log->Append(Rec("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("Input/output error"));
  env.Heal();
  EXPECT_FALSE(log->Append(Rec("a")).ok());
  log.reset();
  // The unsynced record was cut from the file, so nothing unacknowledged remains.
  auto rep = DoVerify();
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.records, 0u);
}

TEST_F(AuditTest, FileSizeLimitFromTheKernelFailsClosed) {
  // A real kernel write error without privileges: RLIMIT_FSIZE makes write()
  // fail with EFBIG once the file reaches the limit.
  auto log = Log::Open(Options()).value();
  ASSERT_TRUE(log->Append(Rec("a")).ok());
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto prev_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = fs::file_size(path_) + 100;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  auto r1 = log->Append(Rec("a"));
  auto r2 = log->Append(Rec("a"));
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, prev_handler);
  EXPECT_FALSE(r1.ok());
  EXPECT_FALSE(r2.ok());
  EXPECT_THAT(r1.status().message(), HasSubstr("too large"));
  log.reset();
  auto reopened = Log::Open(Options()).value();
  EXPECT_EQ(reopened->Append(Rec("a")).value(), 2u);
}

TEST_F(AuditTest, ConcurrentAppendsShareSyncsAndVerify) {
  FaultInjectionEnv env(Env::Default());
  auto opts = Options();
  opts.env = &env;
  opts.checkpoint_every_records = 100;
  auto log = Log::Open(opts).value();
  constexpr int kThreads = 8, kPer = 200;
  std::vector<std::vector<uint64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        auto r = log->Append(Rec("t" + std::to_string(t)));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        seqs[t].push_back(*r);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(log->Close().ok());
  std::set<uint64_t> all;
  for (const auto& v : seqs) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPer));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kThreads * kPer));
  EXPECT_LE(env.syncs(), static_cast<uint64_t>(kThreads * kPer + 1));
  std::cout << "group commit: " << kThreads * kPer << " appends, " << env.syncs() << " syncs\n";
  auto rep = DoVerify();
  EXPECT_TRUE(rep.ok()) << rep.ToString();
  EXPECT_EQ(rep.records, static_cast<uint64_t>(kThreads * kPer));
  EXPECT_EQ(rep.checkpoints,
            static_cast<uint64_t>(kThreads * kPer / 100 +
                                  (rep.ends_with_checkpoint && (kThreads * kPer) % 100 ? 1 : 0)));
}

// ---------------------------------------------------------------- AppendAsync

using GatedEnv = GatedSyncEnv;  // holds every Sync until Release()

// Collects AppendAsync results.
struct Results {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Result<uint64_t>> got;
  Log::AppendCallback Callback() {
    return [this](Result<uint64_t> r) {
      std::lock_guard<std::mutex> l(mu);
      got.push_back(std::move(r));
      cv.notify_all();
    };
  }
  size_t size() {
    std::lock_guard<std::mutex> l(mu);
    return got.size();
  }
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::seconds(30), [&] { return got.size() >= n; });
  }
};

TEST_F(AuditTest, AppendAsyncAnswersOnlyOnceDurableAndSharesSyncs) {
  GatedEnv env(Env::Default());
  auto opts = Options();
  opts.env = &env;
  opts.checkpoint_every_records = 1000;
  auto log = Log::Open(opts).value();
  Results res;
  log->AppendAsync(Rec("first"), res.Callback());  // returns at once: the sync is held
  ASSERT_TRUE(env.WaitSyncsStarted(1));
  for (int i = 0; i < 20; ++i) log->AppendAsync(Rec("u" + std::to_string(i)), res.Callback());
  // The batch behind the first one may start the second sync slot; give it
  // the chance, then check that nothing was acknowledged while no sync ended.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(res.size(), 0u) << "acknowledged before any fdatasync finished";
  EXPECT_LE(env.started(), 2u);
  env.Release();
  ASSERT_TRUE(res.WaitFor(21));
  std::set<uint64_t> seqs;
  for (const auto& r : res.got) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    seqs.insert(*r);
  }
  EXPECT_EQ(seqs.size(), 21u);
  EXPECT_EQ(*seqs.begin(), 1u);
  EXPECT_EQ(*seqs.rbegin(), 21u);
  // 21 records: the first sync, possibly one started while it was held, and
  // one for everything that queued behind them.
  EXPECT_LE(env.started(), 3u);
  ASSERT_TRUE(log->Close().ok());
  auto rep = DoVerify();
  EXPECT_TRUE(rep.ok()) << rep.ToString();
  EXPECT_EQ(rep.records, 21u);
}

// Durability::kWritten: answered once written, while the sync is held; the
// sync follows within written_sync_delay_micros without another append; and a
// kSynced record behind it still waits for its sync.
TEST_F(AuditTest, AppendAsyncWrittenAnswersBeforeTheSyncWhichFollowsAlone) {
  GatedEnv env(Env::Default());
  auto opts = Options();
  opts.env = &env;
  opts.checkpoint_every_records = 1000;
  opts.written_sync_delay_micros = 20 * 1000;
  auto log = Log::Open(opts).value();
  Results written;
  for (int i = 0; i < 5; ++i)
    log->AppendAsync(Rec("w" + std::to_string(i)), written.Callback(), Durability::kWritten);
  ASSERT_TRUE(written.WaitFor(5)) << "written records wait for no sync";
  for (const auto& r : written.got) ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Nobody else appends: the commit thread starts the sync by itself.
  ASSERT_TRUE(env.WaitSyncsStarted(1));
  Results synced;
  log->AppendAsync(Rec("s"), synced.Callback());  // kSynced
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(synced.size(), 0u) << "a synced record was acknowledged while its sync was held";
  env.Release();
  ASSERT_TRUE(synced.WaitFor(1));
  ASSERT_TRUE(synced.got[0].ok());
  EXPECT_EQ(*synced.got[0], 6u);
  ASSERT_TRUE(log->Close().ok());
  auto rep = DoVerify();
  EXPECT_TRUE(rep.ok()) << rep.ToString();
  EXPECT_EQ(rep.records, 6u);
}

// A failed background sync of written records fails the log: later appends of
// either kind are refused.
TEST_F(AuditTest, AppendAsyncWrittenThenFailedSyncFailsTheLog) {
  FaultInjectionEnv env(Env::Default());
  auto opts = Options();
  opts.env = &env;
  opts.written_sync_delay_micros = 1000;
  auto log = Log::Open(opts).value();
  env.FailSyncs(EIO);
  Results written;
  log->AppendAsync(Rec("w"), written.Callback(), Durability::kWritten);
  ASSERT_TRUE(written.WaitFor(1));
  EXPECT_TRUE(written.got[0].ok());  // written: the sync comes later
  for (int i = 0; i < 200 && log->status().ok(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(log->status().code(), StatusCode::kUnavailable) << log->status().ToString();
  env.Heal();
  Results later;
  log->AppendAsync(Rec("x"), later.Callback(), Durability::kWritten);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_FALSE(later.got[0].ok());
  EXPECT_FALSE(log->Append(Rec("y")).ok());
}

TEST_F(AuditTest, AppendAsyncFailsClosedOnSyncError) {
  FaultInjectionEnv env(Env::Default());
  auto opts = Options();
  opts.env = &env;
  auto log = Log::Open(opts).value();
  Results ok;
  log->AppendAsync(Rec("a"), ok.Callback());
  ASSERT_TRUE(ok.WaitFor(1));
  ASSERT_TRUE(ok.got[0].ok());
  env.FailSyncs(EIO);
  Results res;
  for (int i = 0; i < 5; ++i) log->AppendAsync(Rec("b"), res.Callback());
  ASSERT_TRUE(res.WaitFor(5));
  for (const auto& r : res.got) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
    EXPECT_THAT(r.status().message(), HasSubstr("Input/output error"));
  }
  env.Heal();
  // A failed log refuses at once (the callback runs inside AppendAsync).
  Results later;
  log->AppendAsync(Rec("c"), later.Callback());
  ASSERT_EQ(later.size(), 1u);
  EXPECT_FALSE(later.got[0].ok());
  EXPECT_FALSE(log->Close().ok());
  log.reset();
  auto rep = DoVerify();
  EXPECT_TRUE(rep.ok()) << rep.ToString();
  EXPECT_EQ(rep.records, 1u) << "only the acknowledged record may remain";
}

TEST_F(AuditTest, AppendAsyncRefusesOversizedRecordsInline) {
  auto opts = Options();
  opts.max_record_bytes = 1024;
  auto log = Log::Open(opts).value();
  Record big = Rec("a");
  big.extra = {{"blob", std::string(4096, 'x')}};
  Results res;
  log->AppendAsync(std::move(big), res.Callback());
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res.got[0].status().code(), StatusCode::kResourceExhausted);
  log->AppendAsync(Rec("a"), res.Callback());
  ASSERT_TRUE(res.WaitFor(2));
  EXPECT_EQ(res.got[1].value(), 1u);
}

TEST_F(AuditTest, CloseDeliversPendingAsyncAppendsAndThenRefuses) {
  auto log = Log::Open(Options()).value();
  Results res;
  for (int i = 0; i < 50; ++i) log->AppendAsync(Rec("a"), res.Callback());
  ASSERT_TRUE(log->Close().ok());
  EXPECT_EQ(res.size(), 50u) << "Close() must deliver every pending callback";
  for (const auto& r : res.got) EXPECT_TRUE(r.ok()) << r.status().ToString();
  log->AppendAsync(Rec("late"), res.Callback());
  ASSERT_EQ(res.size(), 51u);
  EXPECT_EQ(res.got[50].status().code(), StatusCode::kFailedPrecondition);
  auto rep = DoVerify();
  EXPECT_TRUE(rep.ok()) << rep.ToString();
  EXPECT_EQ(rep.records, 50u);
  EXPECT_TRUE(rep.ends_with_checkpoint);
}

TEST_F(AuditTest, AsyncAndBlockingAppendsWithCheckpointCopiesVerify) {
  auto opts = Options();
  opts.checkpoint_every_records = 50;
  opts.checkpoint_copy_path = (dir_ / "anchor").string();
  auto log = Log::Open(opts).value();
  constexpr int kAsyncThreads = 4, kBlockingThreads = 2, kPer = 150;
  Results res;
  std::vector<uint64_t> blocking_seqs;
  std::mutex bmu;
  std::vector<std::thread> threads;
  for (int t = 0; t < kAsyncThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) log->AppendAsync(Rec("a" + std::to_string(t)), res.Callback());
    });
  for (int t = 0; t < kBlockingThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        auto r = log->Append(Rec("b" + std::to_string(t)));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        std::lock_guard<std::mutex> l(bmu);
        blocking_seqs.push_back(*r);
      }
    });
  for (auto& th : threads) th.join();
  ASSERT_TRUE(res.WaitFor(kAsyncThreads * kPer));
  std::set<uint64_t> all(blocking_seqs.begin(), blocking_seqs.end());
  for (const auto& r : res.got) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    all.insert(*r);
  }
  constexpr uint64_t kTotal = (kAsyncThreads + kBlockingThreads) * kPer;
  EXPECT_EQ(all.size(), kTotal);
  EXPECT_EQ(*all.rbegin(), kTotal);
  Head head = log->head();
  EXPECT_EQ(head.seq, kTotal);
  ASSERT_TRUE(log->Close().ok());
  VerifyOptions v;
  v.log_path = path_;
  v.public_key = pub_;
  v.head = head;
  v.anchor_checkpoint = Slurp(opts.checkpoint_copy_path);
  auto rep = Verify(v);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(rep->ok()) << rep->ToString();
  EXPECT_EQ(rep->records, kTotal);
  EXPECT_GE(rep->checkpoints, kTotal / 50);
}

// ---------------------------------------------------------------- keys, heads, export

TEST_F(AuditTest, KeysRefuseLoosePermissionsAndOverwrite) {
  std::string key = (dir_ / "keys" / kSigningKeyFile).string();
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(PublicKey::Load((dir_ / "keys" / kPublicKeyFile).string()).value(), pub_);
  EXPECT_EQ(SigningKey::Load(key).value().public_key(), pub_);
  ::chmod(key.c_str(), 0644);
  auto loose = SigningKey::Load(key);
  EXPECT_EQ(loose.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(loose.status().message(), HasSubstr("chmod 600"));
  auto log = Log::Open(Options());
  EXPECT_FALSE(log.ok());
  EXPECT_EQ(GenerateKeyPair((dir_ / "keys").string()).status().code(), StatusCode::kAlreadyExists);
  auto missing = Options();
  missing.signing_key_path.clear();
  EXPECT_EQ(Log::Open(missing).status().code(), StatusCode::kInvalidArgument);
}

TEST(AuditHead, ParseAndPrint) {
  std::string h(64, 'a');
  auto head = Head::Parse("42:" + h + "\n").value();
  EXPECT_EQ(head.seq, 42u);
  EXPECT_EQ(head.ToString(), "42:" + h);
  EXPECT_FALSE(Head::Parse("42").ok());
  EXPECT_FALSE(Head::Parse("x:" + h).ok());
  EXPECT_FALSE(Head::Parse("1:" + h.substr(1)).ok());
  EXPECT_FALSE(Head::Parse("99999999999999999999999:" + h).ok());
}

TEST(AuditTime, Rfc3339) {
  EXPECT_EQ(FormatRfc3339Micros(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatRfc3339Micros(1700000000123456LL), "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(ParseTime("2023-11-14T22:13:20.123456Z").value(), 1700000000123456LL);
  EXPECT_EQ(ParseTime("2023-11-15T07:13:20+09:00").value(), 1700000000000000LL);
  EXPECT_EQ(ParseTime("1970-01-02").value(), 86400LL * 1000000);
  EXPECT_EQ(ParseTime("2024-02-29T00:00:00Z").value(), 1709164800LL * 1000000);
  EXPECT_FALSE(ParseTime("2023-13-01").ok());
  EXPECT_FALSE(ParseTime("2023-11-14T22:13").ok());
  EXPECT_FALSE(ParseTime("yesterday").ok());
  EXPECT_FALSE(ParseTime("2023-11-14T22:13:20Zjunk").ok());
}

TEST(AuditExport, JsonLineHasTheDocumentedFields) {
  StoredRecord sr;
  sr.seq = 7;
  sr.hash = std::string(64, 'b');
  sr.record.time_micros = 1700000000123456LL;
  sr.record.component = "egress";
  sr.record.user = "taro";
  sr.record.bytes = 9;
  sr.record.labels = {{"individuals", 3}};
  auto j = nlohmann::json::parse(ToJsonLine(sr));
  for (const char* f :
       {"seq", "time", "component", "event_id", "user", "device", "source_ip", "org", "action",
        "object", "destination", "bytes", "result", "reason", "labels", "extra"})
    EXPECT_TRUE(j.contains(f)) << f;
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["time"], "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(j["labels"]["individuals"], 3);
  EXPECT_TRUE(j["extra"].is_object());
  // The line is RecordToJson (shared with egress's JSONL sink) plus seq and hash.
  auto fields = RecordToJson(sr.record);
  EXPECT_EQ(fields.size() + 2, j.size());
  EXPECT_EQ(fields.begin().key(), "time");
  EXPECT_FALSE(fields.contains("seq"));
  for (auto& [key, value] : fields.items()) EXPECT_EQ(j[key], value) << key;
  // Invalid UTF-8 in a label is replaced, not thrown.
  sr.record.labels = {{"name", std::string("\xff\xfe")}};
  EXPECT_NO_THROW(RecordToJson(sr.record).dump());
}

TEST(AuditExport, SyslogRfc5424WithEscapedStructuredData) {
  StoredRecord sr;
  sr.seq = 3;
  sr.hash = std::string(64, 'c');
  sr.record.time_micros = 1700000000123456LL;
  sr.record.component = "mail";
  sr.record.user = "a\"b\\c]d";
  sr.record.action = "mail.send";
  sr.record.result = "block";
  sr.record.reason = "line\nbreak";
  std::string line = ToSyslogLine(sr, "host one");
  EXPECT_EQ(
      line.rfind(
          "<108>1 2023-11-14T22:13:20.123456Z host_one mamori - mail [mamori@32473 seq=\"3\"", 0),
      0u)
      << line;
  EXPECT_THAT(line, HasSubstr("user=\"a\\\"b\\\\c\\]d\""));
  EXPECT_THAT(line, HasSubstr("reason=\"line\\nbreak\""));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  sr.record.result = "allow";
  EXPECT_EQ(ToSyslogLine(sr, "").rfind("<110>1 ", 0), 0u);
}

// The record's string fields are written by a fast path when they need no
// escaping; every byte value must still come out as nlohmann writes it.
TEST(AuditFormat, RecordFieldsAreEscapedAsNlohmannDoes) {
  auto dump = [](const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  auto reference = [&](const Record& r) {
    auto str = [](const std::string& v) {
      return nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    };
    return ",\"component\":" + str(r.component) + ",\"event_id\":" + str(r.event_id) +
           ",\"user\":" + str(r.user) + ",\"device\":" + str(r.device) +
           ",\"source_ip\":" + str(r.source_ip) + ",\"org\":" + str(r.org) +
           ",\"action\":" + str(r.action) + ",\"object\":" + str(r.object) +
           ",\"destination\":" + str(r.destination) + ",\"bytes\":" + std::to_string(r.bytes) +
           ",\"result\":" + str(r.result) + ",\"reason\":" + str(r.reason) +
           ",\"labels\":" + (r.labels.is_null() ? std::string("{}") : dump(r.labels)) +
           ",\"extra\":" + (r.extra.is_null() ? std::string("{}") : dump(r.extra));
  };
  for (int b = 0; b < 256; ++b) {
    Record r;
    r.user = std::string("a") + static_cast<char>(b) + "z";
    r.destination = std::string(1, static_cast<char>(b));
    r.component = "egress";
    EXPECT_EQ(internal::SerializeRecordFields(r), reference(r)) << "byte " << b;
  }
  Record r;
  r.user = "山田 太郎";
  r.object = "bad \xff\xfe utf-8";
  r.reason = "tab\there \"quoted\" back\\slash";
  r.destination = "upload.example.co.jp";
  EXPECT_EQ(internal::SerializeRecordFields(r), reference(r));
  // labels and extra: every JSON type, nesting, keys that need escaping.
  r.labels = {{"types", {{"jp.my_number", 3}, {"jp.phone", 0}}},
              {"individuals", 50},
              {"max_confidence", "high"}};
  r.extra = nlohmann::json::parse(
      R"({"b":[1,-2,18446744073709551615,-9223372036854775808,1.5,0.1,1e300,true,false,null,[],{}],)"
      R"("氏名":"山田","q\"k":"a\\b\u0001","empty":"","nested":{"x":{"y":[{"z":"é"}]}},"f":-0.0})");
  r.extra["bad"] = std::string("\xc3\x28 broken");
  EXPECT_EQ(internal::SerializeRecordFields(r), reference(r));
  r.labels = nlohmann::json::object();
  r.extra = nlohmann::json::array();
  EXPECT_EQ(internal::SerializeRecordFields(r), reference(r));
}

TEST(AuditFormat, ParserRejectsGarbageWithoutCrashing) {
  for (std::string s :
       {std::string(""), std::string(64, 'a') + " {}", std::string(64, 'a') + " []",
        std::string(64, 'A') + " {\"k\":\"r\"}", std::string(64, '0') + " " + std::string(200, '['),
        std::string(64, '0') + " {\"k\":\"r\",\"seq\":-1,\"prev\":\"x\",\"t\":0}"}) {
    EXPECT_FALSE(internal::ParseLine(s).ok()) << s;
  }
}

}  // namespace
}  // namespace mamori::audit
