// Fuzzes extract::ExtractBuffer on ooxml input (seed corpus: fuzz/corpus/extract_ooxml/).
#include "extract_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mamori::extract::fuzz::Run("fuzz.xlsx", data, size);
  return 0;
}
