// Fuzzes MIME parsing of a whole mail as the milter sees it: the input is a
// raw RFC 5322 message, inspected by the real extractor + detector (every part,
// attachment, zip) within the milter's budgets.
#include <cstddef>
#include <cstdint>
#include <cstdio>
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
    if (!r.ok()) {
      std::fprintf(stderr, "milter_message fuzz: no inspector: %s\n",
                   r.status().ToString().c_str());
      return static_cast<mamori::mail::ContentInspector*>(nullptr);
    }
    return r->release();
  }();
  if (inspector == nullptr || size > (1 << 20)) return 0;
  auto s = inspector->Inspect(std::string_view(reinterpret_cast<const char*>(data), size));
  (void)s;
  return 0;
}
