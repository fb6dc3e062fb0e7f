#include "mail/inspect.h"

#include <gtest/gtest.h>

#include <string>

namespace mamori::mail {
namespace {

#ifdef MAMORI_MAIL_HAVE_DETECT
std::string Message(const std::string& attachment_type, const std::string& name,
                    const std::string& base64) {
  return "From: a@corp.example.jp\r\nTo: x@client.example\r\nSubject: card\r\n"
         "MIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
         "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
         "Please find the scan attached.\r\n"
         "--b1\r\nContent-Type: " +
         attachment_type + "; name=\"" + name +
         "\"\r\nContent-Transfer-Encoding: base64\r\n"
         "Content-Disposition: attachment; filename=\"" +
         name + "\"\r\n\r\n" + base64 + "\r\n--b1--\r\n";
}

// A photo of a card has no text: the summary counts it as not inspected and
// never as an inspected unit; the text part is inspected as usual.
TEST(MailInspect, PicturesAreCountedAsNotInspected) {
  Budgets budgets;
  auto inspector = MakeDetectInspector(budgets, HashKey());
  ASSERT_TRUE(inspector.ok()) << inspector.status().ToString();
  // A minimal JPEG (SOI, APP0 JFIF, EOI), base64.
  const std::string jpeg = "/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==";
  auto s = (*inspector)->Inspect(Message("image/jpeg", "card.jpg", jpeg));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->not_inspected, 1u);
  ASSERT_EQ(s->not_inspected_parts.size(), 1u);
  // The file name is masked (it can name a person), its extension kept.
  EXPECT_NE(s->not_inspected_parts[0].find("c***.jpg (image)"), std::string::npos)
      << s->not_inspected_parts[0];
  EXPECT_TRUE(s->unreadable.empty());
  // A text attachment is inspected, not counted.
  auto t = (*inspector)->Inspect(Message("text/plain", "notes.txt", "bWVldGluZyBub3Rlcw=="));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->not_inspected, 0u);
  EXPECT_GE(t->units, 2u);
}

// The message's own From/To/Cc are its envelope, not content: a plain mail
// exposes nobody, while the Subject and a forwarded message's addresses are
// still scanned.
TEST(MailInspect, OwnAddressFieldsAreNotContent) {
  Budgets budgets;
  auto inspector = MakeDetectInspector(budgets, HashKey());
  ASSERT_TRUE(inspector.ok()) << inspector.status().ToString();
  auto plain = (*inspector)
                   ->Inspect(
                       "From: Alice <alice@corp.example.jp>\r\nTo: taro@client.example\r\n"
                       "Cc: jiro@client.example, saburo@client.example\r\nSubject: meeting\r\n\r\n"
                       "See you tomorrow.\r\n");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_TRUE(plain->types.empty()) << plain->types.begin()->first;
  EXPECT_EQ(plain->individuals, 0u);

  auto subject =
      (*inspector)
          ->Inspect(
              "From: alice@corp.example.jp\r\nTo: taro@client.example\r\n"
              "Subject: =?UTF-8?B?5pys5Lq656K66KqN?= hanako.yamada@example.ne.jp\r\n\r\nhi\r\n");
  ASSERT_TRUE(subject.ok()) << subject.status().ToString();
  EXPECT_EQ(subject->types.count("email"), 1u) << "an address in the Subject is content";

  auto forwarded =
      (*inspector)
          ->Inspect(
              "From: alice@corp.example.jp\r\nTo: taro@client.example\r\nSubject: fwd\r\n"
              "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
              "--b\r\nContent-Type: text/plain\r\n\r\nforwarding\r\n"
              "--b\r\nContent-Type: message/rfc822\r\n\r\n"
              "From: hanako.yamada@example.ne.jp\r\nTo: alice@corp.example.jp\r\nSubject: q\r\n\r\n"
              "question\r\n--b--\r\n");
  ASSERT_TRUE(forwarded.ok()) << forwarded.status().ToString();
  EXPECT_GE(forwarded->types["email"], 1u) << "a forwarded message's addresses are content";
}
#endif

}  // namespace
}  // namespace mamori::mail
