// Masking and keyed hashing of personal-data values.
//
// mamori never prints or logs a full personal-data value. Findings carry a
// masked form for people and a keyed hash for machines, so the same value can
// be correlated across files, mails and uploads without being revealed.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mamori {

// Masks a value for display. Digits and letters are replaced by '*', except
// the first `keep_head` and last `keep_tail` of them; separators are kept so
// the shape stays readable: MaskValue("1234-5678-9018", 4, 2) == "1234-****-**18".
// Non-ASCII characters (names, addresses) are masked per character, keeping
// only the first one: "山田太郎" -> "山***".
std::string MaskValue(std::string_view value, int keep_head = 4, int keep_tail = 2);

// Masks an e-mail address: "taro.yamada@example.co.jp" -> "t*********@example.co.jp".
std::string MaskEmail(std::string_view email);

// Masks the file names in a member path, for logs, audit records and block
// pages ("upload.zip!山田太郎_保険証.jpg" -> "u*****.zip!山***_***.jpg"): a
// file name can name a person. Components are split at '!' and '/'; each
// keeps its extension (up to 5 ASCII letters or digits) and, masked as by
// MaskValue, its stem; the names mamori itself gives ("body", "headers",
// "part2.1") stay, and of "field=value" only the value is masked.
std::string MaskPath(std::string_view path);

// A 32-byte secret that keys the value hashes. Thread-compatible value type.
class HashKey {
 public:
  static constexpr size_t kSize = 32;
  HashKey() { key_.fill(0); }
  explicit HashKey(const std::array<unsigned char, kSize>& k) : key_(k) {}

  // Loads a key file (exactly 32 raw bytes, or 64 hex characters).
  static Result<HashKey> Load(const std::string& path);
  // Loads the key file, creating it with a fresh random key (mode 0600) if absent.
  static Result<HashKey> LoadOrCreate(const std::string& path);

  // Keyed BLAKE2b of a normalised value, as 32 lowercase hex characters
  // (128 bits): enough to correlate, useless to reverse without the key.
  std::string Hash(std::string_view type, std::string_view normalized_value) const;

 private:
  std::array<unsigned char, kSize> key_;
};

}  // namespace mamori
