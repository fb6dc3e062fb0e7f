#include "vault/identity.h"

#include <liboath/oath.h>
#include <pwquality.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <mutex>

#include "crypto/crypto.h"

namespace mamori::vault {
namespace {

std::string Lower(std::string_view s) {
  std::string o(s);
  std::transform(o.begin(), o.end(), o.begin(), [](unsigned char c) { return std::tolower(c); });
  return o;
}

void OathInit() {
  static std::once_flag once;
  std::call_once(once, [] { oath_init(); });
}

}  // namespace

Status CheckPasswordPolicy(std::string_view password, std::string_view user_name) {
  if (password.size() < 12)
    return InvalidArgument("the password must be at least 12 characters long");
  if (password.size() > 1024) return InvalidArgument("the password is longer than 1024 bytes");
  if (password.find('\0') != std::string_view::npos)
    return InvalidArgument("the password must not contain NUL bytes");
  if (!user_name.empty() && Lower(password).find(Lower(user_name)) != std::string::npos)
    return InvalidArgument("the password must not contain the user name");
  pwquality_settings_t* pwq = pwquality_default_settings();
  if (!pwq) return Internal("libpwquality: out of memory");
  pwquality_set_int_value(pwq, PWQ_SETTING_MIN_LENGTH, 12);
  pwquality_set_int_value(pwq, PWQ_SETTING_DICT_CHECK, 1);
  pwquality_set_int_value(pwq, PWQ_SETTING_USER_CHECK, 1);
  std::string pw(password), user(user_name);
  void* aux = nullptr;
  int rc = pwquality_check(pwq, pw.c_str(), nullptr, user.empty() ? nullptr : user.c_str(), &aux);
  Status out;
  if (rc < 0) {
    char buf[PWQ_MAX_ERROR_MESSAGE_LEN];
    const char* msg = pwquality_strerror(buf, sizeof buf, rc, aux);
    out = InvalidArgument(std::string("the password was rejected: ") + (msg ? msg : "too weak"));
  }
  pwquality_free_settings(pwq);
  sodium_memzero(pw.data(), pw.size());
  return out;
}

Result<std::string> HashPassword(std::string_view password, bool strong) {
  RETURN_IF_ERROR(crypto::Init());
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(
          out, password.data(), password.size(),
          strong ? crypto_pwhash_OPSLIMIT_MODERATE : crypto_pwhash_OPSLIMIT_INTERACTIVE,
          strong ? crypto_pwhash_MEMLIMIT_MODERATE : crypto_pwhash_MEMLIMIT_INTERACTIVE,
          crypto_pwhash_ALG_ARGON2ID13) != 0)
    return ResourceExhausted("Argon2id ran out of memory while hashing the password");
  return std::string(out);
}

bool VerifyPassword(const std::string& hash, std::string_view password) {
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  (void)crypto::Init();
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string NewTotpSecret() { return crypto::RandomBytes(20); }

std::string Base32Encode(std::string_view bytes) {
  static const char* kAlpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlpha[(buf >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlpha[(buf << (5 - bits)) & 31]);
  return out;
}

std::string TotpUri(std::string_view issuer, std::string_view user, std::string_view secret) {
  return "otpauth://totp/" + std::string(issuer) + ":" + std::string(user) +
         "?secret=" + Base32Encode(secret) + "&issuer=" + std::string(issuer) +
         "&algorithm=SHA1&digits=6&period=30";
}

std::string TotpCode(std::string_view secret, int64_t now_seconds) {
  OathInit();
  char code[16] = {0};
  if (oath_totp_generate(secret.data(), secret.size(), static_cast<time_t>(now_seconds), 30, 0, 6,
                         code) != OATH_OK)
    return "";
  return code;
}

Result<int64_t> TotpVerify(std::string_view secret, std::string_view code, int64_t now_seconds,
                           int window) {
  OathInit();
  if (code.size() != 6 || !std::all_of(code.begin(), code.end(), ::isdigit))
    return PermissionDenied("the one-time code must be 6 digits");
  std::string c(code);
  int offset = 0;
  int rc = oath_totp_validate2(secret.data(), secret.size(), static_cast<time_t>(now_seconds), 30,
                               0, static_cast<size_t>(window), &offset, c.c_str());
  if (rc < 0) return PermissionDenied("the one-time code is wrong or expired");
  return now_seconds / 30 + offset;
}

}  // namespace mamori::vault
