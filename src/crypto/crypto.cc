#include "crypto/crypto.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <sstream>

#include "common/file_util.h"

namespace mamori::crypto {
namespace {

constexpr char kWrapMagic[4] = {'M', 'K', 'W', '1'};
constexpr char kStreamMagic[8] = {'M', 'A', 'M', 'O', 'R', 'I', 'B', '1'};
constexpr char kKeyringMagic[] = "mamori-keyring 1";
constexpr char kWrapAdPrefix[] = "mamori.dek.v1\0";

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string WrapAd(std::string_view ad) {
  std::string s(kWrapAdPrefix, sizeof(kWrapAdPrefix) - 1);
  s.append(ad);
  return s;
}

}  // namespace

Status Init() {
  static std::once_flag once;
  static int rc = 0;
  std::call_once(once, [] { rc = sodium_init(); });
  if (rc < 0) return Internal("libsodium failed to initialise (sodium_init)");
  return Status::Ok();
}

// ---- SecretKey ----
SecretKey::SecretKey() { key_.fill(0); }
SecretKey::~SecretKey() { sodium_memzero(key_.data(), key_.size()); }
SecretKey::SecretKey(const SecretKey& other) : key_(other.key_) {}
SecretKey& SecretKey::operator=(const SecretKey& other) {
  key_ = other.key_;
  return *this;
}
SecretKey SecretKey::Random() {
  (void)Init();
  SecretKey k;
  randombytes_buf(k.key_.data(), k.key_.size());
  return k;
}
Result<SecretKey> SecretKey::FromBytes(std::string_view bytes) {
  if (bytes.size() != kSize)
    return InvalidArgument("a key must be " + std::to_string(kSize) + " bytes, got " +
                           std::to_string(bytes.size()));
  SecretKey k;
  std::memcpy(k.key_.data(), bytes.data(), kSize);
  return k;
}
bool SecretKey::operator==(const SecretKey& o) const {
  return sodium_memcmp(key_.data(), o.key_.data(), kSize) == 0;
}

// ---- hex, random ----
std::string ToHex(std::string_view bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                 bytes.size());
  out.resize(bytes.size() * 2);
  return out;
}
Result<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return InvalidArgument("hex string has an odd length");
  std::string out(hex.size() / 2, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                     hex.size(), nullptr, &len, &end) != 0 ||
      len != out.size() || end != hex.data() + hex.size())
    return InvalidArgument("not a hex string");
  return out;
}
std::string RandomBytes(size_t n) {
  (void)Init();
  std::string s(n, '\0');
  randombytes_buf(s.data(), n);
  return s;
}
std::string RandomToken(size_t n_bytes) {
  std::string raw = RandomBytes(n_bytes);
  std::string out(sodium_base64_encoded_len(n_bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                    raw.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  sodium_memzero(raw.data(), raw.size());
  return out;
}
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

static_assert(sizeof(crypto_hash_sha256_state) <= 128, "sha256 state buffer too small");
Sha256::Sha256() {
  (void)Init();
  crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_));
}
void Sha256::Update(std::string_view data) {
  crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_),
                            reinterpret_cast<const unsigned char*>(data.data()), data.size());
}
std::string Sha256::FinishHex() {
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(reinterpret_cast<crypto_hash_sha256_state*>(state_), out);
  return ToHex(std::string_view(reinterpret_cast<char*>(out), sizeof out));
}

// ---- Keyring ----
Result<Keyring> Keyring::Parse(std::string_view text) {
  RETURN_IF_ERROR(Init());
  Keyring ring;
  std::istringstream in{std::string(text)};
  std::string line;
  int lineno = 0;
  bool magic = false;
  uint32_t current = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    if (!magic) {
      if (line != kKeyringMagic)
        return DataLoss("keyring: line 1 must be '" + std::string(kKeyringMagic) + "'");
      magic = true;
      continue;
    }
    std::istringstream ls(line);
    std::string word;
    ls >> word;
    if (word == "kek") {
      uint64_t version = 0;
      std::string hex;
      if (!(ls >> version >> hex) || version == 0 || version > UINT32_MAX)
        return DataLoss("keyring: line " + std::to_string(lineno) +
                        ": expected 'kek <version> <64 hex>'");
      auto bytes = FromHex(hex);
      if (!bytes.ok() || bytes->size() != SecretKey::kSize)
        return DataLoss("keyring: line " + std::to_string(lineno) + ": key is not 64 hex chars");
      auto key = SecretKey::FromBytes(*bytes);
      sodium_memzero(bytes->data(), bytes->size());
      if (!ring.keys_.emplace(static_cast<uint32_t>(version), *key).second)
        return DataLoss("keyring: line " + std::to_string(lineno) + ": duplicate kek version " +
                        std::to_string(version));
    } else if (word == "current") {
      uint64_t v = 0;
      if (!(ls >> v) || v == 0 || v > UINT32_MAX)
        return DataLoss("keyring: line " + std::to_string(lineno) +
                        ": expected 'current <version>'");
      current = static_cast<uint32_t>(v);
    } else {
      return DataLoss("keyring: line " + std::to_string(lineno) + ": unknown entry '" + word + "'");
    }
  }
  if (!magic) return DataLoss("keyring: empty file");
  if (ring.keys_.empty()) return DataLoss("keyring: no 'kek' entries");
  if (current == 0 || !ring.keys_.count(current))
    return DataLoss("keyring: 'current' must name one of the kek versions");
  ring.current_ = current;
  return ring;
}

std::string Keyring::Serialize() const {
  std::string out = std::string(kKeyringMagic) + "\n";
  out += "# mamori key-encryption keys. Keep this file outside the data directory, mode 0600.\n";
  for (const auto& [v, k] : keys_) {
    out += "kek " + std::to_string(v) + " " +
           ToHex(std::string_view(reinterpret_cast<const char*>(k.data()), SecretKey::kSize)) +
           "\n";
  }
  out += "current " + std::to_string(current_) + "\n";
  return out;
}

Result<Keyring> Keyring::Create(const std::string& path) {
  RETURN_IF_ERROR(Init());
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0)
    return AlreadyExists("keyring " + path + " already exists; refusing to overwrite keys");
  Keyring ring;
  ring.keys_.emplace(1, SecretKey::Random());
  ring.current_ = 1;
  std::string text = ring.Serialize();
  Status s = WriteFileAtomic(path, text, 0600);
  sodium_memzero(text.data(), text.size());
  RETURN_IF_ERROR(s);
  return ring;
}

Result<Keyring> Keyring::Load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return NotFound("keyring " + path + ": " + std::strerror(errno) +
                    " (create one with `mamori serve --init`)");
  if ((st.st_mode & 077) != 0)
    return PermissionDenied("keyring " + path +
                            " is accessible by group or others; run chmod 600 on it");
  auto text = ReadFile(path, 1 << 20);
  if (!text.ok()) return text.status();
  auto ring = Parse(*text);
  sodium_memzero(text->data(), text->size());
  if (!ring.ok()) return ring.status().WithContext(path);
  return ring;
}

Status Keyring::Rotate(const std::string& path) {
  uint32_t next = keys_.empty() ? 1 : keys_.rbegin()->first + 1;
  if (next == 0) return ResourceExhausted("keyring: no more KEK versions");
  keys_.emplace(next, SecretKey::Random());
  uint32_t old = current_;
  current_ = next;
  std::string text = Serialize();
  Status s = WriteFileAtomic(path, text, 0600);
  sodium_memzero(text.data(), text.size());
  if (!s.ok()) {
    keys_.erase(next);
    current_ = old;
  }
  return s;
}

const SecretKey* Keyring::Find(uint32_t version) const {
  auto it = keys_.find(version);
  return it == keys_.end() ? nullptr : &it->second;
}

// ---- key wrapping ----
Result<std::string> WrapKey(const Keyring& ring, const SecretKey& key, std::string_view ad) {
  RETURN_IF_ERROR(Init());
  const SecretKey* kek = ring.Find(ring.current_version());
  if (!kek) return FailedPrecondition("keyring has no current KEK");
  std::string out(kWrapMagic, 4);
  PutU32(&out, ring.current_version());
  std::string nonce = RandomBytes(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  out += nonce;
  std::string full_ad = WrapAd(ad);
  // AD also covers magic and version, so they cannot be swapped.
  full_ad.append(out.data(), 8);
  size_t pos = out.size();
  out.resize(pos + SecretKey::kSize + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(out.data() + pos), &clen, key.data(), SecretKey::kSize,
      reinterpret_cast<const unsigned char*>(full_ad.data()), full_ad.size(), nullptr,
      reinterpret_cast<const unsigned char*>(nonce.data()), kek->data());
  return out;
}

uint32_t WrappedKeyVersion(std::string_view wrapped) {
  if (wrapped.size() != kWrappedKeySize || std::memcmp(wrapped.data(), kWrapMagic, 4) != 0)
    return 0;
  return GetU32(wrapped.data() + 4);
}

Result<SecretKey> UnwrapKey(const Keyring& ring, std::string_view wrapped, std::string_view ad) {
  RETURN_IF_ERROR(Init());
  uint32_t version = WrappedKeyVersion(wrapped);
  if (version == 0) return DataLoss("wrapped key is malformed (bad size or magic)");
  const SecretKey* kek = ring.Find(version);
  if (!kek)
    return FailedPrecondition("wrapped key needs KEK version " + std::to_string(version) +
                              ", which the keyring does not hold");
  std::string full_ad = WrapAd(ad);
  full_ad.append(wrapped.data(), 8);
  SecretKey out;
  unsigned long long mlen = 0;
  const auto* c = reinterpret_cast<const unsigned char*>(wrapped.data() + 8 + 24);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          out.mutable_data(), &mlen, nullptr, c, SecretKey::kSize + 16,
          reinterpret_cast<const unsigned char*>(full_ad.data()), full_ad.size(),
          reinterpret_cast<const unsigned char*>(wrapped.data() + 8), kek->data()) != 0 ||
      mlen != SecretKey::kSize)
    return DataLoss("wrapped key failed authentication (wrong KEK, wrong object, or tampered)");
  return out;
}

Result<std::string> RewrapKey(const Keyring& ring, std::string_view wrapped, std::string_view ad) {
  if (WrappedKeyVersion(wrapped) == ring.current_version()) {
    // Still authenticate, so rotation never blesses a tampered blob.
    auto k = UnwrapKey(ring, wrapped, ad);
    if (!k.ok()) return k.status();
    return std::string(wrapped);
  }
  ASSIGN_OR_RETURN(SecretKey key, UnwrapKey(ring, wrapped, ad));
  return WrapKey(ring, key, ad);
}

// ---- streams ----
uint64_t CiphertextSize(uint64_t n, uint32_t chunk_size) {
  uint64_t chunks = n == 0 ? 1 : (n + chunk_size - 1) / chunk_size;
  return kStreamHeaderSize + n + chunks * kChunkOverhead;
}

struct StreamEncryptor::State {
  crypto_secretstream_xchacha20poly1305_state s;
  ~State() { sodium_memzero(&s, sizeof s); }
};
struct StreamDecryptor::State {
  crypto_secretstream_xchacha20poly1305_state s;
  ~State() { sodium_memzero(&s, sizeof s); }
};

StreamEncryptor::~StreamEncryptor() = default;
StreamDecryptor::~StreamDecryptor() = default;

Result<std::unique_ptr<StreamEncryptor>> StreamEncryptor::Create(const SecretKey& key,
                                                                 std::string_view ad,
                                                                 uint32_t chunk_size) {
  RETURN_IF_ERROR(Init());
  if (chunk_size == 0 || chunk_size > kMaxChunkSize)
    return InvalidArgument("chunk size must be 1.." + std::to_string(kMaxChunkSize));
  std::unique_ptr<StreamEncryptor> e(new StreamEncryptor());
  e->st_ = std::make_unique<State>();
  e->ad_ = std::string(ad);
  e->chunk_size_ = chunk_size;
  e->pending_.reserve(chunk_size);
  // The header is produced now but emitted with the first output.
  std::string header(kStreamMagic, 8);
  PutU32(&header, chunk_size);
  header.resize(kStreamHeaderSize);
  crypto_secretstream_xchacha20poly1305_init_push(
      &e->st_->s, reinterpret_cast<unsigned char*>(header.data() + kStreamPrefixSize), key.data());
  e->ad_ = header.substr(0, kStreamPrefixSize) + std::string(ad);
  e->pending_header_ = std::move(header);
  return e;
}

Status StreamEncryptor::EmitChunk(bool final, std::string* out) {
  size_t pos = out->size();
  out->resize(pos + pending_.size() + kChunkOverhead);
  unsigned long long clen = 0;
  const unsigned char* ad = nullptr;
  size_t adlen = 0;
  if (!ad_.empty()) {  // only the first chunk carries the associated data
    ad = reinterpret_cast<const unsigned char*>(ad_.data());
    adlen = ad_.size();
  }
  crypto_secretstream_xchacha20poly1305_push(
      &st_->s, reinterpret_cast<unsigned char*>(out->data() + pos), &clen,
      reinterpret_cast<const unsigned char*>(pending_.data()), pending_.size(), ad, adlen,
      final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
            : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
  out->resize(pos + clen);
  sodium_memzero(pending_.data(), pending_.size());
  pending_.clear();
  ad_.clear();
  return Status::Ok();
}

Status StreamEncryptor::Write(std::string_view plain, std::string* out) {
  if (finished_) return FailedPrecondition("StreamEncryptor::Write after Finish");
  if (!header_done_) {
    out->append(pending_header_);
    header_done_ = true;
  }
  plain_bytes_ += plain.size();
  while (!plain.empty()) {
    // A full chunk is emitted only when more data follows, so the final chunk
    // is never empty unless the whole stream is.
    if (pending_.size() == chunk_size_) RETURN_IF_ERROR(EmitChunk(false, out));
    size_t take = std::min<size_t>(plain.size(), chunk_size_ - pending_.size());
    pending_.append(plain.data(), take);
    plain.remove_prefix(take);
  }
  return Status::Ok();
}

Status StreamEncryptor::Finish(std::string* out) {
  if (finished_) return FailedPrecondition("StreamEncryptor::Finish called twice");
  if (!header_done_) {
    out->append(pending_header_);
    header_done_ = true;
  }
  finished_ = true;
  return EmitChunk(true, out);
}

Result<std::unique_ptr<StreamDecryptor>> StreamDecryptor::Create(const SecretKey& key,
                                                                 std::string_view ad) {
  RETURN_IF_ERROR(Init());
  std::unique_ptr<StreamDecryptor> d(new StreamDecryptor());
  d->st_ = std::make_unique<State>();
  d->key_ = key;
  d->ad_ = std::string(ad);
  return d;
}

Status StreamDecryptor::DecryptChunk(std::string_view chunk, std::string* plain_out) {
  size_t pos = plain_out->size();
  plain_out->resize(pos + chunk.size() - kChunkOverhead);
  unsigned long long mlen = 0;
  unsigned char tag = 0;
  const unsigned char* ad = nullptr;
  size_t adlen = 0;
  if (chunk_index_ == 0) {
    ad = reinterpret_cast<const unsigned char*>(ad_.data());
    adlen = ad_.size();
  }
  if (crypto_secretstream_xchacha20poly1305_pull(
          &st_->s, reinterpret_cast<unsigned char*>(plain_out->data() + pos), &mlen, &tag,
          reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size(), ad, adlen) != 0) {
    plain_out->resize(pos);
    failed_ = true;
    return DataLoss("encrypted content chunk " + std::to_string(chunk_index_) +
                    " failed authentication (tampered, reordered, or wrong key)");
  }
  plain_out->resize(pos + mlen);
  ++chunk_index_;
  if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
    final_seen_ = true;
  } else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
    failed_ = true;
    return DataLoss("encrypted content has an unexpected chunk tag");
  } else if (chunk.size() != chunk_size_ + kChunkOverhead) {
    failed_ = true;
    return DataLoss("encrypted content has a short chunk that is not the last");
  }
  return Status::Ok();
}

Status StreamDecryptor::Feed(std::string_view cipher, std::string* plain_out) {
  if (failed_) return DataLoss("decryption already failed");
  while (!cipher.empty()) {
    if (final_seen_) {
      failed_ = true;
      return DataLoss("encrypted content has data after its final chunk");
    }
    if (!header_done_) {
      size_t take = std::min(cipher.size(), kStreamHeaderSize - buf_.size());
      buf_.append(cipher.data(), take);
      cipher.remove_prefix(take);
      if (buf_.size() < kStreamHeaderSize) return Status::Ok();
      if (std::memcmp(buf_.data(), kStreamMagic, 8) != 0) {
        failed_ = true;
        return DataLoss("encrypted content does not start with MAMORIB1");
      }
      chunk_size_ = GetU32(buf_.data() + 8);
      if (chunk_size_ == 0 || chunk_size_ > kMaxChunkSize) {
        failed_ = true;
        return DataLoss("encrypted content names an invalid chunk size");
      }
      if (crypto_secretstream_xchacha20poly1305_init_pull(
              &st_->s, reinterpret_cast<const unsigned char*>(buf_.data() + kStreamPrefixSize),
              key_.data()) != 0) {
        failed_ = true;
        return DataLoss("encrypted content header is invalid");
      }
      ad_ = buf_.substr(0, kStreamPrefixSize) + ad_;
      buf_.clear();
      buf_.reserve(chunk_size_ + kChunkOverhead);
      header_done_ = true;
      continue;
    }
    size_t full = chunk_size_ + kChunkOverhead;
    if (buf_.empty() && cipher.size() >= full) {
      RETURN_IF_ERROR(DecryptChunk(cipher.substr(0, full), plain_out));
      cipher.remove_prefix(full);
      continue;
    }
    size_t take = std::min(cipher.size(), full - buf_.size());
    buf_.append(cipher.data(), take);
    cipher.remove_prefix(take);
    if (buf_.size() == full) {
      Status s = DecryptChunk(buf_, plain_out);
      buf_.clear();
      RETURN_IF_ERROR(s);
    }
  }
  return Status::Ok();
}

Status StreamDecryptor::Finish(std::string* plain_out) {
  if (failed_) return DataLoss("decryption failed");
  if (!header_done_) return DataLoss("encrypted content is truncated (no header)");
  if (!final_seen_ && !buf_.empty()) {
    // The last (short) chunk is still buffered.
    if (buf_.size() < kChunkOverhead) {
      failed_ = true;
      return DataLoss("encrypted content is truncated (partial chunk)");
    }
    std::string chunk = std::move(buf_);
    buf_.clear();
    RETURN_IF_ERROR(DecryptChunk(chunk, plain_out));
  }
  if (!final_seen_) return DataLoss("encrypted content is truncated (no final chunk)");
  return Status::Ok();
}

// ---- names ----
NameCipher::NameCipher(const SecretKey& metadata_key) {
  (void)Init();
  crypto_kdf_derive_from_key(seal_key_.mutable_data(), SecretKey::kSize, 1, "mamname_",
                             metadata_key.data());
  crypto_kdf_derive_from_key(index_key_.mutable_data(), SecretKey::kSize, 2, "mamname_",
                             metadata_key.data());
}

std::string NameCipher::Seal(std::string_view name, std::string_view ad) const {
  std::string out = RandomBytes(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  size_t pos = out.size();
  out.resize(pos + name.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(out.data() + pos), &clen,
      reinterpret_cast<const unsigned char*>(name.data()), name.size(),
      reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr,
      reinterpret_cast<const unsigned char*>(out.data()), seal_key_.data());
  out.resize(pos + clen);
  return out;
}

Result<std::string> NameCipher::Open(std::string_view sealed, std::string_view ad) const {
  constexpr size_t kN = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  constexpr size_t kA = crypto_aead_xchacha20poly1305_ietf_ABYTES;
  if (sealed.size() < kN + kA) return DataLoss("sealed name is too short");
  std::string out(sealed.size() - kN - kA, '\0');
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &mlen, nullptr,
          reinterpret_cast<const unsigned char*>(sealed.data() + kN), sealed.size() - kN,
          reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
          reinterpret_cast<const unsigned char*>(sealed.data()), seal_key_.data()) != 0)
    return DataLoss("sealed name failed authentication (tampered or wrong key)");
  out.resize(mlen);
  return out;
}

std::string NameCipher::IndexTag(std::string_view scope, std::string_view name) const {
  crypto_generichash_state st;
  crypto_generichash_init(&st, index_key_.data(), SecretKey::kSize, 32);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(scope.data()),
                            scope.size());
  unsigned char zero = 0;
  crypto_generichash_update(&st, &zero, 1);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(name.data()), name.size());
  unsigned char out[32];
  crypto_generichash_final(&st, out, sizeof out);
  return ToHex(std::string_view(reinterpret_cast<char*>(out), sizeof out));
}

}  // namespace mamori::crypto
