#include "mail/address.h"

#include <gtest/gtest.h>

namespace mamori::mail {
namespace {

using V = std::vector<std::string>;

TEST(MailAddress, ParsesCommonForms) {
  auto r = ParseAddressList(
      "\"Yamada, Taro\" <taro@Example.CO.JP>, hanako@partner.jp (Hanako), "
      "=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <s@x.example>");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, (V{"taro@example.co.jp", "hanako@partner.jp", "s@x.example"}));
}

TEST(MailAddress, GroupsAndEmptyGroups) {
  auto r = ParseAddressList("undisclosed-recipients:;");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  r = ParseAddressList("Team: a@x.jp, B <b@y.jp>;, c@z.jp");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (V{"a@x.jp", "b@y.jp", "c@z.jp"}));
}

TEST(MailAddress, QuotedCommasAndRoutes) {
  auto r = ParseAddressList("\"a, b <x@y>\" <real@d.jp>, <@relay.jp:u@e.jp>");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (V{"real@d.jp", "u@e.jp"}));
}

TEST(MailAddress, ErrorsAndBudget) {
  EXPECT_EQ(ParseAddressList("\"unterminated <a@b>").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAddressList("(comment a@b").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAddressList("<a@b").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseAddressList("a@b, c@d, e@f", 2).status().code(), StatusCode::kResourceExhausted);
}

TEST(MailAddress, EnvelopeAndDomains) {
  EXPECT_EQ(NormalizeEnvelopeAddress("<Taro@Example.JP>"), "Taro@example.jp");
  EXPECT_EQ(NormalizeEnvelopeAddress("<>"), "");
  EXPECT_EQ(DomainOf("a@B.Example.JP."), "b.example.jp");
  EXPECT_EQ(DomainOf("nodomain"), "");
  EXPECT_TRUE(DomainMatches("mail.example.jp", "example.jp"));
  EXPECT_TRUE(DomainMatches("example.jp", "example.jp"));
  EXPECT_FALSE(DomainMatches("badexample.jp", "example.jp"));
}

TEST(MailAddress, EditDistanceCountsTranspositionsOnce) {
  EXPECT_EQ(EditDistance("partner.co.jp", "partner.co.jp"), 0);
  EXPECT_EQ(EditDistance("partnre.co.jp", "partner.co.jp"), 1);  // swap
  EXPECT_EQ(EditDistance("partner.co.jq", "partner.co.jp"), 1);  // substitute
  EXPECT_EQ(EditDistance("parter.co.jp", "partner.co.jp"), 1);   // delete
  EXPECT_EQ(EditDistance("gmail.com", "example.co.jp", 2), 3);   // capped at cap + 1
  EXPECT_EQ(EditDistance(std::string(300, 'a'), "a", 2), 3);
}

}  // namespace
}  // namespace mamori::mail
