// Fuzzes encoding detection and conversion (seed corpus: fuzz/corpus/extract_decode/).
#include "extract_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string encoding;
  auto r = mamori::extract::DecodeToUtf8(in, &encoding);
  if (r.ok() && !mamori::extract::internal::IsValidUtf8(*r)) __builtin_trap();
  if (encoding.empty()) __builtin_trap();
  mamori::extract::fuzz::Run("fuzz.txt", data, size);
  return 0;
}
