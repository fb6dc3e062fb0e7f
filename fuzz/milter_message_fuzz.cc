// Fuzzes MIME parsing of a whole mail as the milter sees it: the input is a
// raw RFC 5322 message, inspected by the real extractor + detector (every part,
// attachment, zip) within the milter's budgets.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "common/redact.h"
#include "mail/inspect.h"
#include "mail/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mamori::mail::ContentInspector* inspector = [] {
    mamori::mail::Budgets b;
    b.max_message_bytes = 1 << 20;
    b.scan_seconds = 5;
    auto r = mamori::mail::MakeDetectInspector(b, mamori::HashKey());
    return r.ok() ? r->release() : nullptr;
  }();
  if (inspector == nullptr || size > (1 << 20)) return 0;
  auto s = inspector->Inspect(std::string_view(reinterpret_cast<const char*>(data), size));
  (void)s;
  return 0;
}
