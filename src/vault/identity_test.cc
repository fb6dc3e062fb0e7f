#include "vault/identity.h"

#include <gtest/gtest.h>

namespace mamori::vault {
namespace {

TEST(VaultIdentity, PasswordPolicy) {
  EXPECT_FALSE(CheckPasswordPolicy("short", "alice").ok());
  EXPECT_FALSE(CheckPasswordPolicy("alice-Wq8#vT3!zK", "alice").ok());
  EXPECT_FALSE(CheckPasswordPolicy("ALICEwq8#vT3!zK", "Alice").ok());
  EXPECT_FALSE(CheckPasswordPolicy("abcdefghijkl", "bob").ok());
  EXPECT_FALSE(CheckPasswordPolicy("123456789012", "bob").ok());
  EXPECT_FALSE(CheckPasswordPolicy("aaaaaaaaaaaaaaaa", "bob").ok());
  Status s = CheckPasswordPolicy("Kumo-7tsuki&Hoshi9", "bob");
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(VaultIdentity, Argon2idHashVerify) {
  auto h = HashPassword("Kumo-7tsuki&Hoshi9");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rfind("$argon2id$", 0), 0u);
  EXPECT_TRUE(VerifyPassword(*h, "Kumo-7tsuki&Hoshi9"));
  EXPECT_FALSE(VerifyPassword(*h, "Kumo-7tsuki&Hoshi8"));
  EXPECT_FALSE(VerifyPassword("", "x"));
  EXPECT_FALSE(VerifyPassword("garbage", "x"));
}

TEST(VaultIdentity, TotpRfc6238Vector) {
  // RFC 6238 appendix B, SHA1 seed "12345678901234567890", T=59 -> 94287082 (8 digits);
  // the 6-digit code is the last six digits.
  EXPECT_EQ(TotpCode("12345678901234567890", 59), "287082");
  EXPECT_EQ(TotpCode("12345678901234567890", 1111111109), "081804");
}

TEST(VaultIdentity, TotpWindow) {
  std::string secret = NewTotpSecret();
  int64_t now = 1'800'000'000;
  auto step = TotpVerify(secret, TotpCode(secret, now), now);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(*step, now / 30);
  EXPECT_TRUE(TotpVerify(secret, TotpCode(secret, now - 30), now).ok());
  EXPECT_FALSE(TotpVerify(secret, TotpCode(secret, now - 300), now).ok());
  EXPECT_FALSE(TotpVerify(secret, "12345", now).ok());
  EXPECT_FALSE(TotpVerify(secret, "abcdef", now).ok());
}

TEST(VaultIdentity, Base32) {
  EXPECT_EQ(Base32Encode("foobar"), "MZXW6YTBOI");
  EXPECT_NE(TotpUri("mamori", "alice", "12345").find("secret=GEZDGNBV"), std::string::npos);
}

}  // namespace
}  // namespace mamori::vault
