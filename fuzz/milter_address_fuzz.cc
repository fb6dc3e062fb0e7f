// Fuzzes the RFC 5322 address-list parser (To/Cc headers) and the typo distance.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mail/address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = mamori::mail::ParseAddressList(in, 1000);
  if (r.ok()) {
    for (const auto& a : *r) {
      std::string d = mamori::mail::DomainOf(a);
      (void)mamori::mail::EditDistance(d, "partner.co.jp", 2);
      (void)mamori::mail::DomainMatches(d, "example.co.jp");
    }
  }
  (void)mamori::mail::NormalizeEnvelopeAddress(in);
  size_t half = size / 2;
  (void)mamori::mail::EditDistance(in.substr(0, half), in.substr(half), 3);
  return 0;
}
