#include "mail/session.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

namespace mamori::mail {
namespace {

using milter::Packet;

class FakeInspector : public ContentInspector {
 public:
  Result<ContentSummary> Inspect(std::string_view message) override {
    seen = std::string(message);
    if (!error.ok()) return error;
    return summary;
  }
  ContentSummary summary;
  Status error;
  std::string seen;
};

class RecordingSink : public VerdictSink {
 public:
  Status Record(const VerdictRecord& r) override {
    records.push_back(r);
    return error;
  }
  std::vector<VerdictRecord> records;
  Status error;
};

std::string Opt(uint32_t v, uint32_t a, uint32_t p) {
  std::string d;
  for (uint32_t x : {v, a, p}) {
    d.push_back(static_cast<char>(x >> 24));
    d.push_back(static_cast<char>(x >> 16));
    d.push_back(static_cast<char>(x >> 8));
    d.push_back(static_cast<char>(x));
  }
  return d;
}

std::string Z(std::initializer_list<std::string> parts) {
  std::string s;
  for (const auto& p : parts) {
    s += p;
    s.push_back('\0');
  }
  return s;
}

// Decoded replies.
std::vector<Packet> Replies(const std::string& out) {
  milter::PacketReader r(1 << 20);
  r.Append(out);
  std::vector<Packet> v;
  while (true) {
    auto p = r.Next();
    EXPECT_TRUE(p.ok());
    if (!p.ok() || !p->has_value()) break;
    v.push_back(**p);
  }
  return v;
}

class RecordingDesk : public SenderDesk {
 public:
  void Notify(const VerdictRecord& r, const std::string& subject) override {
    notified.push_back(r.event_id + " " + subject);
  }
  void Cancel(const std::string& sender, const std::string& event_id) override {
    cancels.push_back(sender + " " + event_id);
  }
  std::vector<std::string> notified, cancels;
};

// Every test runs twice: verdicts decided inline by Handle(), and deferred
// (DecideVerdict on another thread, then FinishVerdict), as the server does.
class SessionTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto p = Policy::Parse(
        "internal_domains: [corp.example.jp]\npartner_domains: [partner.co.jp]\n"
        "bcc_conversion: {threshold: 3}\n",
        "t.yaml");
    ASSERT_TRUE(p.ok());
    policy = *p;
    deps.policy = &policy;
    deps.inspector = &inspector;
    deps.sink = &sink;
    deps.clock = &clock;
    deps.new_event_id = [] { return std::string("MTESTEVENT01"); };
    deps.defer_verdicts = GetParam();
    session = std::make_unique<Session>(deps);
    std::string out;
    ASSERT_TRUE(session->Handle({'O', Opt(6, 0x1ff, 0x1fffff)}, &out).ok());
    auto r = Replies(out);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].command, 'O');
    auto o = milter::ParseOptions(r[0].data);
    ASSERT_TRUE(o.ok());
    negotiated = *o;
  }

  // Sends end of message to `s`, and in deferred mode decides the verdict on
  // another thread and finishes it, as the server does.
  void EndOfMessage(Session* s, std::string* out) {
    EXPECT_TRUE(s->Handle({'E', ""}, out).ok());
    EXPECT_EQ(s->verdict_pending(), GetParam());
    if (s->verdict_pending()) {
      EXPECT_TRUE(out->empty());
      std::thread([&] { s->DecideVerdict(); }).join();
      s->FinishVerdict(out);
      EXPECT_FALSE(s->verdict_pending());
    }
  }

  // Sends a whole message; returns the EOM replies.
  std::vector<Packet> Send(const std::string& from, const std::vector<std::string>& rcpts,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           const std::string& body) {
    std::string out;
    EXPECT_TRUE(session->Handle({'D', std::string("M") + Z({"{i}", "4ABCDE1234"})}, &out).ok());
    EXPECT_TRUE(session->Handle({'M', Z({"<" + from + ">", "SIZE=100"})}, &out).ok());
    for (const auto& r : rcpts) EXPECT_TRUE(session->Handle({'R', Z({"<" + r + ">"})}, &out).ok());
    for (const auto& [n, v] : headers) EXPECT_TRUE(session->Handle({'L', Z({n, v})}, &out).ok());
    EXPECT_TRUE(session->Handle({'N', ""}, &out).ok());
    EXPECT_TRUE(session->Handle({'B', body}, &out).ok());
    EXPECT_TRUE(out.empty()) << "no replies expected before end of message (NR flags)";
    EndOfMessage(session.get(), &out);
    return Replies(out);
  }

  Policy policy;
  FakeInspector inspector;
  RecordingSink sink;
  FakeClock clock{1'700'000'000'000'000};
  SessionDeps deps;
  std::unique_ptr<Session> session;
  milter::Options negotiated;
};

TEST_P(SessionTest, NegotiatesNoReplyStepsAndNeededActions) {
  EXPECT_EQ(negotiated.version, 6u);
  EXPECT_TRUE(negotiated.protocol & milter::kNrHeader);
  EXPECT_TRUE(negotiated.protocol & milter::kNrBody);
  EXPECT_TRUE(negotiated.protocol & milter::kNoConnect);
  EXPECT_TRUE(negotiated.actions & milter::kActQuarantine);
  EXPECT_FALSE(negotiated.actions & milter::kActChangeBody);
  // The macros the audit record reads are asked for at MAIL and EOM.
  EXPECT_TRUE(negotiated.actions & milter::kActSetSymList);
  std::map<uint32_t, std::string> lists(negotiated.macro_lists.begin(),
                                        negotiated.macro_lists.end());
  EXPECT_EQ(lists[milter::kStageMail], "i {auth_authen} {client_addr}");
  EXPECT_EQ(lists[milter::kStageEom], "i");
}

TEST_P(SessionTest, NoMacroListsForAnMtaWithoutSetSymList) {
  Session s(deps);
  std::string out;
  ASSERT_TRUE(s.Handle({'O', Opt(6, 0xff, 0x1fffff)}, &out).ok());
  auto r = Replies(out);
  ASSERT_EQ(r.size(), 1u);
  auto o = milter::ParseOptions(r[0].data);
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->actions & milter::kActSetSymList);
  EXPECT_TRUE(o->macro_lists.empty());
}

TEST_P(SessionTest, AuditRecordCarriesTheClientAddressMacro) {
  std::string out;
  ASSERT_TRUE(
      session->Handle({'D', std::string("M") + Z({"{client_addr}", "192.0.2.7"})}, &out).ok());
  Send("alice@corp.example.jp", {"bob@corp.example.jp"}, {{"To", "bob@corp.example.jp"}}, "hi\r\n");
  ASSERT_FALSE(sink.records.empty());
  EXPECT_EQ(sink.records.back().client_addr, "192.0.2.7");
}

TEST_P(SessionTest, WithoutNrFlagsEveryStepIsAnswered) {
  Session s(deps);
  std::string out;
  ASSERT_TRUE(s.Handle({'O', Opt(6, 0x3f, 0x7f)}, &out).ok());  // old MTA: no NR flags
  out.clear();
  ASSERT_TRUE(s.Handle({'M', Z({"<a@corp.example.jp>"})}, &out).ok());
  ASSERT_TRUE(s.Handle({'L', Z({"Subject", "x"})}, &out).ok());
  auto r = Replies(out);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].command, 'c');
}

TEST_P(SessionTest, InternalMailGetsVerdictHeadersOnly) {
  auto r =
      Send("a@corp.example.jp", {"b@corp.example.jp"}, {{"To", "b@corp.example.jp"}}, "hi\r\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].command, 'h');
  EXPECT_EQ(r[0].data, Z({"X-Mamori-Verdict", "accept"}));
  EXPECT_EQ(r[1].data, Z({"X-Mamori-Event", "MTESTEVENT01"}));
  EXPECT_EQ(r[2].command, 'c');
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].queue_id, "4ABCDE1234");
  EXPECT_TRUE(inspector.seen.empty()) << "internal mail is not scanned";
}

TEST_P(SessionTest, BccConversionDeletesEveryToAndCcLastFirst) {
  auto r = Send("a@corp.example.jp", {"x@one.jp", "y@two.jp", "z@three.jp"},
                {{"To", "x@one.jp, y@two.jp"},
                 {"Subject", "s"},
                 {"Cc", "z@three.jp"},
                 {"To", "b@corp.example.jp"}},
                "body\r\n");
  std::vector<std::string> seq;
  for (const auto& p : r) {
    if (p.command == 'm') {
      uint32_t idx = (uint32_t(uint8_t(p.data[2])) << 8) | uint8_t(p.data[3]);
      seq.push_back("del " + std::string(p.data.c_str() + 4) + " " + std::to_string(idx));
    } else if (p.command == 'h') {
      seq.push_back("add " + std::string(p.data.c_str()));
    } else {
      seq.push_back(std::string(1, p.command));
    }
  }
  std::vector<std::string> want = {"del Cc 1",           "del To 2",
                                   "del To 1",           "add To",
                                   "add X-Mamori-Note",  "add X-Mamori-Verdict",
                                   "add X-Mamori-Event", "c"};
  EXPECT_EQ(seq, want);
  EXPECT_EQ(r[3].data, Z({"To", "undisclosed-recipients:;"}));
  EXPECT_NE(inspector.seen.find("Subject: s\r\n"), std::string::npos);
  EXPECT_NE(inspector.seen.find("\r\n\r\nbody\r\n"), std::string::npos);
}

TEST_P(SessionTest, PersonalDataIsQuarantined) {
  inspector.summary.scanned = true;
  inspector.summary.my_numbers = 50;
  inspector.summary.individuals = 50;
  auto r = Send("a@corp.example.jp", {"x@client.jp"}, {{"To", "x@client.jp"}}, "csv");
  ASSERT_GE(r.size(), 2u);
  EXPECT_EQ(r[r.size() - 2].command, 'q');
  EXPECT_NE(r[r.size() - 2].data.find("my_number"), std::string::npos);
  EXPECT_EQ(r.back().command, 'c');
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].verdict.action, Action::kHold);
}

TEST_P(SessionTest, FailsClosedOnInspectorErrorSinkErrorAndBudget) {
  inspector.error = ResourceExhausted("zip bomb");
  auto r = Send("a@corp.example.jp", {"x@client.jp"}, {{"To", "x@client.jp"}}, "x");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].command, 'y');
  EXPECT_EQ(r[0].data.substr(0, 4), "451 ");
  EXPECT_EQ(sink.records.back().verdict.action, Action::kTempfail);
  EXPECT_EQ(sink.records.back().verdict.reasons[0], "budget");

  inspector.error = Status::Ok();
  sink.error = Unavailable("disk full");
  r = Send("a@corp.example.jp", {"b@corp.example.jp"}, {{"To", "b@corp.example.jp"}}, "x");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].command, 'y');

  sink.error = Status::Ok();
  policy.budgets.max_message_bytes = 100;
  r = Send("a@corp.example.jp", {"b@corp.example.jp"}, {{"To", "b@corp.example.jp"}},
           std::string(200, 'x'));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].command, 'y');
}

TEST_P(SessionTest, GlobalBufferBudgetIsSharedAndReleased) {
  std::atomic<uint64_t> total{0};
  SessionDeps d = deps;
  d.total_buffered = &total;
  d.max_total_buffered_bytes = 1000;
  auto a = std::make_unique<Session>(d);
  Session b(d);
  std::string out;
  for (Session* s : {a.get(), &b}) {
    ASSERT_TRUE(s->Handle({'O', Opt(6, 0x1ff, 0x1fffff)}, &out).ok());
    ASSERT_TRUE(s->Handle({'M', Z({"<a@corp.example.jp>"})}, &out).ok());
    ASSERT_TRUE(s->Handle({'R', Z({"<b@corp.example.jp>"})}, &out).ok());
    ASSERT_TRUE(s->Handle({'N', ""}, &out).ok());
  }
  ASSERT_TRUE(a->Handle({'B', std::string(600, 'x')}, &out).ok());
  EXPECT_EQ(total.load(), 600u);
  ASSERT_TRUE(b.Handle({'B', std::string(600, 'x')}, &out).ok());  // 1200 > 1000
  out.clear();
  EndOfMessage(&b, &out);
  auto r = Replies(out);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].command, 'y') << "over the shared budget: tempfail";
  EXPECT_EQ(total.load(), 600u) << "b released its bytes at end of message";
  a.reset();  // a connection that goes away releases its bytes too
  EXPECT_EQ(total.load(), 0u);
}

TEST_P(SessionTest, ProtocolViolationsCloseTheConnection) {
  Session fresh(deps);
  std::string out;
  EXPECT_FALSE(fresh.Handle({'M', Z({"<a@b>"})}, &out).ok());  // before OPTNEG
  EXPECT_FALSE(session->Handle({'L', Z({"only-name"})}, &out).ok());
  EXPECT_FALSE(session->Handle({'Z', ""}, &out).ok());
  EXPECT_FALSE(session->Handle({'M', ""}, &out).ok());
}

TEST_P(SessionTest, AbortResetsAndQuitEnds) {
  std::string out;
  ASSERT_TRUE(session->Handle({'M', Z({"<a@corp.example.jp>"})}, &out).ok());
  ASSERT_TRUE(session->Handle({'R', Z({"<x@client.jp>"})}, &out).ok());
  ASSERT_TRUE(session->Handle({'A', ""}, &out).ok());
  auto r = Send("a@corp.example.jp", {"b@corp.example.jp"}, {{"To", "b@corp.example.jp"}}, "x");
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].envelope.recipients.size(), 1u);
  ASSERT_TRUE(session->Handle({'Q', ""}, &out).ok());
  EXPECT_TRUE(session->done());
}

TEST_P(SessionTest, SenderIsNotifiedOfHoldAndBccConversionOnly) {
  RecordingDesk desk;
  deps.desk = &desk;
  session = std::make_unique<Session>(deps);
  std::string out;
  ASSERT_TRUE(session->Handle({'O', Opt(6, 0x1ff, 0x1fffff)}, &out).ok());
  Send("a@corp.example.jp", {"b@corp.example.jp"}, {{"To", "b@corp.example.jp"}}, "x");
  EXPECT_TRUE(desk.notified.empty()) << "accepted mail gets no notice";
  Send("a@corp.example.jp", {"x@one.jp", "y@two.jp", "z@three.jp"},
       {{"To", "x@one.jp, y@two.jp, z@three.jp"}, {"Subject", "=?UTF-8?B?5qGI5YaF?="}}, "x");
  ASSERT_EQ(desk.notified.size(), 1u);
  EXPECT_EQ(desk.notified[0], "MTESTEVENT01 =?UTF-8?B?5qGI5YaF?=");
  inspector.summary.scanned = true;
  inspector.summary.my_numbers = 1;
  Send("a@corp.example.jp", {"x@client.jp"}, {{"To", "x@client.jp"}}, "csv");
  EXPECT_EQ(desk.notified.size(), 2u);
  policy.scope = "all";
  auto r = Send("someone@outside.example", {"x@client.jp"}, {{"To", "x@client.jp"}}, "csv");
  EXPECT_EQ(r[r.size() - 2].command, 'q') << "held";
  EXPECT_EQ(desk.notified.size(), 2u) << "no notice (backscatter) to an outside sender";
}

TEST_P(SessionTest, CancelMailIsDiscardedAndHandedToTheDesk) {
  RecordingDesk desk;
  deps.desk = &desk;
  policy.notice_cancel_address = "mamori-cancel@corp.example.jp";
  session = std::make_unique<Session>(deps);
  std::string out;
  ASSERT_TRUE(session->Handle({'O', Opt(6, 0x1ff, 0x1fffff)}, &out).ok());
  auto r = Send("a@corp.example.jp", {"Mamori-Cancel+mabcdefghjk2@corp.example.jp"},
                {{"Subject", "cancel"}}, "");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].command, 'd') << "the request itself is never delivered";
  ASSERT_EQ(desk.cancels.size(), 1u);
  EXPECT_EQ(desk.cancels[0], "a@corp.example.jp MABCDEFGHJK2");
  EXPECT_TRUE(sink.records.empty());
  // Event id in the Subject instead (a plain "reply" to the cancel address).
  r = Send("a@corp.example.jp", {"mamori-cancel@corp.example.jp"},
           {{"Subject", "Re: [mamori MZZZZZZZZZZ2] held"}}, "");
  ASSERT_EQ(desk.cancels.size(), 2u);
  EXPECT_EQ(desk.cancels[1], "a@corp.example.jp MZZZZZZZZZZ2");
  // Mixed with a real recipient, or from outside: an ordinary mail.
  r = Send("a@corp.example.jp", {"mamori-cancel@corp.example.jp", "b@corp.example.jp"}, {}, "");
  EXPECT_EQ(r.back().command, 'c');
  r = Send("evil@outside.example", {"mamori-cancel+MABCDEFGHJK2@corp.example.jp"}, {}, "");
  EXPECT_EQ(r.back().command, 'c');
  EXPECT_EQ(desk.cancels.size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(InlineAndDeferred, SessionTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "Deferred" : "Inline";
                         });

}  // namespace
}  // namespace mamori::mail
