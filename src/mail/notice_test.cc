#include "mail/notice.h"

#include <gtest/gtest.h>

namespace mamori::mail {
namespace {

Policy TestPolicy() {
  auto p = Policy::Parse("internal_domains: [corp.example.jp]\n", "t.yaml");
  EXPECT_TRUE(p.ok());
  p->notice_from = "mamori@corp.example.jp";
  p->notice_cancel_address = "mamori-cancel@corp.example.jp";
  return *p;
}

TEST(MailNotice, HoldNoticeSaysWhyAndHowToCancel) {
  Policy p = TestPolicy();
  VerdictRecord r;
  r.event_id = "MABCDEFGHJK2";
  r.envelope.sender = "alice@corp.example.jp";
  r.verdict.action = Action::kHold;
  r.verdict.reasons = {"my_number", "individuals"};
  r.verdict.recipient_domains = {"client.example"};
  r.content.my_numbers = 50;
  std::string m = HoldOrBccNotice(p, r, "=?UTF-8?B?6aGn5a6i?=\r\nBcc: evil@x.example");
  EXPECT_NE(m.find("To: alice@corp.example.jp\n"), std::string::npos);
  EXPECT_NE(m.find("[mamori MABCDEFGHJK2]"), std::string::npos);
  EXPECT_NE(m.find("mamori-cancel+MABCDEFGHJK2@corp.example.jp"), std::string::npos);
  EXPECT_NE(m.find("my_number, individuals"), std::string::npos);
  EXPECT_NE(m.find("Auto-Submitted: auto-generated"), std::string::npos);
  EXPECT_EQ(m.find("\nBcc:"), std::string::npos) << "no header injection from the Subject";
  EXPECT_EQ(m.find('\r'), std::string::npos) << "sendmail -i takes LF line ends";
  const size_t body = m.find("\n\n");
  ASSERT_NE(body, std::string::npos);
  for (size_t i = 0; i < body; ++i) {
    ASSERT_LT(static_cast<unsigned char>(m[i]), 0x80) << "headers must be ASCII (RFC 2047)";
  }
}

TEST(MailNotice, BccNoticeAndCancelAnswers) {
  Policy p = TestPolicy();
  VerdictRecord r;
  r.event_id = "MABCDEFGHJK3";
  r.envelope.sender = "alice@corp.example.jp";
  r.verdict.action = Action::kAccept;
  r.verdict.bcc_convert = true;
  r.verdict.external_to_cc = 3;
  std::string m = HoldOrBccNotice(p, r, "");
  EXPECT_NE(m.find("converted them to Bcc"), std::string::npos);
  EXPECT_EQ(m.find("mamori-cancel+"), std::string::npos) << "nothing to cancel";
  std::string ok = CancelAnswer(p, "alice@corp.example.jp", "MABCDEFGHJK2", "");
  EXPECT_NE(ok.find("was cancelled"), std::string::npos);
  std::string no = CancelAnswer(p, "alice@corp.example.jp", "", "no event id");
  EXPECT_NE(no.find("Could not cancel it: no event id"), std::string::npos);
}

}  // namespace
}  // namespace mamori::mail
