#include "common/redact.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mamori {
namespace {

bool IsAsciiAlnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// Length of the UTF-8 sequence that starts with byte c (1 for invalid bytes).
size_t Utf8Len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xE) return 3;
  if ((c >> 3) == 0x1E) return 4;
  return 1;
}

bool EnsureSodium() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

}  // namespace

std::string MaskValue(std::string_view value, int keep_head, int keep_tail) {
  // Count the maskable units: ASCII alnum, and every non-ASCII character.
  int units = 0;
  for (size_t i = 0; i < value.size(); i += Utf8Len(value[i])) {
    unsigned char c = value[i];
    if (IsAsciiAlnum(c) || c >= 0x80) ++units;
  }
  bool has_non_ascii = false;
  for (unsigned char c : value) has_non_ascii |= c >= 0x80;
  if (has_non_ascii) {  // names and addresses: keep only the first character
    keep_head = 1;
    keep_tail = 0;
  }
  // Never reveal more than half of a short value.
  while (keep_head + keep_tail > units / 2 && (keep_head > 0 || keep_tail > 0)) {
    if (keep_head >= keep_tail && keep_head > 0) {
      --keep_head;
    } else {
      --keep_tail;
    }
  }
  std::string out;
  int seen = 0;
  for (size_t i = 0; i < value.size();) {
    size_t len = std::min(Utf8Len(value[i]), value.size() - i);
    unsigned char c = value[i];
    if (IsAsciiAlnum(c) || c >= 0x80) {
      bool keep = seen < keep_head || seen >= units - keep_tail;
      if (keep) {
        out.append(value.substr(i, len));
      } else {
        out.push_back('*');
      }
      ++seen;
    } else {
      out.push_back(static_cast<char>(c));
    }
    i += len;
  }
  return out;
}

namespace {
bool IsGeneratedName(std::string_view c) {
  if (c.empty() || c == "body" || c == "headers") return true;
  if (c.size() > 4 && c.substr(0, 4) == "part") {
    for (char ch : c.substr(4))
      if (!((ch >= '0' && ch <= '9') || ch == '.')) return false;
    return true;
  }
  return false;
}

std::string MaskFileName(std::string_view name) {
  if (IsGeneratedName(name)) return std::string(name);
  size_t eq = name.rfind('=');
  if (eq != std::string_view::npos)
    return std::string(name.substr(0, eq + 1)) + MaskFileName(name.substr(eq + 1));
  size_t dot = name.rfind('.');
  std::string_view ext;
  if (dot != std::string_view::npos && dot > 0 && name.size() - dot - 1 >= 1 &&
      name.size() - dot - 1 <= 5) {
    ext = name.substr(dot);
    for (char ch : ext.substr(1))
      if (!IsAsciiAlnum(static_cast<unsigned char>(ch))) ext = {};
  }
  return MaskValue(name.substr(0, name.size() - ext.size()), 1, 0) + std::string(ext);
}
}  // namespace

std::string MaskPath(std::string_view path) {
  std::string out;
  size_t start = 0;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '!' && path[i] != '/') continue;
    out += MaskFileName(path.substr(start, i - start));
    if (i < path.size()) out.push_back(path[i]);
    start = i + 1;
  }
  return out;
}

std::string MaskEmail(std::string_view email) {
  size_t at = email.rfind('@');
  if (at == std::string_view::npos || at == 0) return MaskValue(email, 1, 0);
  std::string out(email.substr(0, 1));
  out.append(at - 1, '*');
  out.append(email.substr(at));
  return out;
}

Result<HashKey> HashKey::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("hash key file " + path + " cannot be opened");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string raw = ss.str();
  while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r')) raw.pop_back();
  std::array<unsigned char, kSize> k{};
  if (raw.size() == kSize) {
    std::memcpy(k.data(), raw.data(), kSize);
  } else if (raw.size() == 2 * kSize) {
    size_t bin_len = 0;
    if (sodium_hex2bin(k.data(), kSize, raw.data(), raw.size(), nullptr, &bin_len, nullptr) != 0 ||
        bin_len != kSize) {
      return InvalidArgument("hash key file " + path + " is not 64 hex characters");
    }
  } else {
    return InvalidArgument("hash key file " + path +
                           " must hold 32 raw bytes or 64 hex characters");
  }
  return HashKey(k);
}

Result<HashKey> HashKey::LoadOrCreate(const std::string& path) {
  if (std::filesystem::exists(path)) return Load(path);
  if (!EnsureSodium()) return Internal("libsodium failed to initialise");
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::array<unsigned char, kSize> k{};
  randombytes_buf(k.data(), k.size());
  char hex[2 * kSize + 1];
  sodium_bin2hex(hex, sizeof hex, k.data(), k.size());
  // O_EXCL: if another process created it first, use theirs.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Load(path);
    return Unavailable("cannot create hash key file " + path + ": " + std::strerror(errno));
  }
  std::string content = std::string(hex) + "\n";
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return Unavailable("cannot write hash key file " + path);
  }
  return HashKey(k);
}

std::string HashKey::Hash(std::string_view type, std::string_view normalized_value) const {
  EnsureSodium();
  unsigned char out[16];
  crypto_generichash_state st;
  crypto_generichash_init(&st, key_.data(), key_.size(), sizeof out);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(type.data()), type.size());
  const unsigned char sep = 0;
  crypto_generichash_update(&st, &sep, 1);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(normalized_value.data()),
                            normalized_value.size());
  crypto_generichash_final(&st, out, sizeof out);
  char hex[33];
  sodium_bin2hex(hex, sizeof hex, out, sizeof out);
  return hex;
}

}  // namespace mamori
