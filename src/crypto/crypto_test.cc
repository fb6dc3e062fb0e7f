#include "crypto/crypto.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace mamori::crypto {
namespace {

std::string Encrypt(const SecretKey& k, std::string_view ad, std::string_view plain,
                    uint32_t chunk = 64, size_t piece = 7) {
  auto e = StreamEncryptor::Create(k, ad, chunk);
  EXPECT_TRUE(e.ok());
  std::string out;
  for (size_t i = 0; i < plain.size(); i += piece)
    EXPECT_TRUE((*e)->Write(plain.substr(i, piece), &out).ok());
  EXPECT_TRUE((*e)->Finish(&out).ok());
  return out;
}

Result<std::string> Decrypt(const SecretKey& k, std::string_view ad, std::string_view cipher,
                            size_t piece = 13) {
  ASSIGN_OR_RETURN(auto d, StreamDecryptor::Create(k, ad));
  std::string out;
  for (size_t i = 0; i < cipher.size(); i += piece)
    RETURN_IF_ERROR(d->Feed(cipher.substr(i, piece), &out));
  RETURN_IF_ERROR(d->Finish(&out));
  return out;
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xff);
  return s;
}

TEST(CryptoStream, RoundTripManySizes) {
  SecretKey k = SecretKey::Random();
  for (size_t n : {0, 1, 63, 64, 65, 128, 129, 1000}) {
    std::string plain = Pattern(n);
    std::string c = Encrypt(k, "obj-1", plain);
    EXPECT_EQ(c.size(), CiphertextSize(n, 64)) << n;
    auto p = Decrypt(k, "obj-1", c);
    ASSERT_TRUE(p.ok()) << n << " " << p.status().ToString();
    EXPECT_EQ(*p, plain) << n;
    // Whole-buffer feed too.
    auto p2 = Decrypt(k, "obj-1", c, c.size());
    ASSERT_TRUE(p2.ok());
    EXPECT_EQ(*p2, plain);
  }
}

TEST(CryptoStream, CiphertextDoesNotContainPlaintext) {
  SecretKey k = SecretKey::Random();
  std::string plain = "顧客名簿 山田太郎 090-1234-5678 顧客名簿 山田太郎";
  std::string c = Encrypt(k, "o", plain);
  EXPECT_EQ(c.find("山田"), std::string::npos);
}

TEST(CryptoStream, EveryFlippedByteIsDetected) {
  SecretKey k = SecretKey::Random();
  std::string c = Encrypt(k, "o", Pattern(150));
  for (size_t i = 0; i < c.size(); ++i) {
    std::string t = c;
    t[i] ^= 0x01;
    EXPECT_FALSE(Decrypt(k, "o", t).ok()) << "flip at " << i;
  }
}

TEST(CryptoStream, TruncationIsDetectedAtEveryLength) {
  SecretKey k = SecretKey::Random();
  std::string c = Encrypt(k, "o", Pattern(200));
  for (size_t n = 0; n < c.size(); ++n) {
    auto r = Decrypt(k, "o", c.substr(0, n));
    EXPECT_FALSE(r.ok()) << "truncated to " << n;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    }
  }
}

TEST(CryptoStream, ReorderedAndDroppedChunksAreDetected) {
  SecretKey k = SecretKey::Random();
  std::string c = Encrypt(k, "o", Pattern(64 * 3 + 10));
  size_t full = 64 + kChunkOverhead;
  std::string h = c.substr(0, kStreamHeaderSize);
  std::string c0 = c.substr(kStreamHeaderSize, full), c1 = c.substr(kStreamHeaderSize + full, full),
              c2 = c.substr(kStreamHeaderSize + 2 * full, full),
              c3 = c.substr(kStreamHeaderSize + 3 * full);
  EXPECT_TRUE(Decrypt(k, "o", h + c0 + c1 + c2 + c3).ok());
  EXPECT_FALSE(Decrypt(k, "o", h + c1 + c0 + c2 + c3).ok());
  EXPECT_FALSE(Decrypt(k, "o", h + c0 + c2 + c1 + c3).ok());
  EXPECT_FALSE(Decrypt(k, "o", h + c0 + c2 + c3).ok());
  EXPECT_FALSE(Decrypt(k, "o", h + c0 + c1 + c2).ok());
  EXPECT_FALSE(Decrypt(k, "o", h + c0 + c1 + c2 + c3 + c3).ok());
  EXPECT_FALSE(Decrypt(k, "o", c + "x").ok());
}

TEST(CryptoStream, WrongKeyOrObjectIdFails) {
  SecretKey k = SecretKey::Random();
  std::string c = Encrypt(k, "obj-a", Pattern(100));
  EXPECT_FALSE(Decrypt(SecretKey::Random(), "obj-a", c).ok());
  EXPECT_FALSE(Decrypt(k, "obj-b", c).ok());
}

TEST(CryptoStream, ChunkSizeIsAuthenticated) {
  SecretKey k = SecretKey::Random();
  std::string c = Encrypt(k, "o", Pattern(100), 64);
  c[8] = 32;  // claim a different chunk size
  EXPECT_FALSE(Decrypt(k, "o", c).ok());
}

class KeyringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mamori_crypto_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "kek").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(KeyringTest, CreateLoadWrapUnwrap) {
  auto ring = Keyring::Create(path_);
  ASSERT_TRUE(ring.ok()) << ring.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(Keyring::Create(path_).ok());  // never overwrites

  auto loaded = Keyring::Load(path_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->current_version(), 1u);

  SecretKey dek = SecretKey::Random();
  auto w = WrapKey(*ring, dek, "obj-1");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->size(), kWrappedKeySize);
  auto u = UnwrapKey(*loaded, *w, "obj-1");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(*u == dek);
  EXPECT_EQ(UnwrapKey(*loaded, *w, "obj-2").status().code(), StatusCode::kDataLoss);
  for (size_t i = 0; i < w->size(); ++i) {
    std::string t = *w;
    t[i] ^= 0x40;
    EXPECT_FALSE(UnwrapKey(*loaded, t, "obj-1").ok()) << i;
  }
}

TEST_F(KeyringTest, RefusesLooseMode) {
  ASSERT_TRUE(Keyring::Create(path_).ok());
  ::chmod(path_.c_str(), 0644);
  auto r = Keyring::Load(path_);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
}

TEST_F(KeyringTest, WrongKekFails) {
  auto a = Keyring::Create(path_);
  auto b = Keyring::Create((dir_ / "other").string());
  ASSERT_TRUE(a.ok() && b.ok());
  auto w = WrapKey(*a, SecretKey::Random(), "x");
  EXPECT_EQ(UnwrapKey(*b, *w, "x").status().code(), StatusCode::kDataLoss);
}

TEST_F(KeyringTest, RotationRewrapsWithoutTouchingContent) {
  auto ring = Keyring::Create(path_);
  ASSERT_TRUE(ring.ok());
  SecretKey dek = SecretKey::Random();
  std::string content = Encrypt(dek, "obj", Pattern(300));
  auto w1 = WrapKey(*ring, dek, "obj");
  ASSERT_TRUE(ring->Rotate(path_).ok());
  EXPECT_EQ(ring->current_version(), 2u);
  auto reloaded = Keyring::Load(path_);
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->current_version(), 2u);
  EXPECT_EQ(reloaded->size(), 2u);
  // Old wrap still opens; re-wrap moves it to v2.
  EXPECT_EQ(WrappedKeyVersion(*w1), 1u);
  auto w2 = RewrapKey(*reloaded, *w1, "obj");
  ASSERT_TRUE(w2.ok());
  EXPECT_EQ(WrappedKeyVersion(*w2), 2u);
  auto k2 = UnwrapKey(*reloaded, *w2, "obj");
  ASSERT_TRUE(k2.ok());
  auto plain = Decrypt(*k2, "obj", content);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, Pattern(300));
  // Re-wrapping a tampered blob is refused.
  std::string bad = *w1;
  bad.back() ^= 1;
  EXPECT_FALSE(RewrapKey(*reloaded, bad, "obj").ok());
}

TEST(KeyringParse, RejectsMalformed) {
  EXPECT_FALSE(Keyring::Parse("").ok());
  EXPECT_FALSE(Keyring::Parse("mamori-keyring 1\n").ok());
  EXPECT_FALSE(Keyring::Parse("mamori-keyring 1\nkek 1 abcd\ncurrent 1\n").ok());
  std::string hex(64, 'a');
  EXPECT_TRUE(Keyring::Parse("mamori-keyring 1\nkek 1 " + hex + "\ncurrent 1\n").ok());
  EXPECT_FALSE(Keyring::Parse("mamori-keyring 1\nkek 1 " + hex + "\ncurrent 2\n").ok());
  EXPECT_FALSE(
      Keyring::Parse("mamori-keyring 1\nkek 1 " + hex + "\nkek 1 " + hex + "\ncurrent 1\n").ok());
}

TEST(NameCipher, SealOpenAndIndex) {
  NameCipher nc(SecretKey::Random());
  std::string name = "顧客名簿_山田様.xlsx";
  std::string sealed = nc.Seal(name, "obj:1");
  EXPECT_EQ(sealed.find("山田"), std::string::npos);
  EXPECT_NE(nc.Seal(name, "obj:1"), sealed);  // random nonce
  auto opened = nc.Open(sealed, "obj:1");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, name);
  EXPECT_FALSE(nc.Open(sealed, "obj:2").ok());
  std::string t = sealed;
  t[30] ^= 1;
  EXPECT_FALSE(nc.Open(t, "obj:1").ok());
  EXPECT_EQ(nc.IndexTag("f1", name), nc.IndexTag("f1", name));
  EXPECT_NE(nc.IndexTag("f1", name), nc.IndexTag("f2", name));
  EXPECT_NE(NameCipher(SecretKey::Random()).IndexTag("f1", name), nc.IndexTag("f1", name));
  EXPECT_EQ(nc.IndexTag("f1", name).size(), 64u);
}

TEST(Sha256, KnownVector) {
  Sha256 h;
  h.Update("ab");
  h.Update("c");
  EXPECT_EQ(h.FinishHex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace mamori::crypto
