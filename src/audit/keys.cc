// Ed25519 keys for checkpoints, head anchors and event ids.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "audit/audit.h"
#include "audit/format.h"
#include "common/file_util.h"

namespace mamori::audit {
namespace {

bool EnsureSodium() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

// The single non-comment, non-empty line of a small key file.
Result<std::string> KeyLine(const std::string& content, const std::string& path) {
  std::istringstream in(content);
  std::string line, found;
  int count = 0;
  while (std::getline(in, line)) {
    size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    size_t e = line.find_last_not_of(" \t\r");
    found = line.substr(b, e - b + 1);
    ++count;
  }
  if (count != 1)
    return InvalidArgument(path +
                           " must hold exactly one line of 64 hex characters (plus '#' "
                           "comments); create it with `mamori audit keygen`");
  return found;
}

constexpr const char* kSecretHeader =
    "# mamori audit checkpoint signing key (Ed25519 seed, hex).\n"
    "# Keep this file mode 0600, on another volume than the log and the data keys.\n";
constexpr const char* kPublicHeader =
    "# mamori audit checkpoint public key (Ed25519, hex). Verification needs only this.\n";

}  // namespace

std::string NewEventId() {
  EnsureSodium();
  static const char* kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";  // Crockford
  unsigned char raw[10];
  randombytes_buf(raw, sizeof raw);
  std::string id;
  for (unsigned char c : raw) id.push_back(kAlphabet[c & 31]);
  return id;
}

// ---------------------------------------------------------------- PublicKey

Result<PublicKey> PublicKey::FromHex(std::string_view hex) {
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.front())))
    hex.remove_prefix(1);
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back()))) hex.remove_suffix(1);
  auto raw = internal::FromHex(hex);
  if (!raw || raw->size() != kSize)
    return InvalidArgument("a public key is 64 hex characters (32 bytes)");
  PublicKey k;
  k.key_ = *raw;
  return k;
}

Result<PublicKey> PublicKey::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string content, ReadFile(path, 4096));
  ASSIGN_OR_RETURN(std::string line, KeyLine(content, path));
  auto k = FromHex(line);
  if (!k.ok()) return k.status().WithContext(path);
  return k;
}

std::string PublicKey::Hex() const { return internal::ToHex(key_); }

bool PublicKey::Verify(std::string_view message, std::string_view signature) const {
  if (!valid() || signature.size() != crypto_sign_BYTES) return false;
  EnsureSodium();
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(),
                                     reinterpret_cast<const unsigned char*>(key_.data())) == 0;
}

// ---------------------------------------------------------------- SigningKey

SigningKey::SigningKey() { std::memset(secret_, 0, sizeof secret_); }
SigningKey::~SigningKey() { sodium_memzero(secret_, sizeof secret_); }
SigningKey::SigningKey(SigningKey&& o) noexcept : public_(o.public_) {
  std::memcpy(secret_, o.secret_, sizeof secret_);
  sodium_memzero(o.secret_, sizeof o.secret_);
}
SigningKey& SigningKey::operator=(SigningKey&& o) noexcept {
  if (this != &o) {
    std::memcpy(secret_, o.secret_, sizeof secret_);
    sodium_memzero(o.secret_, sizeof o.secret_);
    public_ = o.public_;
  }
  return *this;
}

SigningKey SigningKey::Generate() {
  EnsureSodium();
  SigningKey k;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_keypair(pk, k.secret_);
  k.public_ = *PublicKey::FromHex(
      internal::ToHex(std::string_view(reinterpret_cast<const char*>(pk), sizeof pk)));
  return k;
}

Result<SigningKey> SigningKey::Load(const std::string& path) {
  EnsureSodium();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return NotFound(path + ": no such signing key; create one with `mamori audit keygen`");
    return Unavailable(path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0)
    return PermissionDenied(path + " is readable or writable by group/others; run `chmod 600 " +
                            path + "`");
  ASSIGN_OR_RETURN(std::string content, ReadFile(path, 4096));
  auto line = KeyLine(content, path);
  sodium_memzero(content.data(), content.size());
  if (!line.ok()) return line.status();
  auto seed = internal::FromHex(*line);
  sodium_memzero(line->data(), line->size());
  if (!seed || seed->size() != crypto_sign_SEEDBYTES)
    return InvalidArgument(path + ": the signing key is 64 hex characters (a 32-byte seed)");
  SigningKey k;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_seed_keypair(pk, k.secret_, reinterpret_cast<const unsigned char*>(seed->data()));
  sodium_memzero(seed->data(), seed->size());
  k.public_ = *PublicKey::FromHex(
      internal::ToHex(std::string_view(reinterpret_cast<const char*>(pk), sizeof pk)));
  return k;
}

std::string SigningKey::Sign(std::string_view message) const {
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size(), secret_);
  return std::string(reinterpret_cast<const char*>(sig), sizeof sig);
}

std::string SigningKey::Serialize() const {
  unsigned char seed[crypto_sign_SEEDBYTES];
  crypto_sign_ed25519_sk_to_seed(seed, secret_);
  std::string out = kSecretHeader;
  out += internal::ToHex(std::string_view(reinterpret_cast<const char*>(seed), sizeof seed));
  out += '\n';
  sodium_memzero(seed, sizeof seed);
  return out;
}

Result<PublicKey> GenerateKeyPair(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Unavailable("cannot create " + dir + ": " + ec.message());
  std::string secret_path = (std::filesystem::path(dir) / kSigningKeyFile).string();
  std::string public_path = (std::filesystem::path(dir) / kPublicKeyFile).string();
  if (std::filesystem::exists(secret_path) || std::filesystem::exists(public_path))
    return AlreadyExists(dir +
                         " already holds an audit key; move it away first (a new key "
                         "cannot verify old checkpoints)");
  SigningKey key = SigningKey::Generate();
  std::string secret = key.Serialize();
  Status st = WriteFileAtomic(secret_path, secret, 0600);
  sodium_memzero(secret.data(), secret.size());
  RETURN_IF_ERROR(st);
  // WriteFileAtomic honours the mode given; make sure the umask did not widen it.
  ::chmod(secret_path.c_str(), 0600);
  RETURN_IF_ERROR(WriteFileAtomic(
      public_path, std::string(kPublicHeader) + key.public_key().Hex() + "\n", 0644));
  return key.public_key();
}

// ---------------------------------------------------------------- Head

std::string Head::ToString() const { return std::to_string(seq) + ":" + hash; }

Result<Head> Head::Parse(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  size_t colon = s.find(':');
  auto bad = [] {
    return InvalidArgument("a head is \"SEQ:HASH\" as printed by `mamori audit head`");
  };
  if (colon == std::string_view::npos || colon == 0 || colon > 20) return bad();
  Head h;
  for (char c : s.substr(0, colon)) {
    if (c < '0' || c > '9') return bad();
    if (h.seq > (UINT64_MAX - 9) / 10) return bad();
    h.seq = h.seq * 10 + static_cast<uint64_t>(c - '0');
  }
  std::string_view hash = s.substr(colon + 1);
  if (hash.size() != internal::kHashHexLen || !internal::FromHex(hash)) return bad();
  h.hash.assign(hash);
  for (auto& c : h.hash) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return h;
}

}  // namespace mamori::audit
