// Encryption at rest for the vault (libsodium).
//
// Key hierarchy (byte formats in docs/formats.md):
//   key-encryption keys (KEKs, versioned) live in a keyring file (mode 0600)
//   kept outside the data directory;
//   every file version has its own random data key (DEK), stored only wrapped
//   by a KEK (XChaCha20-Poly1305-IETF, the object id as associated data);
//   content is a secretstream (XChaCha20-Poly1305) of 64 KiB chunks whose last
//   chunk carries TAG_FINAL, so flips, reordering and truncation are detected;
//   names are sealed with a metadata key (wrapped like a DEK) and indexed by a
//   keyed BLAKE2b tag, so equal names can be found without storing them.
// Rotation adds a KEK version and re-wraps keys; content is never rewritten.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mamori::crypto {

// Initialises libsodium once; safe to call from any thread, any number of times.
Status Init();

// A 32-byte secret, wiped when destroyed. Copyable (copies are wiped too).
class SecretKey {
 public:
  static constexpr size_t kSize = 32;
  SecretKey();
  ~SecretKey();
  SecretKey(const SecretKey& other);
  SecretKey& operator=(const SecretKey& other);
  // A fresh key from the OS CSPRNG.
  static SecretKey Random();
  // Exactly kSize bytes, or an error.
  static Result<SecretKey> FromBytes(std::string_view bytes);
  const unsigned char* data() const { return key_.data(); }
  unsigned char* mutable_data() { return key_.data(); }
  bool operator==(const SecretKey& o) const;

 private:
  std::array<unsigned char, kSize> key_;
};

// Versioned key-encryption keys, loaded from a keyring file. Thread-compatible;
// a loaded Keyring is immutable and can be shared read-only across threads.
class Keyring {
 public:
  // Creates a new keyring file with one fresh KEK (version 1), mode 0600.
  // Fails if the file exists (never overwrites keys).
  static Result<Keyring> Create(const std::string& path);
  // Loads a keyring file. Refuses a file readable or writable by group or
  // others (fail closed: a leaked KEK defeats the encryption).
  static Result<Keyring> Load(const std::string& path);
  // Parses keyring text (the file body); for tests and fuzzing.
  static Result<Keyring> Parse(std::string_view text);

  // Adds a new KEK version, makes it current and rewrites the file atomically.
  // Old versions are kept so existing wrapped keys still open until re-wrapped.
  Status Rotate(const std::string& path);
  // Serialises to the file format.
  std::string Serialize() const;

  uint32_t current_version() const { return current_; }
  const SecretKey* Find(uint32_t version) const;
  size_t size() const { return keys_.size(); }

 private:
  std::map<uint32_t, SecretKey> keys_;
  uint32_t current_ = 0;
};

// Wrapped key blob: "MKW1" | kek_version (u32 LE) | nonce (24) | ciphertext (32+16).
inline constexpr size_t kWrappedKeySize = 4 + 4 + 24 + 32 + 16;

// Wraps `key` with the current KEK, binding `ad` (the object id).
Result<std::string> WrapKey(const Keyring& ring, const SecretKey& key, std::string_view ad);
// Unwraps; a wrong KEK, wrong `ad` or any changed byte gives kDataLoss.
Result<SecretKey> UnwrapKey(const Keyring& ring, std::string_view wrapped, std::string_view ad);
// The KEK version a wrapped blob names (0 if malformed).
uint32_t WrappedKeyVersion(std::string_view wrapped);
// Re-wraps with the current KEK (no-op copy if already current).
Result<std::string> RewrapKey(const Keyring& ring, std::string_view wrapped, std::string_view ad);

// Content stream format: "MAMORIB1" | chunk_size (u32 LE) | secretstream header (24)
// then chunks of chunk_size+17 bytes, the last one shorter or equal and TAG_FINAL.
inline constexpr size_t kStreamPrefixSize = 8 + 4;
inline constexpr size_t kStreamHeaderSize = kStreamPrefixSize + 24;
inline constexpr uint32_t kDefaultChunkSize = 64 * 1024;
inline constexpr uint32_t kMaxChunkSize = 4 * 1024 * 1024;
inline constexpr size_t kChunkOverhead = 17;

// Size of the ciphertext for a plaintext of n bytes.
uint64_t CiphertextSize(uint64_t plaintext_size, uint32_t chunk_size = kDefaultChunkSize);

// Encrypts a stream. Memory is one chunk. Not thread-safe.
class StreamEncryptor {
 public:
  // `ad` (the object id) is bound to the first chunk with the stream prefix.
  static Result<std::unique_ptr<StreamEncryptor>> Create(const SecretKey& key, std::string_view ad,
                                                         uint32_t chunk_size = kDefaultChunkSize);
  ~StreamEncryptor();
  // Appends ciphertext for `plain` to *out (the first call also emits the header).
  Status Write(std::string_view plain, std::string* out);
  // Emits the final chunk. No Write after Finish.
  Status Finish(std::string* out);
  uint64_t plaintext_bytes() const { return plain_bytes_; }

 private:
  StreamEncryptor() = default;
  Status EmitChunk(bool final, std::string* out);
  struct State;
  std::unique_ptr<State> st_;
  std::string ad_;
  std::string pending_;
  std::string pending_header_;
  uint32_t chunk_size_ = kDefaultChunkSize;
  bool header_done_ = false;
  bool finished_ = false;
  uint64_t plain_bytes_ = 0;
};

// Decrypts a stream fed in arbitrary pieces. Memory is one chunk. Not thread-safe.
// Plaintext is only released for chunks that authenticated; the caller must
// still treat the output as untrusted until Finish() returns OK (truncation).
class StreamDecryptor {
 public:
  static Result<std::unique_ptr<StreamDecryptor>> Create(const SecretKey& key, std::string_view ad);
  ~StreamDecryptor();
  Status Feed(std::string_view cipher, std::string* plain_out);
  // Decrypts the buffered last chunk into *plain_out. OK only if the final
  // chunk was seen and nothing followed it.
  Status Finish(std::string* plain_out);

 private:
  StreamDecryptor() = default;
  Status DecryptChunk(std::string_view chunk, std::string* plain_out);
  struct State;
  std::unique_ptr<State> st_;
  SecretKey key_;
  std::string ad_;
  std::string buf_;
  uint32_t chunk_size_ = 0;
  bool header_done_ = false;
  bool final_seen_ = false;
  bool failed_ = false;
  uint64_t chunk_index_ = 0;
};

// Seals names (file and folder names are personal data) with random nonces,
// and computes deterministic index tags for lookups. Thread-safe (immutable).
class NameCipher {
 public:
  explicit NameCipher(const SecretKey& metadata_key);
  // nonce (24) | ciphertext; `ad` binds the row (e.g. "obj:<id>").
  std::string Seal(std::string_view name, std::string_view ad) const;
  Result<std::string> Open(std::string_view sealed, std::string_view ad) const;
  // 64 lowercase hex chars: keyed BLAKE2b-256 of scope || 0x00 || name.
  std::string IndexTag(std::string_view scope, std::string_view name) const;

 private:
  SecretKey seal_key_;
  SecretKey index_key_;
};

// Lowercase hex of bytes, and back.
std::string ToHex(std::string_view bytes);
Result<std::string> FromHex(std::string_view hex);
// n random bytes; URL-safe base64 (no padding) of n random bytes.
std::string RandomBytes(size_t n);
std::string RandomToken(size_t n_bytes = 32);
// SHA-256 streaming hasher (content hash check).
class Sha256 {
 public:
  Sha256();
  void Update(std::string_view data);
  std::string FinishHex();

 private:
  alignas(64) unsigned char state_[128];
};
// Constant-time comparison.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace mamori::crypto
