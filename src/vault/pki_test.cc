#include "vault/pki.h"

#include <gtest/gtest.h>

namespace mamori::vault {
namespace {

TEST(VaultPki, CaServerAndDeviceCerts) {
  auto ca = CreateCa("test CA", 30);
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  auto server = IssueServerCert(*ca, "localhost", "DNS:localhost,IP:127.0.0.1", 30);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto csr = CreateDeviceCsr("laptop");
  ASSERT_TRUE(csr.ok());
  auto cert = SignDeviceCsr(*ca, csr->csr_pem, "laptop", 7, 30);
  ASSERT_TRUE(cert.ok()) << cert.status().ToString();
  auto fp = CertFingerprint(*cert);
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ(fp->size(), 64u);
  EXPECT_NE(*fp, *CertFingerprint(server->cert_pem));
}

TEST(VaultPki, RejectsBadCsr) {
  auto ca = CreateCa("test CA", 30);
  ASSERT_TRUE(ca.ok());
  EXPECT_FALSE(SignDeviceCsr(*ca, "not a csr", "x", 1, 30).ok());
  auto csr = CreateDeviceCsr("laptop");
  std::string bad = csr->csr_pem;
  bad[bad.size() / 2] = bad[bad.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(SignDeviceCsr(*ca, bad, "x", 1, 30).ok());
  EXPECT_FALSE(SignDeviceCsr(*ca, std::string(1 << 20, 'x'), "x", 1, 30).ok());
}

}  // namespace
}  // namespace mamori::vault
