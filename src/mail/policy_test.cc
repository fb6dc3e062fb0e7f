#include "mail/policy.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>

#include "common/file_util.h"

namespace mamori::mail {
namespace {

Policy TestPolicy() {
  auto p = Policy::Parse(R"(
internal_domains: [corp.example.jp]
partner_domains: [partner.co.jp]
bcc_conversion: {enabled: true, threshold: 3, count: recipients}
personal_data: {hold_my_number_min: 1, hold_individuals_min: 10}
typo_domains: {enabled: true, max_distance: 2}
hidden_external_bcc: hold
)",
                         "test.yaml");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return *p;
}

bool Has(const Verdict& v, const std::string& r) {
  return std::find(v.reasons.begin(), v.reasons.end(), r) != v.reasons.end();
}

TEST(MailPolicy, RejectsUnknownKeysAndBadValues) {
  EXPECT_FALSE(Policy::Parse("internal_domain: [x.jp]", "a.yaml").ok());
  EXPECT_FALSE(Policy::Parse("bcc_conversion: {count: people}", "a.yaml").ok());
  EXPECT_FALSE(Policy::Parse("internal_domains: [a@b.jp]", "a.yaml").ok());
  EXPECT_FALSE(Policy::Parse("[unclosed", "a.yaml").ok());
  EXPECT_FALSE(Policy::Parse("delay_external: {minutes: 1, seconds: 5}", "a.yaml").ok());
  EXPECT_EQ(Policy::Parse("delay_external: {seconds: 5}", "a.yaml")->delay_seconds, 5u);
  auto err = Policy::Parse("delay_external: {minutes: 0}", "a.yaml").status().message();
  EXPECT_NE(err.find("a.yaml"), std::string::npos);
  EXPECT_FALSE(Policy::Parse("sender_notice: {from: 'Mamori <m@x.jp>'}", "a.yaml").ok());
  EXPECT_FALSE(Policy::Parse("sender_notice: {cancel_address: nobody}", "a.yaml").ok());
  EXPECT_FALSE(Policy::Parse("sender_notice: {sendmail: sendmail}", "a.yaml").ok());
  EXPECT_FALSE(Policy::Parse("sender_notice: {enable: true}", "a.yaml").ok())
      << "a misspelt key is an error, not a silent default";
}

TEST(MailPolicy, SenderNoticeDefaultsAndCancelAddressMustBeInternal) {
  char tmpl[] = "/tmp/mamori_mail_policy_XXXXXX";
  std::string dir = mkdtemp(tmpl);
  ASSERT_TRUE(WriteFileAtomic(dir + "/p.yaml", "internal_domains: [corp.example.jp]\n").ok());
  auto p = Policy::Load(dir + "/p.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->notice_from, "mamori@corp.example.jp");
  EXPECT_EQ(p->notice_cancel_address, "mamori-cancel@corp.example.jp");
  ASSERT_TRUE(WriteFileAtomic(dir + "/p.yaml",
                              "internal_domains: [corp.example.jp]\n"
                              "sender_notice: {cancel_address: cancel@gmail.example}\n")
                  .ok());
  EXPECT_EQ(Policy::Load(dir + "/p.yaml").status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

TEST(MailPolicy, ShippedPolicyLoads) {
  auto p = Policy::Load(std::string(MAMORI_SOURCE_DIR) + "/rules/mail");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_FALSE(p->internal_domains.empty());
}

TEST(MailPolicy, InternalMailPasses) {
  Policy p = TestPolicy();
  Envelope e{"a@corp.example.jp",
             {"b@corp.example.jp", "c@sub.corp.example.jp"},
             {"b@corp.example.jp", "c@sub.corp.example.jp"}};
  EXPECT_FALSE(NeedsContentScan(p, e));
  Verdict v = Evaluate(p, e, {});
  EXPECT_EQ(v.action, Action::kAccept);
  EXPECT_FALSE(v.bcc_convert);
  EXPECT_TRUE(v.reasons.empty());
}

TEST(MailPolicy, BccConversionAtThreshold) {
  Policy p = TestPolicy();
  Envelope e{"a@corp.example.jp", {"x@one.jp", "y@two.jp"}, {"x@one.jp", "y@two.jp"}};
  EXPECT_FALSE(Evaluate(p, e, {}).bcc_convert);  // 2 < 3
  e.recipients.push_back("z@three.jp");
  e.to_cc.push_back("z@three.jp");
  Verdict v = Evaluate(p, e, {});
  EXPECT_TRUE(v.bcc_convert);
  EXPECT_EQ(v.action, Action::kAccept);
  EXPECT_EQ(v.external_to_cc, 3u);
  // Counting domains: three people at one domain is one.
  p.bcc_count = "domains";
  Envelope same{"a@corp.example.jp",
                {"x@one.jp", "y@one.jp", "z@one.jp"},
                {"x@one.jp", "y@one.jp", "z@one.jp"}};
  EXPECT_FALSE(Evaluate(p, same, {}).bcc_convert);
  EXPECT_TRUE(Evaluate(p, e, {}).bcc_convert);
}

TEST(MailPolicy, PersonalDataToExternalIsHeld) {
  Policy p = TestPolicy();
  Envelope e{"a@corp.example.jp", {"x@client.jp"}, {"x@client.jp"}};
  EXPECT_TRUE(NeedsContentScan(p, e));
  ContentSummary c;
  c.scanned = true;
  c.individuals = 9;
  EXPECT_EQ(Evaluate(p, e, c).action, Action::kAccept);
  c.individuals = 10;
  Verdict v = Evaluate(p, e, c);
  EXPECT_EQ(v.action, Action::kHold);
  EXPECT_TRUE(Has(v, "individuals"));
  c.individuals = 1;
  c.my_numbers = 1;
  EXPECT_TRUE(Has(Evaluate(p, e, c), "my_number"));
  // The same content to an internal recipient is fine.
  Envelope in{"a@corp.example.jp", {"b@corp.example.jp"}, {"b@corp.example.jp"}};
  EXPECT_EQ(Evaluate(p, in, c).action, Action::kAccept);
  // Unreadable parts (encrypted zip) to external are held.
  ContentSummary enc;
  enc.scanned = true;
  enc.unreadable.push_back("message.eml!a.zip: encrypted");
  EXPECT_TRUE(Has(Evaluate(p, e, enc), "uninspectable_part"));
  // A picture has no text: held only where policy asks (logos are in most mail).
  ContentSummary photo;
  photo.scanned = true;
  photo.not_inspected = 1;
  EXPECT_EQ(Evaluate(p, e, photo).action, Action::kAccept);
  p.pd_hold_not_inspected = true;
  EXPECT_TRUE(Has(Evaluate(p, e, photo), "not_inspected_part"));
  EXPECT_EQ(Evaluate(p, in, photo).action, Action::kAccept);
}

TEST(MailPolicy, TypoDomainIsHeldButExactPartnerIsNot) {
  Policy p = TestPolicy();
  Envelope e{"a@corp.example.jp", {"x@partner.co.jp"}, {"x@partner.co.jp"}};
  EXPECT_EQ(Evaluate(p, e, {}).action, Action::kAccept);
  e = Envelope{"a@corp.example.jp", {"x@partenr.co.jp"}, {"x@partenr.co.jp"}};
  Verdict v = Evaluate(p, e, {});
  EXPECT_EQ(v.action, Action::kHold);
  ASSERT_EQ(v.typo_domains.size(), 1u);
  EXPECT_EQ(v.typo_domains[0], "partenr.co.jp~partner.co.jp");
  e = Envelope{"a@corp.example.jp", {"x@corp.exmaple.jp"}, {"x@corp.exmaple.jp"}};
  EXPECT_TRUE(Has(Evaluate(p, e, {}), "typo_domain"));
  e = Envelope{"a@corp.example.jp", {"x@unrelated.com"}, {"x@unrelated.com"}};
  EXPECT_EQ(Evaluate(p, e, {}).action, Action::kAccept);
}

TEST(MailPolicy, HiddenExternalBcc) {
  Policy p = TestPolicy();
  Envelope e{"a@corp.example.jp", {"b@corp.example.jp", "spy@gmail.com"}, {"b@corp.example.jp"}};
  EXPECT_TRUE(Has(Evaluate(p, e, {}), "hidden_external_bcc"));
  // When To already has an external address, a Bcc is an ordinary business case.
  Envelope f{"a@corp.example.jp", {"c@client.jp", "spy@gmail.com"}, {"c@client.jp"}};
  EXPECT_FALSE(Has(Evaluate(p, f, {}), "hidden_external_bcc"));
}

TEST(MailPolicy, DelayAndScope) {
  Policy p = TestPolicy();
  p.delay_enabled = true;
  Envelope e{"a@corp.example.jp", {"x@client.jp"}, {"x@client.jp"}};
  Verdict v = Evaluate(p, e, {});
  EXPECT_EQ(v.action, Action::kHold);
  EXPECT_TRUE(v.delay_only);
  EXPECT_EQ(v.delay_seconds, 300u);
  // Inbound mail is out of scope.
  Envelope in{"x@client.jp", {"a@corp.example.jp"}, {"a@corp.example.jp"}};
  Verdict w = Evaluate(p, in, {});
  EXPECT_FALSE(w.in_scope);
  EXPECT_EQ(w.action, Action::kAccept);
  EXPECT_FALSE(NeedsContentScan(p, in));
}

TEST(MailPolicy, UnparsableHeaderToExternalIsHeld) {
  Policy p = TestPolicy();
  Envelope e{"a@corp.example.jp", {"x@client.jp"}, {}};
  e.header_parse_error = true;
  EXPECT_EQ(Evaluate(p, e, {}).action, Action::kHold);
}

}  // namespace
}  // namespace mamori::mail
