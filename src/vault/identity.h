// Passwords (Argon2id + libpwquality policy) and TOTP (RFC 6238, liboath).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mamori::vault {

// The password policy: length >= 12, libpwquality's checks (dictionary via
// cracklib, character classes, repeats), and must not contain the user name
// (case-insensitive). The error message says what to change, never echoes it.
Status CheckPasswordPolicy(std::string_view password, std::string_view user_name);

// Argon2id (crypto_pwhash_str) with libsodium's "interactive" limits unless
// `strong` (moderate limits). The result embeds salt and parameters.
Result<std::string> HashPassword(std::string_view password, bool strong = false);
bool VerifyPassword(const std::string& hash, std::string_view password);

// TOTP (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits).
std::string NewTotpSecret();                       // 20 random bytes
std::string Base32Encode(std::string_view bytes);  // RFC 4648, no padding
std::string TotpUri(std::string_view issuer, std::string_view user, std::string_view secret);
// The code for unix time `now` (for clients and tests).
std::string TotpCode(std::string_view secret, int64_t now_seconds);
// Accepts the codes of the current step and +-`window` steps. Returns the
// accepted step number (callers refuse a step already used, against replay).
Result<int64_t> TotpVerify(std::string_view secret, std::string_view code, int64_t now_seconds,
                           int window = 1);

}  // namespace mamori::vault
