// Fuzzes extract::ExtractBuffer on mime input (seed corpus: fuzz/corpus/extract_mime/).
#include "extract_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mamori::extract::fuzz::Run("fuzz.eml", data, size);
  return 0;
}
