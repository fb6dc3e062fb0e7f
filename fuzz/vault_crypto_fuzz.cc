// Fuzzes the parsers of untrusted bytes in src/crypto: the keyring file, the
// content stream decryptor and wrapped keys. None may crash, and a stream
// must never both fail and succeed.
#include <cstdint>
#include <string>

#include "crypto/crypto.h"

using namespace mamori;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)crypto::Keyring::Parse(in);

  static const crypto::SecretKey key = *crypto::SecretKey::FromBytes(std::string(32, 'k'));
  auto dec = crypto::StreamDecryptor::Create(key, "blob:fuzz");
  if (dec.ok()) {
    std::string out;
    size_t split = size ? data[0] % 97 + 1 : 1;
    Status s;
    for (size_t i = 0; i < in.size() && s.ok(); i += split)
      s = (*dec)->Feed(in.substr(i, split), &out);
    if (s.ok()) (void)(*dec)->Finish(&out);
  }
  static const crypto::Keyring ring =
      *crypto::Keyring::Parse("mamori-keyring 1\nkek 1 " + std::string(64, 'a') + "\ncurrent 1\n");
  (void)crypto::UnwrapKey(ring, in, "x");
  (void)crypto::FromHex(in);
  return 0;
}
